"""Text sources against real files: a folder of .txt per class and a JSON Lines column, tokenised by a byte-level BPE
or a word vocabulary learnt from the training split, or by the user's own function; malformed input refused with
the file, row and column; a bug in the user's tokenizer reported as theirs at their line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aidc.errors import InvalidInput, UserCodeError
from aidc.pipeline.runner import _execute_stage
from aidc.pipeline.stage import StageContext
from aidc.store.artifacts import open_artifact_store

TOPICS = {
    "weather": ["rain falls on the hills", "a cold wind and snow", "sunny skies and warm air", "storm clouds gather"],
    "cooking": ["boil the pasta in salted water", "fry the onions in butter", "bake the bread", "stir the soup"],
    "sailing": ["hoist the main sail", "the boat heels in the gust", "drop the anchor in the bay", "trim the jib"],
}


def corpus(n_each: int = 12) -> list[tuple[str, str]]:
    return [
        (f"{phrase} number {i}", topic)
        for topic, phrases in TOPICS.items()
        for i in range(n_each)
        for phrase in phrases[i % len(phrases) : i % len(phrases) + 1]
    ]


def test_a_folder_of_texts_per_class_becomes_fixed_length_ids(run_data, tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    for i, (text, topic) in enumerate(corpus()):
        (folder / topic).mkdir(parents=True, exist_ok=True)
        (folder / topic / f"{i:03d}.txt").write_text(text, encoding="utf-8")
    dataset, arrays = run_data(source=str(folder), text={"tokenize": "words", "length": 6})
    assert arrays["x_train"].dtype == np.int64 and arrays["x_train"].shape[1] == 6
    assert sum(len(arrays[f"y_{p}"]) for p in ("train", "val", "test")) == 36
    assert dataset.schema["label"]["names"] == ["cooking", "sailing", "weather"]
    assert dataset.schema["features"] == {"shape": [6], "dtype": "int64", "kind": "token ids"}
    vocab = int(arrays["vocab_size"][0])
    assert dataset.schema["text"]["vocab_size"] == vocab and arrays["x_train"].max() < vocab
    # "rain falls on the hills number 0" is 6 words: no padding; a shorter text is padded with 0 at its end
    assert dataset.stats["lineage"]["files"] == 36 and dataset.stats["text"]["tokens_max"] == 6


def test_a_jsonl_text_column_is_tokenised_by_bpe_learnt_on_train_and_the_tokenizer_is_kept(
    run_data, tmp_path: Path
) -> None:
    path = tmp_path / "notes.jsonl"
    path.write_text("".join(json.dumps({"body": t, "topic": k}) + "\n" for t, k in corpus()))
    dataset, arrays = run_data(
        source=str(path), columns={"text": "body", "label": "topic"}, text={"vocab_size": 300, "length": 16}
    )
    assert arrays["x_test"].dtype == np.int64 and arrays["x_test"].shape[1] == 16
    saved = dataset.schema["text"]["tokenizer"]
    store = open_artifact_store((tmp_path / "artifacts").as_uri())
    tokenizer = json.loads(store.get_bytes(saved["artifact"]))
    assert tokenizer["kind"] == "bpe"
    # a client loads the stored tokenizer and gets the very ids the model was trained on
    from tokenizers import Tokenizer

    client = Tokenizer.from_str(json.dumps(tokenizer["tokenizers"]))
    ids = client.encode("rain falls on the hills number 0", add_special_tokens=False).ids
    first = arrays["x_train"][0]
    assert len(ids) <= 16 and all(i < int(arrays["vocab_size"][0]) for i in ids)
    assert 0 not in ids and first[first != 0].size > 0  # 0 is padding only
    again, arrays_again = run_data(
        source=str(path), columns={"text": "body", "label": "topic"}, text={"vocab_size": 300, "length": 16}
    )
    assert again.fingerprint == dataset.fingerprint  # the same texts and seed: the same dataset


TOKENIZER = """\
def encode(text):
    return [len(word) for word in text.split()]


def buggy(text):
    words = text.split()
    return [len(w) for w in words] + [words[99]]  # their bug: an index past the end


def not_ids(text):
    return "abc"
