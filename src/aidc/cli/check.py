"""`aidc check facility.yaml`: judge a facility spec against the standards and say what to change."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer
from rich.text import Text

from aidc.cli.output import console, emit_text, handles_errors, table
from aidc.errors import InvalidInput

_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "info": "blue"}


class Format(str, Enum):
    table = "table"
    json = "json"
    markdown = "markdown"
    html = "html"
    sarif = "sarif"


class FailOn(str, Enum):
    error = "error"
    warning = "warning"


def _print_rules() -> None:
    from aidc.standards.checker import catalog

    rules = sorted(catalog(), key=lambda r: (r.family, r.id))
    console.print(
        table(
            f"{len(rules)} rules",
            ["id", "family", "severity", "title", "citation"],
            [(r.id, r.family, r.severity, r.title, r.citation()) for r in rules],
        )
    )


def _print_table(report: object) -> None:
    from aidc.standards.checker import Report
    from aidc.standards.report import _derived_lines
    from aidc.standards.rule import fmt

    assert isinstance(report, Report)
    c = report.counts
    console.print(
        f"[bold]{report.facility.name}[/]  "
        f"[green]{c['pass']} pass[/] · [yellow]{c['warn']} warn[/] · [red]{c['fail']} fail[/]"
    )
    console.print(
        table(
            "Ratings achieved",
            ["standard", "subsystems", "overall"],
            [
                (std, ", ".join(f"{k} {v}" for k, v in lv.items() if k != "overall"), lv["overall"])
                for std, lv in report.ratings.items()
            ],
        )
    )
    for family, findings in report.by_family().items():
        t = table(family.capitalize(), ["", "rule", "subject", "measured", "required"], [])
        for f in findings:
            t.add_row(
                Text(f.status, style=_STYLE[f.status]),
                Text(f.rule.id, style="bold"),
                f.subject,
                fmt(f.measured),
                fmt(f.expected),
            )
        console.print(t)
        for f in findings:
            if f.status != "pass":
                where = f" {f.line}:{f.col}" if f.line else ""
                console.print(
                    Text.assemble(
                        (f"  {f.rule.id}", _STYLE[f.status]), f"{where} {f.rule.title} — ", (f.citation, "dim")
                    )
                )
                console.print(f"    → {f.rule.remediation}", highlight=False, markup=False)
    console.print(table("Derived quantities", ["quantity", "value"], _derived_lines(report)))


def register(app: typer.Typer) -> None:
    @app.command("check")
    @handles_errors
    def check(
        spec: Path = typer.Argument(None, help="Facility spec (YAML).", show_default=False),
        target: list[str] = typer.Option(
            [], "--target", "-t", help="Override a target, NAME:VALUE (uptime:III, tia942:3, ashrae:A2)."
        ),
        fmt_: Format = typer.Option(Format.table, "--format", "-f", help="Output format."),
        as_json: bool = typer.Option(False, "--json", help="Same as --format json."),
        output: Path = typer.Option(None, "--output", "-o", help="Write the report to a file instead of stdout."),
        fail_on: FailOn = typer.Option(
            FailOn.error, "--fail-on", help="Exit 1 when a finding at or above this severity fails."
        ),
        disable: list[str] = typer.Option([], "--disable", help="Rule id to skip (repeatable)."),
        list_rules: bool = typer.Option(False, "--list-rules", help="List the rule catalog and exit."),
    ) -> None:
        """Check a facility against Uptime, TIA-942, EN 50600, GB 50174, ASHRAE, ISO 30134 and MLPS rules."""
        if list_rules:
            _print_rules()
            return
        if spec is None:
            raise InvalidInput(
                "give a facility spec to check", hint="aidc check examples/facilities/dgx-h100-tier3.yaml"
            )
        from aidc.facility.loader import load_facility
        from aidc.standards import report as render
        from aidc.standards.checker import parse_targets, run_check

        overrides = parse_targets(target)
        facility = load_facility(spec)
        report = run_check(facility, overrides, disable)
        kind = Format.json if as_json else fmt_
        if kind is Format.table and output is None:
            _print_table(report)
        else:
            text = {
                Format.json: render.render_json,
                Format.markdown: render.render_markdown,
                Format.html: render.render_html,
                Format.sarif: render.render_sarif,
                Format.table: render.render_markdown,
            }[kind](report)
            emit_text(text, output)
        if report.failing(fail_on.value):
            raise typer.Exit(1)
