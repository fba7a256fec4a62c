"""This host's measured speed (short numpy probes) and the training-step time it predicts for our small networks.

One eager-mode PyTorch training step (fp32, one thread per worker, as under Ray where OMP_NUM_THREADS=1) is

    step = GEMMs          forward, weight-gradient and (but for the first layer) input-gradient GEMM of each
                          layer (a convolution as its im2col GEMM) at peak · e · d/(d + knee), d the GEMM's
                          smallest dimension: the probed 1024³ matmul peak, derated for thin GEMMs the way
                          iteration.py can derate GPU GEMMs by w/(w + knee) (fitted to 0 there)
         + elementwise    relu, max-pool, dropout, the loss and a convolution's output: elements × passes ×
                          the probed time of one streaming pass (np.add; over the op's own working set for
                          memory-bound relu, in cache for compute-bound kernels: random numbers, pooling indices)
         + optimizer      Adam: parameters × passes over its working set (weights, gradients, both moments)
         + fixed          framework calls — dispatcher, autograd node, Python — per operator, per parameter
                          tensor (Adam's per-tensor loop) and per step, each `framework_call` numpy calls long

and an iteration of our training loop adds the DataLoader's per-sample fetch and collate.  With W data-parallel
workers (DDP over gloo on loopback, as the train stage runs them on one host) a step becomes

    ddp step = (loop iteration             share = cores / max(cores, W · threads + background load): workers
                                           and other runnable threads that outnumber the cores time-slice
                                           them, and every part of the step stretches alike
             + all-reduce                  DDP's gradient buckets (1 MiB first, then 25 MiB), each a ring
                                           all-reduce 2(W−1)/W · S/B + 2(W−1)·α (iteration.ring_all_reduce),
                                           B and α gloo's: the probed TCP loopback bandwidth and one-way
                                           latency (a socket pair, no torch) scaled by how much of them gloo
                                           gets (its worker and I/O threads hand each message over)
             + DDP's Reducer) / share      per step: autograd hooks, bucket copies, the future's hand-off

The probes are numpy
(threadpoolctl holds BLAS to the worker's thread count): the planner never imports torch.  The constants in
HostModel were fitted to operator microbenchmarks (benchmarks/planner_vs_measured.py --ops prints each operator
measured against the model) with torch 2.13 on a 2-core x86 VM; whole training steps are the check, not the fit
(docs/design-plan.md).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

from aidc.planner.iteration import ring_all_reduce


@dataclass(frozen=True)
class HostModel:
    """How PyTorch's eager CPU kernels and its framework overhead relate to this host's numpy probes."""

    framework_call: float = 3.14  # one torch eager call ≈ this many plain numpy ufunc calls (3.4 µs vs 1.1 µs)
    gemm_e: float = 1.08  # GEMM rate = peak · gemm_e · d/(d + gemm_knee), d = smallest GEMM dimension
    gemm_knee: float = 36.0
    # framework calls per layer, forward + backward (dispatcher, autograd node, AccumulateGrad, Python module)
    calls: dict[str, float] = field(
        default_factory=lambda: {
            "linear": 20.0,
            "conv": 33.0,
            "relu": 4.4,
            "maxpool": 5.6,
            "dropout": 11.5,
            "flatten": 1.0,
        }
    )
    step_calls: float = 41.0  # per step: zero_grad, cross-entropy forward/backward, backward()'s engine
    adam_calls: float = 25.0  # per step: Adam.step's entry (hooks, param groups, grad mode)
    tensor_calls: float = 9.8  # per parameter tensor: Adam's single-tensor loop (~9 ops and its Python)
    adam_passes: float = 10.6  # streaming passes per parameter of single-tensor Adam, with its temporaries
    # elementwise kernels, forward + backward, in streaming passes over the elements they read; (passes,
    # compute-bound): compute-bound ones are priced at the in-cache pass rate whatever their size
    passes: dict[str, tuple[float, bool]] = field(
        default_factory=lambda: {
            "relu": (7.0, False),
            "maxpool": (63.0, True),
            "dropout": (95.0, True),
            "loss": (40.0, True),
            "conv": (51.0, True),
        }
    )  # conv: per output element (bias, oneDNN's layout reorders)
    sample_calls: float = 1.25  # per sample: TensorDataset indexing (x[i], y[i]) and its share of the collate
    batch_calls: float = 14.0  # per batch: DataLoader's sampler and default_collate's two stacks
    loop_calls: float = 6.0  # per batch: our loop's loss and accuracy reads (item, argmax, eq, sum)
    # DDP over gloo on loopback (fitted to 2-worker gloo all-reduce microbenchmarks of 4 B-16 MiB,
    # benchmarks/planner_vs_measured.py --ddp-ops; the 2-worker epochs are the check)
    gloo_latency: float = 11.0  # one gloo ring step ≈ this many probed TCP one-way latencies (thread hand-offs)
    gloo_bandwidth: float = 0.28  # fraction of the probed TCP loopback bandwidth a gloo all-reduce moves
    # DDP's Reducer outside the all-reduce, in framework calls (inf: counted from its code path, not fitted):
    # per step prepare/finalize and the future; per parameter tensor the autograd hook, the copy into its
    # bucket view and the copy back after the averaging division
    ddp_calls: float = 20.0
    ddp_tensor_calls: float = 4.0


DEFAULT_HOST_MODEL = HostModel()


@dataclass(frozen=True)
class Op:
    """One layer of a training step: its GEMM (if any), elementwise work, parameters and framework calls."""

    name: str
    kind: str
    gemm: tuple[int, int, int] | None = None  # forward (m, k, n); convolutions through im2col
    input_grad: bool = True  # the first layer needs no gradient for its input
    elements: int = 0  # elements an elementwise kernel reads
    params: int = 0
    param_tensors: int = 0

    @property
    def flops(self) -> float:
        """Forward FLOPs of the GEMM (0 for elementwise layers)."""
        if self.gemm is None:
            return 0.0
        m, k, n = self.gemm
        return 2.0 * m * k * n

    def gemms(self) -> list[tuple[int, int, int]]:
        """The step's GEMM shapes for this layer: forward, input gradient (when needed), weight gradient."""
        if self.gemm is None:
            return []
        m, k, n = self.gemm
        return [(m, k, n), *([(m, n, k)] if self.input_grad else []), (k, m, n)]


