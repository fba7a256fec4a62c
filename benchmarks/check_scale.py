"""`aidc check` at scale: load and check synthetic facility specs of growing size, and show it stays linear.

Issue 3's goal: a spec of 100,000 nodes in 10,000 racks loads and checks in seconds, linearly in its size.
Each size is one hall per 100 racks and one node entry per rack (10 four-GPU servers each), with the
power chain, cooling and fat-tree fabrics scaled to match, written as YAML into a temporary folder.

Run: .venv/bin/python benchmarks/check_scale.py [--racks 100 1000 10000] [--nodes-per-rack 10] [--repeat 3]
Prints the best of --repeat runs per phase, the time per 1,000 nodes, and each size's ratio to the previous
one (time ratio ≈ size ratio means linear). Peak RSS is the process's high-water mark so far.
"""

from __future__ import annotations

import argparse
import math
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from aidc.facility import fat_tree, load_facility
from aidc.standards.checker import run_check

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "facilities" / "dgx-h100-tier3.yaml"
NODE_KW, NODE_GPUS, RACKS_PER_HALL = 4.0, 4, 100
NICS = [("compute", NODE_GPUS, 400), ("storage", 2, 200), ("in-band", 1, 100), ("oob", 1, 1)]


def _fabric(name: str, kind: str, endpoints: int, gbps: float) -> dict[str, Any]:
    """A non-blocking fat tree with the fewest tiers (radix 128) that reaches every endpoint."""
    radix = 128
    tiers = next(t for t in (1, 2, 3) if fat_tree(endpoints, radix, t)[1] >= endpoints)
    switches = fat_tree(endpoints, radix, tiers)[0]
    return {
        "name": name,
        "kind": kind,
        "switch_model": f"radix-{radix}",
        "radix": radix,
        "port_gbps": gbps,
        "tiers": tiers,
        "rail_optimized": kind == "compute",
        **{f"{k}_switches": v for k, v in switches.items()},
    }


def write_spec(path: Path, racks: int, per_rack: int) -> int:
    """A Tier III facility (site, targets and security from the DGX example) with ``racks`` racks; returns nodes."""
    base = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    nodes = racks * per_rack
    it_kw = nodes * NODE_KW
    paths = ("A", "B")

    def n_plus_1(load_kw: float, unit_kw: float) -> int:
        return math.ceil(load_kw / unit_kw) + 1

    base["targets"]["tensor_parallel"] = NODE_GPUS
    base["power"] = {
        "compartmentalized": True,
        "paths": [{"name": p, "active": True} for p in paths],
        "utility_feeds": [
            {"name": f"feed-{p}", "capacity_kw": it_kw * 1.5, "substation": f"sub-{p}", "path": p} for p in paths
        ],
        "transformers": [
            {"name": f"tx-{p}", "capacity_kw": 3000, "count": n_plus_1(it_kw * 1.3, 3000), "path": p} for p in paths
        ],
        "ups": [
            {
                "name": f"ups-{p}",
                "path": p,
                "module_kw": 1000,
                "modules": n_plus_1(it_kw * 1.1, 1000),
                "battery_minutes": 10,
            }
            for p in paths
        ]
        + [
            {
                "name": "ups-mech",
                "path": "A",
                "serves": "cooling",
                "module_kw": 1000,
                "modules": n_plus_1(it_kw * 0.33, 1000),
                "battery_minutes": 10,
            }
        ],
        "generators": [
            {
                "name": "gen",
                "capacity_kw": 3000,
                "count": n_plus_1(it_kw * 1.3, 3000),
                "rating": "data_center",
                "fuel_hours": 72,
            }
        ],
        "pdus": [{"name": f"rpp-{p}", "capacity_kw": 400, "count": math.ceil(it_kw / 400), "path": p} for p in paths],
    }
    base["cooling"]["units"] = [
        {"name": "chiller", "kind": "chiller", "capacity_kw": 2000, "count": n_plus_1(it_kw, 2000)},
        {"name": "crah", "kind": "crah", "capacity_kw": 500, "count": n_plus_1(it_kw, 500), "serves": "air"},
    ]
    endpoints = {name: nodes * count for name, count, _ in NICS}
    base["fabrics"] = [
        _fabric(name, kind, endpoints[name], gbps)
        for (name, _, gbps), kind in zip(NICS, ("compute", "storage", "in_band", "out_of_band"), strict=False)
    ]
    base["energy"] = {"design_pue": 1.3}
    head = {k: v for k, v in base.items() if k not in ("halls", "nodes")}
    nics = ", ".join(f"{{fabric: {f}, count: {c}, gbps: {g}}}" for f, c, g in NICS)
    rack_kw = per_rack * NODE_KW
    with path.open("w", encoding="utf-8") as out:
        out.write(yaml.dump(head, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False))
        out.write("halls:\n")
        for r in range(racks):
            if r % RACKS_PER_HALL == 0:
                out.write(
                    f"  - name: hall-{r // RACKS_PER_HALL + 1:03d}\n    containment: hot_aisle\n"
                    "    floor_rating_kpa: 12\n    racks:\n"
                )
            out.write(
                f"      - {{name: r{r:05d}, row: R{r // 10:04d}, position: R{r // 10:04d}-{r % 10:02d}, "
                f"power_budget_kw: {math.ceil(rack_kw * 1.1)}, cooling: rear_door}}\n"
            )
        out.write("nodes:\n")
        for r in range(racks):
            out.write(
                f"  - {{name: n{r:05d}, model: 4-GPU server, count: {per_rack}, rack: r{r:05d}, "
                f"gpus: {NODE_GPUS}, gpu_type: H100, nvlink_domain_gpus: {NODE_GPUS}, nominal_kw: 3.2, "
                f"max_kw: {NODE_KW}, nics: [{nics}], "
                f"bmc: {{protocol: redfish, address: 'https://{{name}}.bmc.example'}}}}\n"
            )
    return nodes


