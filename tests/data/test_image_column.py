"""A table naming image files (a path column and a label column, as image datasets often ship) reads the images like
a folder of them: the same dataset from the same files, the files' digest in the lineage, bad rows named, and a path
that climbs out of a job's data folders refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aidc.errors import InvalidInput


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    from sklearn.datasets import load_digits

    digits = load_digits()
    root = tmp_path / "area" / "pngs"
    for i, (pixels, label) in enumerate(zip(digits.images[:60], digits.target[:60], strict=True)):
        if label not in (1, 7):
            continue
        (root / f"d{label}").mkdir(parents=True, exist_ok=True)
        Image.fromarray((pixels * 255 / 16).astype(np.uint8)).resize((16, 16)).save(root / f"d{label}" / f"{i:03d}.png")
    return root


def table(folder: Path, rows: list[tuple[str, str]]) -> Path:
    path = folder.parent / "images.csv"
    path.write_text("path,digit\n" + "".join(f"{p},{d}\n" for p, d in rows))
    return path


def test_a_table_of_image_files_gives_the_folders_dataset(run_data, folder: Path) -> None:
    rows = [(f"pngs/{p.parent.name}/{p.name}", p.parent.name) for p in sorted(folder.glob("*/*.png"))]
    settings = {"resize": [8, 8], "augment": {"copies": 0}}
    from_folder, arrays = run_data(source=str(folder), **settings)
    from_table, table_arrays = run_data(
        source=str(table(folder, rows)), columns={"image": "path", "label": "digit"}, **settings
    )
    assert from_table.fingerprint == from_folder.fingerprint
    assert all(np.array_equal(arrays[k], table_arrays[k]) for k in arrays)
    assert from_table.schema["label"]["names"] == ["d1", "d7"]
    lineage = from_table.stats["lineage"]
    assert lineage["uri"].endswith("images.csv") and lineage["images"]["files"] == len(rows)


def test_bad_rows_are_named_and_a_path_out_of_the_data_folder_is_refused(run_data, folder: Path) -> None:
    good = [(f"pngs/{p.parent.name}/{p.name}", p.parent.name) for p in sorted(folder.glob("*/*.png"))]
    path = table(folder, [good[0], ("pngs/d1/nope.png", "d1"), *good[1:]])
    with pytest.raises(InvalidInput, match=r"images.csv, row 2 \(line 3\), column 'path': 'pngs/d1/nope.png' does not"):
        run_data(source=str(path), columns={"image": "path", "label": "digit"})
    (folder / "d1" / "broken.png").write_bytes(b"no image")
    path = table(folder, [*good[:3], ("pngs/d1/broken.png", "d1")])
    with pytest.raises(InvalidInput, match=r"row 4 \(line 5\), column 'path': 'pngs/d1/broken.png' is not a readable"):
        run_data(source=str(path), columns={"image": "path", "label": "digit"})
    secret = folder.parent.parent / "elsewhere.png"
    Image.new("L", (16, 16)).save(secret)
    path = table(folder, [*good[:5], ("../elsewhere.png", "d7")])
    with pytest.raises(InvalidInput, match="outside this project's data folders"):
        run_data(source="images.csv", roots=(str(folder.parent),), columns={"image": "path", "label": "digit"})
    with pytest.raises(InvalidInput, match=r"images.csv has no image column 'file' \(its columns: path, digit\)"):
        run_data(source=str(path), columns={"image": "file", "label": "digit"})
