"""`aidc datasets list`: registered dataset versions, their splits, classes and fingerprints."""

from __future__ import annotations

import typer

from aidc.cli.output import console, handles_errors, print_json, table
from aidc.cli.runs import when


def register(app: typer.Typer) -> None:
    datasets = typer.Typer(help="Registered dataset versions.", no_args_is_help=True)
    app.add_typer(datasets, name="datasets")

    @datasets.command("list")
    @handles_errors
    def list_(
        name: str = typer.Argument(None, help="Only versions of this dataset."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """List dataset versions with rows per split and class count."""
        from contextlib import closing

        from aidc.cli.connect import open_client

        with closing(open_client()) as client:
            found = client.list_datasets(name)
        if as_json:
            print_json(found)
            return
        t = table(
            f"{len(found)} dataset versions",
            ["dataset", "version", "train", "val", "test", "classes", "fingerprint", "run", "created"],
            [],
        )
        for d in found:
            splits = d["stats"].get("splits") or {}
            classes = (d["schema"].get("label") or {}).get("classes") or sorted(
                {c for s in d["class_balance"].values() for c in s}
            )
            t.add_row(
                d["dataset"],
                str(d["version"]),
                *(str(splits.get(s, "")) for s in ("train", "val", "test")),
                str(len(classes)),
                d["fingerprint"][:12],
                d["run_id"] or "",
                when(d["created_at"]),
            )
        console.print(t)
