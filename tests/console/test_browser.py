"""The console in a real browser (Debian's Chromium, driven by Playwright) against `aidc server` as a user starts it:
log in, look at every page, watch a running run's curves and status follow the store, promote a model, and, as a
viewer, find neither the audit page nor a button to press. Every page is checked with axe-core (no serious or
critical accessibility violation) and photographed into build/test-artifacts/console/."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.api.conftest import LiveServer, start_server, stop
from tests.console.conftest import WAIT_MS, look, seed

from aidc.platform import Platform
from aidc.security.roles import local_access
from aidc.settings import Settings


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[LiveServer, Platform, dict[str, str]]]:
    home = tmp_path / "home"
    proc, live = start_server(home, secrets.token_urlsafe(32))
    platform = Platform(Settings(home=home))  # this test's own view of the server's store, to seed and to move a run
    try:
        local = local_access()
        platform.security.create_project(local, "alpha")
        platform.security.create_principal(local, "vera")
        platform.security.grant(local, "vera", "viewer", "alpha")
        viewer = platform.security.create_token(local, name="vera", principal="vera")["token"]
        run_id, model = seed(platform)
        yield live, platform, {"admin": live.admin_token, "viewer": viewer, "run": run_id, "model": model}
    finally:
        platform.close()
        stop(proc)


def test_an_admin_and_a_viewer_use_the_console(
    server: tuple[LiveServer, Platform, dict[str, str]], browser: object
) -> None:
    live, platform, known = server
    page = browser.new_page()  # type: ignore[attr-defined]
    page.set_default_timeout(WAIT_MS)
    page.goto(live.url + "/")
    assert page.url.endswith("/console/login")
    look(page, "login")
    page.keyboard.press("Tab")  # the first stop is the skip link
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.fill("#token", known["admin"])
    page.click("button[type=submit]")
    page.wait_for_url("**/console/")
    look(page, "overview")

    for label, name in (
        ("Runs", "runs"),
        ("Models", "models"),
        ("Deployments", "deployments"),
        ("Facility", "facility"),
        ("Nodes", "nodes"),
        ("Energy", "energy"),
        ("Alerts", "alerts"),
        ("Jobs", "jobs"),
        ("Audit", "audit"),
        ("Planner", "planner"),
    ):
        page.click(f"nav >> text={label}")
        page.wait_for_selector("h1")
        look(page, name)

    # a running run: its page follows the store by itself (new epochs, then the end of the run)
    page.goto(f"{live.url}/console/runs/{known['run']}")
    assert page.text_content("#run-status") == "running"
    page.frame_locator("iframe.report").locator("h1").wait_for()  # the run's report, in its frame
    look(page, "run")
    platform.metadata.add_metrics(known["run"], "train", [("train_loss", 7, 0.05)])
    page.wait_for_selector("#live dd:text-is('0.05')")  # (no wait_for_function: the page's CSP forbids eval)
    platform.metadata.finish_run(known["run"], "succeeded")
    page.wait_for_selector("#run-status:text('succeeded')")

    # promote the model from its page
    page.goto(f"{live.url}/console/models")
    page.select_option("select[name=stage]", "production")
    page.click(f"text=Promote {known['model']}")
    page.wait_for_selector("p.done")
    assert platform.metadata.get_model_version("digits-cnn", 1, project="alpha").stage == "production"
    page.click("text=Log out")
    page.wait_for_url("**/console/login")

    # a viewer: no audit page in the menu, a 403 page at its address, no buttons to press
    page.fill("#token", known["viewer"])
    page.click("button[type=submit]")
    page.wait_for_url("**/console/")
    assert page.locator("nav >> text=Audit").count() == 0
    answer = page.goto(f"{live.url}/console/audit")
    assert answer is not None and answer.status == 403
    look(page, "viewer-forbidden")
    page.goto(f"{live.url}/console/models")
    assert page.locator("button:has-text('Promote')").count() == 0
