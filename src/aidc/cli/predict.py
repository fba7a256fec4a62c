"""`aidc predict DEPLOYMENT --input FILE`: send inputs from a file to a deployment and print what it answers."""

from __future__ import annotations

from pathlib import Path

import typer

from aidc.cli.output import console, handles_errors, print_json


def register(app: typer.Typer) -> None:
    @app.command()
    @handles_errors
    def predict(
        deployment: str = typer.Argument(..., metavar="DEPLOYMENT", help="Deployment name."),
        input_file: Path = typer.Option(
            ...,
            "--input",
            "-i",
            help=".npy (first input), .npz (inputs by name) or .json (OIP request, {input: list} or a list).",
        ),
        version: str = typer.Option(None, "--version", help="Ask this version (default: traffic split decides)."),
        project: str | None = typer.Option(
            None, "--project", help="The deployment's project, when its name is in more than one you see."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Run inference on a deployment (through a server: it names the deployment's URL, which is then called
        directly)."""
        from contextlib import closing

        import numpy as np

        from aidc.cli.connect import open_client
        from aidc.serving.protocol import oip_datatype, tensor_json_data

        with closing(open_client()) as client:
            answer = client.predict(deployment, input_file, version=version, project=project)
        outputs = answer["outputs"]
        if as_json:
            print_json(
                {
                    "deployment": answer["deployment"],
                    "model_version": answer["model_version"],
                    "outputs": {
                        name: {"datatype": oip_datatype(a.dtype), "shape": list(a.shape), "data": tensor_json_data(a)}
                        for name, a in outputs.items()
                    },
                }
            )
            return
        console.print(f"{answer['deployment']} version {answer['model_version']}", highlight=False)
        with np.printoptions(precision=4, suppress=True, threshold=200):
            for name, array in outputs.items():
                console.print(f"{name} {oip_datatype(array.dtype)} {list(array.shape)}", style="bold", highlight=False)
                console.print(str(array), highlight=False, markup=False)
