"""A language model from training to a served deployment, as a user drives it: `aidc run` a tiny text → train_lm →
evaluate_lm → register_lm → deploy pipeline, `aidc deploy coder:1`, `aidc predict coder --text`, the stream through the deployment's URL.

Real engines throughout: the tokenizers BPE trainer, Ray Train on a CPU worker, SQLite and the file artifact
store, a Ray serving cluster with a generation replica process behind the router process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.pace import HANG_S

ROOT = Path(__file__).resolve().parents[2]
AIDC = [str(Path(sys.executable).parent / "aidc")]

pytestmark = pytest.mark.slow

PIPELINE = """
pipeline: gpt-deploy
stages:
  - name: text
    uses: text
    with: {max_bytes: 40000, vocab_size: 300, seq_len: 32}
  - name: train
    uses: train_lm
    inputs: {tokens: text.tokens, tokenizer: text.tokenizer}
    with: {size: tiny, steps: 6, batch_size: 8, warmup: 1, eval_every: 6, eval_batches: 1, workers: 1}
  - name: evaluate
    uses: evaluate_lm
    inputs: {tokens: text.tokens, tokenizer: text.tokenizer, checkpoint: train.checkpoint, model: train.model}
    with: {prompts: ["def ", "class "], max_new_tokens: 12}
  - name: register
    uses: register_lm
    inputs: {checkpoint: train.checkpoint, model: train.model, tokenizer: text.tokenizer, metrics: evaluate.metrics}
    with: {name: coder}
  - name: deploy
    uses: deploy
    inputs: {model: register.model, samples: evaluate.samples}
"""


def aidc(env: dict[str, str], *args: str) -> Any:
    done = subprocess.run([*AIDC, *args, "--json"], capture_output=True, text=True, env=env, timeout=HANG_S, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], dict[str, Any]]]:
    home = tmp_path_factory.mktemp("aidc-home")
    spec = home / "gpt-deploy.yaml"
    spec.write_text(PIPELINE)
    env = {**os.environ, "AIDC_HOME": str(home), "AIDC_RAY_NUM_CPUS": "2"}
    run = aidc(env, "run", str(spec))
    assert run["status"] == "succeeded" and run["outputs"]["register"]["model"]["ref"] == "coder:1"
    # the pipeline's deploy stage served it (on the run's own Ray, gone with the run) and found each prompt's
    # greedy text through the deployment equal to evaluate_lm's
    checks = run["outputs"]["deploy"]["checks"]
    assert (checks["agreement"], checks["requests"]) == (1.0, 2), checks
    assert [c["prompt"] for c in checks["sample"]] == ["def ", "class "]
    deployment = aidc(env, "deploy", "coder:1")
    try:
        yield env, deployment
    finally:
        subprocess.run([*AIDC, "deployments", "delete", "coder"], env=env, timeout=HANG_S, capture_output=True)


def in_process(home: str, prompt: str, max_tokens: int, temperature: float = 0.0, seed: int | None = None) -> str:
    """Text from the registered bundle, generated here with the training code's own generate()."""
    from aidc.platform import Platform
    from aidc.serving.generation import load_generator
    from aidc.settings import Settings
    from aidc.training.gpt.bundle import unpack
    from aidc.training.gpt.generate import Sampling, generate
    from aidc.training.gpt.text import END_OF_TEXT

    platform = Platform(Settings(home=Path(home), ray_address=""))
    try:
        version = platform.metadata.get_model_version("coder", 1)
        path = platform.artifacts.get_file(version.checkpoint_digest, Path(home) / "bundle.zip")
    finally:
        platform.close()
    bundle = unpack(path)
    g = load_generator(bundle.weights, bundle.arch, bundle.tokenizer_json, name="here")
    try:
        ids = g.encode(prompt)
        sampling = Sampling(max_tokens, temperature, None, seed)
        tokens = generate(g.engine.model, ids, sampling, stop=g.tokenizer.token_to_id(END_OF_TEXT))
        return g.decode(tokens)
    finally:
        g.engine.close()


def test_a_deployed_language_model_generates_what_the_model_generates_in_process(
    deployed: tuple[dict[str, str], dict[str, Any]],
) -> None:
    env, d = deployed
    assert (d["status"], d["stable"], d["ready"], d["live"], d["kind"]) == ("running", "coder:1", 1, True, "generation")
    answer = aidc(env, "predict", "coder", "--text", "def ", "--max-tokens", "16")
    assert answer["model_version"] == "1" and answer["prompt"] == "def "
    assert answer["text"] and answer["text"] == in_process(env["AIDC_HOME"], "def ", 16)
    # a tiny model's greedy text is mostly spaces; a seeded sample depends on every logit, so it tells the served
    # weights from any others
    sampled = aidc(env, "predict", "coder", "--text", "def ", "--max-tokens", "16", "--temperature", "1", "--seed", "3")
    assert sampled["text"].strip() and sampled["text"] == in_process(env["AIDC_HOME"], "def ", 16, 1.0, 3)
    models = aidc(env, "models", "show", "coder:1")
    (Path(env["AIDC_HOME"]) / "x.json").write_text("[[1.0]]")
    wrong = subprocess.run(
        [*AIDC, "predict", "coder", "--input", str(Path(env["AIDC_HOME"]) / "x.json")],
        capture_output=True,
        text=True,
        env=env,
        timeout=HANG_S,
    )
    assert wrong.returncode == 2 and "serves a language model" in wrong.stdout + wrong.stderr
    assert "--text" in wrong.stdout + wrong.stderr and "Traceback" not in wrong.stderr
    metrics = models["model"]["metrics"]
    assert metrics["task"] == "text_generation" and metrics["perplexity"] > 1


def test_the_stream_through_the_deployment_url_comes_in_pieces_that_make_the_same_text(
    deployed: tuple[dict[str, str], dict[str, Any]],
) -> None:
    env, d = deployed
    body = {"text_input": "import ", "parameters": {"max_tokens": 16}}
    pieces = []
    with httpx.stream("POST", f"{d['url']}/v2/models/coder/generate_stream", json=body, timeout=HANG_S) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        pieces = [json.loads(line[6:])["text_output"] for line in r.iter_lines() if line.startswith("data: ")]
    assert len(pieces) > 1
    assert "".join(pieces) == aidc(env, "predict", "coder", "--text", "import ", "--max-tokens", "16")["text"]
