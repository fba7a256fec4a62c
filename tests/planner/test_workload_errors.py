"""A workload file the planner cannot use is refused with exit 2 at the line and column of what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from aidc.errors import InvalidSpec
from aidc.planner.plan import plan_file

JOB = "training:\n  - name: a\n    model: {layers: 32, hidden: 4096, heads: 32}\n    tokens: 1.0e12\n    gpus: 64\n"


def _refusal(tmp_path: Path, text: str) -> InvalidSpec:
    spec = tmp_path / "w.yaml"
    spec.write_text(text)
    with pytest.raises(InvalidSpec) as caught:
        plan_file(spec)
    assert caught.value.exit_code == 2
    return caught.value


def test_tensor_parallel_wider_than_nvlink_domain_is_refused_at_tp(tmp_path: Path) -> None:
    err = _refusal(tmp_path, JOB + "    parallelism:\n      tp: 16\n")
    assert str(err).startswith(f"{tmp_path / 'w.yaml'}:7:11: training[0].parallelism.tp: tp 16 is wider")
    assert "NVLink domain (8 GPUs)" in str(err)


def test_serving_tensor_parallel_wider_than_nvlink_domain_is_refused(tmp_path: Path) -> None:
    svc = (
        "inference:\n  - name: s\n    model: {params: 7.0e10}\n    requests_per_s: 1\n    prompt_tokens: 100\n"
        "    output_tokens: 100\n    gpu: A100-80GB\n    tp: 16\n"
    )
    assert ":8:9: inference[0].tp: tp 16 is wider" in str(_refusal(tmp_path, svc))


def test_tensor_parallel_inside_a_large_nvlink_domain_is_accepted(tmp_path: Path) -> None:
    spec = tmp_path / "w.yaml"
    spec.write_text(JOB.replace("gpus: 64", "gpus: 144\n    gpu: GB200-NVL72") + "    parallelism:\n      tp: 16\n")
    # 32 heads divide by 16; the NVL72 domain holds 72 GPUs (144 = 16 × 9), so the layout is planned, not refused
    assert plan_file(spec).jobs[0].training.choice.best is not None


def test_unknown_gpu_is_located_at_its_value(tmp_path: Path) -> None:
    err = _refusal(tmp_path, JOB + "    gpu: H1OO\n")
    assert f"{tmp_path / 'w.yaml'}:6:10: training[0].gpu: unknown GPU 'H1OO'" in str(err)


def test_unknown_key_is_located_at_the_key_without_union_noise(tmp_path: Path) -> None:
    err = _refusal(tmp_path, JOB + "    parallelism:\n      tp: 8\n      bogus: 3\n")
    text = str(err)
    assert ":8:7: training[0].parallelism.bogus: Extra inputs" in text
    assert "literal" not in text and "Parallelism." not in text
    assert len(err.problems) == 1


def test_parallelism_auto_is_accepted_and_other_words_are_not(tmp_path: Path) -> None:
    spec = tmp_path / "ok.yaml"
    spec.write_text(JOB + "    parallelism: auto\n")
    assert plan_file(spec).jobs[0].training.choice.best is not None
    assert "training[0].parallelism:" in str(_refusal(tmp_path, JOB + "    parallelism: fast\n"))


def test_empty_file_says_its_hint_once(tmp_path: Path) -> None:
    text = str(_refusal(tmp_path, ""))
    assert "the document is empty" in text and text.count("hint:") == 1


def test_single_problem_says_its_hint_once(tmp_path: Path) -> None:
    assert str(_refusal(tmp_path, JOB.replace("1.0e12", "lots"))).count("hint:") == 1


def test_schema_still_offers_parallelism_auto() -> None:
    """Editors validate against `aidc schema workload`: 'auto' must stay allowed there."""
    from aidc.planner.workload import Workload

    field = Workload.model_json_schema()["$defs"]["TrainingJob"]["properties"]["parallelism"]
    assert {"const": "auto"} in field["anyOf"]
