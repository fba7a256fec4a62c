"""`aidc models list|show|promote`: registered model versions, their lineage, deployments and stage."""

from __future__ import annotations

from contextlib import closing
from enum import Enum
from typing import Any

import typer
from rich.text import Text
from rich.tree import Tree

from aidc.cli.output import carbon_text, console, handles_errors, print_json, pue_text, table
from aidc.cli.runs import status_text, when
from aidc.errors import InvalidInput


class PromoteTo(str, Enum):
    staging = "staging"
    production = "production"
    archived = "archived"


def _metric(metrics: dict[str, Any], name: str) -> str:
    value = metrics.get(name)
    return f"{value:.4f}" if isinstance(value, int | float) else ""


def _lineage_tree(shown: dict[str, Any]) -> Tree:
    """The lineage as a tree, each node by the label the store gave it (``labels``: "kind:id" → label)."""
    from aidc.report.lineage import LineageNode, lineage_tree
    from aidc.store.metadata.records import LineageEdge

    labels, model = shown["labels"], shown["model"]

    def grow(branch: Tree, node: LineageNode) -> None:
        for src in node.sources:
            label = Text.assemble(
                "← ",
                (src.kind, "cyan"),
                " ",
                (labels.get(f"{src.kind}:{src.id}", src.id), "bold"),
                (f"  ({src.relation})", "dim"),
            )
            grow(branch.add(label), src)

    root = lineage_tree([LineageEdge.model_validate(e) for e in shown["lineage"]], "model_version", str(model["id"]))
    tree = Tree(Text.assemble(("model_version", "cyan"), " ", (f"{model['name']}:{model['version']}", "bold")))
    grow(tree, root)
    return tree


def _energy(energy: dict[str, Any] | None) -> None:
    """What making the version cost: the total over the runs that made it, then each run."""
    if energy is None:
        return
    if energy.get("kwh") is not None:
        carbon = (
            f"{energy['gco2e']:.1f} gCO2e" if energy.get("gco2e") is not None else "gCO2e unknown (no grid intensity)"
        )
        flag = "measured" if energy["measured"] else "partly modelled"
        runs = len(energy["runs"])
        console.print(
            f"energy to make it: {energy['kwh']:.4f} kWh ({flag}), {carbon} over {runs} run{'s' if runs != 1 else ''}",
            highlight=False,
            markup=False,
        )
    else:
        console.print(f"energy to make it: unknown — {energy['why']}", highlight=False, markup=False)
    for r in energy["runs"]:
        if r.get("kwh") is not None:
            figure = f"{r['kwh']:.4f} kWh ({pue_text(r)}), {carbon_text(r)}"
        else:
            figure = f"unknown — {r['why']}"
        console.print(f"  run {r['run']} ({r.get('role', '')}): {figure}", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    models = typer.Typer(help="Registered model versions: list, show with lineage, promote.", no_args_is_help=True)
    app.add_typer(models, name="models")

    @models.command("list")
    @handles_errors
    def list_(
        name: str = typer.Argument(None, help="Only versions of this model."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """List model versions with their stage and test metrics."""
        from aidc.cli.connect import open_client

        with closing(open_client()) as client:
            found = client.list_models(name)
        if as_json:
            print_json(found)
            return
        t = table(
            f"{len(found)} model versions", ["model", "version", "stage", "accuracy", "macro F1", "run", "created"], []
        )
        for m in found:
            t.add_row(
                m["name"],
                str(m["version"]),
                status_text(m["stage"]),
                _metric(m["metrics"], "accuracy"),
                _metric(m["metrics"], "macro_f1"),
                m["run_id"] or "",
                when(m["created_at"]),
            )
        console.print(t)

    @models.command("show")
    @handles_errors
    def show(
        ref: str = typer.Argument(..., metavar="NAME[:VERSION]", help="A model (its latest version) or one version."),
        project: str | None = typer.Option(
            None, "--project", help="The model's project, when its name is in more than one you can see."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Show a model version: metrics, digests, full lineage and deployments."""
        from aidc.cli.connect import open_client

        with closing(open_client()) as client:
            shown = client.show_model(ref, project=project)
        if as_json:
            print_json(shown)
            return
        model, deployments = shown["model"], shown["deployments"]
        console.print(
            Text.assemble(
                ("model ", "bold"),
                (f"{model['name']}:{model['version']}", "bold"),
                "  ",
                status_text(model["stage"]),
                f"  created {when(model['created_at'])}",
            )
        )
        rows = [
            ("run", model["run_id"] or ""),
            ("onnx", model["onnx_digest"] or ""),
            ("checkpoint", model["checkpoint_digest"] or ""),
        ]
        rows += [(k, f"{v:.4g}") for k, v in model["metrics"].items() if isinstance(v, int | float)]
        if isinstance(model["metrics"].get("task"), str):  # a language model's: served as a text generator
            rows.append(("task", model["metrics"]["task"]))
        console.print(table(None, ["field", "value"], rows))
        _energy(shown.get("energy"))
        console.print(Text("Lineage", style="bold"))
        console.print(_lineage_tree(shown))
        if deployments:
            t = table("Deployments", ["id", "name", "url", "status", "created"], [])
            for d in deployments:
                t.add_row(str(d["id"]), d["name"], d["url"], status_text(d["status"]), when(d["created_at"]))
            console.print(t)
        else:
            console.print("not deployed", style="dim")

    @models.command("promote")
    @handles_errors
    def promote(
        ref: str = typer.Argument(..., metavar="NAME:VERSION", help="The model version to move."),
        stage: PromoteTo = typer.Option(..., "--stage", help="Where to move it; production archives the current one."),
        project: str | None = typer.Option(
            None, "--project", help="The model's project, when its name is in more than one you can see."
        ),
    ) -> None:
        """Move a model version to staging, production or archived."""
        from aidc.cli.connect import open_client

        if not ref.partition(":")[2].isdigit():
            raise InvalidInput(
                f"promote needs NAME:VERSION, got {ref!r}",
                hint="e.g. aidc models promote digits-cnn:3 --stage production",
            )
        # through the audited path: a promotion is a state change with an audit entry, CLI or API alike
        with closing(open_client()) as client:
            changed_versions = client.promote_model(ref, stage.value, project=project)
        for changed in changed_versions:
            console.print(
                Text.assemble((f"{changed['name']}:{changed['version']}", "bold"), " → ", status_text(changed["stage"]))
            )
