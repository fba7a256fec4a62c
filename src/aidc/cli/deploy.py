"""`aidc deploy MODEL[:VERSION]`: serve a registered model version on replicas, or canary it into its deployment."""

from __future__ import annotations

from typing import Any

import typer
from rich.text import Text

from aidc.cli.output import console, err_console, handles_errors, print_json, table

STATUS_STYLE = {
    "running": "green",
    "ready": "green",
    "starting": "yellow",
    "stopping": "yellow",
    "unhealthy": "bold red",
    "failed": "bold red",
    "stopped": "dim",
}


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def print_deployment(d: dict[str, Any]) -> None:
    """A deployment as people read it: where to call it, what it serves, and each replica."""
    live = "" if d["live"] or d["status"] == "stopped" else "  (its URL does not answer)"
    console.print(
        Text.assemble(
            ("deployment ", "bold"),
            (d["name"], "bold"),
            "  ",
            status_text(d["status"]),
            "  ",
            d["url"] or "",
            (live, "bold red"),
        )
    )
    serving = f"stable {d['stable']}: {d['ready']}/{d['replicas']} replicas ready"
    if d["canary"]:
        serving += f" · canary {d['canary']} takes {d['canary_percent']:g}% of traffic"
    if d.get("previous"):
        serving += f" · rollback returns to {d['previous']}"
    console.print(serving, highlight=False)
    for ref, providers in (d.get("providers") or {}).items():
        console.print(f"{ref} runs on {', '.join(providers or ['(unknown)'])}", highlight=False)
    if d["replica_list"]:
        console.print(
            table(
                None,
                ["version", "slot", "status", "url", "pid", "node", "restarts", "message"],
                [
                    (
                        r["version"],
                        r["slot"],
                        status_text(r["status"]),
                        r["url"],
                        r["pid"],
                        r["node"],
                        r["restarts"],
                        r["message"],
                    )
                    for r in d["replica_list"]
                ],
            )
        )


def register(app: typer.Typer) -> None:
    @app.command()
    @handles_errors
    def deploy(
        model: str = typer.Argument(
            ..., metavar="MODEL[:VERSION]", help="A registered model version (latest if no version)."
        ),
        name: str = typer.Option(
            None, "--name", help="Deployment name (default: the model's name); part of the URL path."
        ),
        replicas: int = typer.Option(
            1, "--replicas", "-r", min=1, help="Server processes behind the deployment's URL."
        ),
        canary: float = typer.Option(
            None, "--canary", min=0, max=100, help="Roll this version into the existing deployment on PCT% of traffic."
        ),
        cpus: float = typer.Option(0.5, "--cpus", help="CPUs Ray reserves for each replica."),
        gpus: float = typer.Option(
            0.0, "--gpus", help="GPUs Ray reserves for each replica (ONNX Runtime uses CUDA then)."
        ),
        host: str = typer.Option("127.0.0.1", "--host", help="Interface the deployment's URL listens on."),
        min_requests: int = typer.Option(50, "--min-requests", help="Canary requests before it is judged."),
        max_error_rate_increase: float = typer.Option(
            0.02, "--max-error-increase", help="Canary error rate may exceed stable's by this (0.02 = 2 points)."
        ),
        max_latency_ratio: float = typer.Option(
            2.0, "--max-latency-ratio", help="Canary p95 may be this × stable's (+5 ms)."
        ),
        promote_after: int = typer.Option(
            None, "--promote-after", help="Promote a healthy canary by itself after this many requests."
        ),
        timeout: float = typer.Option(180.0, "--timeout", help="Seconds to wait for the replicas to be ready."),
        project: str | None = typer.Option(
            None, "--project", help="The model's project, when its name is in more than one you can see."
        ),
        auth: bool = typer.Option(
            False, "--auth", help="Answer only requests with the client token printed once here (a new deployment)."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Deploy a model version; with --canary, send a share of an existing deployment's traffic to it."""
        from contextlib import closing

        from aidc.cli.connect import open_client

        # The spinner is a message, not the result: on stderr, so that --json's stdout parses.
        with closing(open_client()) as client, err_console.status(f"deploying {model}…"):
            d = client.deploy(
                model,
                project=project,
                name=name,
                replicas=replicas,
                canary=canary,
                cpus=cpus,
                gpus=gpus,
                host=host,
                min_requests=min_requests,
                max_error_rate_increase=max_error_rate_increase,
                max_latency_ratio=max_latency_ratio,
                promote_after=promote_after,
                timeout=timeout,
                auth=auth,
            )
        if as_json:
            print_json(d)
            return
        print_deployment(d)
        if d.get("token"):
            err_console.print("Its client token, shown only this once — store it now:", highlight=False)
            console.print(d["token"], highlight=False, markup=False, soft_wrap=True)
        header = ' -H "Authorization: Bearer TOKEN"' if d.get("token") else ""
        inputs = "--text PROMPT" if d.get("kind") == "generation" else "--input FILE"
        console.print(
            f"call it: curl{header} {d['url']}/v2/models/{d['name']}  ·  aidc predict {d['name']} {inputs}",
            highlight=False,
            markup=False,
        )