def measure(path: Path, repeat: int) -> dict[str, Any]:
    """Best of ``repeat`` runs of `aidc check`'s two steps: load (parse, validate, cross-check) and check.

    Wall time and this process's CPU time: on a shared host the CPU time is the steadier figure.
    """
    best = {k: math.inf for k in ("load", "check", "load_cpu", "check_cpu")}
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        facility = load_facility(path)
        w1, c1 = time.perf_counter(), time.process_time()
        report = run_check(facility)
        w2, c2 = time.perf_counter(), time.process_time()
        for key, value in (("load", w1 - w0), ("check", w2 - w1), ("load_cpu", c1 - c0), ("check_cpu", c2 - c1)):
            best[key] = min(best[key], value)
        counts = report.counts
        del facility, report
    return best | {"total": best["load"] + best["check"], "cpu": best["load_cpu"] + best["check_cpu"], "counts": counts}


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--racks", type=int, nargs="+", default=[100, 1000, 10000])
    ap.add_argument("--nodes-per-rack", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for racks in args.racks:
            path = Path(tmp) / f"facility-{racks}.yaml"
            nodes = write_spec(path, racks, args.nodes_per_rack)
            m = measure(path, args.repeat)
            rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            rows.append((racks, nodes, path.stat().st_size / 1e6, m, rss_mb))
            path.unlink()
    print(
        f"{'racks':>6} {'nodes':>7} {'MB':>6} {'load s':>7} {'check s':>7} {'total s':>7} {'CPU s':>6} "
        f"{'ms/1k nodes':>11} {'nodes/s':>8} {'pass/warn/fail':>14} {'peak RSS MB':>11}"
    )
    for racks, nodes, mb, m, rss in rows:
        c = m["counts"]
        print(
            f"{racks:>6} {nodes:>7} {mb:>6.2f} {m['load']:>7.2f} {m['check']:>7.2f} {m['total']:>7.2f} "
            f"{m['cpu']:>6.2f} {1e6 * m['total'] / nodes:>11.0f} {nodes / m['total']:>8.0f} "
            f"{c['pass']:>6}/{c['warn']}/{c['fail']:<3} {rss:>11.0f}"
        )
    for (_, n0, _, m0, _), (_, n1, _, m1, _) in zip(rows, rows[1:], strict=False):
        print(
            f"{n0:,} → {n1:,} nodes (×{n1 / n0:g}): wall ×{m1['total'] / m0['total']:.1f}, "
            f"CPU ×{m1['cpu'] / m0['cpu']:.1f} (load ×{m1['load_cpu'] / m0['load_cpu']:.1f}, "
            f"check ×{m1['check_cpu'] / m0['check_cpu']:.1f})"
        )


if __name__ == "__main__":
    main()
