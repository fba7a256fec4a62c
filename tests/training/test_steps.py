"""An epoch stopped part-way and resumed from what the checkpoint keeps trains on the same batches, with the
same dropout, to the same weights and the same epoch metrics as the epoch that was never stopped."""

from __future__ import annotations

import io

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from aidc.training.loop import make_optimizer
from aidc.training.steps import EpochSampler, EpochSums, rng_state, train_steps
from aidc.training.zoo import build_model

ARCH = {"model": "mlp", "input_shape": [1, 4, 4], "classes": 3, "width": 16, "dropout": 0.3}
CPU = torch.device("cpu")


def dataset(n: int = 203) -> TensorDataset:
    gen = np.random.default_rng(7)
    x = gen.normal(size=(n, 1, 4, 4)).astype(np.float32)
    return TensorDataset(
        torch.from_numpy(x), torch.from_numpy((x.sum(axis=(1, 2, 3)) > 0).astype(np.int64) + (x[:, 0, 0, 0] > 1))
    )


def batches(
    data: TensorDataset, epoch: int, *, workers: int, rank: int, skip_steps: int = 0, batch: int = 8
) -> list[list[int]]:
    sampler = EpochSampler(data, workers, rank, seed=3)
    sampler.set_epoch(epoch, skip=skip_steps * batch)
    indices = list(sampler)
    return [indices[i : i + batch] for i in range(0, len(indices), batch)]


def test_skipping_k_steps_leaves_exactly_the_batches_an_unstopped_epoch_has_after_step_k() -> None:
    data = dataset()
    for workers in (1, 2, 3):
        for rank in range(workers):
            whole = batches(data, 4, workers=workers, rank=rank)
            assert whole != batches(data, 5, workers=workers, rank=rank)  # each epoch has its own order
            for k in (1, 5, len(whole) - 1):
                assert batches(data, 4, workers=workers, rank=rank, skip_steps=k) == whole[k:]
    # the workers' shares of an epoch cover every sample (DistributedSampler pads the last batch round)
    shares = {i for rank in range(2) for b in batches(data, 4, workers=2, rank=rank) for i in b}
    assert shares == set(range(len(data)))


def loader(data: TensorDataset, epoch: int, skip_steps: int = 0) -> DataLoader:
    sampler = EpochSampler(data, 1, 0, seed=3)
    sampler.set_epoch(epoch, skip=skip_steps * 8)
    return DataLoader(data, batch_size=8, sampler=sampler)


def fresh(seed: int = 0) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = build_model(ARCH)
    return model, make_optimizer("adam", model.parameters(), 0.01, 0.0)


def test_an_epoch_stopped_at_a_step_and_resumed_ends_like_the_unstopped_epoch() -> None:
    data, loss_fn = dataset(), nn.CrossEntropyLoss()
    # the epoch as it runs without a stop
    unstopped, optimizer = fresh()
    whole = EpochSums.zero(CPU)
    assert train_steps(unstopped, optimizer, loss_fn, loader(data, 2), whole) is None
    steps = len(loader(data, 2))

    # the same epoch, stopped after step 9: what the mid-epoch checkpoint keeps …
    model, optimizer = fresh()
    part = EpochSums.zero(CPU)
    assert train_steps(model, optimizer, loss_fn, loader(data, 2), part, after_step=lambda i: i == 9) == 9
    blob = io.BytesIO()
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": rng_state(CPU),
            "sums": (float(part.loss), float(part.correct), part.seen),
        },
        blob,
    )
    torch.manual_seed(1234)  # … and a new process, whose random state is anything
    saved = torch.load(io.BytesIO(blob.getvalue()), weights_only=False)
    model, optimizer = fresh(seed=99)
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    resumed = EpochSums.zero(CPU)
    resumed.add(*saved["sums"])
    seen_steps: list[int] = []
    stopped = train_steps(
        model,
        optimizer,
        loss_fn,
        loader(data, 2, skip_steps=9),
        resumed,
        first=10,
        rng=saved["rng"],
        after_step=lambda i: seen_steps.append(i) or False,
    )
    assert stopped is None and seen_steps == list(range(10, steps + 1))

    assert resumed.seen == whole.seen == len(data)
    assert float(resumed.correct) == float(whole.correct)
    assert abs(float(resumed.loss) - float(whole.loss)) <= 1e-5 * abs(float(whole.loss))
    for a, b in zip(model.parameters(), unstopped.parameters(), strict=True):
        assert torch.allclose(a, b, rtol=0, atol=1e-6)


def test_without_the_saved_random_state_the_resumed_epoch_would_differ() -> None:
    """The test above is not vacuous: the dropout masks depend on the random state the checkpoint keeps."""
    data, loss_fn = dataset(), nn.CrossEntropyLoss()
    model, optimizer = fresh()
    train_steps(model, optimizer, loss_fn, loader(data, 2), EpochSums.zero(CPU))
    reference = [p.detach().clone() for p in model.parameters()]
    model, optimizer = fresh()
    train_steps(model, optimizer, loss_fn, loader(data, 2), EpochSums.zero(CPU), after_step=lambda i: i == 9)
    torch.manual_seed(1234)
    train_steps(model, optimizer, loss_fn, loader(data, 2, skip_steps=9), EpochSums.zero(CPU), first=10)
    assert any(not torch.allclose(a, b, rtol=0, atol=1e-6) for a, b in zip(model.parameters(), reference, strict=True))


def margin_step(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], loss_fn: nn.Module) -> dict:
    """A user's step (train.step): label-smoothed loss, its outputs, and a metric of its own."""
    x, y = batch
    outputs = model(x)
    top2 = outputs.topk(2, dim=1).values
    return {
        "loss": nn.functional.cross_entropy(outputs, y, label_smoothing=0.1),
        "outputs": outputs,
        "margin": (top2[:, 0] - top2[:, 1]).mean(),
    }


def test_a_users_step_and_its_metrics_resume_part_way_like_the_unstopped_epoch() -> None:
    from aidc.training.steps import UsersStep

    data, loss_fn, step = dataset(), nn.CrossEntropyLoss(), UsersStep(margin_step, "tests:margin_step")
    unstopped, optimizer = fresh()
    whole = EpochSums.zero(CPU)
    assert train_steps(unstopped, optimizer, loss_fn, loader(data, 2), whole, users_step=step) is None
    assert whole.scored and set(whole.extra) == {"margin"}

    model, optimizer = fresh()
    part = EpochSums.zero(CPU)
    assert train_steps(model, optimizer, loss_fn, loader(data, 2), part, after_step=lambda i: i == 9, users_step=step)
    kept = {
        "rng": rng_state(CPU),
        "sums": (float(part.loss), float(part.correct), part.seen),
        "extra": {k: float(v) for k, v in part.extra.items()},  # as the mid-epoch checkpoint keeps them
    }
    resumed = EpochSums.zero(CPU)
    resumed.add(*kept["sums"], kept["extra"])
    train_steps(
        model, optimizer, loss_fn, loader(data, 2, skip_steps=9), resumed, first=10, rng=kept["rng"], users_step=step
    )
    assert resumed.seen == whole.seen and float(resumed.correct) == float(whole.correct)
    assert abs(float(resumed.extra["margin"]) - float(whole.extra["margin"])) <= 1e-5 * abs(
        float(whole.extra["margin"])
    )
    assert abs(float(resumed.loss) - float(whole.loss)) <= 1e-5 * abs(float(whole.loss))
