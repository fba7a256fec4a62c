"""A job's stores on the job's side: the metadata and artifact store interfaces a pipeline runner uses, answered by the
server's job routes (api/routes/job_stores.py) with the job's own credential. The job's process holds no database URL,
no key file and no master key; the server checks every call against the job's project and encrypts on its behalf.

Only what the pipeline runner calls is here; anything else says so (``BackendUnavailable``). The connection pickles
(the artifact store travels to the Ray tasks of the job's stages), and opens its HTTP client again where it lands.
"""

from __future__ import annotations

import hashlib
import json
import ssl
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, BinaryIO

from aidc.errors import AidcError, BackendUnavailable, IntegrityError, InvalidInput, NotFound, ServerUnreachable
from aidc.store.artifacts.base import ArtifactRef, ArtifactStore
from aidc.store.artifacts.digests import format_digest, parse_digest
from aidc.store.metadata import records as r
from aidc.store.metadata.base import MetadataStore

JSON = dict[str, Any]
CHUNK = 1 << 20


class JobConnection:
    """The job's line to the server: its URL, the job's id and the job's credential (read from stdin at start)."""

    def __init__(self, server: str, job_id: str, token: str, *, ca_file: str = "", timeout: float = 120.0) -> None:
        self.server, self.job_id, self.token, self.ca_file, self.timeout = (
            server.rstrip("/"),
            job_id,
            token,
            ca_file,
            timeout,
        )
        self._http: Any = None

    def __getstate__(self) -> JSON:
        return {k: v for k, v in self.__dict__.items() if k != "_http"}

    def __setstate__(self, state: JSON) -> None:
        self.__dict__.update(state)
        self._http = None

    def __repr__(self) -> str:  # never the token
        return f"JobConnection({self.server!r}, job {self.job_id})"

    @property
    def http(self) -> Any:
        if self._http is None:
            import httpx

            self._http = httpx.Client(
                base_url=f"{self.server}/api/v1/jobs/{self.job_id}",
                timeout=self.timeout,
                verify=ssl.create_default_context(cafile=self.ca_file) if self.ca_file else True,
                headers={"Authorization": f"Bearer {self.token}"},
            )
        return self._http

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServerUnreachable(
                f"the job cannot reach the aidc server at {self.server}: {type(exc).__name__}",
                hint="the job's stores are the server's: is it still running?",
            ) from None
        if response.status_code >= 400:
            raise _error(response, self.server)
        return response

    def call(self, op: str, **args: Any) -> Any:
        """One metadata verb on the server (JSON both ways); its result."""
        return self._send(
            "POST",
            f"/store/{op}",
            content=json.dumps(args, default=str).encode(),
            headers={"Content-Type": "application/json"},
        ).json()["result"]

    def put(self, chunks: Iterable[bytes]) -> JSON:
        answer: JSON = self._send("PUT", "/artifacts", content=chunks).json()
        return answer

    def download(self, route: str, dest: Path, **params: str) -> Path:
        """Stream ``route``'s bytes to ``dest`` (a temporary name first); returns ``dest``."""
        import httpx

        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(f".{dest.name}.partial")
        try:
            with self.http.stream("GET", route, params=params) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error(response, self.server)
                with partial.open("wb") as out:
                    for chunk in response.iter_bytes(CHUNK):
                        out.write(chunk)
        except httpx.HTTPError as exc:
            partial.unlink(missing_ok=True)
            raise ServerUnreachable(
                f"the job cannot reach the aidc server at {self.server}: {type(exc).__name__}"
            ) from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(dest)
        return dest

    def fetch_data_file(self, raw: str, scratch: str) -> Path:
        """A file source of the job's project (read by the server inside the project's data folders), copied into
        the job's scratch folder; the same file again is not fetched twice."""
        name = hashlib.sha256(raw.encode()).hexdigest()[:16] + "-" + Path(raw).name
        dest = Path(scratch) / "data" / name
        if dest.is_file():
            return dest
        return self.download("/files", dest, path=raw)