"""


def run_text_stage(tmp_path: Path, tokenize: str) -> tuple[object, dict[str, np.ndarray]]:
    from aidc.data.preprocess import load_arrays
    from aidc.data.stage import DataConfig, DataStage

    (tmp_path / "mytok.py").write_text(TOKENIZER)
    path = tmp_path / "notes.csv"
    lines = ["text,label"] + [f"{t},{k}" for t, k in corpus()]
    path.write_text("\n".join(lines) + "\n")
    store = open_artifact_store((tmp_path / "artifacts").as_uri())
    ctx = StageContext("r1", "data", store, None, str(tmp_path / "data.log"), str(tmp_path), spec_dir=str(tmp_path))
    config = DataConfig.model_validate(
        {"source": "notes.csv", "columns": {"text": "text"}, "text": {"tokenize": tokenize, "vocab_size": 50}}
    )
    out = _execute_stage(DataStage, ctx, config, {})
    return out["dataset"], load_arrays(store.get_bytes(out["splits"]["artifact"]))


def test_the_users_tokenizer_gives_the_ids_and_its_bug_is_theirs(tmp_path: Path) -> None:
    dataset, arrays = run_text_stage(tmp_path, "mytok:encode")
    assert dataset.schema["text"]["vocab_size"] == 50 and arrays["x_train"].shape[1] == 64
    lengths = {len(w) for t, _ in corpus() for w in t.split()}
    assert set(np.unique(arrays["x_train"])) <= lengths | {0}
    with pytest.raises(UserCodeError) as caught:
        run_text_stage(tmp_path, "mytok:buggy")
    assert caught.value.where == f"{tmp_path / 'mytok.py'}:7"
    with pytest.raises(InvalidInput, match=r"notes.csv, row 1: mytok:not_ids returned 'abc', not a list"):
        run_text_stage(tmp_path, "mytok:not_ids")


def test_malformed_text_sources_are_refused_naming_the_file_row_and_column(run_data, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    (empty / "a").mkdir(parents=True)
    (empty / "a" / "note.txt").write_bytes(b"fine\nstill fine\nbad \xff byte")
    (empty / "b").mkdir()
    with pytest.raises(InvalidInput, match=r"empty/a/note.txt, line 3: not UTF-8 text \(byte 0xff at offset 20\)"):
        run_data(source=str(empty), format="text")
    hollow = tmp_path / "hollow"
    (hollow / "a").mkdir(parents=True)
    with pytest.raises(InvalidInput, match="hollow has no texts"):
        run_data(source=str(hollow), format="text")
    path = tmp_path / "notes.jsonl"
    rows = [{"body": t, "topic": k} for t, k in corpus()]
    rows[4]["body"] = 42
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InvalidInput, match=r"notes.jsonl, row 5, column 'body': 42 is not text"):
        run_data(source=str(path), columns={"text": "body", "label": "topic"})
    with pytest.raises(InvalidInput, match=r"notes.jsonl has no text column 'words' \(its columns: body, topic\)"):
        run_data(source=str(path), columns={"text": "words", "label": "topic"})
    rows[4]["body"] = None
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InvalidInput, match=r"notes.jsonl, row 5: the text is missing"):
        run_data(source=str(path), columns={"text": "body", "label": "topic"}, clean={"drop_nulls": False})
    dataset, _ = run_data(source=str(path), columns={"text": "body", "label": "topic"})
    assert dataset.stats["dropped_null"] == 1


def test_a_tokenizer_is_bpe_words_or_module_function() -> None:
    from aidc.data.stage import DataConfig

    with pytest.raises(ValueError, match="neither bpe, words nor MODULE:FUNCTION"):
        DataConfig.model_validate({"text": {"tokenize": "sentencepiece"}})
    with pytest.raises(ValueError, match="a dataset is texts or images"):
        DataConfig.model_validate({"columns": {"text": "body", "image": "path"}})


def test_the_exported_text_model_carries_its_tokenizer_so_a_client_can_make_its_input(tmp_path: Path) -> None:
    import io

    import onnxruntime as ort
    import torch

    from aidc.data.stage import DataConfig, DataStage
    from aidc.serving.export import TOKENIZER_KEY, ExportConfig, ExportStage
    from aidc.training.zoo import build_model

    path = tmp_path / "notes.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": k}) + "\n" for t, k in corpus()))
    store = open_artifact_store((tmp_path / "artifacts").as_uri())
    ctx = StageContext("r1", "data", store, None, str(tmp_path / "stage.log"), str(tmp_path))
    config = DataConfig.model_validate({"source": str(path), "columns": {"text": "text"}, "text": {"length": 12}})
    data = DataStage().run(ctx, config, {})
    arch = {"model": "textcnn", "input_shape": [12], "classes": 3, "width": 8, "vocab_size": 2000}
    arch["vocab_size"] = data["dataset"].schema["text"]["vocab_size"]
    weights = io.BytesIO()
    torch.save({"model": build_model(arch).state_dict()}, weights)
    checkpoint = ctx.put_artifact(weights.getvalue(), kind="checkpoint", name="model.pt")
    out = ExportStage().run(ctx, ExportConfig(), {"checkpoint": checkpoint, "model": arch, "data": data["splits"]})
    session = ort.InferenceSession(store.get_bytes(out["onnx"]["artifact"]), providers=["CPUExecutionProvider"])
    carried = session.get_modelmeta().custom_metadata_map[TOKENIZER_KEY]
    assert carried.encode() == store.get_bytes(data["dataset"].schema["text"]["tokenizer"]["artifact"])
    from tokenizers import Tokenizer

    client = Tokenizer.from_str(json.dumps(json.loads(carried)["tokenizers"]))
    ids = np.zeros((1, 12), dtype=np.int64)
    encoded = client.encode("storm clouds gather number 3", add_special_tokens=False).ids[:12]
    ids[0, : len(encoded)] = encoded
    (logits,) = session.run(None, {"tokens": ids})
    assert logits.shape == (1, 3)
