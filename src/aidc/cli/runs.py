"""`aidc runs list|show|report`: what pipeline runs did, stage by stage, and their HTML reports."""

from __future__ import annotations

from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.text import Text

from aidc.cli.output import carbon_text, console, handles_errors, print_json, pue_text, table
from aidc.errors import InvalidInput

STATUS_STYLE = {
    "succeeded": "green",
    "failed": "bold red",
    "running": "yellow",
    "cached": "cyan",
    "pending": "dim",
    "production": "bold green",
    "staging": "yellow",
    "archived": "dim",
}


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def when(value: datetime | str | None) -> str:
    """A stored time in the reader's local zone (stores keep UTC; SQLite drops the zone)."""
    if value is None:
        return ""
    dt = datetime.fromisoformat(value) if isinstance(value, str) else value
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _print_run(details: dict[str, Any]) -> None:
    run, stages = details["run"], details["stages"]
    console.print(Text.assemble(("run ", "bold"), (run["id"], "bold"), "  ", status_text(run["status"])))
    console.print(
        f"pipeline {run['pipeline']}" + (f" ({run['spec_path']})" if run.get("spec_path") else ""), highlight=False
    )
    finished = f" · finished {when(run['finished_at'])}" if run.get("finished_at") else ""
    console.print(f"created {when(run['created_at'])}{finished}", highlight=False)
    if run.get("error"):
        err = run["error"]
        where = f" in stage {err['stage']}" if err.get("stage") else ""
        console.print(Text.assemble(("error", "bold red"), f"{where}: ", err.get("cause") or err.get("message", "")))
        if err.get("hint"):
            console.print(f"  hint: {err['hint']}", highlight=False, markup=False)
        if err.get("log_path"):
            console.print(f"  log: {err['log_path']}", highlight=False, markup=False)
    t = table("Stages", ["stage", "kind", "status", "cached from", "seconds", "error"], [])
    for s in stages:
        t.add_row(
            s["name"],
            s["kind"],
            status_text(s["status"]),
            "" if s["cached_from"] is None else str(s["cached_from"]),
            seconds_text(s["seconds"]),
            (s.get("error") or {}).get("message", ""),
        )
    console.print(t)
    metrics = details["key_metrics"]  # built with the details, so --json carries the same numbers
    if metrics:
        console.print(table("Key metrics", ["metric", "value"], [(k, f"{v:.4g}") for k, v in metrics.items()]))
    energy = details.get("energy")
    if energy and energy.get("kwh") is not None:
        flag = "measured" if energy["measured"] else "modelled"
        console.print(
            f"energy: {energy['kwh']:.4f} kWh (IT {energy['it_kwh']:.4f} kWh {flag} × {pue_text(energy)}), "
            f"{carbon_text(energy)} — {energy['basis']}",
            highlight=False,
            markup=False,
        )
    elif energy:
        console.print(f"energy: unknown — {energy['why']}", highlight=False, markup=False)
    prediction = (energy or {}).get("prediction")
    if prediction:
        console.print(prediction_text(prediction), highlight=False, markup=False)
    if run.get("report_path"):
        console.print(f"report: {run['report_path']}", highlight=False, markup=False)


def prediction_text(p: dict[str, Any]) -> str:
    """The planner's prediction of the run's training beside the measured stage, or why there is none."""
    if p.get("predicted_kwh") is None:
        return f"planner: no prediction — {p['why']}"
    measured = (
        f"measured {p['measured_kwh']:.3g} kWh in {p['measured_seconds']:.3g} s"
        f" (× {p['measured_over_predicted']:g} the prediction)"
        if p.get("measured_kwh") is not None
        else f"measured {p['measured_seconds']:.3g} s, no power readings over it"
    )
    return (
        f"planner: stage {p['stage']}'s training predicted {p['predicted_kwh']:.3g} kWh in "
        f"{p['predicted_seconds']:.3g} s, {measured} — {p['basis']}"
    )


def register(app: typer.Typer) -> None:
    runs = typer.Typer(help="Pipeline runs: list them, show one, write its HTML report.", no_args_is_help=True)
    app.add_typer(runs, name="runs")

    @runs.command("list")
    @handles_errors
    def list_(
        pipeline: str = typer.Option(None, "--pipeline", "-p", help="Only runs of this pipeline."),
        status: str = typer.Option(
            None, "--status", "-s", help="Only runs in this state (running, succeeded, failed)."
        ),
        limit: int = typer.Option(50, "--limit", "-n", min=1, help="At most this many, newest first."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """List pipeline runs, newest first."""
        from aidc.cli.connect import open_client
        from aidc.store.metadata.base import RUN_STATES

        if status is not None and status not in RUN_STATES:
            raise InvalidInput(f"unknown run status {status!r}", hint=f"use one of {', '.join(RUN_STATES)}")
        with closing(open_client()) as client:
            found = client.list_runs(pipeline=pipeline, status=status, limit=limit)
        if as_json:
            print_json(found)
            return
        t = table(f"{len(found)} runs", ["run", "pipeline", "status", "created", "duration", "report"], [])
        for r in found:
            t.add_row(
                r["id"],
                r["pipeline"],
                status_text(r["status"]),
                when(r["created_at"]),
                seconds_text(r["seconds"]),
                r["report_path"] or "",
            )
        console.print(t)

    @runs.command("show")
    @handles_errors
    def show(
        run_id: str = typer.Argument(..., metavar="RUN", help="Run id (or a unique prefix of it)."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Show a run: its stages, key metrics, error and report."""
        from aidc.cli.connect import open_client

        with closing(open_client()) as client:
            details = client.run_details(run_id)  # a unique prefix is enough
        if as_json:
            print_json(details)
        else:
            _print_run(details)

    @runs.command("report")
    @handles_errors
    def report(
        run_id: str = typer.Argument(..., metavar="RUN", help="Run id (or a unique prefix of it)."),
        output: Path = typer.Option(None, "--output", "-o", help="Where to write the HTML (default: under AIDC_HOME)."),
    ) -> None:
        """Write the run's self-contained HTML report and print its path (through a server: rendered there,
        saved here)."""
        from aidc.cli.connect import open_client

        with closing(open_client()) as client:
            path = client.run_report(run_id, output)  # filed under the full id
        console.print(str(path), highlight=False, markup=False, soft_wrap=True)