def _error(response: Any, where: str) -> AidcError:
    from aidc.client.remote import _error_classes

    try:
        body = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return BackendUnavailable(f"{where} answered HTTP {response.status_code}, not an aidc error")
    cls = _error_classes().get(body.get("code"), AidcError)
    error = cls.__new__(cls)
    AidcError.__init__(error, body.get("message", ""), hint=body.get("hint"), where=body.get("where"))
    return error


class JobArtifactStore(ArtifactStore):
    """Artifacts through the server: it encrypts what the job stores and decrypts what the job reads (its
    project's, or what the job stored itself); every read is verified here against its digest too."""

    def __init__(self, connection: JobConnection) -> None:
        self.connection = connection
        self.url = f"{connection.server} (job {connection.job_id})"

    def put_stream(self, stream: BinaryIO) -> ArtifactRef:
        answer = self.connection.put(iter(lambda: stream.read(CHUNK), b""))
        return ArtifactRef(answer["digest"], int(answer["size"]), answer["uri"])

    def put_bytes(self, data: bytes) -> ArtifactRef:
        import io

        return self.put_stream(io.BytesIO(data))

    def put_file(self, path: str | Path) -> ArtifactRef:
        source = Path(path)
        if not source.is_file():
            raise NotFound(
                f"no file to store at {source}", where=str(source), hint="pass the path of an existing regular file"
            )
        with source.open("rb") as fh:
            return self.put_stream(fh)

    def get_file(self, digest: str, dest: str | Path) -> Path:
        digest = _digest(digest)
        dest = Path(dest)
        self.connection.download(f"/artifacts/{digest}", dest)
        h = hashlib.sha256()
        with dest.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                h.update(chunk)
        if f"sha256:{h.hexdigest()}" != digest:
            dest.unlink(missing_ok=True)
            raise IntegrityError(f"artifact {digest} came back from the server with other content", where=self.url)
        return dest

    def get_bytes(self, digest: str) -> bytes:
        with tempfile.TemporaryDirectory(prefix="aidc-artifact-") as folder:
            return self.get_file(digest, Path(folder) / "artifact").read_bytes()

    def exists(self, digest: str) -> bool:
        return bool(self.connection.call("artifact_exists", digest=_digest(digest)))

    def uri_of(self, digest: str) -> str:
        return f"{self.connection.server}/api/v1/jobs/{self.connection.job_id}/artifacts/{_digest(digest)}"

    def delete(self, digest: str) -> None:
        _digest(digest)
        raise BackendUnavailable("a job does not delete artifacts", hint="the server's retention removes them")

    def iter_digests(self) -> Iterator[str]:
        raise BackendUnavailable("a job does not list the artifact store")


def _digest(digest: str) -> str:
    """``sha256:<64 hex>``, lower case; InvalidInput for anything else (as every artifact store answers)."""
    return format_digest(parse_digest(digest))


