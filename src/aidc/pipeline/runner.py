"""The pipeline runner: stages in order on Ray, cached by what they depend on, committed one transaction each."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import traceback
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aidc.errors import AidcError, Conflict, InvalidInput
from aidc.pipeline.boundary import classify, from_users_code
from aidc.pipeline.spec import Pipeline, PlannedStage, load_pipeline, pipeline_from_json
from aidc.pipeline.stage import DatasetRegistration, ModelRegistration, StageContext
from aidc.pipeline.stop import StageStopped

if TYPE_CHECKING:
    from aidc.cluster.placement import Placement
    from aidc.facility.model import Facility
    from aidc.serving.deploy import NoDeployments, RunDeployments
    from aidc.settings import Settings
    from aidc.store.artifacts import ArtifactStore
    from aidc.store.metadata import MetadataStore
    from aidc.store.metadata.records import StageRun


class RunObserver:
    """What a display (the CLI's live view, a test) hears while a run goes on. Every method is optional."""

    def run_started(self, run_id: str, pipeline: Pipeline, resumed: bool) -> None: ...
    def stage_started(self, name: str, kind: str) -> None: ...
    def stage_event(self, event: dict[str, Any]) -> None: ...
    def stage_finished(self, stage: StageRun) -> None: ...


@dataclass
class RunResult:
    run_id: str
    status: str
    stages: list[StageRun]
    outputs: dict[str, dict[str, Any]]
    report_path: str | None = None
    serving: list[dict[str, Any]] = field(default_factory=list)  # endpoints left up by --serve


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def cache_key(stage: PlannedStage, inputs: dict[str, Any], spec_dir: str | None = None) -> str:
    """What a stage's result depends on: its kind, its code, the user's code it names, its settings and its inputs'
    contents."""
    from aidc.pipeline.usercode import source_digest

    basis = {
        "kind": stage.spec.uses,
        "code": stage.cls.code_version(),
        "config": stage.config.model_dump(mode="json"),
        "inputs": inputs,
    }
    users = stage.cls.user_code(stage.config)
    if users:  # (absent otherwise: the keys of stages without user code stay what they were)
        basis["user_code"] = {ref: source_digest(ref, spec_dir) for ref in users}
    stamp = stage.cls.source_stamp(stage.config, spec_dir)
    if stamp is not None:
        basis["source"] = stamp
    return hashlib.sha256(json.dumps(basis, sort_keys=True, default=str).encode()).hexdigest()


def artifact_digests(value: Any) -> list[str]:
    """Every artifact a stage output refers to (dicts carrying an ``artifact`` digest), however nested."""
    if isinstance(value, dict):
        own = [value["artifact"]] if isinstance(value.get("artifact"), str) else []
        return own + [d for v in value.values() for d in artifact_digests(v)]
    if isinstance(value, list):
        return [d for v in value for d in artifact_digests(v)]
    return []


def _execute_stage(cls: type, ctx: StageContext, config: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    """Runs on a Ray worker: the stage's own code, with its traceback kept in the stage log on failure. A failure
    raised in the user's code is told apart here, where its traceback is still live."""
    if ctx.placement is not None and not getattr(cls, "places_workers", False):  # placed by labels: say where
        import ray

        ctx.log(f"running on Ray node {ray.get_runtime_context().get_node_id()}")
    try:
        return cls().run(ctx, config, inputs)  # type: ignore[no-any-return]
    except StageStopped:
        raise  # it stopped because it was asked to: no failure to explain
    except Exception as exc:
        # (on another node of the cluster the run's folder does not exist: the traceback travels to the runner)
        ctx.append_log(traceback.format_exc(), f"{type(exc).__name__}: {exc}")
        users = (
            None
            if isinstance(exc, AidcError)
            else from_users_code(exc, stage=ctx.stage, run_id=ctx.run_id, log_path=ctx.log_path)
        )
        if users is not None:
            raise users from None
        raise
    finally:
        ctx.flush()


class _Immediate:
    """The events channel of an in-process stage: each report is handled as it is made."""

    def __init__(self, handle: Any) -> None:
        self.put = handle


class PipelineRunner:
    def __init__(
        self,
        store: MetadataStore,
        artifacts: ArtifactStore,
        settings: Settings,
        *,
        deployments: Callable[[str, bool, str], RunDeployments | NoDeployments],
        observer: RunObserver | None = None,
        data_roots: tuple[str, ...] | None = None,
        project: str = "default",
        report: bool = True,
        node_failed: Callable[[str, str, str], Any] | None = None,
    ) -> None:
        """``deployments(run_id, serve, project)``: what a deploy stage of the run deploys through (made when one
        runs); ``data_roots``: the folders its stages may read files from (None: any this OS user may read);
        ``project``: where a new run and what it registers belong (a resumed run keeps its own); ``report``: whether
        the run writes its HTML report when it ends (a job's process leaves it to the server, which draws it on
        request); ``node_failed(ray node id, reason, run id)``: told of each node a stage's worker died on
        (services.nodes counts them, and cordons a node that keeps failing)."""
        self._node_failed = node_failed
        self.data_roots = data_roots
        self.report = report
        self.project = project
        self.store = store
        self.artifacts = artifacts
        self.settings = settings
        self.observer = observer or RunObserver()
        self._make_deployments = deployments
        self._compute = ExitStack()
        self._events: Any = None
        self._deployments: RunDeployments | NoDeployments | None = None
        self._serve = False
        self._pipeline: Pipeline | None = None
        self._interrupted = False  # a stage finished while it was being asked to stop: the run stops after it
        self._spec_dir: str | None = None  # the pipeline file's folder: where the user's modules are found
        self._facility: Facility | None = None  # the facility spec (its servers' labels place stages), once read

    # -- the run
    def run(
        self, path: str | Path | None, *, resume: str | None = None, force: bool = False, serve: bool = False
    ) -> RunResult:
        run_id, pipeline, previous = self._open_run(path, resume)
        self._serve, self._pipeline = serve, pipeline
        self._spec_dir = str(Path(pipeline.path).resolve().parent) if pipeline.path else None
        run_dir = self.settings.home / "runs" / run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        self.observer.run_started(run_id, pipeline, resumed=resume is not None)
        outputs: dict[str, dict[str, Any]] = {}
        failure: BaseException | None = None
        try:
            for stage in pipeline.stages.values():
                inputs = {inp: outputs[up][out] for inp, (up, out) in stage.needs.items()}
                outputs[stage.name] = self._stage(run_id, run_dir, stage, inputs, previous.get(stage.name), force)
                if self._interrupted:
                    raise KeyboardInterrupt
        except BaseException as exc:
            failure = exc
            raise
        finally:
            # Deployments first: undoing one made on the command's own Ray needs that Ray still up.
            served = self._settle_deployments(keep=serve and failure is None)
            self._compute.close()
            status = "succeeded" if failure is None else "failed"
            self.store.finish_run(run_id, status, error=_error_dict(failure) if failure else None)
            report = self._write_report(run_id)
        return RunResult(run_id, status, self.store.list_stages(run_id), outputs, report, served)

    def _open_run(self, path: str | Path | None, resume: str | None) -> tuple[str, Pipeline, dict[str, StageRun]]:
        if resume is None:
            if path is None:
                raise InvalidInput("no pipeline given", hint="aidc run PIPELINE.yaml, or aidc run --resume RUN")
            pipeline = load_pipeline(path)
            run_id = new_run_id()
            self.store.create_run(run_id, pipeline.name, pipeline.as_json(), str(path), project=self.project)
            return run_id, pipeline, {}
        if path is not None:
            raise InvalidInput(
                "give a pipeline file or --resume RUN, not both",
                hint="--resume continues a run with the spec it was started with",
            )
        run = self.store.get_run(resume)
        self.project = run.project
        if run.status == "succeeded":
            raise Conflict(
                f"run {run.id} already succeeded; nothing to resume",
                hint="run the pipeline again (finished stages come from the cache), or with --force",
            )
        pipeline = pipeline_from_json(run.spec, run.spec_path)
        self.store.reopen_run(run.id)
        return run.id, pipeline, {s.name: s for s in self.store.list_stages(run.id)}

    # -- one stage: resumed, cached or executed
    def _stage(
        self,
        run_id: str,
        run_dir: Path,
        stage: PlannedStage,
        inputs: dict[str, Any],
        before: StageRun | None,
        force: bool,
    ) -> dict[str, Any]:
        if before is not None and before.status in ("succeeded", "cached") and self._present(before.outputs):
            self.observer.stage_finished(before)
            return before.outputs
        inputs = {**inputs, **self._registered_inputs(run_id, stage)}
        key = cache_key(stage, inputs, self._spec_dir)
        if stage.cls.cacheable and not force:
            hit = self.store.find_cached_stage(key, project_of=run_id)  # (another project's versions are not ours)
            if hit is not None and self._present(hit.outputs):
                with self.store.transaction():
                    started = self.store.start_stage(
                        run_id, stage.name, stage.spec.uses, cache_key=key, log_path=hit.log_path
                    )
                    done = self.store.finish_stage(started.id, "cached", outputs=hit.outputs, cached_from=hit.id)
                self.observer.stage_finished(done)
                return hit.outputs
        return self._execute(run_id, run_dir, stage, inputs, key, resume=self._resume_state(run_id, stage, before))

    def _registered_inputs(self, run_id: str, stage: PlannedStage) -> dict[str, Any]:
        """The model versions a stage's settings name (``init_from: digits-cnn:3``), as the checkpoints it starts
        from: looked up when the stage is reached (an earlier stage of the run may have registered it), in the run's
        project only, and recorded as lineage into the run."""
        found: dict[str, Any] = {}
        for field_name, input_name in stage.cls.model_refs.items():
            ref = getattr(stage.config, field_name, None)
            if not ref:
                continue
            name, _, version = str(ref).partition(":")
            try:
                mv = self.store.get_model_version(name, int(version) if version else None, project=self.project)
            except AidcError as exc:
                raise InvalidInput(
                    f"stage {stage.name!r}: {field_name} {ref!r}: {exc.message}",
                    where=stage.where,
                    hint="register that model first (`aidc models` lists them) or correct the name",
                ) from None
            if mv.checkpoint_digest is None or not self.artifacts.exists(mv.checkpoint_digest):
                raise InvalidInput(
                    f"stage {stage.name!r}: {field_name} {ref!r} has no training checkpoint to start from",
                    where=stage.where,
                    hint="name a version a train stage made (an INT8 version has only its ONNX: use its parent)",
                )
            self.store.add_lineage(("model_version", str(mv.id)), ("run", run_id), "initialised")
            found[input_name] = {"artifact": mv.checkpoint_digest, "model_version_id": mv.id, "ref": mv.ref}
        return found

    def _present(self, outputs: dict[str, Any]) -> bool:
        return all(self.artifacts.exists(d) for d in artifact_digests(outputs))

    def _resume_state(self, run_id: str, stage: PlannedStage, before: StageRun | None) -> dict[str, Any]:
        """A stage that ran before in this run picks up from its latest checkpoint."""
        if before is None:
            return {}
        checkpoints = [a for a in self.store.artifacts(run_id=run_id, kind="checkpoint") if a.stage == stage.name]
        if not checkpoints or not self.artifacts.exists(checkpoints[-1].digest):
            return {}
        last = checkpoints[-1]
        return {
            "checkpoint": {
                "artifact": last.digest,
                "size": last.size,
                "uri": last.uri,
                "kind": last.kind,
                "name": last.name,
            }
        }

    def _execute(
        self, run_id: str, run_dir: Path, stage: PlannedStage, inputs: dict[str, Any], key: str, resume: dict[str, Any]
    ) -> dict[str, Any]:
        log_path = run_dir / f"{stage.name}.log"
        placement = None
        if not stage.cls.in_process:  # (a spec asking for nodes that are not there fails before the stage starts)
            self._ensure_compute()
            placement = self._placement(stage)
        started = self.store.start_stage(run_id, stage.name, stage.spec.uses, cache_key=key, log_path=str(log_path))
        self.observer.stage_started(stage.name, stage.spec.uses)
        try:
            if stage.cls.in_process:
                # This process drives one Ray cluster at a time. A deploy stage deploys on the command's own Ray,
                # unless --serve: then on the serving cluster, whose replicas outlive this command.
                if self._serve:
                    self._release_compute()
                else:
                    self._ensure_compute()
                events = _Immediate(lambda event: self._record(run_id, stage.name, event))
                ctx = self._context(run_id, stage, events, log_path, resume)
                ctx.deployments = self._run_deployments(run_id)
                result = _execute_stage(stage.cls, ctx, stage.config, inputs)
            else:
                result = self._on_ray(run_id, stage, inputs, log_path, resume, placement)
        except BaseException as exc:
            error = self._stage_error(run_id, stage, log_path, exc)
            done = self.store.finish_stage(started.id, "failed", error=_error_dict(error))
            self.observer.stage_finished(done)
            if error is exc:
                raise
            raise error from None
        with self.store.transaction():
            outputs = {name: self._commit(run_id, value) for name, value in result.items()}
            done = self.store.finish_stage(started.id, "succeeded", outputs=outputs)
        self.observer.stage_finished(done)
        return outputs

    def _context(
        self, run_id: str, stage: PlannedStage, events: Any, log_path: Path, resume: dict[str, Any]
    ) -> StageContext:
        endpoint = self.settings.s3_endpoint_url
        ctx = StageContext(
            run_id,
            stage.name,
            self.artifacts,
            events,
            str(log_path),
            str(self.settings.home),
            resume,
            self.data_roots,
            spec_dir=self._spec_dir,
            storage_options={"endpoint_url": endpoint} if endpoint else None,
        )
        if resume:
            ctx.log(f"resuming from {resume['checkpoint']['name']}")
        return ctx

    def _on_ray(
        self,
        run_id: str,
        stage: PlannedStage,
        inputs: dict[str, Any],
        log_path: Path,
        resume: dict[str, Any],
        placement: Placement | None = None,
    ) -> dict[str, Any]:
        """The stage as a Ray task; its reports are drained while it runs, and once more if it is stopped.

        On an interrupt, a stage that stops on request is first asked to (it saves where it is: a resumed run
        continues from there) and given ``stop_checkpoint_s``; one that does not end in time is stopped outright.
        """
        import ray

        self._ensure_compute()
        ctx = self._context(run_id, stage, self._events, log_path, resume)
        flag = None
        if stage.cls.stops_on_request and self.settings.stop_checkpoint_s > 0:
            from aidc.pipeline.stop import StopRequest, new_stop_flag

            flag = new_stop_flag()
            ctx.stop = StopRequest(flag)
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        # a stage that only drives others (num_cpus 0) stays beside the runner; one that computes, when it has room,
        # unless node labels say where it runs (its workers, for a stage that starts them)
        here = ray.get_runtime_context().get_node_id()
        cpus = stage.cls.cpus(stage.config)
        options: dict[str, Any] = {"scheduling_strategy": NodeAffinitySchedulingStrategy(here, soft=cpus > 0)}
        if placement is not None:
            ctx.placement = placement.selector()
            ctx.log(("its workers run " if stage.cls.places_workers else "runs ") + placement.describe())
            if not stage.cls.places_workers:
                options = {"label_selector": ctx.placement}
        task = ray.remote(_execute_stage).options(num_cpus=cpus, max_retries=0, **options)
        ref = task.remote(stage.cls, ctx, stage.config, inputs)
        try:
            while not ray.wait([ref], timeout=0.25)[0]:
                self._drain(run_id, stage.name)
        except KeyboardInterrupt:
            ended = False
            try:  # a second Ctrl-C while the stage saves its state stops it at once
                ended = flag is not None and self._ask_to_stop(ctx, ref, flag)
            finally:
                if not ended:
                    ray.cancel(ref, force=True)
                ctx.flush()  # what the runner itself logged to the stage
                self._drain(run_id, stage.name)  # keep what the stage reported before it stopped
            if not ended:
                raise
            try:
                result = ray.get(ref)
            except Exception:  # stopped as asked (StageStopped), or failed on the way: the run is interrupted
                raise KeyboardInterrupt from None
            self._interrupted = True  # it finished before it could stop: its result is kept, the run stops after it
            return result
        self._drain(run_id, stage.name)
        return ray.get(ref)

    def _placement(self, stage: PlannedStage) -> Placement | None:
        """Where the stage's node labels (its own, or its kind's ``workload``) and the nodes' holds let it run (a
        cordoned node is left out while another fits); None: anywhere."""
        from aidc.cluster.inventory import held_ray_node_ids, ray_nodes
        from aidc.cluster.placement import WORKLOAD, place

        implied = {WORKLOAD: stage.cls.workload} if stage.cls.workload else {}
        held = [(s.node, s.host) for s in self.store.node_states() if s.cordoned]
        if not stage.spec.node_labels and not implied and not held:
            return None
        if self._facility is None and self.settings.facility:
            from aidc.facility.loader import load_facility

            self._facility = load_facility(self.settings.facility)
        nodes = ray_nodes()
        try:
            return place(
                stage.name,
                stage.spec.node_labels,
                implied,
                nodes,
                self.settings.node_names,
                self._facility,
                held=held_ray_node_ids(nodes, held) if held else (),
            )
        except InvalidInput as exc:
            exc.where = exc.where or stage.where
            raise

    def _ask_to_stop(self, ctx: StageContext, ref: Any, flag: Any) -> bool:
        """Set the stage's stop flag and wait, bounded, for it to end; whether it did."""
        import ray

        wait_s = self.settings.stop_checkpoint_s
        ctx.log(f"interrupted: asking the stage to save where it is and stop (waiting up to {wait_s:g} s)")
        flag.set.remote()
        deadline = time.monotonic() + wait_s
        while (left := deadline - time.monotonic()) > 0:
            if ray.wait([ref], timeout=min(0.25, left))[0]:  # (no longer than asked: a short wait stays short)
                return True
            self._drain(ctx.run_id, ctx.stage)
        ctx.log(
            f"the stage did not stop within {wait_s:g} s; stopped it: a resumed run continues from its "
            "latest checkpoint"
        )
        return False

    def _ensure_compute(self) -> None:
        if self._events is None:  # Ray starts only when a stage really has to run
            from ray.util.queue import Queue

            from aidc.cluster.compute import ray_cluster

            settings = self.settings
            self._compute.enter_context(ray_cluster(settings.ray_address, num_cpus=settings.ray_num_cpus))
            import ray
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            # beside the runner: on a multi-node cluster, losing another node must not take the run's events along
            here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
            self._events = Queue(actor_options={"num_cpus": 0, "scheduling_strategy": here})
            for planned in self._pipeline.stages.values() if self._pipeline else ():
                try:
                    planned.cls.warm_up(planned.config)
                except Exception:  # only a head start: the stage itself starts what is missing
                    pass

    def _release_compute(self) -> None:
        """Leave the command's Ray now (it is started again if a later stage needs it)."""
        self._compute.close()
        self._compute = ExitStack()
        self._events = None

    def _run_deployments(self, run_id: str) -> Any:
        if self._deployments is None:
            self._deployments = self._make_deployments(run_id, self._serve, self.project)
        return self._deployments

    def _drain(self, run_id: str, stage: str) -> None:
        pending = self._events.qsize()
        if pending:
            interrupted: KeyboardInterrupt | None = None
            for event in self._events.get_nowait_batch(pending):
                try:
                    self._record(run_id, stage, event)
                except KeyboardInterrupt as exc:  # the rest are taken off the queue: keep them, then stop
                    interrupted = exc
            if interrupted is not None:
                raise interrupted

    def _record(self, run_id: str, stage: str, event: dict[str, Any]) -> None:
        """Keep what a stage reports (metrics, artifacts at once — they outlive a later failure) and show it."""
        if event["type"] == "metric":
            self.store.add_metrics(run_id, stage, [(event["name"], event["step"], event["value"])])
        elif event["type"] == "log" and event.get("written") is False:  # said on a node without the run's folder
            with open(self.settings.home / "runs" / run_id / f"{stage}.log", "a", encoding="utf-8") as fh:
                fh.write(event["line"])
        elif event["type"] == "node_failure" and self._node_failed is not None:
            try:
                found = self._node_failed(event["node"], event["reason"], run_id)
            except AidcError as exc:  # the run goes on: a failure not counted is logged, never fatal
                found = None
                self.observer.stage_event({"stage": stage, "type": "log", "message": f"node failure not kept: {exc}"})
            if found and found.get("now"):
                line = (
                    f"node {found['node']} cordoned: {found['failures']} failures within {found['window_s']:g} s "
                    "(`aidc nodes uncordon` releases it)"
                )
                with open(self.settings.home / "runs" / run_id / f"{stage}.log", "a", encoding="utf-8") as fh:
                    fh.write(f"{time.strftime('%H:%M:%S')} {line}\n")
                self.observer.stage_event({"stage": stage, "type": "log", "message": line})
        elif event["type"] == "artifact":
            self.store.add_artifact(
                event["artifact"], event["size"], event["kind"], event["name"], event["uri"], run_id=run_id, stage=stage
            )
        self.observer.stage_event(event)

    def _stage_error(self, run_id: str, stage: PlannedStage, log_path: Path, exc: BaseException) -> BaseException:
        """The stage's failure as the user should read it: which stage, whose fault, where to look."""
        from ray.exceptions import RayTaskError, TaskCancelledError

        if isinstance(exc, (KeyboardInterrupt, TaskCancelledError)):
            return exc if isinstance(exc, KeyboardInterrupt) else KeyboardInterrupt()
        cause = exc.cause if isinstance(exc, RayTaskError) and exc.cause is not None else exc
        return classify(cause, stage=stage.name, run_id=run_id, log_path=str(log_path), spec_at=stage.where)

    # -- what a stage asked to be registered, committed in the stage's transaction
    def _commit(self, run_id: str, value: Any) -> Any:
        store = self.store
        if isinstance(value, DatasetRegistration):
            dv = store.register_dataset_version(
                value.dataset,
                value.artifact["artifact"],
                schema=value.schema,
                stats=value.stats,
                class_balance=value.class_balance,
                fingerprint=value.fingerprint,
                run_id=run_id,
                project=self.project,
            )
            return {"dataset_version_id": dv.id, "ref": dv.ref}
        if isinstance(value, ModelRegistration):
            onnx = (value.onnx or {}).get("artifact")
            ckpt = value.checkpoint["artifact"] if value.checkpoint is not None else None
            mv = store.register_model_version(
                value.name,
                onnx_digest=onnx,
                checkpoint_digest=ckpt,
                run_id=run_id,
                dataset_version_id=value.dataset_version_id,
                metrics=value.metrics,
                project=self.project,
            )
            if value.stage != "none":
                mv = store.set_model_stage(mv.name, mv.version, value.stage, project=self.project)
            if value.dataset_version_id is not None:
                store.add_lineage(("dataset_version", str(value.dataset_version_id)), ("run", run_id), "input_to")
            if ckpt is not None:
                store.add_lineage(("run", run_id), ("checkpoint", ckpt), "produced")
            if onnx is not None:
                if ckpt is not None:
                    store.add_lineage(("checkpoint", ckpt), ("onnx", onnx), "exported_to")
                else:  # an INT8 ONNX of a parent: no PyTorch checkpoint of its own
                    store.add_lineage(("run", run_id), ("onnx", onnx), "produced")
                store.add_lineage(("onnx", onnx), ("model_version", str(mv.id)), "registered_as")
            elif ckpt is not None:  # a model that could not be exported: its checkpoint is what was registered
                store.add_lineage(("checkpoint", ckpt), ("model_version", str(mv.id)), "registered_as")
            for kind, id_, relation in value.derived_from:
                store.add_lineage((kind, id_), ("model_version", str(mv.id)), relation)
            return {"model_version_id": mv.id, "ref": mv.ref, "stage": mv.stage}
        return value

    def _settle_deployments(self, *, keep: bool) -> list[dict[str, Any]]:
        """Deployments made by this command stay up with --serve (only after success); otherwise they are undone."""
        if self._deployments is None:
            return []
        try:
            return list(self._deployments.settle(keep=keep))
        except AidcError as exc:  # never hide the run's own outcome behind a failed clean-up
            self.observer.stage_event({"stage": "-", "type": "log", "message": f"deployments not settled: {exc}"})
            return []

    def _write_report(self, run_id: str) -> str | None:
        if not self.report:
            return None
        try:
            from aidc.report.run_report import save_run_report

            return str(save_run_report(self.store, run_id, self.settings.home / "runs" / run_id / "report.html"))
        except Exception as exc:  # the run's outcome stands even when its report cannot be drawn
            self.observer.stage_event({"stage": "-", "type": "log", "message": f"run report not written: {exc}"})
            return None


def _error_dict(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, KeyboardInterrupt):
        return {
            "code": "interrupted",
            "message": "interrupted by the user",
            "hint": "continue with aidc run --resume RUN",
        }
    data: dict[str, Any] = exc.to_dict() if isinstance(exc, AidcError) else {"code": "internal", "message": str(exc)}
    data["at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return data


__all__ = ["PipelineRunner", "RunObserver", "RunResult", "cache_key"]
