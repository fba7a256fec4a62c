"""The pipeline spec: YAML → validated stages with typed configs, wired into a DAG by named inputs/outputs."""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aidc.errors import SpecProblem
from aidc.pipeline.stage import STAGE_KINDS, Stage, stage_class
from aidc.specfile import SpecSource, problems_from, raise_problems, read_yaml, validate

NAME = r"^[a-z][a-z0-9_-]{0,62}$"


class StageSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(pattern=NAME, description="unique stage name, used to wire inputs")
    uses: str = Field(description=f"stage kind: one of {', '.join(STAGE_KINDS)}")
    inputs: dict[str, str] = Field(default_factory=dict, description="input name → 'stage.output'")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with", description="the stage kind's settings")
    node_labels: dict[str, str] = Field(
        default_factory=dict,
        description="run only on nodes carrying these labels (the facility spec's nodes[].labels, or Ray's own); "
        "default: what the stage kind implies (train: workload=training, data: workload=preprocessing) where some "
        "node carries it",
    )


class PipelineSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pipeline: str = Field(pattern=NAME, description="pipeline name")
    description: str = ""
    stages: list[StageSpec] = Field(min_length=1)


@dataclass
class PlannedStage:
    """One stage ready to run: its spec, typed config, resolved upstream references and class."""

    spec: StageSpec
    config: BaseModel
    cls: type[Stage]
    needs: dict[str, tuple[str, str]] = field(default_factory=dict)  # input → (stage, output)
    where: str | None = None  # FILE:LINE of the stage in the user's spec (None for a spec rebuilt from the store)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def upstream(self) -> set[str]:
        return {stage for stage, _ in self.needs.values()}


@dataclass
class Pipeline:
    spec: PipelineSpec
    stages: dict[str, PlannedStage]  # in topological order
    path: str | None = None

    @property
    def name(self) -> str:
        return self.spec.pipeline

    def as_json(self) -> dict[str, Any]:
        return self.spec.model_dump(mode="json", by_alias=True)

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.as_json(), sort_keys=True).encode()).hexdigest()


def _did_you_mean(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    return f"did you mean {close[0]!r}? " if close else ""


def plan_pipeline(spec: PipelineSpec, source: SpecSource, path: str | None = None) -> Pipeline:
    """Check stage kinds, configs and wiring; order the stages; every problem located in the file."""
    problems: list[SpecProblem] = []
    planned: dict[str, PlannedStage] = {}
    for i, st in enumerate(spec.stages):
        here = ("stages", i)
        if st.name in planned:
            problems.append(
                source.problem(here + ("name",), f"duplicate stage name {st.name!r}", "names must be unique")
            )
            continue
        if st.uses not in STAGE_KINDS:
            problems.append(
                source.problem(
                    here + ("uses",),
                    f"unknown stage kind {st.uses!r}",
                    f"{_did_you_mean(st.uses, list(STAGE_KINDS))}kinds: {', '.join(STAGE_KINDS)}",
                )
            )
            continue
        cls = stage_class(st.uses)
        try:
            config = cls.Config.model_validate(st.with_)
        except ValidationError as exc:
            problems.extend(problems_from(exc, source, here + ("with",)))
            continue
        needs: dict[str, tuple[str, str]] = {}
        for inp, ref in st.inputs.items():
            where = here + ("inputs", inp)
            if inp not in cls.inputs:
                problems.append(
                    source.problem(
                        where,
                        f"{st.uses!r} stages take no input {inp!r}",
                        f"{_did_you_mean(inp, list(cls.inputs))}inputs: {', '.join(cls.inputs) or 'none'}",
                    )
                )
                continue
            up, _, out = ref.partition(".")
            if up not in planned:
                known = [s.name for s in spec.stages[:i]]
                problems.append(
                    source.problem(
                        where,
                        f"{ref!r} does not name an earlier stage's output",
                        f"{_did_you_mean(up, known)}write it as STAGE.OUTPUT with a stage above this one",
                    )
                )
                continue
            if out not in planned[up].cls.outputs:
                outs = list(planned[up].cls.outputs)
                problems.append(
                    source.problem(
                        where,
                        f"stage {up!r} has no output {out!r}",
                        f"{_did_you_mean(out, outs)}its outputs: {', '.join(outs)}",
                    )
                )
                continue
            needs[inp] = (up, out)
        for inp in cls.inputs:
            if inp not in st.inputs and inp not in cls.optional_inputs:
                problems.append(
                    source.problem(
                        here + ("inputs",) if st.inputs else here,
                        f"{st.uses!r} stage needs input {inp!r}",
                        f"add `inputs: {{{inp}: STAGE.OUTPUT}}`",
                    )
                )
        line, _ = source.locate(here)
        at = f"{path}:{line}" if path and line and source.positions else None
        planned[st.name] = PlannedStage(st, config, cls, needs, at)
    raise_problems(problems)
    return Pipeline(spec, planned, path)


def load_pipeline(path: str | Path) -> Pipeline:
    """Read a pipeline YAML file into a checked, ordered Pipeline; InvalidSpec with file:line:col otherwise."""
    source = read_yaml(path)
    return plan_pipeline(validate(PipelineSpec, source), source, str(path))


def pipeline_from_json(data: dict[str, Any], path: str | None = None) -> Pipeline:
    """Rebuild a Pipeline from the spec stored with a run (for --resume)."""
    source = SpecSource(data, {}, path or "<stored spec>")
    return plan_pipeline(validate(PipelineSpec, source), source, path)
