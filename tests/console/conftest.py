"""A control plane with two roles and a few records to look at: an admin of every project, and a viewer of project
alpha; a run with curves, a model version and a deployment in alpha. And Chromium for the browser tests, with
``look``: a screenshot of the page and axe-core's verdict on it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from aidc.platform import Platform
from aidc.security.roles import local_access
from aidc.settings import Settings

FACILITY = Path(__file__).parents[2] / "examples" / "facilities" / "lab-two-servers.yaml"
CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(os.environ.get("AIDC_TEST_ARTIFACTS", Path(__file__).parents[2] / "build" / "test-artifacts")) / "console"
WAIT_MS = 120_000  # a hang detector: the live part polls every 3 s, a busy machine answers slowly


@dataclass
class Console:
    platform: Platform
    tokens: dict[str, str]
    run_id: str
    model: str


def seed(platform: Platform) -> tuple[str, str]:
    md = platform.metadata
    run = md.create_run("20261205-101500-c0ffee", "digits", {}, None, project="alpha")
    for name, kind in (("data", "data"), ("train", "train")):
        stage = md.start_stage(run.id, name, kind, cache_key=None, log_path=None)
        if name == "data":
            md.finish_stage(stage.id, "succeeded", outputs={})
    md.add_metrics(run.id, "train", [("train_loss", e, 2.0 / (e + 1)) for e in range(4)])
    md.add_metrics(run.id, "train", [("val_accuracy", e, 0.5 + 0.1 * e) for e in range(4)])
    mv = md.register_model_version(
        "digits-cnn",
        onnx_digest=None,
        checkpoint_digest=None,
        run_id=run.id,
        dataset_version_id=None,
        metrics={"accuracy": 0.97},
        project="alpha",
    )
    md.add_deployment("digits-cnn", mv.id, "http://127.0.0.1:9", None, project="alpha")
    return run.id, mv.ref


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    platform = Platform(Settings(home=tmp_path / "home", facility=str(FACILITY)))
    security, local = platform.security, local_access()
    security.create_project(local, "alpha")
    tokens = {}
    for who, role, project in (("root", "admin", "*"), ("vera", "viewer", "alpha")):
        security.create_principal(local, who)
        security.grant(local, who, role, project)
        tokens[who] = security.create_token(local, name=who, principal=who)["token"]
    run_id, model = seed(platform)
    yield Console(platform, tokens, run_id, model)
    platform.close()


@pytest.fixture
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
        )
        yield chromium
        chromium.close()


def look(page: object, name: str) -> None:
    """Photograph the page and hold it to axe-core: no serious or critical violation."""
    from axe_playwright_python.sync_playwright import Axe

    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]
    found = Axe().run(page).response["violations"]
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in found
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == [], f"{name}: {bad}"
