"""`aidc projects list|create|assign`: projects (tenants) and which project a record belongs to."""

from __future__ import annotations

from enum import Enum

import typer

from aidc.cli.output import console, handles_errors, print_json, table
from aidc.cli.runs import when


class RecordKind(str, Enum):
    run = "run"
    dataset_version = "dataset_version"
    model_version = "model_version"
    deployment = "deployment"


def register(app: typer.Typer) -> None:
    projects = typer.Typer(help="Projects (tenants): list, create, move records into them.", no_args_is_help=True)
    app.add_typer(projects, name="projects")

    @projects.command("list")
    @handles_errors
    def list_(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """List the projects you have a role on (all of them for admins)."""
        from aidc.cli.connect import open_client

        found = open_client().list_projects()
        if as_json:
            print_json(found)
            return
        console.print(
            table(
                f"{len(found)} projects",
                ["name", "description", "created"],
                [(p["name"], p["description"], when(p["created_at"])) for p in found],
            )
        )

    @projects.command("create")
    @handles_errors
    def create(
        name: str = typer.Argument(..., help="Letters, digits and . _ @ -"),
        description: str = typer.Option("", "--description", help="What the project is."),
    ) -> None:
        """Create a project; grant roles on it with `aidc users grant NAME ROLE --project PROJECT`."""
        from aidc.cli.connect import open_client

        p = open_client().create_project(name, description)
        console.print(f"created project {p['name']}", highlight=False)

    @projects.command("assign")
    @handles_errors
    def assign(
        project: str = typer.Argument(...),
        kind: RecordKind = typer.Argument(...),
        record_id: str = typer.Argument(..., metavar="ID", help="Run id, or the numeric id of the record."),
    ) -> None:
        """Move a run, dataset version, model version or deployment into PROJECT."""
        from aidc.cli.connect import open_client

        moved = open_client().assign(project, kind.value, record_id)
        console.print(f"{moved['kind']} {moved['id']}: {moved['from']} → {moved['project']}", highlight=False)
