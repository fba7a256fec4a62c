"""`aidc users list|create|grant|revoke|disable|enable`: users and service accounts and their roles."""

from __future__ import annotations

import typer

from aidc.cli.login import roles_text
from aidc.cli.output import console, handles_errors, print_json, table
from aidc.cli.runs import when

PROJECT_HELP = "A project's name, or '*' for every project (quote it in the shell)."


def register(app: typer.Typer) -> None:
    users = typer.Typer(
        help="Users and service accounts: create, grant and revoke roles, disable.", no_args_is_help=True
    )
    app.add_typer(users, name="users")

    def show(p: dict[str, object], verb: str) -> None:
        console.print(
            f"{verb} {p['kind']} {p['name']}: {roles_text(p['roles'])}"  # type: ignore[arg-type]
            + ("  (disabled)" if p["disabled"] else ""),
            highlight=False,
        )

    @users.command("list")
    @handles_errors
    def list_(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """List users and service accounts with their roles."""
        from aidc.cli.connect import open_client

        found = open_client().list_principals()
        if as_json:
            print_json(found)
            return
        console.print(
            table(
                f"{len(found)} principals",
                ["name", "kind", "roles", "state", "created"],
                [
                    (
                        p["name"],
                        p["kind"],
                        roles_text(p["roles"]),
                        "disabled" if p["disabled"] else "active",
                        when(p["created_at"]),
                    )
                    for p in found
                ],
            )
        )

    @users.command("create")
    @handles_errors
    def create(
        name: str = typer.Argument(..., help="Letters, digits and . _ @ -"),
        service: bool = typer.Option(False, "--service", help="A service account (CI, a pipeline bot), not a person."),
        role: str = typer.Option(
            None, "--role", help="Grant this role right away (admin, operator, researcher, viewer)."
        ),
        project: str = typer.Option(None, "--project", help=PROJECT_HELP),
    ) -> None:
        """Create a user or service account; give it a token with `aidc tokens create --user NAME`."""
        from aidc.cli.connect import open_client
        from aidc.errors import InvalidInput

        if (role is None) != (project is None):
            raise InvalidInput("--role and --project go together", hint="e.g. --role researcher --project vision")
        client = open_client()
        made = client.create_principal(name, "service" if service else "user")
        if role:
            made = client.grant(name, role, project)
        show(made, "created")

    @users.command("grant")
    @handles_errors
    def grant(
        name: str = typer.Argument(...),
        role: str = typer.Argument(..., help="admin, operator, researcher or viewer."),
        project: str = typer.Option(..., "--project", help=PROJECT_HELP),
    ) -> None:
        """Give NAME a role on a project (or on every project)."""
        from aidc.cli.connect import open_client

        show(open_client().grant(name, role, project), "granted:")

    @users.command("revoke")
    @handles_errors
    def revoke(
        name: str = typer.Argument(...),
        role: str = typer.Argument(...),
        project: str = typer.Option(..., "--project", help=PROJECT_HELP),
    ) -> None:
        """Take a role on a project away from NAME."""
        from aidc.cli.connect import open_client

        show(open_client().revoke_role(name, role, project), "revoked:")

    @users.command("disable")
    @handles_errors
    def disable(name: str = typer.Argument(...)) -> None:
        """Disable NAME: every token of it stops working until it is enabled again."""
        from aidc.cli.connect import open_client

        show(open_client().set_disabled(name, True), "disabled")

    @users.command("enable")
    @handles_errors
    def enable(name: str = typer.Argument(...)) -> None:
        """Enable NAME again."""
        from aidc.cli.connect import open_client

        show(open_client().set_disabled(name, False), "enabled")
