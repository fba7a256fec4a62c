"""The run report: one self-contained HTML page per pipeline run (stages, curves, evaluation, data, lineage)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from aidc.errors import AidcError
from aidc.report import plots
from aidc.report.lineage import describe, lineage_tree
from aidc.store.metadata.base import MetadataStore
from aidc.store.metadata.records import DatasetVersion, Metric, ModelVersion, PipelineRun, StageRun

LOSS_CURVES = ("train_loss", "val_loss")
ACCURACY_CURVES = ("train_accuracy", "val_accuracy")
MAE_CURVES = ("train_mae", "val_mae")  # a regression's training shows its mean absolute error instead
EPOCH_COLUMNS = (
    "train_loss",
    "val_loss",
    "train_accuracy",
    "val_accuracy",
    "train_mae",
    "val_mae",
    "epoch_seconds",
)


def write_run_report(store: MetadataStore, run_id: str, dest: Path, energy: dict[str, Any] | None = None) -> Path:
    """Render the report of ``run_id`` to ``dest`` (parents created) and return the path written; ``energy``: the
    run's kWh and gCO2e (aidc.services.energy), where they were worked out."""
    html = render_run_report(store, run_id, energy)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(html, encoding="utf-8")
    return dest


def save_run_report(store: MetadataStore, run_id: str, dest: Path, energy: dict[str, Any] | None = None) -> Path:
    """Write the report of ``run_id`` to ``dest`` and remember it as the run's report."""
    path = write_run_report(store, run_id, dest, energy)
    store.set_run_report(run_id, str(path))
    return path


def render_run_report(store: MetadataStore, run_id: str, energy: dict[str, Any] | None = None) -> str:
    env = Environment(
        loader=FileSystemLoader(str(Path(__file__).parent / "templates")), autoescape=select_autoescape(["html", "j2"])
    )
    return env.get_template("run_report.html.j2").render(**collect(store, run_id), energy=energy)


def collect(store: MetadataStore, run_id: str) -> dict[str, Any]:
    """Everything the template shows; a piece the run never produced is None, and the page says so."""
    run = store.get_run(run_id)
    stages = store.list_stages(run.id)
    metrics, metrics_from = _training_metrics(store, run.id, _stage(stages, "train"))
    evaluation = _outputs(stages, "evaluate").get("metrics")
    dataset = _dataset(store, _outputs(stages, "data"))
    model = _model(store, run.id, _outputs(stages, "register"))
    deploy = _outputs(stages, "deploy")
    return {
        "run": run,
        "duration": _seconds(run.created_at, run.finished_at),
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "stages": stages,
        "timeline": Markup(plots.timeline_svg(_timeline(run, stages))) if any(s.started_at for s in stages) else None,
        **_curves(metrics),
        "metrics_from": metrics_from,
        "evaluation": evaluation,
        "language_model": _language_model(stages),
        "confusion": _confusion(evaluation),
        "dataset": dataset,
        "balance": Markup(plots.class_balance_svg(dataset.class_balance))
        if dataset and dataset.class_balance
        else None,
        "model": model,
        "lineage": _lineage(store, model),
        "parity": _outputs(stages, "export").get("parity"),
        **_compression(stages),
        **_federated(stages),
        "evaluations": _evaluations(stages),
        "deployment": deploy.get("deployment"),
        "checks": deploy.get("checks"),
        "spec_yaml": yaml.safe_dump(run.spec, sort_keys=False, allow_unicode=True) if run.spec else None,
    }


def _finished(stages: list[StageRun], kind: str) -> list[StageRun]:
    return [s for s in stages if s.kind == kind and s.status in ("succeeded", "cached") and s.outputs]


def _compression(stages: list[StageRun]) -> dict[str, Any]:
    """Every compress stage's comparison with its parent, and the accuracy/latency/size picture of them all."""
    rows = [{"stage": s.name, **s.outputs["comparison"]} for s in _finished(stages, "compress")]
    if not rows:
        return {"compression": [], "tradeoff": None}
    points = [{"label": "parent", **rows[0]["parent"]}] + [{"label": r["label"], **r["child"]} for r in rows]
    return {"compression": rows, "tradeoff": Markup(plots.tradeoff_svg(points))}


def _federated(stages: list[StageRun]) -> dict[str, Any]:
    """The federated stage's accuracy per round, against centralised training on the same data when it ran."""
    done = _finished(stages, "federated")
    if not done:
        return {"federated": None, "rounds_plot": None}
    summary = done[-1].outputs["summary"]
    series = {"federated": [(r["round"], r["accuracy"]) for r in summary["rounds"] if r.get("accuracy") is not None]}
    central = summary.get("centralised") or {}
    reference = {"centralised": central["accuracy"]} if central.get("accuracy") is not None else {}
    return {"federated": summary, "rounds_plot": Markup(plots.rounds_svg(series, reference)) if series else None}


def _evaluations(stages: list[StageRun]) -> list[dict[str, Any]]:
    """Each evaluate stage's headline, side by side, when a run evaluates more than one model (transfer vs scratch)."""
    done = _finished(stages, "evaluate")
    if len(done) < 2:
        return []
    return [{"stage": s.name, **{k: s.outputs["metrics"].get(k) for k in ("accuracy", "macro_f1", "n")}} for s in done]


def _stage(stages: list[StageRun], kind: str) -> StageRun | None:
    return next((s for s in reversed(stages) if s.kind == kind), None)


