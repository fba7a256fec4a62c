"""`aidc plan workload.yaml`: size GPUs, layout, fabric, storage, power, energy and cost for a workload.

Exit codes: 0 feasible, 1 infeasible (the verdict names the binding constraint and the nearest feasible
alternative), 2 malformed workload (file:line:col and field path).
"""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path

import typer

from aidc.cli.output import console, emit_text, handles_errors, print_json, say_wrote, table


class Format(str, Enum):
    table = "table"
    json = "json"
    markdown = "markdown"
    html = "html"


def _catalog_files() -> list[str]:
    from aidc.settings import Settings

    return [p for p in Settings().catalog.split(os.pathsep) if p]


def register(app: typer.Typer) -> None:
    @app.command("plan")
    @handles_errors
    def plan(
        workload: Path = typer.Argument(..., help="Workload spec (YAML): training jobs, inference services, facility."),
        fmt_: Format = typer.Option(Format.table, "--format", "-f", help="Output format."),
        as_json: bool = typer.Option(False, "--json", help="Same as --format json."),
        output: Path = typer.Option(None, "--output", "-o", help="Write the report to a file instead of stdout."),
        emit_facility: Path = typer.Option(
            None, "--emit-facility", help="Also write a facility spec that `aidc check` passes at the tier."
        ),
    ) -> None:
        """Plan the GPUs, layout, iteration time, fabric, storage, racks, kW, MWh, cost and CO2e of a workload."""
        from aidc.planner import report as render
        from aidc.planner.plan import plan_file

        result = plan_file(workload, _catalog_files())
        kind = Format.json if as_json else fmt_
        if kind is Format.json and output is None:
            print_json(result.to_dict())
        elif kind is Format.table and output is None:
            for title, rows in render.sections(result):
                console.print(table(title, ["item", "value"], rows))
            style = "green" if result.feasible else "bold red"
            console.print(f"[{style}]{result.verdict}[/]", highlight=False)
            for what, binding, alt in result.problems:
                console.print(f"  {what}: binding constraint: {binding}", highlight=False, markup=False)
                console.print(f"  → nearest feasible: {alt or '—'}", highlight=False, markup=False)
        else:
            import json

            text = {
                Format.json: lambda p: json.dumps(p.to_dict(), indent=2, default=str),
                Format.markdown: render.markdown,
                Format.html: render.html_report,
                Format.table: render.markdown,
            }[kind](result)
            emit_text(text, output)
        if emit_facility is not None:
            from aidc.planner.emit import write_facility

            write_facility(result, emit_facility)
            say_wrote(emit_facility)
        if not result.feasible:
            raise typer.Exit(1)
