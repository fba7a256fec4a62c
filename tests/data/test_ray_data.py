"""Ray Data reads a table on a 2-CPU Ray (its blocks parsed by Ray tasks) and the stage makes exactly the dataset the
in-memory path makes: the same digest, the same lineage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aidc.cluster.compute import ray_cluster
from aidc.errors import InvalidInput


def test_ray_data_on_two_cpus_gives_the_in_memory_datasets_digest(run_data, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n = 6000
    frame = pd.DataFrame({f"f{i}": rng.normal(size=n) for i in range(6)})
    frame["colour"] = rng.choice(["red", "green", "blue"], n)
    frame["label"] = rng.integers(0, 4, n)
    frame.loc[7, "f2"] = None
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    settings = {"source": str(path), "columns": {"categorical": ["colour"]}}
    in_memory, arrays = run_data(**settings)
    with ray_cluster("", num_cpus=2):
        on_ray, ray_arrays = run_data(engine="ray", **settings)
        broken = tmp_path / "broken.csv"
        broken.write_text("a,b,label\n1,2,0\n1,2,3,4\n")
        with pytest.raises(InvalidInput, match=r"broken.csv, line 3: 4 fields where the header has 3"):
            run_data(engine="ray", source=str(broken))
    assert on_ray.fingerprint == in_memory.fingerprint
    assert on_ray.stats["lineage"] == in_memory.stats["lineage"]
    assert on_ray.stats["dropped_null"] == 1
    assert all(np.array_equal(arrays[k], ray_arrays[k]) for k in arrays)


def test_image_resize_and_augmentation_as_ray_data_transforms_give_the_in_memory_datasets_digest(
    run_data, tmp_path: Path
) -> None:
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    folder = tmp_path / "digits-png"
    for i, (pixels, label) in enumerate(zip(digits.images[:300], digits.target[:300], strict=True)):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        image = Image.fromarray((pixels * 255 / 16).astype(np.uint8)).resize((20, 20), Image.Resampling.NEAREST)
        image.save(folder / str(label) / f"{i:04d}.png")
    settings = {"source": str(folder), "resize": [10, 10], "augment": {"copies": 2, "max_shift": 2}, "seed": 5}
    in_memory, arrays = run_data(**settings)
    with ray_cluster("", num_cpus=2):
        on_ray, ray_arrays = run_data(engine="ray", **settings)
        other_seed, _ = run_data(engine="ray", **(settings | {"seed": 6}))
        (folder / "3" / "broken.png").write_bytes(b"not a png")
        with pytest.raises(InvalidInput, match=r"digits-png/3/broken.png: not a readable image"):
            run_data(engine="ray", **settings)
    log = (tmp_path / "data.log").read_text()
    train = on_ray.stats["splits"]["train"] // 3
    assert "Ray Data read and decoded 300 images resized in " in log
    assert f"Ray Data made {2 * train} augmented copies in " in log
    assert on_ray.fingerprint == in_memory.fingerprint
    assert all(np.array_equal(arrays[k], ray_arrays[k]) for k in arrays)
    assert on_ray.stats["augmented"] == 2 * on_ray.stats["splits"]["train"] // 3 > 0
    assert arrays["x_train"].shape[1:] == (1, 10, 10)
    assert other_seed.fingerprint != on_ray.fingerprint  # the seed draws the jitter
