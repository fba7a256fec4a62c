"""`aidc audit list|verify|export|prune`: the hash-chained audit log of changes and denied requests."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.text import Text

from aidc.cli.output import console, err_console, handles_errors, print_json, say_wrote, table
from aidc.cli.runs import when

TIME_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]
RESULT_STYLE = {"ok": "green", "failed": "yellow", "denied": "bold red"}


def _local(at: datetime | None) -> datetime | None:
    """A time typed on the command line is the reader's local time."""
    return at.astimezone() if at is not None else None


def register(app: typer.Typer) -> None:
    audit = typer.Typer(help="The audit log: list, verify the hash chain, export as JSON lines.", no_args_is_help=True)
    app.add_typer(audit, name="audit")

    @audit.command("list")
    @handles_errors
    def list_(
        actor: str = typer.Option(None, "--actor", help="Only this principal (e.g. admin, anonymous, local:root)."),
        action: str = typer.Option(None, "--action", help="Only actions starting with this (token., role.grant, GET)."),
        result: str = typer.Option(None, "--result", help="ok, failed or denied."),
        project: str = typer.Option(None, "--project", help="Only entries about this project."),
        since: datetime = typer.Option(None, "--since", formats=TIME_FORMATS, help="From this local time on."),
        until: datetime = typer.Option(None, "--until", formats=TIME_FORMATS, help="Before this local time."),
        limit: int = typer.Option(100, "--limit", min=1, max=10000, help="At most this many, newest first."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """List audit entries, newest first: when, who, what, on what, from where, result."""
        from aidc.cli.connect import open_client

        found = open_client().audit_list(
            actor=actor,
            action=action,
            result=result,
            project=project,
            since=_local(since),
            until=_local(until),
            limit=limit,
        )
        if as_json:
            print_json(found)
            return
        t = table(
            f"{len(found)} audit entries", ["seq", "when", "actor", "action", "target", "project", "from", "result"], []
        )
        for e in found:
            t.add_row(
                str(e["seq"]),
                when(e["at"]),
                e["actor"],
                e["action"],
                e["target"],
                e["project"] or "",
                e["source"],
                Text(e["result"], style=RESULT_STYLE.get(e["result"], "")),
            )
        console.print(t)

    @audit.command("verify")
    @handles_errors
    def verify(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """Recompute the hash chain; exit 1 naming the first modified, deleted or moved entry."""
        from aidc.cli.connect import open_client

        report: dict[str, Any] = open_client().audit_verify()
        if as_json:
            print_json(report)
        elif report["ok"]:
            console.print(
                Text.assemble(
                    ("audit chain ok", "bold green"),
                    f": {report['checked']} entries, {report['first_seq']}–{report['head_seq']}; "
                    f"head {report['head_hash']}",
                )
            )
        else:
            err_console.print(
                Text.assemble(("audit chain broken", "bold red"), f" at entry {report['bad_seq']}: {report['problem']}")
            )
        if not report["ok"]:
            raise SystemExit(1)

    @audit.command("export")
    @handles_errors
    def export(output: Path = typer.Option(None, "--output", "-o", help="Write here instead of stdout.")) -> None:
        """Every entry as JSON lines, oldest first, with its hashes — for a SIEM."""
        from aidc.cli.connect import open_client

        out = output.open("w", encoding="utf-8") if output else sys.stdout
        count = 0
        try:
            for entry in open_client().audit_export():
                out.write(json.dumps(entry, sort_keys=True) + "\n")
                count += 1
        finally:
            if output:
                out.close()
        if output:
            say_wrote(output, f"{count} entries to ")

    @audit.command("prune")
    @handles_errors
    def prune() -> None:
        """Delete entries older than the retention (AIDC_AUDIT_RETENTION_DAYS, default 180), keeping the chain
        verifiable (the server does this daily)."""
        from aidc.cli.connect import open_client

        entry = open_client().audit_prune()
        if entry is None:
            console.print("nothing older than the retention period")
        else:
            d = entry["details"]
            console.print(
                f"pruned {d['deleted']} entries (through {d['through_seq']}); recorded as entry {entry['seq']}",
                highlight=False,
            )
