"""Write wine.csv, the table examples/tabular/pipeline.yaml reads, from the wine data that ships with scikit-learn.

python examples/tabular/make_csv.py   (the committed wine.csv is its output; run it to check or regenerate)
"""

from __future__ import annotations

from pathlib import Path

from sklearn.datasets import load_wine

CULTIVARS = {0: "barolo", 1: "grignolino", 2: "barbera"}


def write(dest: Path = Path(__file__).with_name("wine.csv")) -> Path:
    frame = load_wine(as_frame=True).frame.rename(columns={"target": "cultivar"})
    frame["cultivar"] = frame["cultivar"].map(CULTIVARS)
    frame.to_csv(dest, index=False, lineterminator="\n")
    return dest


if __name__ == "__main__":
    print(f"wrote {write()}")
