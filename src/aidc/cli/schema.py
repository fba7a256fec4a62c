"""`aidc schema NAME`: print the JSON Schema of a spec so editors can validate and complete the YAML."""

from __future__ import annotations

import importlib
import json
import sys

import typer

from aidc.cli.output import handles_errors
from aidc.errors import InvalidInput

# Spec name → "module:Model". Add a line here to publish another spec's schema (e.g. the planner's workload).
SCHEMAS: dict[str, str] = {
    "facility": "aidc.facility.model:Facility",
    "workload": "aidc.planner.workload:Workload",
}


def schema_for(name: str) -> dict[str, object]:
    if name not in SCHEMAS:
        raise InvalidInput(f"no schema named {name!r}", hint=f"known: {', '.join(sorted(SCHEMAS))}")
    module, _, attr = SCHEMAS[name].partition(":")
    model = getattr(importlib.import_module(module), attr)
    schema: dict[str, object] = model.model_json_schema()
    schema.setdefault("$schema", "https://json-schema.org/draft/2020-12/schema")
    schema.setdefault("title", f"aidc {name} spec")
    return schema


def register(app: typer.Typer) -> None:
    @app.command("schema")
    @handles_errors
    def schema(name: str = typer.Argument(..., help=f"Which spec: {', '.join(sorted(SCHEMAS))}.")) -> None:
        """Print the JSON Schema of a spec (e.g. `aidc schema facility > facility.schema.json`)."""
        sys.stdout.write(json.dumps(schema_for(name), indent=2) + "\n")
