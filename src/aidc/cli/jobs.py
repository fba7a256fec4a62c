"""`aidc jobs submit|list|show|cancel`, `aidc quotas show|set` and `aidc logs [-f] JOB`: the server's job queue."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

import typer

from aidc.cli.output import console, err_console, handles_errors, print_json, table
from aidc.cli.runs import when

NO_LIMIT = -1  # what `aidc quotas set` takes for "remove this limit"


def _resources(job: dict[str, Any]) -> str:
    text = f"{job['workers']} × {job['cpus']:g} CPU"
    return text + (f" {job['gpus']:g} GPU" if job["gpus"] else "")


def _limit(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


def register(app: typer.Typer) -> None:
    jobs = typer.Typer(help="Pipelines queued on the server: submit, list, show, cancel.", no_args_is_help=True)
    quotas = typer.Typer(
        help="Per-project limits on the job queue: GPUs, CPUs, jobs at once, GPU-hours a month.", no_args_is_help=True
    )
    app.add_typer(jobs, name="jobs")
    app.add_typer(quotas, name="quotas")

    @jobs.command("submit")
    @handles_errors
    def submit(
        pipeline: Path = typer.Argument(..., help="Pipeline YAML file (as for `aidc run`)."),
        project: str = typer.Option("default", "--project", "-p", help="Project the job (and its run) belong to."),
        priority: int = typer.Option(0, "--priority", help="Higher runs first and may preempt lower-priority jobs."),
        cpus: float = typer.Option(None, "--cpus", help="CPUs per worker (default 1)."),
        gpus: float = typer.Option(None, "--gpus", help="GPUs per worker (default 0)."),
        workers: int = typer.Option(None, "--workers", min=1, help="Gang size (default: the train stage's workers)."),
        key: str = typer.Option(
            None,
            "--idempotency-key",
            help="Reuse to make a retry return the same job (default: a new one per invocation).",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Queue a pipeline on the server; it starts when its project's quota and the cluster allow."""
        from aidc.cli.connect import open_client
        from aidc.errors import NotFound
        from aidc.pipeline.spec import load_pipeline

        if not pipeline.is_file():
            raise NotFound(f"no such file: {pipeline}", hint="give the path of a pipeline YAML file")
        load_pipeline(pipeline)  # its line:col errors here, before anything is queued
        job = open_client().submit_job(
            pipeline.read_text(encoding="utf-8"),
            path_name=pipeline.name,
            project=project,
            priority=priority,
            cpus=cpus,
            gpus=gpus,
            workers=workers,
            idempotency_key=key or str(uuid.uuid4()),
        )
        if as_json:
            print_json(job)
            return
        console.print(
            f"job [bold]{job['id']}[/] {job['state']} in project {job['project']} "
            f"(priority {job['priority']}, {_resources(job)}); follow it: aidc logs -f {job['id']}",
            highlight=False,
        )

    @jobs.command("list")
    @handles_errors
    def list_(
        project: str = typer.Option(None, "--project", "-p", help="Only this project's jobs."),
        state: str = typer.Option(None, "--state", help="queued, running, preempted, succeeded, failed or cancelled."),
        limit: int = typer.Option(50, "--limit", min=1, max=1000),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Jobs you may see, newest first, with why each waiting one waits."""
        from aidc.cli.connect import open_client

        found = open_client().list_jobs(project=project, state=state, limit=limit)
        if as_json:
            print_json(found)
            return
        console.print(
            table(
                None,
                ["job", "project", "pipeline", "state", "prio", "resources", "run", "submitted", "note"],
                [
                    (
                        j["id"],
                        j["project"],
                        j["pipeline"],
                        j["state"],
                        j["priority"],
                        _resources(j),
                        j["run_id"],
                        when(j["created_at"]),
                        j["reason"] or "",
                    )
                    for j in found
                ],
            )
        )

    @jobs.command("show")
    @handles_errors
    def show(
        job_id: str = typer.Argument(..., help="Job id (a unique prefix is enough), or its run's id."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON (with the pipeline spec)."),
    ) -> None:
        """One job: state, resources, attempts, run, last error."""
        from aidc.cli.connect import open_client

        job = open_client().show_job(job_id)
        if as_json:
            print_json(job)
            return
        rows = [
            ("state", job["state"]),
            ("project", job["project"]),
            ("submitter", job["submitter"]),
            ("pipeline", f"{job['pipeline']} ({job['path_name']})"),
            ("priority", job["priority"]),
            ("resources", _resources(job)),
            ("attempts", job["attempts"]),
            ("run", job["run_id"]),
            ("submitted", when(job["created_at"])),
            ("started", when(job["started_at"])),
            ("finished", when(job["finished_at"])),
            ("note", job["reason"]),
            ("last error", (job["last_error"] or {}).get("message")),
        ]
        console.print(table(f"job {job['id']}", ["", ""], rows))

    @jobs.command("cancel")
    @handles_errors
    def cancel(
        job_id: str = typer.Argument(..., help="Job id."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Cancel a queued or running job (a running one is stopped; its run can still be resumed by hand)."""
        from aidc.cli.connect import open_client

        job = open_client().cancel_job(job_id)
        if as_json:
            print_json(job)
            return
        console.print(f"job {job['id']} {job['state']}", highlight=False)

    @app.command("logs")
    @handles_errors
    def logs(
        job_id: str = typer.Argument(..., help="Job id, or the id of the run a job started."),
        follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing until the job ends."),
    ) -> None:
        """Print a job's log (its process's output: stages, progress, errors)."""
        from aidc.cli.connect import open_client

        for chunk in open_client().job_logs(job_id, follow=follow):
            sys.stdout.write(chunk)
            sys.stdout.flush()

    @quotas.command("show")
    @handles_errors
    def quotas_show(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """Each project's use against its limits (— = no limit): in use now / limit."""
        from aidc.cli.connect import open_client

        found = open_client().list_quotas()
        if as_json:
            print_json(found)
            return
        console.print(
            table(
                None,
                ["project", "GPUs", "CPUs", "jobs running", "GPU-h used/month"],
                [
                    (
                        q["project"],
                        f"{q['gpus_in_use']:g}/{_limit(q['max_gpus'])}",
                        f"{q['cpus_in_use']:g}/{_limit(q['max_cpus'])}",
                        f"{q['running_jobs']}/{_limit(q['max_jobs'])}",
                        f"{q['gpu_hours_this_month']:g}/{_limit(q['gpu_hours_per_month'])}",
                    )
                    for q in found
                ],
            )
        )

    @quotas.command("set")
    @handles_errors
    def quotas_set(
        project: str = typer.Argument(..., help="Project name."),
        max_gpus: float = typer.Option(None, "--max-gpus", help="GPUs its jobs may hold at once (-1: no limit)."),
        max_cpus: float = typer.Option(None, "--max-cpus", help="CPUs its jobs may hold at once (-1: no limit)."),
        max_jobs: int = typer.Option(None, "--max-jobs", help="Jobs it may run at once (-1: no limit)."),
        gpu_hours: float = typer.Option(
            None, "--gpu-hours-per-month", help="GPU-hours a calendar month (-1: no limit)."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Set a project's limits (admins on every project); options left out stay as they are."""
        from aidc.cli.connect import open_client

        given = {"max_gpus": max_gpus, "max_cpus": max_cpus, "max_jobs": max_jobs, "gpu_hours_per_month": gpu_hours}
        limits = {k: (None if v == NO_LIMIT else v) for k, v in given.items() if v is not None}
        if not limits:
            err_console.print("nothing to change: give --max-gpus, --max-cpus, --max-jobs or --gpu-hours-per-month")
            raise typer.Exit(2)
        quota = open_client().set_quota(project, **limits)
        if as_json:
            print_json(quota)
            return
        console.print(
            f"quota of {project}: GPUs {_limit(quota['max_gpus'])}, CPUs {_limit(quota['max_cpus'])}, "
            f"jobs {_limit(quota['max_jobs'])}, GPU-hours/month {_limit(quota['gpu_hours_per_month'])}",
            highlight=False,
        )
