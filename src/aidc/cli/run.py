"""`aidc run`: a pipeline end to end, watched live — stages, epochs, batches — and summed up in one table."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from aidc.cli.output import console, err_console, handles_errors, print_json, table
from aidc.errors import StageFailed
from aidc.pipeline.runner import RunObserver

if TYPE_CHECKING:
    from aidc.pipeline.runner import RunResult
    from aidc.pipeline.spec import Pipeline
    from aidc.store.metadata.records import StageRun


class StageSpinner(SpinnerColumn):
    """Spins only for work under way: blank for stages still waiting and for tasks already stopped."""

    def render(self, task: Task) -> RenderableType:
        return Text(" ") if not task.started or task.stop_time is not None else super().render(task)


MARKS = {"succeeded": "[green]✓ done[/]", "cached": "[cyan]↺ cached[/]", "failed": "[red]✗ failed[/]"}


class LiveRun(RunObserver):
    """One progress row per stage, with rows for its tasks (epochs, batches, export, deploy) beneath it."""

    def __init__(self, out: Console) -> None:
        self.progress = Progress(
            StageSpinner(finished_text=" "),
            TextColumn("{task.fields[stage]:<10}"),
            TextColumn("{task.description:<22}"),
            BarColumn(bar_width=28),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TextColumn("[dim]{task.fields[note]}"),
            console=out,
            transient=False,
        )
        self.stage_rows: dict[str, TaskID] = {}
        self.task_rows: dict[tuple[str, str], TaskID] = {}
        self.run_id: str | None = None

    def __enter__(self) -> LiveRun:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def run_started(self, run_id: str, pipeline: Pipeline, resumed: bool) -> None:
        self.run_id = run_id
        verb = "resuming" if resumed else "running"
        self.progress.console.print(f"[bold]{verb} {pipeline.name}[/] · run [bold]{run_id}[/]", highlight=False)
        for name in pipeline.stages:
            self.stage_rows[name] = self.progress.add_task("[dim]pending", total=1, start=False, stage=name, note="")

    def stage_started(self, name: str, kind: str) -> None:
        row = self.stage_rows[name]
        self.progress.start_task(row)
        self.progress.update(row, description=f"running {kind}", total=None)

    def stage_event(self, event: dict[str, Any]) -> None:
        if event["type"] == "log":
            self.progress.console.print(f"  [dim]{event['stage']}: {event['message']}[/]", highlight=False)
        elif event["type"] == "progress":
            key = (event["stage"], event["task"])
            note = "  ".join(
                f"{k} {v}" for k, v in event.items() if k not in {"stage", "type", "task", "completed", "total"}
            )
            if key not in self.task_rows:
                self.task_rows[key] = self.progress.add_task(
                    f"  └ {event['task']}", total=event.get("total"), stage="", note=note
                )
            self.progress.update(self.task_rows[key], completed=event["completed"], total=event.get("total"), note=note)

    def stage_finished(self, stage: StageRun) -> None:
        row = self.stage_rows.get(stage.name)
        if row is None:
            return
        note = "result reused" if stage.status == "cached" else ""
        if stage.status == "failed":
            note = (stage.error or {}).get("cause") or (stage.error or {}).get("message", "")
        self.progress.start_task(row)
        self.progress.update(row, description=MARKS.get(stage.status, stage.status), total=1, completed=1, note=note)
        self.progress.stop_task(row)
        for (owner, _), sub in self.task_rows.items():
            if owner == stage.name:
                self.progress.stop_task(sub)


def _shown(value: Any) -> Any:
    return f"{value:.4g}" if isinstance(value, float) else value


def _mark(label: Any, predicted: Any) -> str:
    """Right or wrong, for a class; for a regression's number, how far off."""
    if isinstance(predicted, float):
        return f"{predicted - label:+.3g}"
    return "✓" if label == predicted else "✗"


