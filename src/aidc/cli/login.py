"""`aidc login|logout|whoami`: which server (and token) the security commands use, and who that makes you."""

from __future__ import annotations

import sys

import typer

from aidc.cli.output import console, handles_errors, print_json
from aidc.errors import InvalidInput


def roles_text(roles: list[dict[str, str]]) -> str:
    return ", ".join(f"{r['role']}@{r['project']}" for r in roles) or "no roles"


def register(app: typer.Typer) -> None:
    @app.command("login")
    @handles_errors
    def login(url: str = typer.Argument(..., help="The server, e.g. https://aidc.example.org:8080")) -> None:
        """Save URL and an API token (asked for, never echoed; or piped on stdin) in AIDC_HOME, readable by you only."""
        from aidc.client.credentials import save_credentials
        from aidc.client.remote import RemoteClient
        from aidc.settings import Settings

        if not url.startswith(("http://", "https://")):
            raise InvalidInput(f"{url!r} is not an http(s) URL", hint="e.g. aidc login http://127.0.0.1:8080")
        token = (sys.stdin.readline() if not sys.stdin.isatty() else typer.prompt("API token", hide_input=True)).strip()
        if not token:
            raise InvalidInput(
                "no token given", hint="paste the token `aidc server` printed, or one from `aidc tokens create`"
            )
        settings = Settings()
        me = RemoteClient(url, token, ca_file=settings.ca_file).whoami()  # proves the token before it is saved
        path = save_credentials(settings.home, url, token)
        console.print(
            f"logged in to {url} as {me['principal']} ({roles_text(me['roles'])}); saved to {path}", highlight=False
        )

    @app.command("logout")
    @handles_errors
    def logout() -> None:
        """Forget the saved server and token: the security commands work on the local store again."""
        from aidc.client.credentials import forget_credentials
        from aidc.settings import Settings

        console.print("logged out" if forget_credentials(Settings().home) else "not logged in")

    @app.command("whoami")
    @handles_errors
    def whoami(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """Who the security commands act as, and where: a server's principal, or the local store's admin."""
        from aidc.cli.connect import open_client

        client = open_client()
        me = client.whoami()
        if as_json:
            print_json(me | {"where": client.where})
            return
        console.print(f"{me['principal']} ({roles_text(me['roles'])}) on {client.where}", highlight=False)
