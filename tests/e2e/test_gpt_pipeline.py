"""The language-model lifecycle as a user runs it: `aidc run examples/gpt/smoke.yaml` from an empty AIDC_HOME.

Real engines: the `tokenizers` BPE trainer on the standard library's sources, Ray Train DDP on 2 CPU workers,
SQLite and the file artifact store."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.pace import HANG_S

ROOT = Path(__file__).resolve().parents[2]
AIDC = [str(Path(sys.executable).parent / "aidc")]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("aidc-home")
    env = {**os.environ, "AIDC_HOME": str(home), "AIDC_RAY_NUM_CPUS": "2"}
    done = subprocess.run(
        [*AIDC, "run", "examples/gpt/smoke.yaml", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=HANG_S,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_the_smoke_run_trains_a_language_model_whose_validation_loss_falls(smoke: dict[str, Any]) -> None:
    assert smoke["status"] == "succeeded"
    assert [s["name"] for s in smoke["stages"]] == ["text", "train", "evaluate"]
    vocab = smoke["outputs"]["text"]["summary"]["vocab_size"]
    train = smoke["outputs"]["train"]["summary"]
    assert train["steps"] == 40
    first, last = train["history"][0]["val_loss"], train["history"][-1]["val_loss"]
    assert last < first < math.log(vocab) + 0.1
    assert last < math.log(vocab) - 0.5  # well below a uniform guess
    assert train["tokens_per_s"] > 0 and 0 < train["mfu"] < 1


def test_the_report_has_held_out_perplexity_and_samples_from_every_prompt(smoke: dict[str, Any]) -> None:
    evaluation = smoke["outputs"]["evaluate"]
    assert evaluation["metrics"]["perplexity"] == pytest.approx(math.exp(evaluation["metrics"]["val_loss"]))
    assert evaluation["metrics"]["perplexity"] < smoke["outputs"]["text"]["summary"]["vocab_size"]
    assert [s["prompt"] for s in evaluation["samples"]] == ["def ", "import "]
    assert all(s["greedy"] and s["sampled"] for s in evaluation["samples"])


def test_the_run_report_shows_throughput_perplexity_curves_and_samples(smoke: dict[str, Any]) -> None:
    html = Path(smoke["report"]).read_text()
    section = html[html.index("<h2>Language model</h2>") :]
    assert "MFU" in section and "tokens/s" in section and "held-out perplexity" in section
    assert section.count("<svg") >= 2  # perplexity and throughput curves
    assert "<pre>import " in section


def test_the_run_report_puts_the_measured_step_beside_the_planners_forecast(smoke: dict[str, Any]) -> None:
    from aidc.planner.lm_step import forecast_lm_step

    train = smoke["outputs"]["train"]
    planner = train["summary"]["planner"]
    assert (planner["micro_batch"], planner["seq_len"], planner["precision"]) == (8, 64, "fp32")  # 16 over 2 workers
    measured, forecast = planner["measured"], planner["forecast"]
    assert measured["step_seconds"] > 0 and measured["memory_bytes"] > 0
    assert planner["step_ratio"] == pytest.approx(measured["step_seconds"] / forecast["seconds"])
    assert planner["memory_ratio"] == pytest.approx(measured["memory_bytes"] / forecast["memory_bytes"])
    peak = train["summary"]["peak_flops"] / 2  # rank 0's probed CPU peak (the job's is 2 workers × it)
    again = forecast_lm_step(
        planner["architecture"], micro_batch=8, accumulation=1, seq_len=64, precision="fp32", peak_flops=peak
    )
    assert forecast["seconds"] == pytest.approx(again.seconds) and forecast["memory_bytes"] == again.memory_bytes
    html = Path(smoke["report"]).read_text()
    section = html[html.index("<h3>Measured beside the planner</h3>") :]
    assert f"{1000 * measured['step_seconds']:.2f} ms" in section and f"{planner['step_ratio']:.2f}" in section
