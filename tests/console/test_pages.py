"""The console over HTTP, as a browser sends it: a session cookie from the login form, CSRF tokens in forms, and each
page and action allowed exactly when the API route it mirrors would be."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.console.conftest import FACILITY, Console

from aidc.api import create_app


@pytest.fixture
def http(console: Console) -> Iterator[TestClient]:
    with TestClient(create_app(console.platform), follow_redirects=False) as client:
        yield client


def log_in(http: TestClient, token: str) -> None:
    answer = http.post("/console/login", data={"token": token})
    assert answer.status_code == 303 and answer.headers["location"] == "/console/"


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)


def test_the_root_leads_to_the_console_and_the_console_to_its_login(http: TestClient) -> None:
    assert http.get("/").headers["location"] == "/console/"
    answer = http.get("/console/runs")
    assert answer.status_code == 303 and answer.headers["location"] == "/console/login"
    assert "API token" in http.get("/console/login").text


def test_a_bad_token_is_refused_on_the_login_page(http: TestClient) -> None:
    answer = http.post("/console/login", data={"token": "aidc_nope_nope"})
    assert answer.status_code == 401 and "aidc_session" not in answer.headers.get("set-cookie", "")
    assert 'role="alert"' in answer.text


def test_the_session_cookie_is_a_token_of_its_own_httponly_and_strict(http: TestClient, console: Console) -> None:
    answer = http.post("/console/login", data={"token": console.tokens["root"]})
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    session = re.search(r"aidc_session=([^;]+)", cookie).group(1)  # type: ignore[union-attr]
    assert session != console.tokens["root"]  # the token typed in never reaches the browser's storage
    names = [t.name for t in console.platform.security.list_tokens("root")]
    assert names.count("console session") == 1
    # logging out revokes the session's token: the same cookie no longer opens a page
    page = http.get("/console/")
    assert page.status_code == 200 and "root" in page.text
    assert http.post("/console/logout", data={"csrf": csrf_of(page.text)}).status_code == 303
    http.cookies.set("aidc_session", session, path="/console")
    assert http.get("/console/").headers["location"] == "/console/login"


def test_pages_carry_a_strict_policy_and_no_inline_script_or_style(http: TestClient, console: Console) -> None:
    log_in(http, console.tokens["root"])
    for path in (
        "/console/",
        "/console/runs",
        f"/console/runs/{console.run_id}",
        "/console/models",
        "/console/deployments",
        "/console/jobs",
        "/console/audit",
        "/console/nodes",
        "/console/energy",
        "/console/alerts",
        "/console/facility",
        "/console/deployments/digits-cnn?project=alpha",
        f"/console/runs/{console.run_id}/log",
    ):
        answer = http.get(path)
        assert answer.status_code == 200, path
        csp = answer.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp and "frame-ancestors 'self'" in csp
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert not re.search(r"<script(?![^>]*\bsrc=)", answer.text), path  # every script is a file of ours
        assert " style=" not in answer.text, path


def test_a_viewer_sees_no_audit_page_and_no_buttons_and_a_forged_post_gets_403(
    http: TestClient, console: Console
) -> None:
    log_in(http, console.tokens["vera"])
    overview = http.get("/console/")
    assert 'href="/console/runs"' in overview.text and 'href="/console/audit"' not in overview.text
    assert http.get("/console/audit").status_code == 403
    models = http.get("/console/models")
    assert (
        console.model in models.text and "Promote" not in models.text and f"Deploy {console.model}" not in models.text
    )
    deploy = {"csrf": csrf_of(overview.text), "ref": console.model, "project": "alpha"}
    assert http.post("/console/models/deploy", data=deploy).status_code == 403
    assert "Rollback" not in http.get("/console/deployments").text
    forged = http.post(
        "/console/models/promote",
        data={"csrf": csrf_of(overview.text), "ref": console.model, "stage": "production", "project": "alpha"},
    )
    assert forged.status_code == 403
    assert console.platform.metadata.get_model_version("digits-cnn", 1, project="alpha").stage != "production"


def test_an_admin_promotes_a_model_from_its_page_and_the_change_is_audited(http: TestClient, console: Console) -> None:
    log_in(http, console.tokens["root"])
    page = http.get("/console/models")
    assert f"Promote {console.model}" in page.text
    form = {"ref": console.model, "stage": "production", "project": "alpha"}
    assert http.post("/console/models/promote", data=form).status_code == 403  # no CSRF token: refused
    done = http.post("/console/models/promote", data=form | {"csrf": csrf_of(page.text)})
    assert done.status_code == 303
    assert console.platform.metadata.get_model_version("digits-cnn", 1, project="alpha").stage == "production"
    [entry] = console.platform.security.audit_list(action="models.promote")
    assert (entry.actor, entry.project, entry.result) == ("root", "alpha", "ok")
    assert "production" in http.get(done.headers["location"]).text


def test_the_run_page_shows_stages_and_curves_and_its_live_part_follows_the_run(
    http: TestClient, console: Console
) -> None:
    log_in(http, console.tokens["vera"])
    page = http.get(f"/console/runs/{console.run_id}")
    assert page.status_code == 200
    assert 'data-refresh="/console/runs/' in page.text  # running: the page asks for its live part again
    assert "<polyline" in page.text and "train_loss" in page.text and "val_accuracy" in page.text
    console.platform.metadata.finish_run(console.run_id, "succeeded")
    live = http.get(f"/console/runs/{console.run_id}/live")
    assert 'id="run-status">succeeded<' in live.text
    assert "data-refresh" not in http.get(f"/console/runs/{console.run_id}").text


def test_another_projects_run_is_not_found_for_a_viewer(http: TestClient, console: Console) -> None:
    other = console.platform.metadata.create_run("20261205-101501-beef00", "digits", {}, None, project="default")
    log_in(http, console.tokens["vera"])
    assert http.get(f"/console/runs/{other.id}").status_code == 404
    assert other.id not in http.get("/console/runs").text


def test_the_planner_page_plans_a_workload_and_locates_a_bad_one(http: TestClient, console: Console) -> None:
    log_in(http, console.tokens["vera"])  # any logged-in role may plan
    form = http.get("/console/planner")
    assert "llama-70b" in form.text
    csrf = csrf_of(form.text)
    workload = (
        "name: w\ntraining:\n  - name: j\n    model: {params: 7.0e9}\n    tokens: 1.0e12\n    gpus: 64\n    gpu: H100\n"
    )
    planned = http.post("/console/planner", data={"csrf": csrf, "workload": workload})
    assert planned.status_code == 200 and "H100" in planned.text and "<caption>" in planned.text
    bad = workload.replace("gpu: H100", "gpu: H999")
    refused = http.post("/console/planner", data={"csrf": csrf, "workload": bad})
    assert refused.status_code == 422 and "H999" in refused.text and "workload.yaml:7" in refused.text
    reads_server_files = workload + "catalog: [/etc/passwd]\n"
    refused = http.post("/console/planner", data={"csrf": csrf, "workload": reads_server_files})
    assert refused.status_code == 422 and "catalog" in refused.text and "root:" not in refused.text


def test_nodes_in_their_racks_and_an_operator_cordons_one_a_viewer_cannot(http: TestClient, console: Console) -> None:
    log_in(http, console.tokens["vera"])
    page = http.get("/console/nodes")
    assert page.status_code == 200 and "gpu-001" in page.text and "lab-rack" in page.text
    assert "Cordon" not in page.text
    forged = http.post("/console/nodes/gpu-001/cordon", data={"csrf": csrf_of(page.text)})
    assert forged.status_code == 403
    http.post("/console/logout", data={"csrf": csrf_of(page.text)})
    log_in(http, console.tokens["root"])
    page = http.get("/console/nodes")
    assert "Cordon gpu-001" in page.text
    done = http.post("/console/nodes/gpu-001/cordon", data={"csrf": csrf_of(page.text)})
    assert done.status_code == 303
    assert "Uncordon gpu-001" in http.get("/console/nodes").text
    [entry] = console.platform.security.audit_list(action="node.cordon")
    assert (entry.actor, entry.result) == ("root", "ok")
    energy = http.get("/console/energy", params={"days": 7})
    assert energy.status_code == 200 and "PUE" in energy.text


def test_an_alert_is_seen_by_a_viewer_and_acknowledged_and_silenced_by_an_admin(
    http: TestClient, console: Console
) -> None:
    from datetime import UTC, datetime

    fired = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
    labels = {"alertname": "RackPowerOverBudget", "rack": "lab-rack"}
    console.platform.metadata.save_alerts(
        [
            {
                "id": "rack0001", "fingerprint": "rack0001", "rule": "RackPowerOverBudget", "origin": "facility",
                "severity": "critical", "state": "firing", "labels": labels, "project": None,
                "summary": "rack lab-rack draws 9.1 kW of its 8 kW budget", "runbook": "", "value": 9.1,
                "threshold": 8.0, "started_at": fired, "fired_at": fired,
            }
        ]
    )  # fmt: skip
    log_in(http, console.tokens["vera"])
    page = http.get("/console/alerts")
    assert "RackPowerOverBudget" in page.text and "9.1" in page.text and "Acknowledge" not in page.text
    assert http.post("/console/alerts/rack0001/ack", data={"csrf": csrf_of(page.text)}).status_code == 403
    http.post("/console/logout", data={"csrf": csrf_of(page.text)})
    log_in(http, console.tokens["root"])
    page = http.get("/console/alerts")
    assert http.post("/console/alerts/rack0001/ack", data={"csrf": csrf_of(page.text)}).status_code == 303
    assert console.platform.metadata.get_alert("rack0001").acked_by == "root"
    silenced = http.post("/console/alerts/rack0001/silence", data={"csrf": csrf_of(page.text), "hours": "2"})
    assert silenced.status_code == 303
    [silence] = console.platform.metadata.list_silences()
    assert silence.matchers == {"alertname": "RackPowerOverBudget", "rack": "lab-rack"} and silence.created_by == "root"
    assert "End silence" in http.get("/console/alerts").text


def test_the_facility_page_shows_the_checked_design_and_each_racks_budget(http: TestClient, console: Console) -> None:
    log_in(http, console.tokens["vera"])
    page = http.get("/console/facility")
    assert page.status_code == 200
    assert "Ratings achieved" in page.text and "lab-rack" in page.text
    budget = re.search(r"<td>lab-rack</td><td>[^<]*</td><td>([0-9.]+) kW</td>", page.text)
    assert budget is not None and float(budget.group(1)) > 0  # the design's budget, from the spec
    assert re.search(r"<td>(TIA|Uptime|EN|ASHRAE|GB|ISO)[^<]*§?[^<]*</td></tr>", page.text)  # findings cite clauses


def test_the_run_page_draws_its_lineage_and_follows_its_jobs_log(http: TestClient, console: Console) -> None:
    from aidc.jobs.launcher import LOG_NAME, job_dir

    md, run_id = console.platform.metadata, console.run_id
    mv = md.get_model_version("digits-cnn", 1, project="alpha")
    md.add_lineage(("run", run_id), ("checkpoint", "sha256:" + "c" * 64), "produced")
    md.add_lineage(("checkpoint", "sha256:" + "c" * 64), ("onnx", "sha256:" + "0" * 64), "exported_to")
    md.add_lineage(("onnx", "sha256:" + "0" * 64), ("model_version", str(mv.id)), "registered_as")
    job, _ = md.submit_job(
        {"id": "job-0001", "project": "alpha", "submitter": "root", "idempotency_key": "k1", "pipeline": "digits",
         "path_name": "digits.yaml", "spec_text": "", "priority": 0, "workers": 1, "cpus": 1.0, "gpus": 0.0}
    )  # fmt: skip
    md.transition_job(job.id, ("queued",), "running", run_id=run_id)
    log = job_dir(console.platform.settings.home, job.id) / LOG_NAME
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("".join(f"epoch {e} loss {2.0 / (e + 1):.3f}\n" for e in range(250)))

    log_in(http, console.tokens["vera"])
    page = http.get(f"/console/runs/{run_id}").text
    # the graph: run → checkpoint → ONNX → the model version → the deployment serving it, this run outlined
    for kind in ("checkpoint", "ONNX", "model version", "deployment"):
        assert f">{kind}</text>" in page, kind
    assert 'stroke="#ff9800"' in page and f"model version {console.model}" in page
    assert '<span class="muted">served by</span> deployment digits-cnn' in page
    # the log's tail, asked again while the job runs; once it ended the fragment says so and is not asked again
    assert 'data-refresh="/console/runs/' + run_id + '/log"' in page
    assert "epoch 249 loss" in page and "epoch 10 loss" not in page and "50 before them" in page
    with log.open("a") as out:
        out.write("export: model.onnx written\n")
    assert "model.onnx written" in http.get(f"/console/runs/{run_id}/log").text
    md.transition_job(job.id, ("running",), "succeeded")
    md.finish_run(run_id, "succeeded")
    assert "data-ended" in http.get(f"/console/runs/{run_id}/log").text
    assert '/log" data-every' not in http.get(f"/console/runs/{run_id}").text


def facility_page(home: Path, spec: str) -> str:
    """The facility page of a server running ``spec``, as its admin sees it."""
    from aidc.platform import Platform
    from aidc.security.roles import local_access
    from aidc.settings import Settings

    platform = Platform(Settings(home=home, facility=str(FACILITY.with_name(spec))))
    token = platform.security.bootstrap(local_access(), "")
    try:
        with TestClient(create_app(platform), follow_redirects=False) as client:
            log_in(client, str(token))
            return client.get("/console/facility").text
    finally:
        platform.close()


def test_the_facility_page_draws_the_one_line_with_what_a_failing_rule_names_in_red(tmp_path: Path) -> None:
    page = facility_page(tmp_path / "lab", "lab-two-servers-noncompliant.yaml")
    assert "<h2>Power one-line</h2>" in page and '<svg width="' in page
    assert '<g class="blamed"><title>lab-rack' in page  # the rack whose feed fails the rules: red, with why
    assert "In red, what a failing rule names: lab-rack" in page
    page = facility_page(tmp_path / "nvl72", "nvl72-tier4-oneline.yaml")  # a spec with its cooling chain drawn too
    assert "<h2>Power one-line</h2>" in page and "<h2>Cooling chain</h2>" in page and 'class="blamed"' not in page


def test_a_deployments_page_charts_its_traffic_and_shows_its_canary_verdicts(
    http: TestClient, console: Console
) -> None:
    import time

    from aidc.store.metadata.records import Sample, label_text

    md = console.platform.metadata
    now = time.time()
    labels = label_text({"deployment": "digits-cnn", "project": "alpha", "version": "1"})
    other = label_text({"deployment": "elsewhere", "project": "alpha", "version": "1"})
    md.add_samples(
        [Sample("control-plane", "aidc_deployment_requests_per_second", 2.0 + i, now - 60 * (5 - i), labels)
         for i in range(5)]
        + [Sample("control-plane", "aidc_deployment_latency_p99_seconds", 0.012, now - 60, labels),
           Sample("control-plane", "aidc_deployment_error_ratio", 0.25, now - 60, labels),
           Sample("control-plane", "aidc_deployment_requests_per_second", 99.0, now - 60, other)]
    )  # fmt: skip
    [d] = md.list_deployments(name="digits-cnn")
    md.add_deployment_event(d.id, "rolled_back", "digits-cnn:2 rolled back (error rate 4% above stable)", {})
    log_in(http, console.tokens["vera"])
    listing = http.get("/console/deployments").text
    assert 'href="/console/deployments/digits-cnn?project=alpha"' in listing
    page = http.get("/console/deployments/digits-cnn", params={"project": "alpha"})
    assert page.status_code == 200
    charts = dict(re.findall(r"<figcaption>([^<]+)</figcaption>(.*?)</figure>", page.text, re.S))
    assert "<polyline" in charts["Requests per second"] and ">6<" in charts["Requests per second"]  # 2…6 req/s
    assert ">99<" not in charts["Requests per second"]  # another deployment's traffic is not this one's
    assert ">12<" in charts["p99 latency, ms"] and ">25<" in charts["Errors, % of requests"]
    assert 'aria-label="digits-cnn:1 100%"' in page.text  # the split: everything to the stable version
    assert "rolled back" in page.text and "error rate 4% above stable" in page.text  # the canary's verdict
    assert "Promote the canary" not in page.text  # a viewer: no buttons (and no canary to promote)
    assert http.get("/console/deployments/nowhere").status_code == 404


def test_each_node_has_sparklines_of_its_cpu_and_power_over_the_last_minutes(
    http: TestClient, console: Console
) -> None:
    import time

    from aidc.store.metadata.records import Sample

    now = time.time() // 60 * 60
    console.platform.metadata.add_samples(
        [Sample("gpu-001", "node_cpu_utilisation_ratio", 0.1 * i, now - 60 * (4 - i)) for i in range(5)]
        + [Sample("gpu-001", "node_power_watts", 400.0 + 50 * i, now - 60 * (4 - i)) for i in range(5)]
        + [Sample("gpu-001", "node_power_watts", 9999.0, now - 3600)]  # an hour ago: not in the lines
    )
    log_in(http, console.tokens["vera"])
    page = http.get("/console/nodes").text
    assert 'aria-label="gpu-001 CPU %, per minute: 0 to 40"' in page
    assert 'aria-label="gpu-001 power W, per minute: 400 to 600"' in page
    row = re.search(r"<tr><td>gpu-001.*?</tr>", page, re.S)
    assert row is not None and row.group(0).count("<polyline") == 2


def test_a_pipeline_is_submitted_from_the_jobs_page_once_and_a_viewer_cannot(
    http: TestClient, console: Console
) -> None:
    log_in(http, console.tokens["vera"])
    page = http.get("/console/jobs").text
    assert "Submit the pipeline" not in page
    forged = {"csrf": csrf_of(page), "spec": "pipeline: x\nstages: []\n", "project": "alpha", "key": "k-forged"}
    assert http.post("/console/jobs", data=forged).status_code == 403
    http.post("/console/logout", data={"csrf": csrf_of(page)})
    log_in(http, console.tokens["root"])
    page = http.get("/console/jobs").text
    assert "Submit the pipeline" in page and "uses: train" in page  # the digits example, ready to send
    key = re.search(r'name="key" value="([0-9a-f]+)"', page).group(1)  # type: ignore[union-attr]
    spec = re.search(r'<textarea id="spec" name="spec"[^>]*>(.*?)</textarea>', page, re.S).group(1)  # type: ignore[union-attr]
    form = {"csrf": csrf_of(page), "spec": spec.replace("&#34;", '"'), "project": "alpha", "key": key}
    done = http.post("/console/jobs", data=form)
    assert done.status_code == 303 and "submitted" in done.headers["location"]
    assert http.post("/console/jobs", data=form).status_code == 303  # sent twice (a reload): still one job
    [job] = console.platform.metadata.list_jobs(project="alpha")
    assert (job.pipeline, job.state, job.submitter) == ("digits", "queued", "root")
    assert job.id in http.get(done.headers["location"]).text
    bad = http.post("/console/jobs", data=form | {"spec": "pipeline: x\nstages: [\n", "key": "k-bad"})
    assert bad.status_code == 400 and "failed at once" in bad.text and "console.yaml:" in bad.text
