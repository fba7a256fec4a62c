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


def test_a_change_to_the_users_module_or_data_file_changes_the_key(tmp_path: Path) -> None:
    (tmp_path / "mymodels.py").write_text("def build(input_shape, outputs):\n    return None\n")
    (tmp_path / "table.csv").write_text("x,label\n1,0\n")
    spec = tmp_path / "p.yaml"
    spec.write_text(
        "pipeline: p\nstages:\n"
        "  - {name: data, uses: data, with: {source: table.csv}}\n"
        "  - {name: train, uses: train, inputs: {data: data.splits}, with: {model: 'mymodels:build'}}\n"
    )
    pipeline = load_pipeline(spec)
    folder = str(tmp_path)
    inputs = {"data": {"artifact": "sha256:aa", "size": 1}}
    train, data = pipeline.stages["train"], pipeline.stages["data"]
    before = cache_key(train, inputs, folder), cache_key(data, {}, folder)
    assert before == (cache_key(train, inputs, folder), cache_key(data, {}, folder))
    (tmp_path / "mymodels.py").write_text("def build(input_shape, outputs):\n    return 'fixed'\n")
    (tmp_path / "table.csv").write_text("x,label\n1,0\n2,1\n")
    assert cache_key(train, inputs, folder) != before[0]  # the fixed module runs again on --resume
    assert cache_key(data, {}, folder) != before[1]  # so does the edited table