def _outputs(stages: list[StageRun], kind: str) -> dict[str, Any]:
    """The outputs of the last finished stage of ``kind`` (a cached stage carries the outputs it reused)."""
    done = [s for s in stages if s.kind == kind and s.status in ("succeeded", "cached") and s.outputs]
    return done[-1].outputs if done else {}


def _training_metrics(store: MetadataStore, run_id: str, train: StageRun | None) -> tuple[list[Metric], str | None]:
    """The train stage's per-epoch metrics, and the run they come from when the stage was reused from cache."""
    if train is None:
        return store.metrics(run_id), None
    if train.status == "cached" and train.cache_key:
        source = store.find_cached_stage(train.cache_key, project_of=run_id)
        if source is not None and source.run_id != run_id:
            return store.metrics(source.run_id, stage=source.name), source.run_id
    return store.metrics(run_id, stage=train.name), None


def _model(store: MetadataStore, run_id: str, register: dict[str, Any]) -> ModelVersion | None:
    """The version the register stage names (a cached one names the version it reused), else one this run made."""
    mv_id = (register.get("model") or {}).get("model_version_id")
    if mv_id is not None:
        try:
            return store.get_model_version_by_id(int(mv_id))
        except AidcError:
            pass
    return next((mv for mv in reversed(store.list_model_versions()) if mv.run_id == run_id), None)


def _naive_utc(dt: datetime) -> datetime:
    # SQLite hands back naive UTC datetimes, PostgreSQL aware ones: compare them on one footing
    return dt.astimezone(UTC).replace(tzinfo=None) if dt.tzinfo else dt


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return (_naive_utc(end) - _naive_utc(start)).total_seconds() if start and end else None


def _timeline(run: PipelineRun, stages: list[StageRun]) -> list[plots.TimelineBar]:
    started = [_naive_utc(s.started_at) for s in stages if s.started_at]
    origin = min(started + [_naive_utc(run.created_at)])
    last = max(started + [_naive_utc(s.finished_at) for s in stages if s.finished_at])
    end_of_run = _naive_utc(run.finished_at) if run.finished_at else last
    bars = []
    for s in stages:
        if s.started_at is None:
            bars.append(plots.TimelineBar(s.name, s.status, 0.0, None))
            continue
        start = _naive_utc(s.started_at)
        end = (
            _naive_utc(s.finished_at) if s.finished_at else end_of_run
        )  # an unfinished stage ran until the run stopped
        bars.append(
            plots.TimelineBar(
                s.name, s.status, (start - origin).total_seconds(), max((end - start).total_seconds(), 0.0)
            )
        )
    return bars


def _curves(metrics: list[Metric]) -> dict[str, Any]:
    series: dict[str, dict[int, float]] = {}
    for m in metrics:
        series.setdefault(m.name, {})[m.step] = m.value  # a resumed epoch overwrites its first attempt

    def plot(names: tuple[str, ...], title: str, ylabel: str) -> Markup | None:
        chosen = {n: sorted(series[n].items()) for n in names if series.get(n)}
        return Markup(plots.curves_svg(chosen, title, ylabel)) if chosen else None

    epochs = sorted({step for n in EPOCH_COLUMNS for step in series.get(n, {})})
    return {
        "loss_plot": plot(LOSS_CURVES, "loss", "cross-entropy" if "val_mae" not in series else "squared error"),
        "accuracy_plot": plot(ACCURACY_CURVES, "accuracy", "accuracy") or plot(MAE_CURVES, "error", "MAE"),
        "perplexity_plot": plot(("train_perplexity", "val_perplexity"), "perplexity", "perplexity"),
        "throughput_plot": plot(("tokens_per_s",), "training throughput", "tokens/s"),
        "epoch_columns": [c for c in EPOCH_COLUMNS if c in series],
        "epochs": [(e, {n: series[n].get(e) for n in EPOCH_COLUMNS if n in series}) for e in epochs],
    }


def _language_model(stages: list[StageRun]) -> dict[str, Any] | None:
    """A language-model run's throughput and MFU (train_lm), held-out perplexity and samples (evaluate_lm)."""
    train = _outputs(stages, "train_lm").get("summary")
    evaluation = _outputs(stages, "evaluate_lm")
    if not train and not evaluation:
        return None
    return {"train": train, "metrics": evaluation.get("metrics"), "samples": evaluation.get("samples") or []}


def _confusion(evaluation: dict[str, Any] | None) -> Markup | None:
    if not evaluation or not evaluation.get("confusion_matrix"):
        return None
    matrix = evaluation["confusion_matrix"]
    return Markup(plots.confusion_svg(matrix, evaluation.get("labels") or list(range(len(matrix)))))


def _dataset(store: MetadataStore, outputs: dict[str, Any]) -> DatasetVersion | None:
    dv_id = (outputs.get("dataset") or {}).get("dataset_version_id")
    if dv_id is None:
        return None
    try:
        return store.get_dataset_version(int(dv_id))
    except AidcError:  # the report still renders if the version was removed since
        return None


def _lineage(store: MetadataStore, model: ModelVersion | None) -> list[dict[str, Any]]:
    """The chain upstream of the run's model version, depth-first, as rows the template indents."""
    if model is None:
        return []
    tree = lineage_tree(store.iter_all_lineage("model_version", str(model.id)), "model_version", str(model.id))
    return [
        {"depth": depth, "kind": n.kind, "label": describe(store, n.kind, n.id), "relation": n.relation}
        for depth, n in tree.walk()
    ]
