"""Run realism: batch/sequence ramp-up and long-context extension stages are priced in the run's time."""

from __future__ import annotations

from pathlib import Path

import pytest

from aidc.errors import InvalidSpec
from aidc.planner.plan import plan_file
from aidc.planner.report import sections

JOB = (
    "training:\n  - name: a\n    model: {layers: 32, hidden: 4096, heads: 32, seq_len: 4096}\n"
    "    tokens: 1.0e12\n    gpus: 256\n    gpu: H100\n"
)


def _plan(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    spec = tmp_path / "w.yaml"
    spec.write_text(text)
    return plan_file(spec).jobs[0].training


def test_a_long_context_stage_costs_more_per_token_and_gets_its_own_layout(tmp_path: Path) -> None:
    """100B of the 1T tokens at 32K context: attention grows with the sequence, so those tokens take longer
    than at 4K, the run takes longer than without the stage, and the stage's layout is searched for it."""
    base = _plan(tmp_path, JOB)
    staged = _plan(tmp_path, JOB + "    stages:\n      - {name: long context, tokens: 1.0e11, seq_len: 32768}\n")
    assert staged.stages is not None and len(staged.stages) == 1
    st = staged.stages[0]
    assert st.seq_len == 32768 and st.layout is not None
    main_per_token = base.train_hours / 1e12
    assert st.hours / 1e11 > 1.2 * main_per_token
    assert staged.train_hours == pytest.approx(0.9 * base.train_hours + st.hours, rel=0.02)
    assert staged.train_hours > base.train_hours and staged.model_flops > base.model_flops
    # the stage's tokens are part of the job's, not added to them
    assert staged.stages[0].tokens + (staged.iterations - st.iterations) * staged.global_batch * 4096 == (
        pytest.approx(1e12)
    )


def test_a_small_batch_ramp_up_runs_less_efficiently_than_the_main_batch(tmp_path: Path) -> None:
    """A 256-sequence batch on 256 GPUs leaves one micro-batch per replica (or forces wider model
    parallelism): its tokens take longer than at the main 1024-sequence batch."""
    main = _plan(tmp_path, JOB + "    global_batch: 1024\n")
    ramp = _plan(
        tmp_path, JOB + "    global_batch: 1024\n    stages:\n      - {name: ramp, tokens: 1.0e11, global_batch: 256}\n"
    )
    assert ramp.stages is not None
    st = ramp.stages[0]
    assert st.global_batch == 256
    assert st.hours / 1e11 > main.train_hours / 1e12
    assert ramp.mfu < main.mfu
    rows = dict(row for _, rows in sections(plan_file(tmp_path / "w.yaml")) for row in rows)
    assert "stage: ramp" in rows and "256" in rows["stage: ramp"]


def test_stages_that_take_every_token_are_a_located_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpec, match="stages' tokens"):
        _plan(tmp_path, JOB + "    stages:\n      - {tokens: 1.0e12, seq_len: 8192}\n")


def test_the_band_names_each_assumption_with_its_range(tmp_path: Path) -> None:
    plan = _plan(tmp_path, JOB)
    assert plan.band is not None
    assert any("GEMMs" in a and "×0.8–1.1" in a for a in plan.band.assumptions)
