"""The `gpt` model, its tokenizer and its training step: a tiny config learns, the key/value cache changes no
generated token, the tokenizer gives back the exact text, and a resumed run takes the very step it would have taken."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from aidc.training.gpt.generate import Sampling, generate
from aidc.training.gpt.model import GPT, GPTConfig, KVCache
from aidc.training.gpt.text import END_OF_TEXT, encode_files, pack, split_by_file, stdlib_corpus, train_tokenizer
from aidc.training.gpt.train import LMTraining, Schedule

TINY = {"dim": 64, "layers": 2, "heads": 4, "kv_heads": 2, "context": 64}


@pytest.fixture(scope="module")
def corpus() -> dict[str, object]:
    files = stdlib_corpus(max_bytes=150_000)
    train, val = split_by_file(files, 0.2)
    tok = train_tokenizer((f.text for f in train), 384)
    eot = tok.token_to_id(END_OF_TEXT)
    return {
        "tok": tok,
        "train": pack(encode_files(tok, train), 32, eot),
        "val": pack(encode_files(tok, val), 32, eot),
        "val_files": val,
        "train_files": train,
    }


def tiny(vocab: int, seed: int = 0, **over: int) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=vocab, **{**TINY, **over}))


def training(model: GPT, tokens: np.ndarray, steps: int = 40, accumulation: int = 2) -> LMTraining:
    return LMTraining(
        model,
        tokens,
        schedule=Schedule(lr=3e-3, min_lr=3e-4, warmup=5, steps=steps),
        batch_size=8,
        accumulation=accumulation,
        clip=1.0,
        precision="fp32",
    )


def test_split_is_by_whole_file(corpus: dict) -> None:
    train_names = {f.name for f in corpus["train_files"]}
    val_names = {f.name for f in corpus["val_files"]}
    assert val_names and train_names and not train_names & val_names


def test_tokenizer_round_trips_text_exactly(corpus: dict) -> None:
    tok = corpus["tok"]
    texts = [
        corpus["val_files"][0].text,
        "def f(x):\n\treturn x  # tab, two spaces\r\n",
        "unicode: naïve café — 数据中心 🚀 \x00 end",
        "   leading and trailing spaces   ",
    ]
    for text in texts:
        assert tok.decode(tok.encode(text, add_special_tokens=False).ids, skip_special_tokens=False) == text


def test_packing_makes_every_token_a_target_once() -> None:
    rows = pack([[1, 2, 3], [4, 5]], seq_len=2, eot=0)
    assert rows.tolist() == [[1, 2, 3], [3, 0, 4], [4, 5, 0]]


def test_loss_decreases_on_the_tiny_config(corpus: dict) -> None:
    vocab = corpus["tok"].get_vocab_size()
    run = training(tiny(vocab), corpus["train"], steps=25, accumulation=1)
    before = run.evaluate(corpus["val"], batches=4)
    for _ in range(25):
        run.step()
    after = run.evaluate(corpus["val"], batches=4)
    assert before == pytest.approx(np.log(vocab), rel=0.1)  # an untrained model guesses uniformly
    assert after < before - 0.75, (before, after)


def test_resume_from_a_checkpoint_takes_the_same_next_step(corpus: dict) -> None:
    vocab = corpus["tok"].get_vocab_size()
    run = training(tiny(vocab), corpus["train"])
    for _ in range(3):
        run.step()
    blob = io.BytesIO()
    torch.save(run.state_dict(), blob)
    uninterrupted = float(run.step())

    resumed = training(tiny(vocab, seed=99), corpus["train"])  # other initial weights: the checkpoint must win
    resumed.load_state_dict(torch.load(io.BytesIO(blob.getvalue()), weights_only=False))
    assert float(resumed.step()) == uninterrupted
    for a, b in zip(run.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("sampling", [Sampling(24), Sampling(24, temperature=0.9, top_k=20, seed=5)])
def test_kv_cache_generation_equals_generation_without_it(corpus: dict, sampling: Sampling) -> None:
    model = tiny(corpus["tok"].get_vocab_size(), seed=3)
    prompt = corpus["tok"].encode("import os\ndef main(").ids
    with_cache = generate(model, prompt, sampling, use_cache=True)
    without = generate(model, prompt, sampling, use_cache=False)
    assert len(with_cache) == 24
    assert with_cache == without


def test_rows_of_different_lengths_decode_together_as_they_do_alone() -> None:
    model = tiny(50, seed=1).eval()
    prompts = [[1, 2, 3, 4, 5], [7, 8]]
    alone, caches = [], []
    with torch.no_grad():
        for p in prompts:
            cache = KVCache.empty(model.config, 1, torch.device("cpu"), torch.float32)
            model(torch.tensor([p]), cache)
            caches.append(cache)
            step = model(torch.tensor([[9]]), cache)[:, -1]
            alone.append(step)
        batch = KVCache.concat([c.select(torch.tensor([0])) for c in caches])
        batch.lengths -= 1  # drop the token decoded alone: decode it again, together
        together = model(torch.tensor([[9], [9]]), batch)[:, -1]
    torch.testing.assert_close(together, torch.cat(alone), rtol=1e-5, atol=1e-5)


def test_sizes_span_from_thousands_to_billions_of_parameters() -> None:
    from aidc.training.gpt.model import SIZES

    small = GPTConfig(vocab_size=256, **SIZES["tiny"])
    big = GPTConfig(vocab_size=32_000, **SIZES["7b"])
    assert small.matmul_params() < 1_000_000
    assert big.matmul_params() > 5_000_000_000


@pytest.mark.parametrize("name", ["smoke", "pipeline", "h200"])
def test_the_shipped_gpt_pipelines_are_valid_and_build_their_model(name: str) -> None:
    from pathlib import Path

    from aidc.pipeline.spec import load_pipeline
    from aidc.training.gpt.stage import architecture

    pipeline = load_pipeline(Path(__file__).resolve().parents[2] / "examples" / "gpt" / f"{name}.yaml")
    text, train = pipeline.stages["text"].config, pipeline.stages["train"].config
    arch = architecture(train, text.vocab_size, text.seq_len)  # type: ignore[arg-type, attr-defined]
    params = GPTConfig.from_dict(arch).matmul_params()
    assert (
        {"smoke": 1e5, "pipeline": 1e6, "h200": 3e8}[name] < params < {"smoke": 1e6, "pipeline": 5e6, "h200": 5e8}[name]
    )
