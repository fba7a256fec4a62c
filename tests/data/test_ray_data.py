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
        with pytest.raises(InvalidInput, match="broken.csv is not a readable csv file"):
            run_data(engine="ray", source=str(broken))
    assert on_ray.fingerprint == in_memory.fingerprint
    assert on_ray.stats["lineage"] == in_memory.stats["lineage"]
    assert on_ray.stats["dropped_null"] == 1
    assert all(np.array_equal(arrays[k], ray_arrays[k]) for k in arrays)
