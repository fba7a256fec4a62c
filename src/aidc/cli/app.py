"""The root `aidc` command: global options, and one sub-module per command group."""

from __future__ import annotations

import importlib

import typer

from aidc.cli import output

app = typer.Typer(
    name="aidc",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Design, size, run and operate an AI data center.",
)

# Each module registers its commands on `app` through `register(app)`; imported here, in CLI order.
COMMAND_MODULES = [
    "run",
    "runs",
    "models",
    "datasets",
    "doctor",
    "check",
    "schema",
    "plan",
    "deploy",
    "deployments",
    "predict",
    "server",
    "login",
    "tokens",
    "users",
    "projects",
    "audit",
    "keys",
    "jobs",
    "nodes",
    "alerts",
]


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors.")) -> None:
    output.DEBUG["on"] = debug


@app.command()
def version() -> None:
    """Print the aidc version."""
    from aidc import __version__

    output.console.print(f"aidc {__version__}")


for _name in COMMAND_MODULES:
    importlib.import_module(f"aidc.cli.{_name}").register(app)


def main() -> None:
    app()
