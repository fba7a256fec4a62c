"""Write wine.csv, the table examples/tabular/pipeline.yaml reads, from the wine data that ships with scikit-learn.

The pipeline's data stage calls ``write`` first (`data.prepare: make_csv:write`); it writes the file only when it is
missing. Run it yourself with ``python examples/tabular/make_csv.py``.
"""

from __future__ import annotations

from pathlib import Path

CSV = Path(__file__).with_name("wine.csv")
CULTIVARS = {0: "barolo", 1: "grignolino", 2: "barbera"}


def write() -> Path:
    """178 wines: 13 measurements each and the cultivar (barolo, grignolino, barbera), as a CSV with a header."""
    from sklearn.datasets import load_wine

    if not CSV.exists():
        frame = load_wine(as_frame=True).frame.rename(columns={"target": "cultivar"})
        frame["cultivar"] = frame["cultivar"].map(CULTIVARS)
        frame.to_csv(CSV, index=False, lineterminator="\n")
    return CSV


if __name__ == "__main__":
    print(f"wrote {write()}")
