"""What the data stage tells a person in its log."""

from __future__ import annotations

from aidc.data.stage import preparation_summary


def test_the_preparation_summary_is_words_not_a_python_dict() -> None:
    line = preparation_summary(
        1800,
        {"dropped_invalid": 2, "dropped_duplicate": 1},
        {"train": 1440, "val": 356, "test": 361},
        augmented=720,
    )
    assert line == (
        "1800 rows in; dropped 2 invalid and 1 duplicate, kept 1797; "
        "split into 1440 train (720 of them augmented copies), 356 val, 361 test"
    )
    assert "{" not in line and "dropped_" not in line
