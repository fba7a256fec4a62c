"""`aidc doctor`: what a newcomer runs first — is this host ready (Python, torch, Ray, GPU, stores, disk)?"""

from __future__ import annotations

import typer
from rich.text import Text

from aidc.cli.output import console, handles_errors, print_json, table

_MARK = {"ok": ("✓ ok", "green"), "warn": ("! warn", "yellow"), "fail": ("✗ fail", "bold red")}


def register(app: typer.Typer) -> None:
    @app.command("doctor")
    @handles_errors
    def doctor(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """Check this host and aidc's stores (through a server: the server and who you are); exit 1 if any check
        fails."""
        from contextlib import closing

        from aidc.cli.connect import open_client

        with closing(open_client()) as client:
            checks = client.doctor()
        if as_json:
            print_json(checks)
        else:
            t = table("aidc doctor", ["check", "status", "detail"], [])
            for c in checks:
                t.add_row(c["name"], Text(*_MARK[c["status"]]), c["detail"])
            console.print(t)
            for c in checks:
                if c["status"] != "ok" and c["hint"]:
                    console.print(Text.assemble((f"{c['name']}: ", _MARK[c["status"]][1]), c["hint"]))
        if any(c["status"] == "fail" for c in checks):
            raise typer.Exit(1)
