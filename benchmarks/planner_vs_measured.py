"""The planner's step time for our training stage's models against the same step measured in torch on this host.

Run: .venv/bin/python benchmarks/planner_vs_measured.py [--repeat 5] [--steps 20] [--pipeline] | --ops [--fit]
     .venv/bin/python benchmarks/planner_vs_measured.py --ddp [--repeat 3] [--pipeline] | --ddp-ops | --only-pipeline

The planner (aidc.planner.host: numpy probes, never torch) predicts one training step of the zoo models
(aidc.training.zoo.build_model) at the per-worker batch of the train stage (batch_size // workers), with
Adam and one thread per worker as under Ray (OMP_NUM_THREADS=1).  Measured here, one process, one thread:

- step: zero_grad, forward, cross-entropy, backward, Adam.step on a fixed batch;
- loop: one iteration of aidc.training.loop's inner loop: DataLoader(TensorDataset, shuffle) fetch, the step,
  and the loss/accuracy reads (no DDP: that is the real run's, see --pipeline).

Times are this thread's CPU time (time.thread_time), so that other processes on a shared host do not count
directly; but their cache and core sharing still slow our steps, so the comparison is against the fastest
decile of at least --steps steps and 1 s, step and loop iteration alternating (the step this host gives when
it is quiet; the numpy probes take their best run too).  The median step and the wall-clock median are
printed beside it.  Each case is probed and measured --repeat times with a fresh model, in rounds over all
cases; the table shows medians over repeats, the range of the fastest-decile step, and the median of the
per-repeat ratios predicted / measured (fastest decile).

--ops prints the operator microbenchmarks the planner's constants come from (measured against the model);
--fit refits HostModel to them (coordinate descent on the squared log error) and prints the constants.
--pipeline also runs the digits pipeline's data and train stages on Ray (~1-2 min) and compares the
recorded epoch_seconds with the predicted 2-worker DDP epoch.

--ddp predicts and measures real 2-worker DDP epochs (gloo on loopback, one torch thread per worker) of the
digits data through benchmarks/_bare_ddp.py under torchrun (the train stage's loop without Ray: same model,
DistributedSampler, Adam, per-step loss/accuracy reads), for the example and three other shapes, --repeat times
in rounds; the prediction (aidc.planner.host.predict_ddp_epoch) takes fresh probes and the host's background
load (runnable threads of other processes) just before each run.  --ddp-ops runs the gloo microbenchmarks
(benchmarks/_planner_ddp_ops.py) behind HostModel.gloo_latency and gloo_bandwidth and fits them.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from aidc.planner import host
from aidc.planner.host import HostProbe, predict_step, zoo_network
from aidc.security.roles import local_access

# (model, width, per-worker batch): the digits example (batch 64 over 2 workers → 32), then wider and larger
CASES: list[tuple[str, int, int]] = [
    ("cnn", 32, 32),
    ("cnn", 32, 64),
    ("cnn", 32, 128),
    ("cnn", 32, 256),
    ("cnn", 16, 32),
    ("cnn", 64, 32),
    ("mlp", 256, 32),
    ("mlp", 256, 128),
    ("mlp", 1024, 64),
]
N_TRAIN = 2334  # digits after the example's augmentation and split
ROOT = Path(__file__).resolve().parents[1]
BARE_DDP = ROOT / "benchmarks/_bare_ddp.py"


def arch(model: str, width: int) -> dict[str, Any]:
    return {"model": model, "input_shape": [1, 8, 8], "classes": 10, "width": width, "dropout": 0.1}


def _paired_times(
    fns: Sequence[Callable[[], None]], steps: int, warmup: int = 5, min_seconds: float = 0.0
) -> list[tuple[float, float, float]]:
    """For each of ``fns``, called in turn (so that they see the same host): (median thread CPU s,
    fastest-decile thread CPU s, median wall s) over at least ``steps`` rounds and ``min_seconds`` of wall
    time (so that short steps are sampled across the host's scheduling)."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    cpu: list[list[float]] = [[] for _ in fns]
    wall: list[list[float]] = [[] for _ in fns]
    deadline = time.perf_counter() + min_seconds
    while len(cpu[0]) < steps or time.perf_counter() < deadline:
        for i, fn in enumerate(fns):
            c, w = time.thread_time(), time.perf_counter()
            fn()
            cpu[i].append(time.thread_time() - c)
            wall[i].append(time.perf_counter() - w)
    out = []
    for c_, w_ in zip(cpu, wall, strict=False):
        c_.sort()
        out.append((statistics.median(c_), c_[len(c_) // 10], statistics.median(w_)))
    return out


def _median_times(fn: Callable[[], None], steps: int, warmup: int = 5) -> tuple[float, float, float]:
    return _paired_times([fn], steps, warmup)[0]


def measure(model_name: str, width: int, batch: int, steps: int) -> dict[str, float]:
    """One fresh model: the step on a fixed batch and the loop iteration as aidc.training.loop runs it."""
    import torch
    from torch import nn

    from aidc.training.zoo import build_model

    torch.manual_seed(0)
    model = build_model(arch(model_name, width))
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.002)
    loss_fn = nn.CrossEntropyLoss()
    xs, ys = torch.randn(N_TRAIN, 1, 8, 8), torch.randint(0, 10, (N_TRAIN,))
    x, y = xs[:batch], ys[:batch]

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()

    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xs, ys), batch_size=batch, shuffle=True)
    batches = iter(loader)
    totals = [0.0, 0.0, 0.0]

    def loop_iteration() -> None:
        nonlocal batches
        try:
            xb, yb = next(batches)
        except StopIteration:
            batches = iter(loader)
            xb, yb = next(batches)
        optimizer.zero_grad(set_to_none=True)
        logits = model(xb)
        loss = loss_fn(logits, yb)
        loss.backward()
        optimizer.step()
        totals[0] += float(loss) * len(yb)
        totals[1] += float((logits.argmax(1) == yb).sum())
        totals[2] += len(yb)

    (step_median, step_fast, step_wall), (loop_median, loop_fast, loop_wall) = _paired_times(
        [step, loop_iteration], steps, min_seconds=1.0
    )
    return {
        "step": step_fast,
        "step_median": step_median,
        "step_wall": step_wall,
        "loop": loop_fast,
        "loop_median": loop_median,
        "loop_wall": loop_wall,
        "params": float(sum(p.numel() for p in model.parameters())),
    }


def compare(repeat: int, steps: int) -> list[float]:
    import torch

    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True to a scalar")
    torch.set_num_threads(1)  # Ray sets OMP_NUM_THREADS=1 in every train worker
    probe = HostProbe(threads=1)
    started = time.perf_counter()
    print(
        f"host: numpy fp32 GEMM 1 thread {probe.peak() / 1e9:.1f} GFLOP/s (1024³); "
        f"streaming pass {probe.pass_time(1 << 20) * 1e9:.2f} ns/element (1M), "
        f"{probe.pass_time(host.IN_CACHE) * 1e9:.2f} in cache; numpy call {probe.call_time() * 1e6:.2f} µs; "
        f"torch {torch.__version__}, 1 thread; {repeat} repeats × {steps} steps"
    )
    print(
        f"{'':24s} | {'predicted step, ms':^34s} | {'measured step, ms (thread CPU)':^38s} | {'':5s} | "
        f"{'loop iteration, ms':^20s}"
    )
    print(
        f"{'model':10s} {'batch':>5s} {'MFLOP':>7s} | {'gemm':>5s} {'elem':>5s} {'adam':>5s} {'fixed':>5s} "
        f"{'total':>6s} | {'fastest':>7s} {'(range)':>13s} {'median':>7s} {'wall':>7s} | {'ratio':>5s} | "
        f"{'pred':>6s} {'meas':>6s} {'ratio':>5s}"
    )
    ratios = []
    results: dict[tuple[str, int, int], tuple[list[dict[str, float]], list[dict[str, float]]]] = {
        case: ([], []) for case in CASES
    }
    for _ in range(repeat):  # rounds over all cases, so that a burst of load does not land on one case only
        for model_name, width, batch in CASES:
            preds, runs = results[(model_name, width, batch)]
            # probe afresh next to each measurement: both see the same host
            preds.append(predict_step(zoo_network(arch(model_name, width), batch), HostProbe(threads=1)))
            runs.append(measure(model_name, width, batch, steps))
    for (model_name, width, batch), (preds, runs) in results.items():
        pred = {k: statistics.median(p[k] for p in preds) for k in preds[0]}
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        lo, hi = min(r["step"] for r in runs), max(r["step"] for r in runs)
        # each repeat's prediction against its own measurement, then the median of those ratios
        step_ratio = statistics.median(p["step_s"] / r["step"] for p, r in zip(preds, runs, strict=False))
        loop_ratio = statistics.median(p["loop_s"] / r["loop"] for p, r in zip(preds, runs, strict=False))
        ratios += [step_ratio, loop_ratio]
        ms = {k: v * 1e3 for k, v in pred.items()}
        mm = {k: v * 1e3 for k, v in med.items()}
        print(
            f"{model_name + ' w' + str(width):10s} {batch:5d} {pred['flops'] / 1e6:7.0f} | {ms['gemm_s']:5.2f} "
            f"{ms['elementwise_s']:5.2f} {ms['optimizer_s']:5.2f} {ms['fixed_s']:5.2f} {ms['step_s']:6.2f} | "
            f"{mm['step']:7.2f} ({lo * 1e3:5.2f}-{hi * 1e3:5.2f}) {mm['step_median']:7.2f} {mm['step_wall']:7.2f} | "
            f"{step_ratio:5.2f} | {ms['loop_s']:6.2f} {mm['loop']:6.2f} {loop_ratio:5.2f}",
            flush=True,
        )
    worst = max(abs(r - 1) for r in ratios)
    print(
        f"\npredicted/measured over {len(CASES)} cases × (step, loop): {min(ratios):.2f}-{max(ratios):.2f}, "
        f"median {statistics.median(ratios):.2f}, worst |error| {worst:.0%} (goal ≤ 25%); "
        f"{time.perf_counter() - started:.0f} s"
    )
    return ratios


Bench = tuple[str, float, Callable[[host.HostProbe, host.HostModel], float]]


def op_benchmarks(repeat: int) -> tuple[list[Bench], float]:
    """Each operator's forward + backward (and Adam, DataLoader, a whole tiny step) measured in torch, with the
    planner's model of it: (label, measured seconds, model(probe, host model) → seconds).  Also returns the
    measured torch-call / numpy-call ratio (HostModel.framework_call)."""
    import torch
    from torch import nn

    torch.set_num_threads(1)
    probe = HostProbe(threads=1)

    def cpu(fn: Callable[[], Any], reps: int = 20) -> float:  # fastest decile, as the steps are compared
        return _median_times(fn, reps, warmup=2)[1]

    t1 = torch.zeros(1)

    def hundred() -> None:
        for _ in range(100):
            t1.add_(1)

    ratio = cpu(hundred, 40) / 100 / probe.call_time()

    def op_model(op: host.Op) -> Callable[[host.HostProbe, host.HostModel], float]:
        return lambda p, m: sum(host.op_seconds(op, p, m).values())

    def adam_model(params: int, tensors: int) -> Callable[[host.HostProbe, host.HostModel], float]:
        return lambda p, m: sum(host.optimizer_seconds(params, tensors, p, m).values())

    def loader_model(batch: int) -> Callable[[host.HostProbe, host.HostModel], float]:
        return lambda p, m: (batch * m.sample_calls + m.batch_calls) * m.framework_call * p.call_time()

    cases: list[tuple[str, Callable[[], nn.Module], tuple[int, ...], bool, host.Op]] = []
    for w, b in ((4, 1), (16, 32), (16, 128), (32, 32), (32, 128), (64, 32), (64, 128)):
        cases.append(
            (
                f"conv 1→{w} b{b}",
                partial(nn.Conv2d, 1, w, 3, padding=1),
                (b, 1, 8, 8),
                False,
                host.conv2d("c", b, 1, w, 3, 8, 8, input_grad=False),
            )
        )
        cases.append(
            (
                f"conv {w}→{2 * w} b{b}",
                partial(nn.Conv2d, w, 2 * w, 3, padding=1),
                (b, w, 8, 8),
                True,
                host.conv2d("c", b, w, 2 * w, 3, 8, 8),
            )
        )
    for b, d_in, d_out in (
        (1, 4, 4),
        (32, 1024, 128),
        (128, 1024, 128),
        (32, 128, 10),
        (128, 128, 10),
        (32, 256, 128),
        (128, 256, 128),
        (32, 1024, 512),
        (128, 1024, 512),
        (64, 2048, 128),
    ):
        cases.append(
            (
                f"linear {d_in}→{d_out} b{b}",
                partial(nn.Linear, d_in, d_out),
                (b, d_in),
                True,
                host.linear("l", b, d_in, d_out),
            )
        )
    for kind, n in (
        ("relu", 4),
        ("relu", 65536),
        ("relu", 524288),
        ("maxpool", 16),
        ("maxpool", 131072),
        ("maxpool", 1048576),
        ("dropout", 4),
        ("dropout", 32768),
        ("dropout", 262144),
    ):
        factories: dict[str, Callable[[], nn.Module]] = {
            "relu": partial(nn.ReLU),
            "maxpool": partial(nn.MaxPool2d, 2),
            "dropout": partial(nn.Dropout, 0.1),
        }
        cases.append(
            (
                f"{kind} {n}",
                factories[kind],
                (max(1, n // 64), 1, 8, 8) if n >= 64 else (1, 1, 4, n // 4),
                True,
                host.elementwise(kind, kind, n),
            )
        )
    base_x = torch.zeros(4, requires_grad=True)
    base_g = torch.ones(4)
    out: list[Bench] = []
    for label, factory, shape, grad_in, op in cases:
        layer = factory()
        layer.train()
        x = torch.randn(*shape, requires_grad=grad_in)
        g = torch.randn_like(layer(x))
        runs = []
        for _ in range(repeat):  # backward()'s engine start-up belongs to the step, not the layer
            runs.append(cpu(lambda: layer(x).backward(g)) - cpu(lambda: base_x.view(-1).backward(base_g)))
        out.append((label, statistics.median(runs), op_model(op)))
    for k, n in ((1, 4), (16, 4), (1, 50_000), (1, 150_000), (1, 600_000)):
        params = [torch.zeros(n, requires_grad=True) for _ in range(k)]
        for p in params:
            p.grad = torch.randn(n)
        adam = torch.optim.Adam(params)
        measured = statistics.median(cpu(adam.step) for _ in range(repeat))
        out.append((f"Adam {k}×{n}", measured, adam_model(k * n, k)))
    tiny = nn.Linear(4, 4)
    opt = torch.optim.Adam(tiny.parameters())
    loss_fn = nn.CrossEntropyLoss()
    xt, yt = torch.randn(1, 4), torch.randint(0, 4, (1,))

    def tiny_step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(tiny(xt), yt).backward()
        opt.step()

    net = host.Network("tiny", 0, (host.linear("l", 1, 4, 4), host.elementwise("loss", "loss", 4)))
    out.append(
        (
            "step of Linear(4,4)",
            statistics.median(cpu(tiny_step, 40) for _ in range(repeat)),
            lambda p, m: host.predict_step(net, p, model=m)["step_s"],
        )
    )
    xs, ys = torch.randn(N_TRAIN, 1, 8, 8), torch.randint(0, 10, (N_TRAIN,))
    for batch in (32, 128):
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xs, ys), batch_size=batch, shuffle=True)

        def epoch() -> None:
            for _ in loader:
                pass

        measured = statistics.median(cpu(epoch, 3) for _ in range(repeat)) / math.ceil(N_TRAIN / batch)
        out.append((f"DataLoader batch {batch}", measured, loader_model(batch)))
    return out, ratio


FITTED = (
    "gemm_e",
    "gemm_knee",
    "step_calls",
    "adam_calls",
    "tensor_calls",
    "adam_passes",
    "sample_calls",
    "batch_calls",
    "calls.linear",
    "calls.conv",
    "calls.relu",
    "calls.maxpool",
    "calls.dropout",
    "passes.relu",
    "passes.maxpool",
    "passes.dropout",
    "passes.conv",
)


def _with(model: host.HostModel, name: str, value: float) -> host.HostModel:
    import dataclasses

    if "." not in name:
        return dataclasses.replace(model, **{name: value})  # type: ignore[arg-type]
    table, key = name.split(".")
    current = dict(getattr(model, table))
    current[key] = (value, current[key][1]) if table == "passes" else value
    return dataclasses.replace(model, **{table: current})  # type: ignore[arg-type]


def _get(model: host.HostModel, name: str) -> float:
    if "." not in name:
        return float(getattr(model, name))
    table, key = name.split(".")
    value = getattr(model, table)[key]
    return float(value[0] if table == "passes" else value)


def fit(benches: list[Bench], probe: host.HostProbe, model: host.HostModel) -> host.HostModel:
    """Coordinate descent on the squared log error over the operator benchmarks (not the training steps)."""
    import math as m_

    def loss(mod: host.HostModel) -> float:
        return sum(m_.log(max(pred(probe, mod), 1e-9) / meas) ** 2 for _, meas, pred in benches)

    best = loss(model)
    for _ in range(6):
        for name in FITTED:
            for factor in (0.5, 0.7, 0.85, 0.93, 1.07, 1.15, 1.3, 1.6, 2.0):
                trial = _with(model, name, round(_get(model, name) * factor, 2))
                t = loss(trial)
                if t < best - 1e-9:
                    best, model = t, trial
    return model


def ops(repeat: int, refit: bool) -> None:
    """Operator microbenchmarks against the planner's model of each: where HostModel's constants come from."""
    benches, ratio = op_benchmarks(repeat)
    probe = HostProbe(threads=1)
    model = host.DEFAULT_HOST_MODEL
    print(f"framework_call: torch call / numpy call = {ratio:.2f} (model {model.framework_call})")
    if refit:
        model = fit(benches, probe, host.HostModel(framework_call=round(ratio, 2)))
        print("refitted:", ", ".join(f"{n}={_get(model, n):g}" for n in FITTED))
    print(f"{'operator (forward + backward)':32s} {'measured µs':>12s} {'model µs':>10s} {'ratio':>6s}")
    errors = []
    for label, measured, pred in benches:
        p = pred(probe, model)
        errors.append(abs(math.log(p / measured)))
        print(f"{label:32s} {measured * 1e6:12.1f} {p * 1e6:10.1f} {p / measured:6.2f}")
    print(f"median |log ratio| {statistics.median(errors):.2f}, max {max(errors):.2f} over {len(errors)} benchmarks")


def pipeline() -> None:
    """The digits example's data and train stages on Ray: recorded epoch_seconds against the prediction."""
    import os
    import tempfile
    from pathlib import Path

    import yaml

    from aidc.platform import Platform
    from aidc.settings import Settings

    spec = yaml.safe_load(Path("examples/digits/pipeline.yaml").read_text())
    spec["stages"] = [s for s in spec["stages"] if s["name"] in ("data", "train")]
    train = next(s for s in spec["stages"] if s["name"] == "train")["with"]
    workers, batch = int(train["workers"]), int(train["batch_size"]) // int(train["workers"])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pipeline.yaml"
        path.write_text(yaml.safe_dump(spec))
        platform = Platform(Settings(home=Path(tmp) / "home", ray_num_cpus=workers))  # type: ignore[call-arg]
        before = host.background_from_share()
        run = platform.runs.run_pipeline(local_access(), path)
        seconds = [m.value for m in platform.metadata.metrics(run.run_id, stage="train") if m.name == "epoch_seconds"]
    net = zoo_network(arch(train["model"], int(train.get("width", 32))), batch)
    pred = host.predict_ddp_epoch(net, workers, N_TRAIN, HostProbe(threads=1))
    loaded = pred["epoch_s"] / host.core_share(workers, 1, os.cpu_count() or 1, before)
    print(
        f"\npipeline (Ray Train, the path `aidc run` takes): {workers} workers, per-worker batch {batch}, "
        f"{int(pred['steps'])} steps/epoch; epoch_seconds {', '.join(f'{s:.2f}' for s in seconds)}; fastest "
        f"{min(seconds):.2f} s against {pred['epoch_s']:.2f} s predicted for a quiet host "
        f"({pred['epoch_s'] / min(seconds):.2f}); median {statistics.median(seconds):.2f} s against {loaded:.2f} s "
        f"at the load probed before the run ({before:.1f} threads' worth; {loaded / statistics.median(seconds):.2f}); "
        f"Ray's own processes are not in the prediction"
    )


# (model, width, global batch) for 2 workers: the digits example first
DDP_CASES: list[tuple[str, int, int]] = [("cnn", 32, 64), ("cnn", 32, 256), ("cnn", 64, 64), ("mlp", 256, 64)]
DDP_EPOCHS = 8


def _torchrun(script: Path, workers: int, *args: str, timeout: int = 300) -> dict[str, Any]:
    """Run ``script`` under torchrun --standalone and return rank 0's JSON line."""
    import json
    import subprocess
    import sys

    torchrun = Path(sys.executable).with_name("torchrun")
    launcher = [str(torchrun)] if torchrun.exists() else [sys.executable, "-m", "torch.distributed.run"]
    proc = subprocess.run(
        [*launcher, "--standalone", "--nproc_per_node", str(workers), str(script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    # rank 0 prints its JSON line before tearing the process group down; gloo's teardown now and then aborts
    # ("terminate called without an active exception") after the measurement is complete: keep the measurement
    if not lines:
        raise SystemExit(f"torchrun failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return dict(json.loads(lines[-1]))


def ddp_epochs(repeat: int) -> list[float]:
    """Real 2-worker DDP epochs (torchrun, gloo) against the planner's prediction of them on a quiet host."""
    import json
    import os
    import sys
    import tempfile

    import yaml

    if str(ROOT / "benchmarks") not in sys.path:
        sys.path.insert(0, str(ROOT / "benchmarks"))
    from train_overhead import make_splits  # the data stage's code, without Ray

    from aidc.data.preprocess import load_arrays

    workers, cores = 2, os.cpu_count() or 1
    started = time.perf_counter()
    example = yaml.safe_load((ROOT / "examples/digits/pipeline.yaml").read_text())
    data_with = next(s for s in example["stages"] if s["uses"] == "data")["with"]
    rows: dict[tuple[str, int, int], list[tuple[dict[str, float], dict[str, Any], float, float]]] = {
        c: [] for c in DDP_CASES
    }
    with tempfile.TemporaryDirectory() as tmp:
        splits = Path(tmp) / "splits.npz"
        make_splits(Path(tmp) / "prep", data_with, splits)
        n_train = len(load_arrays(splits.read_bytes())["y_train"])
        for _ in range(repeat):
            for model_name, width, global_batch in DDP_CASES:
                a = arch(model_name, width)
                pred = host.predict_ddp_epoch(
                    zoo_network(a, global_batch // workers),
                    workers,
                    n_train,
                    HostProbe(threads=1),
                    threads=1,
                    cores=cores,
                )
                before = host.background_from_share()
                run = _torchrun(
                    BARE_DDP,
                    workers,
                    "--splits",
                    str(splits),
                    "--arch",
                    json.dumps(a),
                    "--epochs",
                    str(DDP_EPOCHS),
                    "--batch-size",
                    str(global_batch),
                    "--lr",
                    "0.002",
                    "--threads",
                    "1",
                    "--bookkeeping",
                )
                after = host.background_from_share()
                rows[(model_name, width, global_batch)].append((pred, run, before, after))
    print(
        f"2-worker DDP epochs (torchrun, gloo on loopback, 1 thread per worker, {cores} cores, {n_train} "
        f"training samples, {DDP_EPOCHS} epochs per run: fastest and median of epochs 2..{DDP_EPOCHS}); {repeat} "
        f"runs per case, in rounds; fresh probes before each run.  quiet = predicted for an idle host, against the "
        f"fastest epoch; at load = predicted with the other load (background_from_share: the core share a spinning "
        f"thread gets) probed before the run (a forecast) and averaged with the probe after it (around), against "
        f"the median epoch"
    )
    print(
        f"{'':22s} | {'predicted epoch, quiet host':^33s} | {'measured s/epoch':^29s} | {'quiet/fastest':^16s} | "
        f"{'at load: pred / median epoch':^40s}"
    )
    print(
        f"{'model':10s} {'batch':>5s} {'steps':>5s} | {'loop':>5s} {'a-red':>5s} {'ddp':>5s} {'s':>6s} "
        f"{'1 wkr':>6s} | {'fastest':>7s} {'(range)':>13s} {'median':>7s} | {'ratio':>5s} {'(range)':>10s} | "
        f"{'load':>4s} {'forecast':>16s} {'around':>16s}"
    )
    quiet, forecast, loaded = [], [], []
    for (model_name, width, global_batch), runs in rows.items():
        fastest = [min(r["epoch_seconds"][1:]) for _, r, _, _ in runs]
        median = [statistics.median(r["epoch_seconds"][1:]) for _, r, _, _ in runs]
        predicted = [p["epoch_s"] for p, _, _, _ in runs]
        q = [p / m for p, m in zip(predicted, fastest, strict=False)]
        # the same prediction at a load: the step divided by the core share the load leaves each worker
        fc = [
            p["epoch_s"] / host.core_share(workers, 1, cores, b) / m
            for (p, _, b, _), m in zip(runs, median, strict=False)
        ]
        ld = [
            p["epoch_s"] / host.core_share(workers, 1, cores, (b + a) / 2) / m
            for (p, _, b, a), m in zip(runs, median, strict=False)
        ]
        quiet += q
        forecast += fc
        loaded += ld
        p0 = {k: statistics.median(p[k] for p, _, _, _ in runs) for k in runs[0][0]}
        single = p0["loop_s"] * math.ceil(n_train / (global_batch // workers))  # 1 worker, whole set, no DDP
        print(
            f"{model_name + ' w' + str(width):10s} {global_batch // workers:5d} {int(p0['steps']):5d} | "
            f"{p0['loop_s'] * 1e3:5.2f} {p0['all_reduce_s'] * 1e3:5.2f} {p0['reducer_s'] * 1e3:5.2f} "
            f"{statistics.median(predicted):6.3f} {single:6.3f} | {statistics.median(fastest):7.3f} "
            f"({min(fastest):5.3f}-{max(fastest):5.3f}) {statistics.median(median):7.3f} | "
            f"{statistics.median(q):5.2f} ({min(q):4.2f}-{max(q):4.2f}) | "
            f"{statistics.median((b + a) / 2 for _, _, b, a in runs):4.1f} "
            f"{statistics.median(fc):5.2f} ({min(fc):4.2f}-{max(fc):4.2f}) "
            f"{statistics.median(ld):5.2f} ({min(ld):4.2f}-{max(ld):4.2f})",
            flush=True,
        )
    for label, ratios in (
        ("quiet prediction / fastest epoch", quiet),
        ("forecast at the load probed before / median epoch", forecast),
        ("prediction at the load probed around / median epoch", loaded),
    ):
        print(
            f"{label}: {min(ratios):.2f}-{max(ratios):.2f}, median {statistics.median(ratios):.2f}, worst |error| "
            f"{max(abs(r - 1) for r in ratios):.0%} over {len(ratios)} runs (goal ≤ 25%)"
        )
    print(
        f"{time.perf_counter() - started:.0f} s; 1 wkr = one worker alone over the whole set, no DDP (the old "
        f"prediction)"
    )
    return quiet


def ddp_ops() -> None:
    """gloo all-reduce by size (2 workers) against the ring model, and the fit of gloo_latency/gloo_bandwidth."""
    probe = HostProbe(threads=1)
    latency, bandwidth = probe.loopback()
    out = _torchrun(ROOT / "benchmarks/_planner_ddp_ops.py", 2)
    sizes = {int(k): v for k, v in out["all_reduce_s"].items()}
    small, big = min(sizes), sorted(sizes)[-2:]
    # n = 2: t = S/B_gloo + 2·α_gloo; α from the smallest message, B from the slope between the two largest
    alpha = sizes[small] / 2
    slope = (sizes[big[1]] - sizes[big[0]]) / (big[1] - big[0])
    fitted = host.HostModel(gloo_latency=round(alpha / latency, 1), gloo_bandwidth=round(1 / slope / bandwidth, 3))
    print(
        f"loopback TCP: one-way latency {latency * 1e6:.1f} µs, bandwidth {bandwidth / 1e9:.2f} GB/s; fitted "
        f"gloo_latency={fitted.gloo_latency} (model {host.DEFAULT_HOST_MODEL.gloo_latency}), "
        f"gloo_bandwidth={fitted.gloo_bandwidth} (model {host.DEFAULT_HOST_MODEL.gloo_bandwidth})"
    )
    print(f"{'all-reduce bytes':>16s} {'measured µs':>12s} {'model µs':>10s} {'ratio':>6s} {'refit µs':>9s}")
    for size, measured in sorted(sizes.items()):
        model = host.ring_all_reduce(
            size, 2, bandwidth * host.DEFAULT_HOST_MODEL.gloo_bandwidth, latency * host.DEFAULT_HOST_MODEL.gloo_latency
        )
        refit = host.ring_all_reduce(size, 2, bandwidth * fitted.gloo_bandwidth, latency * fitted.gloo_latency)
        print(f"{size:16d} {measured * 1e6:12.0f} {model * 1e6:10.0f} {model / measured:6.2f} {refit * 1e6:9.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--ops", action="store_true", help="print the operator microbenchmarks behind the constants")
    parser.add_argument("--fit", action="store_true", help="with --ops: refit HostModel to them and print it")
    parser.add_argument("--pipeline", action="store_true", help="also run the digits data+train stages on Ray")
    parser.add_argument("--ddp", action="store_true", help="predict and measure real 2-worker DDP epochs (torchrun)")
    parser.add_argument("--ddp-ops", action="store_true", help="gloo all-reduce microbenchmarks and their fit")
    parser.add_argument("--only-pipeline", action="store_true", help="just the Ray pipeline comparison")
    args = parser.parse_args()
    if args.only_pipeline:
        pipeline()
        return
    if args.ddp_ops:
        ddp_ops()
        return
    if args.ddp:
        ddp_epochs(args.repeat)
        if args.pipeline:
            pipeline()
        return
    if args.ops:
        ops(args.repeat, args.fit)
        return
    compare(args.repeat, args.steps)
    if args.pipeline:
        pipeline()


if __name__ == "__main__":
    main()
