"""Preparing a large table: the data stage's in-memory path (pandas) against Ray Data on a local Ray, side by side.

    python benchmarks/data.py                      # 1,000,000 rows × 20 columns, Ray with 2 CPUs
    python benchmarks/data.py --rows 200000 --cpus 2

Writes a CSV (19 float features and an integer label; a few nulls and duplicates), then times, each in a fresh
artifact store, the data stage reading it and preparing it (typing, cleaning, stratified split, normalisation) with
``engine: pandas`` and with ``engine: ray`` (Ray Data reads and parses the file's blocks in Ray tasks, then the same
preparation runs). Prints rows/s for each, the ratio, and whether both made the same dataset (digest). Ray's start
and both paths' imports are outside the timed region (a warm-up run on a small table each).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def write_csv(path: Path, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"f{i:02d}": rng.normal(size=rows).round(6) for i in range(19)})
    frame["label"] = rng.integers(0, 5, rows)
    frame.loc[rng.choice(rows, 10, replace=False), "f03"] = None
    frame.iloc[1:6] = frame.iloc[0:5].to_numpy()  # a few duplicate rows
    frame.to_csv(path, index=False)


def prepare(csv: Path, store_dir: Path, engine: str) -> tuple[float, Any]:
    from aidc.data.stage import DataConfig, DataStage
    from aidc.pipeline.stage import StageContext
    from aidc.store.artifacts import open_artifact_store

    store = open_artifact_store(store_dir.as_uri())
    ctx = StageContext("bench", "data", store, None, str(store_dir / "data.log"), str(store_dir))
    config = DataConfig.model_validate({"source": str(csv), "engine": engine})
    began = time.perf_counter()
    out = DataStage().run(ctx, config, {})
    return time.perf_counter() - began, out["dataset"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray")
    args = ap.parse_args()

    import ray

    with tempfile.TemporaryDirectory(prefix="aidc-bench-data-") as tmp:
        root = Path(tmp)
        csv = root / "table.csv"
        write_csv(csv, args.rows)
        size_mb = csv.stat().st_size / 1e6
        small = root / "small.csv"
        write_csv(small, 2000)
        prepare(small, root / "warm-pandas", "pandas")  # imports (scikit-learn, pyarrow) outside the timed run
        pandas_s, pandas_ds = prepare(csv, root / "a", "pandas")
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
        try:
            prepare(small, root / "warm-ray", "ray")
            ray_s, ray_ds = prepare(csv, root / "b", "ray")
        finally:
            ray.shutdown()
    print(f"data stage on a {args.rows:,}-row × 20-column CSV ({size_mb:.0f} MB)")
    print(f"  pandas (in memory, one process)  {pandas_s:7.2f} s  {args.rows / pandas_s:12,.0f} rows/s")
    print(f"  Ray Data ({args.cpus} CPUs)               {ray_s:7.2f} s  {args.rows / ray_s:12,.0f} rows/s")
    print(
        f"  Ray Data / pandas time: {ray_s / pandas_s:.2f}×   same dataset: {ray_ds.fingerprint == pandas_ds.fingerprint}"
    )


if __name__ == "__main__":
    main()
