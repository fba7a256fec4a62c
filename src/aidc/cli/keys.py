"""`aidc keys status|rotate`: the master keys of artifact encryption, on this host's store or through the server."""

from __future__ import annotations

from pathlib import Path

import typer

from aidc.cli.output import console, err_console, handles_errors, print_json, table


def register(app: typer.Typer) -> None:
    keys = typer.Typer(
        help="Master keys of artifact encryption: status, rotate (the server's, when logged in).", no_args_is_help=True
    )
    app.add_typer(keys, name="keys")

    @keys.command("status")
    @handles_errors
    def status(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """Master key ids configured, artifacts wrapped under each, plaintext artifacts."""
        from aidc.cli.connect import open_client

        client = open_client()
        try:
            found = client.key_status()
        finally:
            client.close()
        if as_json:
            print_json(found)
            return
        console.print(
            f"encryption {found['encryption']} · {found['artifact_store']} · key file {found['key_file']}",
            highlight=False,
        )
        rows = [(k["key_id"], "active" if k["active"] else "older", k["source"], k["artifacts"]) for k in found["keys"]]
        rows += [(k["key_id"], "NOT CONFIGURED", "", k["artifacts"]) for k in found["unknown_keys"]]
        console.print(table("master keys", ["key id", "state", "from", "artifacts"], rows))
        console.print(f"{found['encrypted']} encrypted, {found['plaintext']} plaintext artifacts", highlight=False)
        for field, what in (
            ("missing_key_record", "encrypted artifacts without a key record"),
            ("damaged_key_record", "key records that cannot be read"),
        ):
            if found[field]:
                err_console.print(f"[bold red]{found[field]} {what}[/]", highlight=False)

    @keys.command("rotate")
    @handles_errors
    def rotate(
        new_key_file: Path = typer.Option(
            None,
            "--new-key-file",
            help="Take the new master key (base64, 32 bytes) from this file (mode 0600). Default: generate one.",
        ),
        keep_old: bool = typer.Option(False, "--keep-old", help="Keep the old keys in the key file afterwards."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Make a new master key active and re-wrap every artifact's data key under it (no data is rewritten).

        Interrupted or failed part-way, nothing is lost (the old key stays until every key is re-wrapped) and
        running it again finishes the same rotation. Jobs may keep running: they wrap new data keys under the
        new key once they see the key file change. Through a server, --new-key-file is read here and the key
        sent to the server (over the connection `aidc login` set up).
        """
        from aidc.cli.connect import open_client
        from aidc.store.artifacts.keyring import read_key_file

        new_key = None
        if new_key_file is not None:
            found, _ = read_key_file(new_key_file)  # refuses a group/world-readable file
            if len(found) != 1:
                raise typer.BadParameter(f"{new_key_file} must hold exactly one key", param_hint="--new-key-file")
            new_key = found[0].to_text()
        client = open_client()
        try:
            done = client.rotate_keys(new_key=new_key, keep_old=keep_old)
        finally:
            client.close()
        if as_json:
            print_json(done)
        else:
            console.print(
                f"master key {done['master_key_id']} is active: {done['rewrapped']} data keys re-wrapped, "
                f"{done['already']} already under it",
                highlight=False,
            )
            if done["retired"]:
                console.print(f"removed old keys {', '.join(done['retired'])} from {done['key_file']}", highlight=False)
            elif done["kept"]:
                console.print(f"kept old keys {', '.join(done['kept'])}", highlight=False)
            for failure in done["failed"]:
                err_console.print(
                    f"[bold red]not re-wrapped[/] {failure['digest']}: {failure['error']}", highlight=False
                )
        if done["failed"]:
            err_console.print(
                f"{len(done['failed'])} data keys were not re-wrapped; the old keys stay in place. "
                "Fix the cause and run `aidc keys rotate` again to finish.",
                highlight=False,
            )
            raise typer.Exit(1)
