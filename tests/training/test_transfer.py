"""Transfer learning: a digits CNN's body carried over to a letters task with a new head, frozen layers stay put, the
backbone trains at the lower rate. In this process (no Ray: kept short)."""

from __future__ import annotations

import io

import pytest
import torch
from tests.lifecycle import Digits, digits

from aidc.errors import InvalidInput
from aidc.training.transfer import Transfer, arch_for, parameter_groups, parent_arch, start_from
from aidc.training.zoo import build_model


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> Digits:
    return digits(tmp_path_factory.mktemp("transfer"))


def test_the_body_is_carried_over_and_the_head_made_for_the_new_labels(teacher: Digits) -> None:
    checkpoint = teacher.ctx.get_artifact(teacher.checkpoint)
    arch = arch_for(parent_arch(checkpoint), [1, 8, 8], 8)
    model = build_model(arch)
    done = start_from(model, checkpoint, Transfer(freeze=["0.*"]))
    assert done["fresh"] == ["9.bias", "9.weight"] and "7.weight" in done["loaded"]
    assert done["frozen"] == ["0.weight", "0.bias"]
    parent = torch.load(io.BytesIO(checkpoint), weights_only=True)["model"]
    assert torch.equal(model.state_dict()["2.weight"], parent["2.weight"])
    groups = parameter_groups(model, 0.01, Transfer(freeze=["0.*"]))
    assert [g["lr"] for g in groups] == [0.01, pytest.approx(0.001)]
    assert sum(len(g["params"]) for g in groups) == 6  # the frozen first layer is not trained at all
    with pytest.raises(InvalidInput, match="name no parameter"):
        start_from(build_model(arch), checkpoint, Transfer(freeze=["conv1.*"]))
    with pytest.raises(InvalidInput, match="shape"):
        arch_for(parent_arch(checkpoint), [1, 16, 16], 8)