def summary(result: RunResult) -> None:
    out = result.outputs
    metrics = out.get("evaluate", {}).get("metrics", {})
    onnx = out.get("export", {}).get("onnx", {})
    model = out.get("register", {}).get("model", {})
    deploy = out.get("deploy", {})
    endpoint = (deploy.get("deployment") or {}).get("url")
    served = {d["url"] for d in result.serving}
    rows: list[tuple[str, Any]] = [("run", result.run_id), ("status", result.status)]
    if "accuracy" in metrics:
        rows += [("test accuracy", f"{metrics['accuracy']:.4f}"), ("macro F1", f"{metrics['macro_f1']:.4f}")]
    elif "mae" in metrics:  # a regression
        rows += [("test MAE", f"{metrics['mae']:.4g}"), ("test R²", f"{metrics['r2']:.4f}")]
    if "perplexity" in metrics:  # a language model (evaluate_lm)
        rows.append(("held-out perplexity", f"{metrics['perplexity']:.2f}"))
    trained = out.get("train", {}).get("summary", {})
    if "tokens_per_s" in trained:
        mfu = f", MFU {trained['mfu']:.1%}" if trained.get("mfu") is not None else ""
        rows.append(("training", f"{trained['tokens_per_s']:.0f} tokens/s{mfu}"))
    if onnx:
        rows.append(("model size", f"{onnx['size'] / 1024:.0f} KiB ONNX"))
    elif "export" in out:
        reason = (out["export"].get("parity") or {}).get("reason", "")
        rows.append(("ONNX", f"not exported ({reason}); not served"))
    if model:
        rows.append(("model version", f"{model['ref']} ({model['stage']})"))
    if endpoint:
        state = "serving" if endpoint in served else "stopped (run with --serve to keep it up)"
        rows.append(("deployment", f"{deploy['deployment'].get('name')} at {endpoint}  {state}"))
    if result.report_path:
        rows.append(("report", result.report_path))
    grid = Table(title="Run summary", title_justify="left", show_header=False)
    grid.add_column(style="bold")
    grid.add_column()
    for key, value in rows:
        grid.add_row(key, str(value))
    console.print(grid)
    sample = deploy.get("checks", {}).get("sample", [])
    if sample and "prompt" in sample[0]:  # a language model's: greedy text live beside offline
        console.print(
            table(
                f"Live generations from {endpoint}",
                ["prompt", "live (greedy)", ""],
                [(repr(s["prompt"]), repr(s["live"]), "✓" if s["live"] == s["offline"] else "✗") for s in sample],
            )
        )
    elif sample:
        console.print(
            table(
                f"Live predictions from {endpoint}",
                ["true label", "predicted", ""],
                [(s["label"], _shown(s["predicted"]), _mark(s["label"], s["predicted"])) for s in sample],
            )
        )
    for d in result.serving:
        console.print(
            f"[green]serving[/] deployment {d['name']} at {d['url']}; try: curl {d['url']}/v2/models/"
            f"{d['name']} · `aidc deployments show {d['name']}` · stop: `aidc deployments delete {d['name']}`",
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    @app.command()
    @handles_errors
    def run(
        pipeline: Path | None = typer.Argument(None, help="Pipeline YAML, e.g. examples/digits/pipeline.yaml."),
        resume: str | None = typer.Option(
            None,
            "--resume",
            metavar="RUN",
            help="Continue a failed or interrupted run from its first unfinished stage.",
        ),
        force: bool = typer.Option(False, "--force", help="Re-run every stage instead of reusing cached results."),
        serve: bool = typer.Option(
            False,
            "--serve",
            help="Keep the deploy stage's deployment running after the run (else it is checked, then taken down).",
        ),
        as_json: bool = typer.Option(False, "--json", help="No live display; print the run's result as JSON."),
    ) -> None:
        """Run a pipeline: data → train → evaluate → export → register → deploy (on this machine)."""
        from aidc.client.credentials import server_of
        from aidc.errors import InvalidInput
        from aidc.platform import Platform
        from aidc.security.roles import local_access

        server = server_of()
        if server:  # a run on a server is a job, with a queue and quotas: not this command
            raise InvalidInput(
                f"`aidc run` runs pipelines on this machine, but commands go to the server {server}",
                hint="submit it there with `aidc jobs submit PIPELINE`; to run here, unset AIDC_SERVER "
                "(or `aidc logout`)",
            )
        platform = Platform()
        access = local_access()
        live = LiveRun(console)
        try:
            if as_json:
                result = platform.runs.run_pipeline(access, pipeline, resume=resume, force=force, serve=serve)
            else:
                with live:
                    result = platform.runs.run_pipeline(
                        access, pipeline, resume=resume, force=force, serve=serve, observer=live
                    )
        except StageFailed as exc:
            if as_json:
                print_json(
                    {
                        "status": "failed",
                        "error": exc.to_dict(),
                    }
                )
            else:
                failed(exc, platform.runs.run_details(access, exc.run_id)["run"])
            raise SystemExit(exc.exit_code) from None
        except KeyboardInterrupt:
            if live.run_id:
                err_console.print(
                    f"[yellow]run {live.run_id} interrupted[/]; continue it with aidc run --resume {live.run_id}",
                    highlight=False,
                )
            raise SystemExit(130) from None
        finally:
            platform.close()
        if as_json:
            print_json(
                {
                    "run_id": result.run_id,
                    "status": result.status,
                    "report": result.report_path,
                    "stages": [{"name": s.name, "status": s.status, "seconds": s.seconds} for s in result.stages],
                    "outputs": result.outputs,
                    "serving": result.serving,
                }
            )
        else:
            summary(result)


def failed(exc: StageFailed, run: dict[str, Any]) -> None:
    """A failed run in four lines: which stage, why, where to look, how to go on."""
    err_console.print(
        f"[bold red]run {exc.run_id} failed[/] at stage [bold]{exc.stage}[/]: {exc.message}", highlight=False
    )
    if exc.where:
        err_console.print(f"  where:  {exc.where}", highlight=False)
    if exc.log_path:
        err_console.print(f"  log:    {exc.log_path}", highlight=False)
    if run.get("report_path"):
        err_console.print(f"  report: {run['report_path']}", highlight=False)
    err_console.print(f"  fix:    {exc.hint or 'see the log'}", highlight=False)
    err_console.print(f"  resume: aidc run --resume {exc.run_id}", highlight=False)
