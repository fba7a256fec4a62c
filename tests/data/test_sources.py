"""The data stage on the user's own files: CSV, Parquet and JSON Lines tables, an image folder, an .npz and their
own function — typed, cleaned, encoded and split, with the dataset version's schema, statistics and lineage."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from aidc.errors import InvalidInput


def wine_frame() -> pd.DataFrame:
    from sklearn.datasets import load_wine

    wine = load_wine(as_frame=True)
    frame = wine.frame.rename(columns={"target": "cultivar"})
    frame["cultivar"] = frame["cultivar"].map({0: "barolo", 1: "grignolino", 2: "barbera"})
    return frame


@pytest.fixture
def wine_csv(tmp_path: Path) -> Path:
    path = tmp_path / "wine.csv"
    wine_frame().to_csv(path, index=False)
    return path


def test_a_csv_becomes_a_stratified_dataset_with_its_schema_stats_and_lineage(run_data, wine_csv: Path) -> None:
    dataset, arrays = run_data(source=str(wine_csv), dataset="wine", columns={"label": "cultivar"})
    assert arrays["x_train"].shape[1] == 13 and arrays["x_train"].dtype == np.float32
    assert sum(len(arrays[f"y_{p}"]) for p in ("train", "val", "test")) == 178
    assert dataset.schema["label"]["names"] == ["barbera", "barolo", "grignolino"]
    assert dataset.schema["features"]["columns"][0] == "alcohol"
    # every class keeps its share in every split
    shares = {p: np.bincount(arrays[f"y_{p}"]) / len(arrays[f"y_{p}"]) for p in ("train", "val", "test")}
    assert np.abs(shares["train"] - shares["test"]).max() < 0.05
    assert dataset.class_balance["test"] == {str(k): int(n) for k, n in enumerate(np.bincount(arrays["y_test"]))}
    assert abs(arrays["x_train"][:, 0].mean()) < 1e-5  # standardised on the training split
    assert dataset.stats["columns"]["alcohol"]["min"] == pytest.approx(11.03)
    lineage = dataset.stats["lineage"]
    assert lineage["uri"] == str(wine_csv) and lineage["size"] == wine_csv.stat().st_size
    assert lineage["sha256"] == hashlib.sha256(wine_csv.read_bytes()).hexdigest()


def test_parquet_and_json_lines_of_the_same_table_give_the_same_dataset(run_data, wine_csv: Path) -> None:
    frame = pd.read_csv(wine_csv)
    frame.to_parquet(wine_csv.with_suffix(".parquet"))
    frame.to_json(wine_csv.with_suffix(".jsonl"), orient="records", lines=True)
    digests = {
        suffix: run_data(source=str(wine_csv.with_suffix(suffix)), columns={"label": "cultivar"})[0].fingerprint
        for suffix in (".csv", ".parquet", ".jsonl")
    }
    assert len(set(digests.values())) == 1, digests


def test_cleaning_rules_categories_and_a_regression_target(run_data, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 60
    frame = pd.DataFrame(
        {
            "rooms": rng.integers(1, 6, n).astype(float),
            "area": rng.uniform(20, 200, n),
            "city": rng.choice(["lyon", "paris", "nice"], n),
            "price": rng.uniform(1e5, 9e5, n),
        }
    )
    frame.loc[3, "area"] = None  # a null
    frame.loc[5, "area"] = 9_999.0  # out of range
    frame = pd.concat([frame, frame.iloc[[10, 11]]], ignore_index=True)  # two duplicates
    path = tmp_path / "homes.csv"
    frame.to_csv(path, index=False)
    dataset, arrays = run_data(
        source=str(path),
        task="regression",
        columns={"label": "price", "categorical": ["city"]},
        clean={"ranges": {"area": [10, 500]}},
    )
    assert dataset.stats["dropped_null"] == 1
    assert dataset.stats["dropped_out_of_range"] == 1
    assert dataset.stats["dropped_duplicate"] == 2
    assert sum(dataset.stats["splits"].values()) == 58
    assert dataset.schema["features"]["columns"] == ["rooms", "area", "city=lyon", "city=nice", "city=paris"]
    assert set(np.unique(arrays["x_train"][:, 2:])) == {0.0, 1.0}
    assert arrays["y_train"].dtype == np.float32 and arrays["y_train"].shape[1] == 1
    assert dataset.schema["task"] == "regression" and dataset.class_balance == {}


def _digit_folder(root: Path, per_class: int = 12, classes: tuple[int, ...] = (0, 1, 7)) -> Path:
    from sklearn.datasets import load_digits

    digits = load_digits()
    for c in classes:
        (root / f"digit-{c}").mkdir(parents=True)
        for i, img in enumerate(digits.images[digits.target == c][:per_class]):
            Image.fromarray((img * 255 / 16).astype(np.uint8)).save(root / f"digit-{c}" / f"{i:03d}.png")
    return root


def test_an_image_folder_is_read_by_class_and_resized(run_data, tmp_path: Path) -> None:
    folder = _digit_folder(tmp_path / "digits")
    dataset, arrays = run_data(source=str(folder), resize=[16, 16], augment={"copies": 0})
    assert arrays["x_train"].shape[1:] == (1, 16, 16)
    assert dataset.schema["label"]["names"] == ["digit-0", "digit-1", "digit-7"]
    assert dataset.stats["rows_in"] == 36 and dataset.stats["lineage"]["files"] == 36


def test_the_users_own_function_is_a_source_and_its_code_is_in_the_lineage(run_data, tmp_path: Path) -> None:
    (tmp_path / "mydata.py").write_text(
        "import numpy as np\n"
        "def load():\n"
        "    rng = np.random.default_rng(1)\n"
        "    x = rng.normal(size=(80, 3))\n"
        "    return x, (x[:, 0] > 0).astype(int)\n"
    )
    dataset, arrays = run_data(source="mydata:load", spec_dir=str(tmp_path))
    assert arrays["x_train"].shape[1] == 3
    assert dataset.stats["lineage"]["uri"] == "python:mydata:load"
    assert dataset.stats["lineage"]["sha256"] == hashlib.sha256((tmp_path / "mydata.py").read_bytes()).hexdigest()[:16]


# -- bad input: what, where (file, row, column), and how to fix it


def refusal(run_data, **settings) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        run_data(**settings)
    return caught.value


def test_a_word_in_a_numeric_column_names_the_file_row_line_and_column(run_data, wine_csv: Path) -> None:
    lines = wine_csv.read_text().splitlines()
    cells = lines[3].split(",")
    cells[0] = "abc"
    lines[3] = ",".join(cells)
    wine_csv.write_text("\n".join(lines) + "\n")
    error = refusal(run_data, source=str(wine_csv), columns={"label": "cultivar"})
    assert error.message == f"{wine_csv}, row 3 (line 4), column 'alcohol': 'abc' is not a number"
    assert "categorical" in (error.hint or "")


def test_a_row_with_too_many_fields_names_its_line(run_data, tmp_path: Path) -> None:
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b,label\n1,2,0\n3,4,1\n5,6,7,1\n")
    assert refusal(run_data, source=str(ragged)).message == f"{ragged}, line 4: 4 fields where the header has 3"


def test_a_missing_label_column_lists_the_columns_there_are(run_data, wine_csv: Path) -> None:
    error = refusal(run_data, source=str(wine_csv), columns={"label": "variety"})
    assert error.message.startswith(f"{wine_csv} has no label column 'variety' (its columns: alcohol, malic_acid,")
    assert "data.columns.label" in (error.hint or "")


def test_an_empty_folder_and_an_unreadable_image_are_named(run_data, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    (empty / "cats").mkdir(parents=True)
    assert refusal(run_data, source=str(empty)).message == f"image folder {empty} has no images"
    folder = _digit_folder(tmp_path / "digits", per_class=6)
    (folder / "digit-1" / "broken.png").write_bytes(b"not a png at all")
    error = refusal(run_data, source=str(folder))
    assert error.message.startswith(f"{folder}/digit-1/broken.png: not a readable image")


def test_a_csv_outside_the_projects_data_folders_is_refused(run_data, wine_csv: Path, tmp_path: Path) -> None:
    area = tmp_path / "projects" / "alpha" / "data"
    area.mkdir(parents=True)
    error = refusal(run_data, source=str(wine_csv), roots=(str(area),), columns={"label": "cultivar"})
    assert "outside this project's data folders" in error.message
    (area / "wine.csv").write_bytes(wine_csv.read_bytes())
    dataset, _ = run_data(source="wine.csv", roots=(str(area),), columns={"label": "cultivar"})
    assert dataset.stats["rows_in"] == 178