def _unsupported(name: str) -> Any:
    def refuse(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise BackendUnavailable(
            f"a job's process cannot {name.replace('_', ' ')} (its stores are the server's job routes)",
            hint="run this from the CLI or the API with your own token",
        )

    refuse.__name__ = name
    return refuse


class JobMetadataStore(MetadataStore):
    """What a pipeline runner and a job's process read and write of the metadata store, as the server's job routes."""

    def __init__(self, connection: JobConnection) -> None:
        self.connection = connection
        self.url = f"{connection.server} (job {connection.job_id})"
        self._stages: dict[int, str] = {}  # stage run id → its run (the server checks the run is the job's)

    def _call(self, op: str, **args: Any) -> Any:
        return self.connection.call(op, **args)

    def transaction(self) -> AbstractContextManager[None]:
        # each call is its own transaction on the server: a stage's outputs and its registrations are made in
        # order, and a run resumed after a failure between them redoes the stage
        return nullcontext()

    # -- the job itself
    def get_job(self, job_id: str, *, projects: Any = None) -> r.Job:
        if job_id != self.connection.job_id:
            raise InvalidInput(f"job {self.connection.job_id} reads only itself, not job {job_id}")
        return r.Job.model_validate(self._call("get_job"))

    def transition_job(
        self, job_id: str, from_states: tuple[str, ...], to_state: str | None, **fields: Any
    ) -> r.Job | None:
        if to_state is None:  # the run it started is tied to the job by the server when the run is made
            return self.get_job(job_id)
        answer = self._call(
            "finish_job", state=to_state, run_id=fields.get("run_id"), last_error=fields.get("last_error")
        )
        return r.Job.model_validate(answer) if answer is not None else None

    # -- runs and stages
    def create_run(
        self, run_id: str, pipeline: str, spec: dict[str, Any], spec_path: str | None, *, project: str = "default"
    ) -> r.PipelineRun:
        answer = self._call("create_run", run_id=run_id, pipeline=pipeline, spec=spec, spec_path=spec_path)
        return r.PipelineRun.model_validate(answer)

    def get_run(self, run_id: str, *, projects: Any = None) -> r.PipelineRun:
        return r.PipelineRun.model_validate(self._call("get_run", run_id=run_id))

    def finish_run(self, run_id: str, status: str, *, error: dict[str, Any] | None = None) -> r.PipelineRun:
        return r.PipelineRun.model_validate(self._call("finish_run", run_id=run_id, status=status, error=error))

    def reopen_run(self, run_id: str) -> r.PipelineRun:
        return r.PipelineRun.model_validate(self._call("reopen_run", run_id=run_id))

    def set_run_report(self, run_id: str, path: str) -> None:
        self._call("set_run_report", run_id=run_id, path=path)

    def start_stage(
        self, run_id: str, name: str, kind: str, *, cache_key: str | None, log_path: str | None
    ) -> r.StageRun:
        answer = self._call("start_stage", run_id=run_id, name=name, kind=kind, cache_key=cache_key, log_path=log_path)
        stage = r.StageRun.model_validate(answer)
        self._stages[stage.id] = run_id
        return stage

    def finish_stage(
        self,
        stage_run_id: int,
        status: str,
        *,
        outputs: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        cached_from: int | None = None,
    ) -> r.StageRun:
        answer = self._call(
            "finish_stage",
            run_id=self._stages.get(stage_run_id, ""),
            stage_run_id=stage_run_id,
            status=status,
            outputs=outputs,
            error=error,
            cached_from=cached_from,
        )
        return r.StageRun.model_validate(answer)

    def list_stages(self, run_id: str) -> list[r.StageRun]:
        stages = [r.StageRun.model_validate(s) for s in self._call("list_stages", run_id=run_id)]
        self._stages.update({s.id: s.run_id for s in stages})
        return stages

    def find_cached_stage(self, cache_key: str, *, project_of: str | None = None) -> r.StageRun | None:
        if project_of is None:
            raise InvalidInput("a job looks up cached stages within its run's project only")
        answer = self._call("find_cached_stage", cache_key=cache_key, project_of=project_of)
        return r.StageRun.model_validate(answer) if answer is not None else None

    # -- metrics and artifacts
    def add_metrics(self, run_id: str, stage: str, points: Iterable[tuple[str, int, float]]) -> None:
        self._call("add_metrics", run_id=run_id, stage=stage, points=[list(p) for p in points])

    def metrics(self, run_id: str, *, stage: str | None = None) -> list[r.Metric]:
        return [r.Metric.model_validate(m) for m in self._call("metrics", run_id=run_id, stage=stage)]

    def add_artifact(
        self,
        digest: str,
        size: int,
        kind: str,
        name: str,
        uri: str,
        *,
        run_id: str | None = None,
        stage: str | None = None,
    ) -> r.Artifact:
        answer = self._call(
            "add_artifact", digest=digest, size=size, kind=kind, name=name, uri=uri, run_id=run_id, stage=stage
        )
        return r.Artifact.model_validate(answer)

    def artifacts(self, *, run_id: str | None = None, kind: str | None = None) -> list[r.Artifact]:
        if run_id is None:
            raise InvalidInput("a job lists the artifacts of one of its runs only")
        return [r.Artifact.model_validate(a) for a in self._call("artifacts", run_id=run_id, kind=kind)]

    # -- datasets and models
    def register_dataset_version(
        self,
        dataset: str,
        artifact_digest: str,
        *,
        schema: dict[str, Any],
        stats: dict[str, Any],
        class_balance: dict[str, Any],
        fingerprint: str,
        run_id: str | None,
        project: str = "default",
    ) -> r.DatasetVersion:
        answer = self._call(
            "register_dataset_version",
            dataset=dataset,
            artifact_digest=artifact_digest,
            schema=schema,
            stats=stats,
            class_balance=class_balance,
            fingerprint=fingerprint,
            run_id=run_id,
        )
        return r.DatasetVersion.model_validate(answer)

    def get_dataset_version(self, dataset_version_id: int) -> r.DatasetVersion:
        return r.DatasetVersion.model_validate(self._call("get_dataset_version", id=dataset_version_id))

    def register_model_version(
        self,
        name: str,
        *,
        onnx_digest: str | None,
        checkpoint_digest: str | None,
        run_id: str | None,
        dataset_version_id: int | None,
        metrics: dict[str, Any],
        stage: str = "none",
        project: str = "default",
    ) -> r.ModelVersion:
        answer = self._call(
            "register_model_version",
            name=name,
            onnx_digest=onnx_digest,
            checkpoint_digest=checkpoint_digest,
            run_id=run_id,
            dataset_version_id=dataset_version_id,
            metrics=metrics,
            stage=stage,
        )
        return r.ModelVersion.model_validate(answer)

    def get_model_version(self, name: str, version: int | None = None, *, project: str | None = None) -> r.ModelVersion:
        return r.ModelVersion.model_validate(self._call("get_model_version", name=name, version=version))

    def get_model_version_by_id(self, model_version_id: int) -> r.ModelVersion:
        return r.ModelVersion.model_validate(self._call("get_model_version_by_id", id=model_version_id))

    def set_model_stage(self, name: str, version: int, stage: str, *, project: str | None = None) -> r.ModelVersion:
        return r.ModelVersion.model_validate(self._call("set_model_stage", name=name, version=version, stage=stage))

    def add_lineage(self, src: tuple[str, str], dst: tuple[str, str], relation: str) -> None:
        self._call("add_lineage", src=list(src), dst=list(dst), relation=relation)

    # -- the cluster, as placement needs it
    def node_states(self) -> list[r.NodeState]:
        """The cordoned nodes only (stages are placed off them); nothing else of the cluster's holds."""
        return [r.NodeState.model_validate(s) for s in self._call("node_states")]

    def node_failed(self, node: str, reason: str, run_id: str) -> None:
        """A worker of the run died on Ray node ``node``: the server counts it (once per job and node)."""
        self._call("node_failed", node=node, reason=reason, run_id=run_id)


# Everything else of the interface is the server's alone (listing every project's records, deployments, telemetry,
# alerts, quotas): a job's process has no business with it, and says so when it is asked.
for _name in sorted(getattr(JobMetadataStore, "__abstractmethods__", ())):
    setattr(JobMetadataStore, _name, _unsupported(_name))
JobMetadataStore.__abstractmethods__ = frozenset()


class DataFiles:
    """``fetch`` of a job's ServedRoots (aidc.data.sources): its file sources, read by the server, copied to its
    scratch folder. Pickles with the connection."""

    def __init__(self, connection: JobConnection, scratch: str) -> None:
        self.connection, self.scratch = connection, scratch

    def __call__(self, raw: str) -> Path:
        return self.connection.fetch_data_file(raw, self.scratch)


class KeptByServer:
    """The JobBook of a job on its credential: the server puts the job's run and registrations in the job's project
    as it makes them, and audits how the job ended when the job says so; nothing is left to do here."""

    def assign_project(self, access: Any, kind: str, id_: str, project: str) -> None:
        return None

    def record(self, access: Any, action: str, target: str, **details: Any) -> None:
        return None
