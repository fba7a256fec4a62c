"""The planner's prediction of a run's training beside what it measured: time from the planner's host model
(aidc.planner.host, numpy probes of this host), energy from that time and the node's power model in the spec, and
the same stage's measured seconds and energy — or, where the planner cannot predict the work, why not.

What the planner predicts here is a zoo ``train`` stage (cnn, mlp) trained data-parallel on CPU workers of one
host: its epochs (those the stage ran, early stopping included) of DDP steps. A ``train_lm`` (gpt) stage, a
user's own model, GPU training and a stage that ran elsewhere than this host are not covered, and say so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aidc.monitoring.energy import Energy

if TYPE_CHECKING:
    from aidc.monitoring.sources import PowerModel
    from aidc.store.metadata import MetadataStore
    from aidc.store.metadata.records import StageRun

JSON = dict[str, Any]
ZOO = ("cnn", "mlp")


def _none(why: str) -> JSON:
    return {"predicted_kwh": None, "why": why}


def train_stage(store: MetadataStore, run: JSON) -> tuple[StageRun | None, JSON]:
    """The run's training stage and its ``with`` block from the run's pipeline spec."""
    stages = store.list_stages(run["id"])
    found = next((s for s in stages if s.kind in ("train", "train_lm")), None)
    stage_specs: list[JSON] = (run.get("spec") or {}).get("stages", [])
    spec: JSON = next((s for s in stage_specs if found and s.get("name") == found.name), {})
    return found, dict(spec.get("with") or {})


def training_samples(store: MetadataStore, run: JSON, stage: StageRun) -> int | None:
    """How many training rows the stage read: the train split of the dataset version the run's data stage made."""
    for s in store.list_stages(run["id"]):
        ref = (s.outputs or {}).get("dataset")
        if isinstance(ref, dict) and ref.get("dataset_version_id") is not None:
            splits = store.get_dataset_version(int(ref["dataset_version_id"])).stats.get("splits") or {}
            if splits.get("train"):
                return int(splits["train"])
    return None


def predict_training(
    store: MetadataStore,
    run: JSON,
    *,
    power_model: PowerModel | None,
    node_cpus: float | None,
    share: float,
    measure: Any,
    account: Any,
) -> JSON:
    """The planner's seconds and kWh for the run's training stage beside the measured ones.

    ``measure(start, end) → Energy``: the run's share of its node's IT energy over a span; ``account(Energy) →
    figures``: facility kWh and gCO2e as the run's own energy is accounted (same PUE and grid intensity);
    ``share``: the run's share of the node (its job's CPUs over the node's)."""
    stage, with_ = train_stage(store, run)
    if stage is None:
        return _none("the run has no training stage: the planner predicts training only")
    if stage.kind == "train_lm":
        return _none("the planner's host model covers the zoo's cnn and mlp training, not a train_lm (gpt) stage")
    if stage.status == "cached":
        return _none("its training was reused from an earlier run's cache: no training ran in this run")
    if stage.status == "running":
        return _none("its training stage is still running: the comparison comes when it ends")
    if stage.status != "succeeded" or stage.started_at is None or stage.finished_at is None:
        return _none(f"its training stage did not finish ({stage.status}): there is no training to compare")
    arch = (stage.outputs or {}).get("model") or {}
    if arch.get("model") not in ZOO:
        return _none(f"the planner models the zoo's {' and '.join(ZOO)}, not {arch.get('model')!r}")
    if with_.get("device") == "cuda":
        return _none("GPU training: the planner's host model is of CPU workers")
    summary = (stage.outputs or {}).get("summary") or {}
    epochs = int(summary.get("epochs_run") or 0)
    samples = training_samples(store, run, stage)
    if not epochs or not samples:
        return _none("the run does not record how many epochs and training rows its training had")
    if power_model is None:
        return _none("no power to predict with: the facility spec gives no nominal and maximum power for the node")
    from aidc.planner.host import predict_ddp_epoch, zoo_network

    workers = int(with_.get("workers") or 2)
    batch = max(1, int(with_.get("batch_size") or 64) // workers)
    epoch = predict_ddp_epoch(zoo_network(arch, batch), workers, samples)
    seconds = epochs * epoch["epoch_s"]
    # the node's power while its workers keep `workers` cores busy, as the power model has it
    utilisation = min(1.0, workers / node_cpus) if node_cpus else 1.0
    watts = power_model.watts(utilisation)
    predicted = Energy(watts * seconds * share, False, seconds, seconds)
    start, end = stage.started_at.timestamp(), stage.finished_at.timestamp()
    # what the prediction covers is the epochs' loop (rank 0 times each: `epoch_seconds`), not the stage's start-up,
    # checkpoints and hand-over; the stage's measured energy is scaled to its epochs' share of its time
    epoch_times = [m.value for m in store.metrics(run["id"], stage=stage.name) if m.name == "epoch_seconds"]
    stage_s = max(1e-9, end - start)
    loop_s = min(stage_s, sum(epoch_times)) if epoch_times else stage_s
    measured = measure(start, end).scaled(loop_s / stage_s)
    p, m = account(predicted), account(measured)
    ratio = m["facility_kwh"] / p["facility_kwh"] if p["facility_kwh"] and measured.covered_s else None
    return {
        "stage": stage.name,
        "predicted_seconds": round(seconds, 3),
        "measured_seconds": round(loop_s, 3),
        "stage_seconds": round(stage_s, 3),
        "predicted_kwh": p["facility_kwh"],
        "predicted_gco2e": p["gco2e"],
        "measured_kwh": m["facility_kwh"] if measured.covered_s else None,
        "measured_gco2e": m["gco2e"] if measured.covered_s else None,
        "measured_over_predicted": round(ratio, 3) if ratio is not None else None,
        "basis": f"planner: {epochs} epoch(s) of {int(epoch['steps'])} DDP steps on {workers} CPU worker(s), "
        f"{epoch['epoch_s']:.3f} s an epoch on this host when quiet (aidc.planner.host), at {watts:.0f} W, the "
        f"spec's power model at {utilisation:.0%} of the node's CPUs, × the run's share {share:.2f}; measured: "
        + (
            f"the {len(epoch_times)} epoch(s) rank 0 timed, at the stage's mean power"
            if epoch_times
            else "the whole stage (it recorded no epoch times)"
        ),
    }
