"""What a stage's cache key depends on: settings and inputs change it; nothing else does."""

from __future__ import annotations

from pathlib import Path

from aidc.pipeline.runner import artifact_digests, cache_key
from aidc.pipeline.spec import load_pipeline

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits" / "pipeline.yaml"


def test_the_key_follows_config_and_inputs(tmp_path: Path) -> None:
    train = load_pipeline(EXAMPLE).stages["train"]
    inputs = {"data": {"artifact": "sha256:aa", "size": 1}}
    assert cache_key(train, inputs) == cache_key(load_pipeline(EXAMPLE).stages["train"], dict(inputs))
    assert cache_key(train, inputs) != cache_key(train, {"data": {"artifact": "sha256:bb", "size": 1}})
    changed = tmp_path / "p.yaml"
    changed.write_text(EXAMPLE.read_text().replace("epochs: 12", "epochs: 13"))
    assert cache_key(train, inputs) != cache_key(load_pipeline(changed).stages["train"], inputs)


def test_artifact_references_are_found_however_deep() -> None:
    outputs = {"a": {"artifact": "sha256:1", "size": 3}, "b": [{"x": {"artifact": "sha256:2"}}], "c": 5}
    assert sorted(artifact_digests(outputs)) == ["sha256:1", "sha256:2"]
