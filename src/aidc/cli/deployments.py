"""`aidc deployments list|show|scale|promote|rollback|delete`: the deployments serving models, and changes to them."""

from __future__ import annotations

from contextlib import closing
from datetime import UTC, datetime
from typing import Any

import typer

from aidc.cli.deploy import print_deployment, status_text
from aidc.cli.output import console, handles_errors, print_json, table

NAME = typer.Argument(..., metavar="DEPLOYMENT", help="Deployment name.")
JSON = typer.Option(False, "--json", help="Print JSON.")
PROJECT = typer.Option(None, "--project", help="The deployment's project, when its name is in more than one you see.")


def _local(stamp: str) -> str:
    """A stored (UTC) time in the reader's zone."""
    dt = datetime.fromisoformat(stamp)
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _change(verb: str, name: str, project: str | None, as_json: bool, *args: Any) -> None:
    from aidc.cli.connect import open_client

    with closing(open_client()) as client, console.status(f"{verb} {name}…"):
        d = client.change_deployment(verb, name, *args, project=project)
    if as_json:
        print_json(d)
    else:
        print_deployment(d)


def register(app: typer.Typer) -> None:
    deployments = typer.Typer(
        help="Deployments: list, show, scale, promote or roll back a canary, delete.", no_args_is_help=True
    )
    app.add_typer(deployments, name="deployments")

    @deployments.command("list")
    @handles_errors
    def list_(
        all_: bool = typer.Option(False, "--all", "-a", help="Include stopped deployments."), as_json: bool = JSON
    ) -> None:
        """List deployments: what each serves, how many replicas are ready, its URL."""
        from aidc.cli.connect import open_client

        with closing(open_client()) as client:
            found = client.list_deployments(include_stopped=all_)
        if as_json:
            print_json(found)
            return
        t = table(f"{len(found)} deployments", ["name", "status", "stable", "canary", "ready", "url"], [])
        for d in found:
            canary = f"{d['canary']} ({d['canary_percent']:g}%)" if d["canary"] else ""
            ready = f"{d['ready']}/{d['replicas']}" + ("" if d["live"] or d["status"] == "stopped" else " (down)")
            t.add_row(d["name"], status_text(d["status"]), d["stable"], canary, ready, d["url"])
        console.print(t)

    @deployments.command("show")
    @handles_errors
    def show(name: str = NAME, project: str | None = PROJECT, as_json: bool = JSON) -> None:
        """Show a deployment: versions, replicas, traffic per version and what happened to it."""
        from aidc.cli.connect import open_client

        with closing(open_client()) as client:
            d = client.show_deployment(name, project=project)
        if as_json:
            print_json(d)
            return
        print_deployment(d)
        traffic = d.get("traffic") or {}
        if traffic:
            console.print(
                table(
                    "Traffic since the versions last changed",
                    ["version", "requests", "errors", "p95 ms"],
                    [
                        (v, s["requests"], s["errors"], "" if s["p95_ms"] is None else f"{s['p95_ms']:.2f}")
                        for v, s in traffic.items()
                    ],
                )
            )
        console.print(
            table(
                "Events",
                ["when", "event", "what"],
                [(_local(e["created_at"]), e["kind"], e["message"]) for e in d["events"]],
            )
        )

    @deployments.command("scale")
    @handles_errors
    def scale(
        name: str = NAME,
        replicas: int = typer.Argument(..., min=1, help="Replicas of the stable version."),
        project: str | None = PROJECT,
        as_json: bool = JSON,
    ) -> None:
        """Run this many replicas of the stable version (a canary keeps its share)."""
        _change("scale", name, project, as_json, replicas)

    @deployments.command("promote")
    @handles_errors
    def promote(name: str = NAME, project: str | None = PROJECT, as_json: bool = JSON) -> None:
        """Make the canary the stable version on every replica."""
        _change("promote", name, project, as_json)

    @deployments.command("rollback")
    @handles_errors
    def rollback(name: str = NAME, project: str | None = PROJECT, as_json: bool = JSON) -> None:
        """Drop the canary, or without one return to the version served before the last promotion."""
        _change("rollback", name, project, as_json)

    @deployments.command("delete")
    @handles_errors
    def delete(name: str = NAME, project: str | None = PROJECT) -> None:
        """Stop a deployment: traffic off, replicas drained and stopped."""
        from aidc.cli.connect import open_client

        with closing(open_client()) as client, console.status(f"deleting {name}…"):
            client.change_deployment("delete", name, project=project)
        console.print(f"deleted deployment {name}", highlight=False)
