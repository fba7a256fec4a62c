"""`aidc predict DEPLOYMENT --input FILE`: send inputs from a file to a deployment and print what it answers;
`aidc predict DEPLOYMENT --text PROMPT`: a language model's continuation of a prompt."""

from __future__ import annotations

from pathlib import Path

import typer

from aidc.cli.output import console, handles_errors, print_json


def register(app: typer.Typer) -> None:
    @app.command()
    @handles_errors
    def predict(
        deployment: str = typer.Argument(..., metavar="DEPLOYMENT", help="Deployment name."),
        input_file: Path | None = typer.Option(
            None,
            "--input",
            "-i",
            help=".npy (first input), .npz (inputs by name) or .json (OIP request, {input: list} or a list).",
        ),
        text: str | None = typer.Option(None, "--text", "-t", help="A prompt for a language model's deployment."),
        max_tokens: int = typer.Option(32, "--max-tokens", min=1, help="With --text: tokens to generate at most."),
        temperature: float = typer.Option(0.0, "--temperature", min=0.0, help="With --text: 0 is greedy."),
        top_k: int | None = typer.Option(None, "--top-k", min=1, help="With --text: sample from the k likeliest."),
        seed: int | None = typer.Option(None, "--seed", help="With --text: a seed makes sampling repeatable."),
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
        from aidc.errors import InvalidInput
        from aidc.serving.protocol import oip_datatype, tensor_json_data

        if (input_file is None) == (text is None):
            raise InvalidInput(
                "give the inputs either as a file (--input FILE) or as a prompt (--text PROMPT), one of them",
                hint="--text is for deployments of language models; --input for the rest",
            )
        if text is not None:
            parameters = {"max_tokens": max_tokens, "temperature": temperature, "top_k": top_k, "seed": seed}
            with closing(open_client()) as client:
                generated = client.generate(
                    deployment,
                    text,
                    parameters={k: v for k, v in parameters.items() if v is not None},
                    version=version,
                    project=project,
                )
            if as_json:
                print_json(generated)
            else:
                console.print(
                    f"{generated['deployment']} version {generated['model_version']}", style="bold", highlight=False
                )
                console.print(generated["prompt"] + generated["text"], highlight=False, markup=False)
            return
        assert input_file is not None
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
