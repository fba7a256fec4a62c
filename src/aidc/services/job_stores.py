"""A job's stores, kept by the server: what a job's process reads and writes of metadata and artifacts, through the
API with its own credential, each call checked to lie in the job's project.

A job's process holds no database URL, no key file and no master key (jobs/launcher.py). It calls these verbs with
the token the scheduler minted for it (``job:<id>``, security/service.py): only that token is accepted for the job,
only while the job is not finished, and only what the pipeline runner does is answered — a run of the job's project,
its stages, metrics and artifacts, dataset and model versions registered into the job's project, lineage between
them, and artifacts the project recorded or the job stored itself. The server encrypts and decrypts the artifacts.
Arguments come as JSON and answers go as JSON: nothing a job sends is unpickled here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from aidc.errors import InvalidInput, NotFound, PermissionDenied
from aidc.security.roles import ALL_PROJECTS, ROLES, Access

if TYPE_CHECKING:
    from aidc.security.service import Security
    from aidc.store.artifacts import ArtifactStore
    from aidc.store.metadata import MetadataStore
    from aidc.store.metadata.records import Job

JSON = dict[str, Any]
LIVE = ("running", "preempted", "cancelled")  # a stopped job still checkpoints and records how it ended
ENDINGS = ("succeeded", "failed")  # what a job's process may record of itself
VERSION_KINDS = ("dataset_version", "model_version")
DIGEST_KINDS = ("checkpoint", "onnx", "artifact")


def _refused(what: str) -> NotFound:
    # one answer for "another project's" and "missing" (the job must not learn which)
    return NotFound(f"no {what} in this job's project", hint="a job reads and writes its own project's records only")


class JobStores:
    def __init__(
        self,
        store: MetadataStore,
        artifacts: ArtifactStore,
        security: Security,
        data_roots: Callable[[str], tuple[str, ...]],
        node_failed: Callable[[str, str, str], Any] | None = None,
    ) -> None:
        """``data_roots(project)``: the folders a job of ``project`` may read file sources from; ``node_failed(ray
        node id, reason, run id)``: where a job's report of a worker lost on a node goes (services.nodes)."""
        self.store, self.artifacts, self.security, self.data_roots = store, artifacts, security, data_roots
        self.node_failed = node_failed
        self._failures_seen: set[tuple[str, str]] = set()  # (job, node): one job counts once against a node
        self._stored: dict[str, set[str]] = {}  # job id → digests it stored (readable before they are recorded)
        self._lock = threading.Lock()
        self._jobs_of_tokens: dict[str, str] = {}  # token id → the job whose credential it is
        self._ops: dict[str, Callable[[Job, JSON], Any]] = {
            "get_job": lambda job, a: job.model_dump(mode="json"),
            "create_run": self._create_run,
            "get_run": lambda job, a: self._run(job, a["run_id"]).model_dump(mode="json"),
            "reopen_run": lambda job, a: self.store.reopen_run(self._run(job, a["run_id"]).id).model_dump(mode="json"),
            "finish_run": self._finish_run,
            "set_run_report": lambda job, a: self.store.set_run_report(self._run(job, a["run_id"]).id, str(a["path"])),
            "list_stages": lambda job, a: [
                s.model_dump(mode="json") for s in self.store.list_stages(self._run(job, a["run_id"]).id)
            ],
            "start_stage": self._start_stage,
            "finish_stage": self._finish_stage,
            "find_cached_stage": self._find_cached_stage,
            "add_metrics": self._add_metrics,
            "metrics": lambda job, a: [
                m.model_dump(mode="json")
                for m in self.store.metrics(self._run(job, a["run_id"]).id, stage=a.get("stage"))
            ],
            "add_artifact": self._add_artifact,
            "artifacts": lambda job, a: [
                x.model_dump(mode="json")
                for x in self.store.artifacts(run_id=self._run(job, a["run_id"]).id, kind=a.get("kind"))
            ],
            "artifact_exists": lambda job, a: self._readable(job, a["digest"]) and self.artifacts.exists(a["digest"]),
            "register_dataset_version": self._register_dataset_version,
            "get_dataset_version": lambda job, a: self._version(job, "dataset_version", a["id"]).model_dump(
                mode="json", by_alias=True
            ),
            "register_model_version": self._register_model_version,
            "get_model_version": self._get_model_version,
            "get_model_version_by_id": lambda job, a: self._version(job, "model_version", a["id"]).model_dump(
                mode="json"
            ),
            "set_model_stage": self._set_model_stage,
            "add_lineage": self._add_lineage,
            # placement leaves cordoned nodes out: the job learns which, and nothing of the other holds
            "node_states": lambda job, a: [s.model_dump(mode="json") for s in self.store.node_states() if s.cordoned],
            "node_failed": self._node_failed,
        }

    # -- who may call
    def job_of(self, access: Access, job_id: str) -> Job:
        """The job ``job_id`` once ``access`` came with that job's own credential and the job is not finished; its
        submitter must still be allowed to submit jobs in its project."""
        owner = self._jobs_of_tokens.get(access.token_id or "")
        if owner is None:
            owner = self.security.job_of_token(access.token_id)
            if owner is not None and access.token_id:  # (a token's name never changes; a revoked one fails earlier)
                self._jobs_of_tokens[access.token_id] = owner
        if owner != job_id:  # the same answer whether the job exists or not, and whoever's it is
            raise NotFound(
                f"no stores of job {job_id} for this token",
                hint="these routes are a job process's own, for its credential; read runs, models and datasets "
                "through their own routes",
            )
        job = self.store.get_job(job_id)
        if job.submitter != access.principal or job.state not in LIVE:
            raise PermissionDenied(f"job {job_id} is {job.state}; its credential no longer works")
        held = {p for role, p in access.bindings if "jobs:submit" in ROLES.get(role, ())}
        if job.project not in held and ALL_PROJECTS not in held:
            raise PermissionDenied(f"{access.principal} may no longer submit jobs in project {job.project}")
        return job

    def call(self, access: Access, job_id: str, op: str, args: JSON) -> Any:
        job = self.job_of(access, job_id)
        if op == "finish_job":
            return self._finish_job(access, job, args)
        handler = self._ops.get(op)
        if handler is None:
            raise NotFound(
                f"no job store operation {op!r}", hint=f"one of {', '.join(sorted([*self._ops, 'finish_job']))}"
            )
        try:
            return handler(job, args)
        except (KeyError, TypeError, ValueError) as exc:  # a malformed call: the job's bug, not the server's
            raise InvalidInput(f"{op}: bad arguments ({type(exc).__name__}: {exc})") from None

    # -- checks
    def _run(self, job: Job, run_id: Any) -> Any:
        try:
            run = self.store.get_run(str(run_id), projects=[job.project])
        except NotFound:
            raise _refused(f"run {run_id}") from None
        if run.project != job.project or run.id != str(run_id):
            raise _refused(f"run {run_id}")
        return run

    def _version(self, job: Job, kind: str, id_: Any) -> Any:
        try:
            found = (
                self.store.get_dataset_version(int(id_))
                if kind == "dataset_version"
                else self.store.get_model_version_by_id(int(id_))
            )
        except NotFound:
            found = None
        if found is None or found.project != job.project:
            raise _refused(f"{kind.replace('_', ' ')} {id_}")
        return found

    def _readable(self, job: Job, digest: str) -> bool:
        digest = digest if digest.startswith("sha256:") else f"sha256:{digest}"
        with self._lock:
            if digest in self._stored.get(job.id, ()):
                return True
        return self.store.digest_in_project(digest, job.project)

    def _end(self, job: Job, kind: str, id_: Any) -> None:
        """One end of a lineage edge must be the job's project's."""
        if kind == "run":
            self._run(job, id_)
        elif kind in VERSION_KINDS:
            self._version(job, kind, id_)
        elif kind in DIGEST_KINDS:
            if not self._readable(job, str(id_)):
                raise _refused(f"{kind} {id_}")
        else:
            raise InvalidInput(f"a job cannot record lineage of {kind!r}")

    # -- the job itself
    def _finish_job(self, access: Access, job: Job, a: JSON) -> JSON | None:
        """The job's process records how it ended (audited as the job's submitter, on the job's credential)."""
        state = a["state"]
        if state not in ENDINGS:
            raise InvalidInput(f"a job's process records only how it ended ({', '.join(ENDINGS)}), not {state!r}")
        fields: JSON = {"last_error": a.get("last_error")}
        if a.get("run_id"):
            fields["run_id"] = self._run(job, a["run_id"]).id
        from datetime import UTC, datetime

        moved = self.store.transition_job(job.id, ("running",), state, finished_at=datetime.now(UTC), **fields)
        if moved is not None:
            if state == "succeeded":
                self.security.record(access, "job.succeed", f"job:{job.id}", project=job.project, run_id=moved.run_id)
            else:
                error = str((a.get("last_error") or {}).get("code") or "failed")
                self.security.record(access, "job.fail", f"job:{job.id}", project=job.project, error=error)
        return moved.model_dump(mode="json") if moved is not None else None

    def _create_run(self, job: Job, a: JSON) -> JSON:
        run = self.store.create_run(
            str(a["run_id"]), str(a["pipeline"]), dict(a["spec"]), a.get("spec_path"), project=job.project
        )
        # the job's run from the start (the scheduler's view of the job follows it)
        self.store.transition_job(job.id, LIVE, None, run_id=run.id)
        return run.model_dump(mode="json")

    def _finish_run(self, job: Job, a: JSON) -> JSON:
        run = self._run(job, a["run_id"])
        return self.store.finish_run(run.id, str(a["status"]), error=a.get("error")).model_dump(mode="json")

    def _start_stage(self, job: Job, a: JSON) -> JSON:
        run = self._run(job, a["run_id"])
        stage = self.store.start_stage(
            run.id, str(a["name"]), str(a["kind"]), cache_key=a.get("cache_key"), log_path=a.get("log_path")
        )
        return stage.model_dump(mode="json")

    def _finish_stage(self, job: Job, a: JSON) -> JSON:
        run = self._run(job, a["run_id"])
        stage_id = int(a["stage_run_id"])
        if not any(s.id == stage_id for s in self.store.list_stages(run.id)):
            raise _refused(f"stage run {stage_id}")
        cached_from = a.get("cached_from")
        done = self.store.finish_stage(
            stage_id,
            str(a["status"]),
            outputs=a.get("outputs"),
            error=a.get("error"),
            cached_from=int(cached_from) if cached_from is not None else None,
        )
        return done.model_dump(mode="json")

    def _find_cached_stage(self, job: Job, a: JSON) -> JSON | None:
        run = self._run(job, a["project_of"])
        hit = self.store.find_cached_stage(str(a["cache_key"]), project_of=run.id)
        return hit.model_dump(mode="json") if hit is not None else None

    def _add_metrics(self, job: Job, a: JSON) -> None:
        run = self._run(job, a["run_id"])
        points = [(str(n), int(s), float(v)) for n, s, v in a["points"]]
        self.store.add_metrics(run.id, str(a["stage"]), points)

    def _add_artifact(self, job: Job, a: JSON) -> JSON:
        run = self._run(job, a["run_id"])
        digest = str(a["digest"])
        if not self._readable(job, digest):  # a job records only artifacts it stored or its project has
            raise _refused(f"artifact {digest}")
        added = self.store.add_artifact(
            digest, int(a["size"]), str(a["kind"]), str(a["name"]), str(a["uri"]), run_id=run.id, stage=a.get("stage")
        )
        return added.model_dump(mode="json")

    def _register_dataset_version(self, job: Job, a: JSON) -> JSON:
        run_id = self._run(job, a["run_id"]).id if a.get("run_id") else None
        digest = str(a["artifact_digest"])
        if not self._readable(job, digest):
            raise _refused(f"artifact {digest}")
        dv = self.store.register_dataset_version(
            str(a["dataset"]),
            digest,
            schema=dict(a["schema"]),
            stats=dict(a["stats"]),
            class_balance=dict(a["class_balance"]),
            fingerprint=str(a["fingerprint"]),
            run_id=run_id,
            project=job.project,
        )
        return dv.model_dump(mode="json", by_alias=True)

    def _register_model_version(self, job: Job, a: JSON) -> JSON:
        run_id = self._run(job, a["run_id"]).id if a.get("run_id") else None
        for key in ("onnx_digest", "checkpoint_digest"):
            if a.get(key) and not self._readable(job, str(a[key])):
                raise _refused(f"artifact {a[key]}")
        dataset = a.get("dataset_version_id")
        if dataset is not None:
            self._version(job, "dataset_version", dataset)
        mv = self.store.register_model_version(
            str(a["name"]),
            onnx_digest=a.get("onnx_digest"),
            checkpoint_digest=a.get("checkpoint_digest"),
            run_id=run_id,
            dataset_version_id=int(dataset) if dataset is not None else None,
            metrics=dict(a.get("metrics") or {}),
            stage=str(a.get("stage") or "none"),
            project=job.project,
        )
        return mv.model_dump(mode="json")

    def _get_model_version(self, job: Job, a: JSON) -> JSON:
        version = a.get("version")
        mv = self.store.get_model_version(
            str(a["name"]), int(version) if version is not None else None, project=job.project
        )
        return mv.model_dump(mode="json")

    def _set_model_stage(self, job: Job, a: JSON) -> JSON:
        mv = self.store.set_model_stage(str(a["name"]), int(a["version"]), str(a["stage"]), project=job.project)
        return mv.model_dump(mode="json")

    def _node_failed(self, job: Job, a: JSON) -> Any:
        """A worker of the job's run died on a node. Counted once per job and node: a job's code could report
        failures at will, so one job alone can never cordon a node (that takes failures in several jobs)."""
        run = self._run(job, a["run_id"])
        seen = (job.id, str(a["node"]))
        with self._lock:
            first = seen not in self._failures_seen
            self._failures_seen.add(seen)
        if not first or self.node_failed is None:
            return None
        return self.node_failed(str(a["node"]), str(a["reason"])[:500], run.id)

    def _add_lineage(self, job: Job, a: JSON) -> None:
        (src_kind, src_id), (dst_kind, dst_id) = a["src"], a["dst"]
        self._end(job, str(src_kind), src_id)
        self._end(job, str(dst_kind), dst_id)
        self.store.add_lineage((str(src_kind), str(src_id)), (str(dst_kind), str(dst_id)), str(a["relation"]))

    # -- artifacts: the server encrypts and decrypts them on the job's behalf
    def put_artifact(self, access: Access, job_id: str, stream: BinaryIO) -> JSON:
        job = self.job_of(access, job_id)
        ref = self.artifacts.put_stream(stream)
        with self._lock:
            self._stored.setdefault(job.id, set()).add(ref.digest)
        self.security.record(
            access, "artifact.put", f"artifact:{ref.digest}", project=job.project, job=job.id, size=ref.size
        )
        return {"digest": ref.digest, "size": ref.size, "uri": ref.uri}

    def artifact_file(self, access: Access, job_id: str, digest: str, dest: Path) -> Path:
        """The artifact's plaintext, verified, at ``dest`` (the route streams it to the job)."""
        job = self.job_of(access, job_id)
        if not self._readable(job, digest):
            raise _refused(f"artifact {digest}")
        return self.artifacts.get_file(digest, dest)

    def forget(self, job_id: str) -> None:
        """The job's process has ended: what it stored is only readable once its project recorded it."""
        with self._lock:
            self._stored.pop(job_id, None)

    # -- file sources: read on the job's behalf, inside its project's data folders
    def data_file(self, access: Access, job_id: str, raw: str) -> Path:
        from aidc.data.sources import confined

        job = self.job_of(access, job_id)
        path = confined(f"file:{raw}", raw, self.data_roots(job.project))
        if not path.is_file():
            raise NotFound(f"no file {raw!r} in this project's data folders")
        return path
