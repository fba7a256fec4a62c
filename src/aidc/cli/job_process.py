"""The entry point of one job's process (`python -m aidc.cli.job_process JOB_ID`), started by the server's scheduler.

The scheduler hands the job, on stdin, the server's URL and the job's own credential: the job's metadata and
artifacts are then the server's job routes (aidc.client.job_stores), in its project only. Started with nothing on
stdin it opens the stores its settings name itself (a job of a server that gives no credentials).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def read_handover() -> dict[str, Any] | None:
    """What the launcher wrote on stdin (one JSON line), or None when there is nothing."""
    if sys.stdin is None or sys.stdin.closed:
        return None
    try:
        line = sys.stdin.readline()
    except (OSError, ValueError):
        return None
    if not line.strip():
        return None
    handover: dict[str, Any] = json.loads(line)
    return handover


def main(job_id: str) -> int:
    handover = read_handover()
    if handover is not None:
        return on_credential(job_id, handover)
    from aidc.jobs.worker import run_job
    from aidc.platform import Platform

    platform = Platform()
    try:
        runs = platform.runs
        return run_job(
            job_id,
            platform.metadata,
            platform.security,
            lambda access, observer, project: runs.runner(access, observer, project=project),
        )
    finally:
        platform.close()


def on_credential(job_id: str, handover: dict[str, Any]) -> int:
    """Run the job with its stores through the server: no database, no key, no other project in reach."""
    from aidc.client.job_stores import DataFiles, JobArtifactStore, JobConnection, JobMetadataStore, KeptByServer
    from aidc.data.sources import ServedRoots
    from aidc.jobs.worker import run_job
    from aidc.pipeline.runner import PipelineRunner
    from aidc.serving.deploy import NoDeployments
    from aidc.settings import Settings

    settings = Settings()
    ca_file = ""
    if handover.get("ca_pem"):
        ca = Path.cwd() / "server-ca.pem"
        ca.write_text(handover["ca_pem"])
        ca_file = str(ca)
    connection = JobConnection(handover["server"], job_id, handover["token"], ca_file=ca_file)
    store = JobMetadataStore(connection)  # type: ignore[abstract]  # (the rest of the interface refuses)
    artifacts = JobArtifactStore(connection)
    roots: tuple[str, ...] = tuple(handover.get("data_roots") or ())
    if handover.get("served_files"):
        roots = ServedRoots(roots, DataFiles(connection, str(settings.home)))

    def no_deployments(run_id: str, serve: bool, project: str) -> NoDeployments:
        return NoDeployments(
            "a job's process holds no serving rights",
            f"deploy what the job registered once it ends: aidc deploy NAME:VERSION --project {project}",
        )

    return run_job(
        job_id,
        store,
        KeptByServer(),
        lambda access, observer, project: PipelineRunner(
            store,
            artifacts,
            settings,
            deployments=no_deployments,
            observer=observer,
            data_roots=roots,
            project=project,
            report=False,  # drawn by the server on request (`aidc runs report`)
            node_failed=store.node_failed,
        ),
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