def conv2d(name: str, batch: int, c_in: int, c_out: int, kernel: int, h: int, w: int, input_grad: bool = True) -> Op:
    return Op(
        name,
        "conv",
        (batch * h * w, c_in * kernel * kernel, c_out),
        input_grad,
        params=c_in * kernel * kernel * c_out + c_out,
        param_tensors=2,
    )


def linear(name: str, batch: int, d_in: int, d_out: int, input_grad: bool = True) -> Op:
    return Op(name, "linear", (batch, d_in, d_out), input_grad, params=d_in * d_out + d_out, param_tensors=2)


def elementwise(name: str, kind: str, elements: int) -> Op:
    """relu, maxpool (elements of its input), dropout, flatten or loss (elements of the logits)."""
    return Op(name, kind, elements=elements)


@dataclass(frozen=True)
class Network:
    """A training step's layers at one per-worker batch."""

    name: str
    batch: int
    ops: tuple[Op, ...]

    @property
    def params(self) -> int:
        return sum(op.params for op in self.ops)

    @property
    def param_tensors(self) -> int:
        return sum(op.param_tensors for op in self.ops)

    @property
    def flops(self) -> float:
        """FLOPs of one training step's GEMMs (forward, and the backward GEMMs it needs)."""
        return sum(2.0 * m * k * n for op in self.ops for m, k, n in op.gemms())


