"""`aidc tokens create|list|revoke`: API tokens — shown once at creation, stored only as hashes."""

from __future__ import annotations

from typing import Any

import typer

from aidc.cli.output import console, err_console, handles_errors, print_json, table
from aidc.cli.runs import when


def token_state(t: dict[str, Any]) -> str:
    from datetime import UTC, datetime

    if t.get("revoked_at"):
        return "revoked"
    expires = t.get("expires_at")
    if expires and datetime.fromisoformat(expires.replace("Z", "+00:00")) <= datetime.now(UTC):
        return "expired"
    return "active"


def register(app: typer.Typer) -> None:
    tokens = typer.Typer(help="API tokens: create (shown once), list, revoke.", no_args_is_help=True)
    app.add_typer(tokens, name="tokens")

    @tokens.command("create")
    @handles_errors
    def create(
        name: str = typer.Argument(..., help="What the token is for, e.g. laptop or ci."),
        user: str = typer.Option(None, "--user", help="Owner (admins; required on the local store). Default: you."),
        scope: list[str] = typer.Option(
            None, "--scope", help="Keep only these permissions (repeat; runs:read, models:*)."
        ),
        expires_days: int = typer.Option(
            None, "--expires-days", min=0, help="Lifetime in days; 0 = never. Default: 90."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print JSON (the token included)."),
    ) -> None:
        """Create an API token. It is printed this once; only its hash is kept."""
        from aidc.cli.connect import open_client

        made = open_client().create_token(name, user=user, scopes=scope or None, expires_days=expires_days)
        if as_json:
            print_json(made)
            return
        expires = when(made["expires_at"]) if made["expires_at"] else "never"
        err_console.print(
            f"token {made['id']} for {made['principal']} (scopes {', '.join(made['scopes'])}; "
            f"expires {expires}) — shown only now, store it:",
            highlight=False,
        )
        console.print(made["token"], highlight=False, markup=False, soft_wrap=True)

    @tokens.command("list")
    @handles_errors
    def list_(
        user: str = typer.Option(
            None, "--user", help="Another principal's tokens (admins). Default: yours (on the local store: everyone's)."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """List tokens: id, owner, scopes, state, expiry, last use — never the tokens themselves."""
        from aidc.cli.connect import open_client

        found = open_client().list_tokens(user)
        if as_json:
            print_json(found)
            return
        console.print(
            table(
                f"{len(found)} tokens",
                ["id", "owner", "name", "scopes", "state", "expires", "last used", "created"],
                [
                    (
                        t["id"],
                        t["principal"],
                        t["name"],
                        ", ".join(t["scopes"]),
                        token_state(t),
                        when(t["expires_at"]) or "never",
                        when(t["last_used_at"]),
                        when(t["created_at"]),
                    )
                    for t in found
                ],
            )
        )

    @tokens.command("revoke")
    @handles_errors
    def revoke(
        token_id: str = typer.Argument(..., help="The token's id (first column of `aidc tokens list`)."),
        user: str = typer.Option(None, "--user", help="Its owner, to revoke another principal's token (admins)."),
    ) -> None:
        """Revoke a token: it stops working at once."""
        from aidc.cli.connect import open_client

        t = open_client().revoke_token(token_id, user=user)
        console.print(f"revoked token {t['id']} of {t['principal']}", highlight=False)
