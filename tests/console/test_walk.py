"""The walk issue 22 describes, in a real browser (Debian's Chromium, driven by Playwright) against `aidc server` as a
user starts it, with its queue, its alerts and its telemetry on: log in, submit the digits pipeline from the jobs
page, watch the run's curves and log follow it, promote the model it registered, deploy it, send it predictions and
see them on the deployment's page, watch a site rule on its request rate fire and then resolve once the traffic
stops, and, as a viewer, find neither the audit page nor a button, and have a forged POST refused. Every page is
photographed into build/test-artifacts/console/ and checked with axe-core.

Slow by nature (a training job and a deployment on this host); every wait waits for an event with a deadline that
only a hang reaches."""

from __future__ import annotations

import contextlib
import json
import math
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.api.conftest import LiveServer, start_server, stop
from tests.console.conftest import WAIT_MS, look
from tests.pace import HANG_S, wait_until

from aidc.platform import Platform
from aidc.security.roles import local_access
from aidc.settings import Settings

LAB = Path(__file__).parents[2] / "examples" / "facilities" / "lab-two-servers.yaml"
# A rule the test drives: it holds while the deployment answers requests, and resolves once they stop.
SITE = """\
rules:
  - name: DigitsServing
    severity: warning
    expr: {metric: aidc_deployment_requests_per_second, by: [deployment], op: ">", value: 0}
    summary: "deployment {deployment} answers {value:.1f} requests a second"
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[LiveServer, Platform, str]]:
    site = tmp_path / "site-alerts.yaml"
    site.write_text(SITE)
    env = {
        "AIDC_RAY_NUM_CPUS": "2",
        "AIDC_ALERTS_INTERVAL_S": "1",
        "AIDC_TELEMETRY_INTERVAL_S": "2",
        "AIDC_ALERT_RULES": str(site),
        "AIDC_FACILITY": str(LAB),
        "AIDC_NODE_NAMES": json.dumps({socket.gethostname(): "gpu-001"}),
    }
    home = tmp_path / "home"
    proc, live = start_server(home, secrets.token_urlsafe(32), env=env)
    platform = Platform(Settings(home=home))  # the test's own view of the server's store: a viewer to log in as
    try:
        local = local_access()
        platform.security.create_principal(local, "vera")
        platform.security.grant(local, "vera", "viewer", "default")
        viewer = str(platform.security.create_token(local, name="vera", principal="vera")["token"])
        yield live, platform, viewer
    finally:
        auth = {"Authorization": f"Bearer {live.admin_token}"}
        with httpx.Client(base_url=f"{live.url}/api/v1", headers=auth) as api, contextlib.suppress(httpx.HTTPError):
            api.delete("/deployments/digits-cnn", params={"project": "default"}, timeout=120)  # its replicas too
        platform.close()
        stop(proc)


def reload_until(page: Any, selector: str, what: str) -> None:
    """Reload ``page`` until ``selector`` is on it (a page that does not refresh itself, following the server)."""

    def there() -> bool:
        page.reload()
        return bool(page.locator(selector).count())

    wait_until(there, what, every=1.0)


def test_the_walk_from_a_submitted_pipeline_to_a_served_model_an_alert_and_a_viewer(
    server: tuple[LiveServer, Platform, str], browser: Any
) -> None:
    live, platform, viewer = server
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(WAIT_MS)
    page.goto(f"{live.url}/console/login")
    page.fill("#token", live.admin_token)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/")

    # submit the digits pipeline from the jobs page (two epochs: the walk, not the model, is under test)
    page.click("nav >> text=Jobs")
    page.fill("#spec", page.input_value("#spec").replace("epochs: 4", "epochs: 2"))
    page.select_option("#project", "default")
    look(page, "jobs-submit")
    page.click("text=Submit the pipeline")
    page.wait_for_selector("p.done:has-text('submitted')")
    reload_until(page, "td a[href^='/console/runs/']", "the job's run")
    look(page, "jobs")
    page.click("td a[href^='/console/runs/']")

    # the run page follows the run by itself: curves appear and grow, the log streams, then the run ends
    page.wait_for_selector("#live svg polyline", timeout=HANG_S * 1000)
    page.wait_for_selector("#log pre.log:has-text('train')", timeout=HANG_S * 1000)
    look(page, "run-live")
    page.wait_for_selector("#run-status:text-is('succeeded')", timeout=HANG_S * 1000)
    page.wait_for_selector("#log [data-ended]")
    page.reload()  # the lineage of what it made
    for kind in ("dataset", "checkpoint", "ONNX", "model version"):
        assert page.locator(f"#main svg text:text-is('{kind}')").count() == 1, kind
    look(page, "run")
    run_page = page.url

    # promote the model it registered, then deploy it
    page.click("nav >> text=Models")
    page.select_option("select[name=stage]", "production")
    page.click("text=Promote digits-cnn:1")
    page.wait_for_selector("p.done")
    page.click("text=Deploy digits-cnn:1")
    page.wait_for_url("**/console/deployments/digits-cnn?**", timeout=HANG_S * 1000)
    assert "1/1 replicas" in page.text_content("#main")  # type: ignore[operator]
    page.goto(run_page)  # the run's lineage reaches the deployment now serving what it made
    assert page.locator("#main svg text:text-is('deployment')").count() == 1
    page.go_back()

    # its traffic: predictions from here, seen by the router and charted from what the server kept
    deployment = platform.metadata.find_deployment("digits-cnn", project="default")
    with httpx.Client(base_url=deployment.url, timeout=60) as http:
        [spec] = http.get("/v2/models/digits-cnn").json()["inputs"]
        shape = [1 if d < 0 else d for d in spec["shape"]]
        body = {"inputs": [{"name": spec["name"], "shape": shape, "datatype": spec["datatype"],
                            "data": [0.0] * math.prod(shape)}]}  # fmt: skip

        def predict(times: int = 3) -> None:
            for _ in range(times):
                assert http.post("/v2/models/digits-cnn/infer", json=body).status_code == 200

        def charted() -> bool:
            predict()
            page.reload()
            latest = page.locator("figure:has(figcaption:text-is('Requests per second')) .legend .latest")
            return bool(latest.count()) and float(latest.first.text_content() or 0) > 0

        wait_until(charted, "a request rate above nought charted on the deployment's page", every=0.3)
        assert page.locator("table:has(caption:has-text('Seen by the router')) td").count() >= 5
        look(page, "deployment")

        # the site rule on the request rate fires while the predictions flow...
        page.click("nav >> text=Alerts")

        def firing() -> bool:
            predict()
            page.reload()
            return bool(page.locator("tr:has-text('DigitsServing'):has(.s-firing)").count())

        wait_until(firing, "the alert on the request rate firing", every=0.3)
        look(page, "alerts-firing")
    # ...and resolves once they stop
    reload_until(page, "tr:has-text('DigitsServing'):has(.s-resolved)", "the alert resolving")
    look(page, "alerts")

    # the rest of the pages, as the admin sees them
    for label, name in (("Overview", "overview"), ("Runs", "runs"), ("Models", "models"), ("Facility", "facility"),
                        ("Nodes", "nodes"), ("Energy", "energy"), ("Audit", "audit"), ("Planner", "planner"),
                        ("Deployments", "deployments")):  # fmt: skip
        page.click(f"nav >> text={label}")
        page.wait_for_selector("h1")
        look(page, f"walk-{name}")
    page.click("text=Log out")
    page.wait_for_url("**/console/login")

    # a viewer: no audit page, no buttons, and a forged POST refused
    page.fill("#token", viewer)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/")
    assert page.locator("nav >> text=Audit").count() == 0
    answer = page.goto(f"{live.url}/console/audit")
    assert answer is not None and answer.status == 403
    for where in ("models", "deployments/digits-cnn?project=default", "jobs", "nodes", "alerts"):
        page.goto(f"{live.url}/console/{where}")
        assert page.locator("main form[method=post] button").count() == 0, where  # (a filter form is a viewer's)
    look(page, "viewer-deployment")
    csrf = page.get_attribute("input[name=csrf]", "value")
    forged = page.request.post(
        f"{live.url}/console/models/promote",
        form={"csrf": csrf or "", "ref": "digits-cnn:1", "stage": "archived", "project": "default"},
    )
    assert forged.status == 403
    assert platform.metadata.get_model_version("digits-cnn", 1, project="default").stage == "production"