def zoo_network(arch: dict[str, Any], batch: int) -> Network:
    """The network ``aidc.training.zoo.build_model(arch)`` builds, as the planner sees it (no torch here)."""
    kind, (channels, height, width_px) = arch["model"], [int(d) for d in arch["input_shape"]]
    classes = int(arch["classes"])
    b = batch
    ops: tuple[Op, ...]
    if kind == "cnn":
        w = int(arch.get("width") or 32)
        flat = w * 2 * (height // 2) * (width_px // 2)
        ops = (
            conv2d("conv1", b, channels, w, 3, height, width_px, input_grad=False),
            elementwise("relu1", "relu", b * w * height * width_px),
            conv2d("conv2", b, w, 2 * w, 3, height, width_px),
            elementwise("relu2", "relu", b * 2 * w * height * width_px),
            elementwise("pool", "maxpool", b * 2 * w * height * width_px),
            elementwise("flatten", "flatten", b * flat),
            elementwise("dropout", "dropout", b * flat),
            linear("fc1", b, flat, 128),
            elementwise("relu3", "relu", b * 128),
            linear("fc2", b, 128, classes),
            elementwise("loss", "loss", b * classes),
        )
    elif kind == "mlp":
        w = int(arch.get("width") or 256)
        features = channels * height * width_px
        ops = (
            elementwise("flatten", "flatten", b * features),
            linear("fc1", b, features, w, input_grad=False),
            elementwise("relu1", "relu", b * w),
            elementwise("dropout", "dropout", b * w),
            linear("fc2", b, w, w // 2),
            elementwise("relu2", "relu", b * (w // 2)),
            linear("fc3", b, w // 2, classes),
            elementwise("loss", "loss", b * classes),
        )
    else:
        raise ValueError(f"unknown zoo model {kind!r} (cnn, mlp)")
    return Network(f"{kind} width {w}", b, ops)


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """Hold numpy's BLAS to ``n`` threads (threadpoolctl comes with scikit-learn); no-op without it."""
    if n is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn brings it
        yield
        return
    with threadpool_limits(limits=n, user_api="blas"):
        yield


def _best(fn: Any, seconds: float, min_reps: int = 3, cpu: bool = True) -> float:
    """Shortest of repeated runs of ``fn`` (after one warm-up) within about ``seconds``: the unloaded time.

    ``cpu``: time the calling thread's CPU time, so that other processes on a shared host do not count (right
    when the work runs on this thread: numpy calls, and BLAS held to one thread)."""
    clock = time.thread_time if cpu else time.perf_counter
    fn()
    best, reps, deadline = float("inf"), 0, time.perf_counter() + seconds
    while reps < min_reps or time.perf_counter() < deadline:
        start = clock()
        fn()
        best = min(best, clock() - start)
        reps += 1
    return max(best, 1e-9)


def matmul_flops(m: int, k: int, n: int, seconds: float = 0.05, threads: int | None = None) -> float:
    """FLOP/s numpy (float32) reaches on this host for one GEMM shape: the best of repeated runs."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    with _threads(threads):
        return 2.0 * m * k * n / _best(lambda: a @ b, seconds, cpu=threads == 1)


def host_peak(size: int = 1024, threads: int | None = None, seconds: float = 0.2) -> float:
    """The host's large-GEMM peak, the CPU counterpart of a datasheet's dense FLOP/s."""
    return matmul_flops(size, size, size, seconds=seconds, threads=threads)


def call_seconds(seconds: float = 0.01) -> float:
    """Seconds of one numpy ufunc call on a 1-element array: the host's per-call interpreter and dispatch cost."""
    a = np.zeros(1, dtype=np.float32)

    def hundred() -> None:
        for _ in range(100):
            np.add(a, a, out=a)

    return _best(hundred, seconds, min_reps=5) / 100


def pass_seconds(elements: int, seconds: float = 0.01, call: float | None = None) -> float:
    """Seconds per element of one streaming pass (y = x + x, float32) over a working set of ``elements``.

    The call's own cost (``call``, probed when not given) is taken off: what is left is the memory system's."""
    n = max(1024, elements // 2)  # two arrays of n make the working set
    x = np.ones(n, dtype=np.float32)
    y = np.empty_like(x)
    overhead = call_seconds(seconds / 4) if call is None else call
    return max(_best(lambda: np.add(x, x, out=y), seconds, min_reps=5) - overhead, 1e-12) / n


def loopback_seconds(size: int = 1 << 22, seconds: float = 0.1) -> tuple[float, float]:
    """(one-way latency s, bandwidth B/s) of TCP over loopback: what gloo's messages between two workers on this
    host ride on.  A socket pair with an echo thread: the shortest 1-byte round trip halved, and ``size`` bytes
    sent and acknowledged, the round trip taken off.  Python's socket calls release the GIL, so both ends run."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.create_connection(server.getsockname())
    peer, _ = server.accept()
    server.close()
    for s in (client, peer):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    payload = memoryview(np.ones(size // 4, dtype=np.float32).tobytes())

    def echo() -> None:
        view = memoryview(bytearray(size))
        while True:
            header = peer.recv(8)
            if len(header) < 8:
                return
            n, got = int.from_bytes(header, "little"), 0
            while got < n:
                got += peer.recv_into(view[got:n], n - got)
            peer.sendall(b"k")

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()

    def send(n: int) -> None:
        client.sendall(n.to_bytes(8, "little"))
        if n:
            client.sendall(payload[:n])
        client.recv(1)

    try:
        round_trip = _best(lambda: send(0), seconds / 2, min_reps=20, cpu=False)
        bulk = _best(lambda: send(size), seconds / 2, min_reps=5, cpu=False)
    finally:
        client.close()
        thread.join(1.0)
        peer.close()
    return round_trip / 2, size / max(bulk - round_trip, 1e-9)


IN_CACHE = 131_072  # elements (512 KiB): a working set that stays in L2 on current x86 cores


@dataclass
class HostProbe:
    """Measured rates of this host (GEMM peak, streaming pass per working-set size, numpy call), probed lazily."""

    threads: int | None = 1
    seconds: float = 0.02
    _pass: dict[int, float] = field(default_factory=dict)
    _call: float | None = None
    _peak: float | None = None
    _loopback: tuple[float, float] | None = None

    def loopback(self) -> tuple[float, float]:
        """(one-way latency s, bandwidth B/s) of TCP over loopback."""
        if self._loopback is None:
            self._loopback = loopback_seconds()
        return self._loopback

    def peak(self) -> float:
        """FLOP/s of a 1024³ float32 GEMM at the probe's thread count (best of 0.2 s)."""
        if self._peak is None:
            self._peak = host_peak(threads=self.threads)
        return self._peak

    def pass_time(self, elements: int) -> float:
        size = 1 << max(10, math.ceil(math.log2(max(elements, 1))))  # probe powers of two: sizes share probes
        if size not in self._pass:
            self._pass[size] = pass_seconds(size, self.seconds / 2, self.call_time())
        return self._pass[size]

    def call_time(self) -> float:
        if self._call is None:
            self._call = call_seconds(self.seconds / 2)
        return self._call


@cache
def _default_probe(threads: int | None) -> HostProbe:
    return HostProbe(threads=threads)


def gemm_seconds(m: int, k: int, n: int, peak: float, model: HostModel = DEFAULT_HOST_MODEL) -> float:
    """One GEMM at the probed peak derated for its thinnest dimension."""
    d = min(m, k, n)
    return 2.0 * m * k * n / (peak * model.gemm_e * d / (d + model.gemm_knee))


def op_seconds(op: Op, probe: HostProbe, model: HostModel = DEFAULT_HOST_MODEL) -> dict[str, float]:
    """One layer's forward + backward: its GEMMs, elementwise passes and framework calls, in seconds."""
    gemm = sum(gemm_seconds(m, k, n, probe.peak(), model) for m, k, n in op.gemms())
    elements = op.gemm[0] * op.gemm[2] if op.kind == "conv" and op.gemm else op.elements
    elem = 0.0
    if op.kind in model.passes and elements:
        passes, compute_bound = model.passes[op.kind]
        elem = elements * passes * probe.pass_time(IN_CACHE if compute_bound else elements)
    calls = model.calls.get(op.kind, 0.0) * model.framework_call * probe.call_time()
    return {"gemm_s": gemm, "elementwise_s": elem, "calls_s": calls}


def optimizer_seconds(
    params: int, tensors: int, probe: HostProbe, model: HostModel = DEFAULT_HOST_MODEL
) -> dict[str, float]:
    """Adam.step: its per-parameter passes, and its entry and per-tensor framework calls."""
    passes = params * model.adam_passes * probe.pass_time(4 * params) if params else 0.0
    calls = (model.adam_calls + model.tensor_calls * tensors) * model.framework_call * probe.call_time()
    return {"optimizer_s": passes, "calls_s": calls}


def predict_step(
    network: Network | Sequence[Op],
    probe: HostProbe | None = None,
    threads: int | None = 1,
    model: HostModel = DEFAULT_HOST_MODEL,
) -> dict[str, float]:
    """Seconds per training step (and per loop iteration with data loading), broken down as in the module doc.

    A bare list of layers is a network with no data loading (batch 0)."""
    net = network if isinstance(network, Network) else Network("layers", 0, tuple(network))
    hp = probe or _default_probe(threads)
    call = model.framework_call * hp.call_time()
    parts = [op_seconds(op, hp, model) for op in net.ops]
    gemm = sum(p["gemm_s"] for p in parts)
    elem = sum(p["elementwise_s"] for p in parts)
    adam = optimizer_seconds(net.params, net.param_tensors, hp, model)
    fixed = sum(p["calls_s"] for p in parts) + adam["calls_s"] + model.step_calls * call
    data = (net.batch * model.sample_calls + model.batch_calls + model.loop_calls) * call if net.batch else 0.0
    compute = gemm + elem + adam["optimizer_s"]
    step = compute + fixed
    return {
        "gemm_s": gemm,
        "elementwise_s": elem,
        "optimizer_s": adam["optimizer_s"],
        "fixed_s": fixed,
        "compute_s": compute,
        "overhead_s": fixed,
        "step_s": step,
        "data_s": data,
        "loop_s": step + data,
        "flops": net.flops,
    }


DDP_FIRST_BUCKET = 1 << 20  # torch DDP: the first bucket is 1 MiB (dist._DEFAULT_FIRST_BUCKET_BYTES)
DDP_BUCKET = 25 << 20  # and the rest bucket_cap_mb = 25 MiB


def ddp_buckets(grad_bytes: float) -> list[float]:
    """The gradient buckets DDP all-reduces each step, in bytes."""
    buckets = [min(grad_bytes, DDP_FIRST_BUCKET)]
    rest = grad_bytes - buckets[0]
    while rest > 0:
        buckets.append(min(rest, DDP_BUCKET))
        rest -= buckets[-1]
    return buckets


def gloo_all_reduce_seconds(
    grad_bytes: float, workers: int, latency: float, bandwidth: float, model: HostModel = DEFAULT_HOST_MODEL
) -> float:
    """DDP's gradient all-reduce over gloo on one host: each bucket a ring all-reduce at gloo's share of the
    loopback's bandwidth and latency."""
    return sum(
        ring_all_reduce(b, workers, bandwidth * model.gloo_bandwidth, latency * model.gloo_latency)
        for b in ddp_buckets(grad_bytes)
    )


def background_from_share(seconds: float = 0.3) -> float:
    """Other load on this host in runnable threads' worth, from the core share a busy thread gets right now.

    A pure-Python spin for ``seconds``: its CPU time over its wall time is the share s of a core the scheduler
    gives one more thread; on C cores that means C/s − 1 other threads' worth of demand (0 when s = 1).  Unlike
    counting runnable threads, this sees what the scheduler actually hands out (autogroups share by session)."""
    import os

    cores = os.cpu_count() or 1
    wall0, cpu0 = time.perf_counter(), time.thread_time()
    n = 0
    while time.perf_counter() - wall0 < seconds:
        n += 1
    share = (time.thread_time() - cpu0) / max(1e-9, time.perf_counter() - wall0)
    return max(0.0, cores / max(share, 1e-3) - 1.0) if share < 0.98 else 0.0


def core_share(workers: int, threads: int, cores: int, background: float = 0.0) -> float:
    """Fraction of a core each worker thread gets when ``workers × threads`` threads and ``background`` other
    runnable threads' worth of load share ``cores`` cores fairly."""
    return min(1.0, cores / max(1e-9, workers * threads + background))


def predict_ddp_epoch(
    network: Network,
    workers: int,
    samples: int,
    probe: HostProbe | None = None,
    threads: int = 1,
    cores: int | None = None,
    background: float = 0.0,
    model: HostModel = DEFAULT_HOST_MODEL,
) -> dict[str, float]:
    """Seconds per epoch of ``workers`` DDP workers (gloo, one host) over ``samples`` training samples, each
    at ``network.batch`` per step (DistributedSampler: ⌈samples/workers⌉ each), with the step's breakdown.

    ``background``: other load in runnable threads' worth (background_from_share(); 0 for a quiet host)."""
    import os

    hp = probe or _default_probe(threads)
    single = predict_step(network, hp, threads=threads, model=model)
    cores = cores or os.cpu_count() or 1
    share = core_share(workers, threads, cores, background)
    latency, bandwidth = hp.loopback()
    all_reduce = (
        gloo_all_reduce_seconds(4.0 * network.params, workers, latency, bandwidth, model) if workers > 1 else 0.0
    )
    reducer = (
        (model.ddp_calls + model.ddp_tensor_calls * network.param_tensors) * model.framework_call * hp.call_time()
        if workers > 1
        else 0.0
    )
    # time-sliced workers stretch everything a step does: the kernels, and gloo's threads that must be woken
    # onto a core for each message (a waiting peer cannot use the other's slice)
    step = (single["loop_s"] + all_reduce + reducer) / share
    steps = math.ceil(math.ceil(samples / workers) / max(1, network.batch))
    return {
        **single,
        "share": share,
        "all_reduce_s": all_reduce,
        "reducer_s": reducer,
        "ddp_step_s": step,
        "steps": float(steps),
        "epoch_s": steps * step,
        "loopback_latency_s": latency,
        "loopback_bytes_per_s": bandwidth,
    }
