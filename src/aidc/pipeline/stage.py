"""The Stage protocol: what a stage declares (config, inputs, outputs) and what it gets to run (StageContext)."""

from __future__ import annotations

import hashlib
import importlib
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel

# kind → "module:Class"; imported only when a pipeline uses the kind, so `aidc --help` stays fast.
STAGE_KINDS: dict[str, str] = {
    "data": "aidc.data.stage:DataStage",
    "train": "aidc.training.stage:TrainStage",
    "evaluate": "aidc.evaluation.stage:EvaluateStage",
    "export": "aidc.serving.export:ExportStage",
    "register": "aidc.registry.stage:RegisterStage",
    "register_lm": "aidc.registry.stage:RegisterLMStage",
    "compress": "aidc.compression.stage:CompressStage",
    "federated": "aidc.federated.stage:FederatedStage",
    "deploy": "aidc.serving.deploy:DeployStage",
    # the language-model workload (training/gpt)
    "text": "aidc.training.gpt.text_stage:TextStage",
    "train_lm": "aidc.training.gpt.stage:TrainLMStage",
    "evaluate_lm": "aidc.training.gpt.evaluate_stage:EvaluateLMStage",
}


def stage_class(kind: str) -> type[Stage]:
    module, _, name = STAGE_KINDS[kind].partition(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


class Stage(ABC):
    """A step of a pipeline. Subclasses declare their config model, inputs and outputs, and implement run().

    ``run`` executes on a Ray worker. It must not write metadata itself: it returns outputs (JSON values,
    artifact references, or Registration objects that the runner commits in the stage's transaction).
    """

    kind: ClassVar[str]
    Config: ClassVar[type[BaseModel]]
    inputs: ClassVar[dict[str, str]] = {}
    optional_inputs: ClassVar[frozenset[str]] = frozenset()
    outputs: ClassVar[dict[str, str]] = {}
    # config fields that name a registered model version (NAME[:VERSION]) → the input the runner resolves it into
    # (its checkpoint artifact, with "model_version_id" and "ref") before the stage runs, in the run's project
    model_refs: ClassVar[dict[str, str]] = {}
    cacheable: ClassVar[bool] = True
    num_cpus: ClassVar[float] = 1.0
    # In the command's own process instead of a Ray task: for stages that start something which must outlive
    # the command's Ray cluster (a local Ray reaps its workers' child processes when it stops).
    in_process: ClassVar[bool] = False
    # Can save where it is and end when asked (ctx.stop): on Ctrl-C or a preemption the runner asks, and waits
    # (Settings.stop_checkpoint_s) before it stops the stage outright. The stage then raises StageStopped.
    stops_on_request: ClassVar[bool] = False
    # The ``workload`` label of the nodes this kind runs on when the cluster's nodes carry one (cluster.placement).
    workload: ClassVar[str | None] = None
    # Runs its work on workers it starts (the train stage): placement applies to them, the stage stays by the runner.
    places_workers: ClassVar[bool] = False

    @classmethod
    def cpus(cls, config: Any) -> float:
        """CPUs the stage's Ray task holds with this config (default: ``num_cpus``)."""
        return cls.num_cpus

    @classmethod
    def warm_up(cls, config: Any) -> None:
        """Called once the run's Ray is up, for each stage still to run: start what the stage will need (without
        waiting for it), so that it is ready when the stage starts. Best effort: a failure here is ignored."""
        return None

    @abstractmethod
    def run(self, ctx: StageContext, config: Any, inputs: dict[str, Any]) -> dict[str, Any]: ...

    @classmethod
    def code_version(cls) -> str:
        return package_source_digest(cls.__module__.rsplit(".", 1)[0])

    @classmethod
    def user_code(cls, config: Any) -> list[str]:
        """The user's functions (``module:function``) this stage's settings name: their sources join its cache key."""
        return []

    @classmethod
    def source_stamp(cls, config: Any, spec_dir: str | None) -> str | None:
        """What identifies the outside data this stage reads as it stands now (a local file's size and change time),
        so that a changed file re-runs the stage; None: nothing outside the pipeline's inputs."""
        return None


@cache
def package_source_digest(package: str) -> str:
    """SHA-256 over the package's Python sources: a change to a stage's code invalidates its cache."""
    root = Path(importlib.import_module(package).__file__).parent  # type: ignore[arg-type]
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


# -- registrations: metadata writes a stage asks for; the runner commits them with the stage's result


@dataclass
class DatasetRegistration:
    dataset: str
    artifact: dict[str, Any]
    schema: dict[str, Any]
    stats: dict[str, Any]
    class_balance: dict[str, Any]
    fingerprint: str


@dataclass
class ModelRegistration:
    name: str
    stage: str
    onnx: dict[str, Any] | None  # None: the model could not be exported; the checkpoint is registered alone
    checkpoint: dict[str, Any] | None  # None: a model with no PyTorch checkpoint of its own (an INT8 ONNX)
    dataset_version_id: int | None
    metrics: dict[str, Any]
    # (kind, id, relation) of what the version was made from beyond its own run: a compressed model's parent
    derived_from: list[tuple[str, str, str]] = field(default_factory=list)


class StageContext:
    """What a running stage may use: the artifact store, progress/metric events, its log, resume state.

    It is pickled to the Ray worker; events travel back to the driver over a Ray queue.
    """

    def __init__(
        self,
        run_id: str,
        stage: str,
        artifacts: Any,
        events: Any,
        log_path: str,
        home: str,
        resume: dict[str, Any] | None = None,
        data_roots: tuple[str, ...] | None = None,
        *,
        spec_dir: str | None = None,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        """``data_roots``: the folders file sources must lie in (a job confined to its project's data); None: any.
        ``spec_dir``: the pipeline file's folder, where the user's own modules are found; ``storage_options``: what
        fsspec needs to read an ``s3://`` source (the artifact store's endpoint)."""
        self.run_id, self.stage, self.artifacts, self.events = run_id, stage, artifacts, events
        self.log_path, self.home, self.resume = log_path, home, resume or {}
        self.data_roots = data_roots
        self.spec_dir = spec_dir
        self.storage_options = storage_options or {}
        self.deployments: Any = None  # in-process deploy stages: the run's deployments (serving.deploy.RunDeployments)
        self.stop: Any = None  # stages that stop on request: a pipeline.stop.StopRequest
        self.placement: dict[str, str] | None = None  # a Ray label selector: the nodes the stage's work may run on
        self._last_progress: dict[str, float] = {}
        self._sent: list[Any] = []
        # rank 0's checkpoint writer flushes on its own thread while the training thread emits: the list of
        # pending sends is handed over under this lock (ray.get on a list another thread appends to fails inside
        # Ray with a bare AssertionError, and clear() would drop sends it never waited for)
        self._sending = threading.Lock()

    def emit(self, event_type: str, /, **data: Any) -> None:
        event = {"stage": self.stage, "type": event_type, **data}
        actor = getattr(self.events, "actor", None)
        if actor is None:  # in-process stage, or no listener
            if self.events is not None:
                self.events.put(event)
            return
        # Fire and forget: a blocking put is a ~2 ms round trip inside the training loop (the queue actor is
        # asynchronous, so events may arrive out of their sending order); flush() waits for them all.
        with self._sending:
            self._sent.append(actor.put_nowait.remote(event))
            full = len(self._sent) >= 256
        if full:
            self.flush()

    def flush(self) -> None:
        """Wait until every event sent so far, from any thread, is in the queue (called before a stage or worker
        returns, and by rank 0's checkpoint writer before it reports a checkpoint)."""
        with self._sending:
            sent, self._sent = self._sent, []
        if sent:
            import ray

            ray.get(sent)

    def __getstate__(self) -> dict[str, Any]:
        # pending sends belong to the process that made them; a lock does not travel
        return {k: v for k, v in self.__dict__.items() if k not in ("_sent", "_sending")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._sent, self._sending = [], threading.Lock()

    def progress(
        self, task: str, completed: float, total: float | None = None, *, force: bool = False, **fields: Any
    ) -> None:
        """Report progress on a named task (epochs, batches…); throttled so hot loops stay cheap."""
        now = time.monotonic()
        if not force and completed != total and now - self._last_progress.get(task, 0.0) < 0.2:
            return
        self._last_progress[task] = now
        self.emit("progress", task=task, completed=completed, total=total, **fields)

    def metric(self, name: str, step: int, value: float) -> None:
        self.emit("metric", name=name, step=int(step), value=float(value))

    def log(self, message: str) -> None:
        """A line in the stage's log. On a node without the run's folder (another node of a multi-node cluster)
        the line travels with the event and the runner writes it (``written: False``)."""
        if self.append_log(f"{time.strftime('%H:%M:%S')} {message}\n", message):
            self.emit("log", message=message)

    def append_log(self, text: str, message: str) -> bool:
        """Append ``text`` to the stage's log file; on a node without the run's folder it travels to the runner
        with a log event (``message`` is what a display shows of it). Whether it was written here."""
        try:
            with open(self.log_path, "a", encoding="utf-8") as fh:
                fh.write(text)
        except FileNotFoundError:
            self.emit("log", message=message, written=False, line=text)
            return False
        return True

    def put_artifact(self, data: bytes | Path, *, kind: str, name: str) -> dict[str, Any]:
        """Store bytes or a file content-addressed; the run records it at once (it survives a later failure)."""
        ref = self.artifacts.put_file(data) if isinstance(data, Path) else self.artifacts.put_bytes(data)
        value = {"artifact": ref.digest, "size": ref.size, "uri": ref.uri, "kind": kind, "name": name}
        self.emit("artifact", **value)
        return value

    def get_artifact(self, value: dict[str, Any]) -> bytes:
        return self.artifacts.get_bytes(value["artifact"])  # type: ignore[no-any-return]

    def artifact_file(self, value: dict[str, Any], dest: Path) -> Path:
        return self.artifacts.get_file(value["artifact"], dest)  # type: ignore[no-any-return]
