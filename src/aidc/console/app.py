"""The console's pages and actions, mounted at /console by the API app.

Every page and action names the API route it mirrors; it is shown, and it acts, exactly when that route would
answer this caller (``security.policy``), and then through the same Client verb the route calls, so the services'
guard limits it to the caller's projects and audits each change. A viewer sees no buttons it may not press, and a
forged POST gets the API's 403.
"""

from __future__ import annotations

import os
import secrets
import time
import urllib.parse
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from aidc import __version__
from aidc.client.local import LocalClient
from aidc.console.charts import line_chart, sparkline, split_bar
from aidc.console.facility import facility_view, rack_power_kw
from aidc.console.lineage import lineage_graph, lineage_rows
from aidc.console.planner import EXAMPLE, plan_text
from aidc.console.session import Sessions
from aidc.errors import AidcError, InvalidInput, NotFound, PermissionDenied, Unauthenticated
from aidc.security.policy import required_permission
from aidc.security.roles import Access
from aidc.services import Services

API = "/api/v1"
HERE = Path(__file__).parent
# Scripts and styles from this server only; no inline script or style; frames only of our own pages (the run report).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'; object-src 'none'"
)
# The run report is a document of its own (inline styles and SVG, no script), shown in a frame of the run page.
CSP_REPORT = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"
HEADERS = {"content-security-policy": CSP, "x-frame-options": "SAMEORIGIN", "cache-control": "no-store"}

# (path, title, the API route it mirrors): the menu shows a page when its route would answer the caller.
PAGES = (
    ("/console/", "Overview", ("GET", f"{API}/whoami")),
    ("/console/runs", "Runs", ("GET", f"{API}/runs")),
    ("/console/models", "Models", ("GET", f"{API}/models")),
    ("/console/deployments", "Deployments", ("GET", f"{API}/deployments")),
    ("/console/facility", "Facility", ("GET", f"{API}/nodes")),
    ("/console/nodes", "Nodes", ("GET", f"{API}/nodes")),
    ("/console/energy", "Energy", ("GET", f"{API}/energy")),
    ("/console/alerts", "Alerts", ("GET", f"{API}/alerts")),
    ("/console/jobs", "Jobs", ("GET", f"{API}/jobs")),
    ("/console/audit", "Audit", ("GET", f"{API}/audit")),
    ("/console/planner", "Planner", ("GET", f"{API}/whoami")),
)
CURVES = {"Loss": ("train_loss", "val_loss"), "Accuracy": ("train_accuracy", "val_accuracy")}
LIVE = ("running", "queued", "preempted")
TREND_MINUTES = 15  # the nodes page's sparklines: per-minute means over this long
LOG_TAIL = 200
# what the jobs page offers to submit: the digits example, small enough to run in a minute or two on a CPU
PIPELINE_EXAMPLE = """pipeline: digits
stages:
  - name: data
    uses: data
    with: {source: "sklearn:digits", split: {val: 0.15, test: 0.2}}
  - name: train
    uses: train
    inputs: {data: data.splits}
    with: {model: cnn, epochs: 4, batch_size: 64, workers: 1}
  - name: evaluate
    uses: evaluate
    inputs: {data: data.splits, checkpoint: train.checkpoint, model: train.model}
  - name: export
    uses: export
    inputs: {checkpoint: train.checkpoint, model: train.model, data: data.splits}
  - name: register
    uses: register
    inputs: {onnx: export.onnx, checkpoint: train.checkpoint, dataset: data.dataset, metrics: evaluate.metrics}
    with: {name: digits-cnn}
"""  # lines of a job's log the run page shows (the whole log: `aidc logs JOB`)


def may(access: Access, method: str, route: str, project: str | None = None) -> bool:
    """Whether the API route ``method route`` would let ``access`` through (in ``project``, where given)."""
    permission = required_permission(method, route)
    return permission is not None and access.allows(permission, project)


def create_console(services: Services) -> FastAPI:
    sessions = Sessions(services)
    env = Environment(loader=FileSystemLoader(str(HERE / "templates")), autoescape=select_autoescape(["html", "j2"]))
    env.globals.update(may=may, API=API, version=__version__)
    console = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    console.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def render(
        request: Request, access: Access | None, template: str, http_status: int = 200, **ctx: Any
    ) -> HTMLResponse:
        nav = [(path, title) for path, title, route in PAGES if access and may(access, *route)]
        html = env.get_template(template).render(
            request=request,
            access=access,
            nav=nav,
            csrf=sessions.csrf(request) if access else "",
            path=request.url.path,
            **ctx,
        )
        return HTMLResponse(html, status_code=http_status, headers=HEADERS)

    def caller(request: Request) -> Access:
        access = sessions.caller(request)
        if access is None:
            raise Unauthenticated("log in to use the console")
        return access

    def page(route: tuple[str, str]) -> Callable[[Request], Access]:
        """The caller, once the API route ``route`` would answer them (403 as the API's otherwise)."""

        def allowed(request: Request) -> Access:
            access = caller(request)
            if not may(access, *route):
                raise PermissionDenied(
                    f"{access.principal} may not {required_permission(*route)}",
                    hint="ask an admin for a role that has it: `aidc users grant`",
                )
            return access

        return allowed

    async def form_of(request: Request) -> dict[str, str]:
        """A posted form (urlencoded), once its CSRF token matches the session's."""
        body = (await request.body()).decode("utf-8", "replace")
        fields = {k: v[-1] for k, v in urllib.parse.parse_qs(body, keep_blank_values=True).items()}
        sessions.check_csrf(request, fields.get("csrf", ""))
        return fields

    async def acting(request: Request, route: tuple[str, str]) -> tuple[Access, dict[str, str]]:
        """The caller of a form's action, once the API route ``route`` would let them (before the body is read), and
        the form, once its CSRF token matches."""
        access = await run_in_threadpool(page(route), request)
        return access, await form_of(request)

    def back(path: str, message: str) -> RedirectResponse:
        return RedirectResponse(f"{path}?{urllib.parse.urlencode({'done': message})}", status_code=303)

    @console.exception_handler(AidcError)
    async def failed(request: Request, exc: AidcError) -> Response:
        if isinstance(exc, Unauthenticated):
            return RedirectResponse("/console/login", status_code=303)
        access = await run_in_threadpool(sessions.caller, request)
        return render(request, access, "error.html.j2", exc.http_status, error=exc)

    # -- session
    @console.get("/login")
    def login_form(request: Request) -> HTMLResponse:
        return render(request, None, "login.html.j2")

    @console.post("/login")
    async def login(request: Request) -> Response:
        body = (await request.body()).decode("utf-8", "replace")
        token = urllib.parse.parse_qs(body).get("token", [""])[-1]
        source = request.client.host if request.client else "unknown"
        try:
            _, session = await run_in_threadpool(sessions.login, token, source)
        except AidcError as exc:
            return render(request, None, "login.html.j2", 401, error=exc)
        response = RedirectResponse("/console/", status_code=303)
        sessions.set_cookie(response, session, request)
        return response

    @console.post("/logout")
    async def logout(request: Request) -> Response:
        access = await run_in_threadpool(caller, request)
        await form_of(request)
        await run_in_threadpool(sessions.logout, access)
        response = RedirectResponse("/console/login", status_code=303)
        sessions.clear_cookie(response)
        return response

    # -- pages
    @console.get("/")
    def overview(request: Request) -> HTMLResponse:
        access = caller(request)
        client = LocalClient(services, access)
        runs = client.list_runs(limit=200) if may(access, "GET", f"{API}/runs") else []
        jobs = client.list_jobs(limit=200) if may(access, "GET", f"{API}/jobs") else []
        deployments = client.list_deployments() if may(access, "GET", f"{API}/deployments") else []
        models = client.list_models() if may(access, "GET", f"{API}/models") else []
        return render(
            request,
            access,
            "overview.html.j2",
            runs=runs[:10],
            run_states=_count(runs, "status"),
            job_states=_count(jobs, "state"),
            live=sum(bool(d["live"]) for d in deployments),
            deployments=len(deployments),
            production=[m for m in models if m["stage"] == "production"],
        )

    @console.get("/runs")
    def runs(request: Request, status: str | None = None, pipeline: str | None = None) -> HTMLResponse:
        access = page(("GET", f"{API}/runs"))(request)
        found = LocalClient(services, access).list_runs(status=status or None, pipeline=pipeline or None, limit=200)
        return render(request, access, "runs.html.j2", runs=found, status=status or "", pipeline=pipeline or "")

    def run_view(access: Access, run_id: str) -> dict[str, Any]:
        details = LocalClient(services, access).run_details(run_id)
        curves = {
            title: line_chart(
                title,
                {name: [(m["step"], m["value"]) for m in details["metrics"] if m["name"] == name] for name in names},
            )
            for title, names in CURVES.items()
        }
        return details | {"curves": curves, "live": details["run"]["status"] in LIVE}

    def job_log(access: Access, run: dict[str, Any]) -> dict[str, Any]:
        """The tail of the log of the job that started ``run`` (when the caller may read it): ``log`` None where
        the run was not a job's (`aidc run` on a workstation) or the caller may not read jobs."""
        if not may(access, "GET", f"{API}/jobs/{{job_id}}/logs", run["project"]):
            return {"log": None}
        try:
            text = "".join(LocalClient(services, access).job_logs(run["id"]))
        except NotFound:
            return {"log": None}
        lines = text.splitlines()
        shown = lines[-LOG_TAIL:]
        return {"log": "\n".join(shown), "log_shown": len(shown), "log_cut": len(lines) - len(shown)}

    @console.get("/runs/{run_id}")
    def run(request: Request, run_id: str) -> HTMLResponse:
        access = page(("GET", f"{API}/runs/{{run_id}}"))(request)
        view = run_view(access, run_id)
        run = view["run"]
        lineage = view["lineage"]
        return render(
            request,
            access,
            "run.html.j2",
            **view,
            **job_log(access, run),
            lineage_svg=lineage_graph(lineage, f"run:{run['id']}"),
            lineage_rows=lineage_rows(lineage),
        )

    @console.get("/runs/{run_id}/log")
    def run_log(request: Request, run_id: str) -> HTMLResponse:
        """The run's job log, fetched again every few seconds while the job runs."""
        access = page(("GET", f"{API}/runs/{{run_id}}"))(request)
        run = LocalClient(services, access).run_details(run_id)["run"]
        return render(request, access, "run_log.html.j2", run=run, live=run["status"] in LIVE, **job_log(access, run))

    @console.get("/runs/{run_id}/live")
    def run_live(request: Request, run_id: str) -> HTMLResponse:
        """The run page's changing part, fetched again every few seconds while the run is running."""
        access = page(("GET", f"{API}/runs/{{run_id}}"))(request)
        return render(request, access, "run_live.html.j2", **run_view(access, run_id))

    @console.get("/runs/{run_id}/report")
    def run_report(request: Request, run_id: str) -> HTMLResponse:
        access = page(("GET", f"{API}/runs/{{run_id}}/report"))(request)
        html = LocalClient(services, access).run_report(run_id).read_text(encoding="utf-8")
        return HTMLResponse(
            html, headers={"content-security-policy": CSP_REPORT, "x-frame-options": "SAMEORIGIN"} | _NO_STORE
        )

    @console.get("/models")
    def models(request: Request, done: str = "") -> HTMLResponse:
        access = page(("GET", f"{API}/models"))(request)
        found = LocalClient(services, access).list_models()
        metrics = sorted({k for m in found for k, v in m["metrics"].items() if isinstance(v, (int, float))})
        return render(request, access, "models.html.j2", models=found, metrics=metrics[:6], done=done)

    @console.post("/models/promote")
    async def promote_model(request: Request) -> Response:
        access, form = await acting(request, ("POST", f"{API}/models/{{ref}}/promote"))
        ref, stage, project = form.get("ref", ""), form.get("stage", ""), form.get("project") or None
        if stage not in ("staging", "production", "archived", "none"):
            raise InvalidInput(f"unknown stage {stage!r}", hint="one of staging, production, archived, none")
        await run_in_threadpool(LocalClient(services, access).promote_model, ref, stage, project=project)
        return back("/console/models", f"{ref} → {stage}")

    @console.get("/deployments")
    def deployments(request: Request, done: str = "") -> HTMLResponse:
        access = page(("GET", f"{API}/deployments"))(request)
        found = LocalClient(services, access).list_deployments()
        return render(request, access, "deployments.html.j2", deployments=found, done=done)

    @console.get("/deployments/{name}")
    def deployment(request: Request, name: str, project: str = "", done: str = "") -> HTMLResponse:
        """One deployment: its versions and replicas, the traffic split, request rate, p99 latency and error ratio
        over the last hour (what the server's alert rounds read from its router), and its events (canary
        verdicts among them)."""
        access = page(("GET", f"{API}/deployments/{{name}}"))(request)
        found = LocalClient(services, access).show_deployment(name, project=project or None)
        return render(request, access, "deployment.html.j2", d=found, done=done, **traffic_view(found, time.time()))

    @console.post("/models/deploy")
    async def deploy_model(request: Request) -> Response:
        """Serve a model version (as `aidc deploy REF`); answers once its replicas are ready."""
        access, form = await acting(request, ("POST", f"{API}/deployments"))
        ref, project = form.get("ref", ""), form.get("project") or None
        deployed = await run_in_threadpool(partial(LocalClient(services, access).deploy, ref, project=project))
        where = urllib.parse.urlencode({"project": deployed["project"], "done": f"deployed {ref}"})
        return RedirectResponse(f"/console/deployments/{deployed['name']}?{where}", status_code=303)

    @console.post("/deployments/{name}/{verb}")
    async def change_deployment(request: Request, name: str, verb: str) -> Response:
        if verb not in ("promote", "rollback"):
            raise InvalidInput(f"unknown deployment change {verb!r}", hint="promote or rollback")
        access, form = await acting(request, ("POST", f"{API}/deployments/{{name}}/{verb}"))
        client = LocalClient(services, access)
        await run_in_threadpool(client.change_deployment, verb, name, project=form.get("project") or None)
        return back("/console/deployments", f"{verb}: {name}")

    @console.get("/jobs")
    def jobs(request: Request, done: str = "") -> HTMLResponse:
        access = page(("GET", f"{API}/jobs"))(request)
        client = LocalClient(services, access)
        return render(
            request,
            access,
            "jobs.html.j2",
            jobs=client.list_jobs(limit=200),
            quotas=client.list_quotas(),
            done=done,
            **submit_form(access, client),
        )

    def submit_form(access: Access, client: LocalClient, spec: str = PIPELINE_EXAMPLE) -> dict[str, Any]:
        """The projects the caller may submit jobs to (none: no form), a fresh idempotency key (a form sent twice
        makes one job), and the pipeline to show."""
        projects = [p["name"] for p in client.list_projects() if may(access, "POST", f"{API}/jobs", p["name"])]
        return {"submit_projects": projects, "submit_key": secrets.token_hex(16), "spec": spec}

    @console.post("/jobs")
    async def submit_job(request: Request) -> Response:
        """Queue a pipeline (as `aidc jobs submit`); a spec that does not parse is shown again with its line."""
        access, form = await acting(request, ("POST", f"{API}/jobs"))
        project = form.get("project", "")
        client = LocalClient(services, access)
        try:
            priority = int(form.get("priority") or 0)
        except ValueError:
            raise InvalidInput("priority is a whole number", where="priority") from None
        job = await run_in_threadpool(
            partial(
                client.submit_job,
                form.get("spec", ""),
                path_name="console.yaml",
                project=project,
                priority=priority,
                idempotency_key=form.get("key") or None,
            )
        )
        if job["state"] == "failed":  # the spec did not parse: the job failed at once, with where
            raise InvalidInput(
                f"job {job['id']} failed at once: {(job.get('last_error') or {}).get('message', job.get('reason'))}",
                hint="fix the pipeline and submit it again (`aidc jobs submit FILE` checks a file before sending it)",
            )
        return back("/console/jobs", f"submitted {job['id']} ({job['pipeline']}) to {project}")

    @console.post("/jobs/{job_id}/cancel")
    async def cancel_job(request: Request, job_id: str) -> Response:
        access, _ = await acting(request, ("POST", f"{API}/jobs/{{job_id}}/cancel"))
        await run_in_threadpool(LocalClient(services, access).cancel_job, job_id)
        return back("/console/jobs", f"cancelled {job_id}")

    @console.get("/audit")
    def audit(request: Request, action: str = "") -> HTMLResponse:
        access = page(("GET", f"{API}/audit"))(request)
        client = LocalClient(services, access)
        entries = client.audit_list(action=action or None, limit=200)
        return render(request, access, "audit.html.j2", entries=entries, chain=client.audit_verify(), action=action)

    @console.get("/facility")
    def facility(request: Request) -> HTMLResponse:
        """The facility the server runs, as `aidc check` judges it, with each rack's power now against its budget."""
        access = page(("GET", f"{API}/nodes"))(request)
        spec = services.settings.facility
        if not spec:
            return render(request, access, "facility.html.j2", report=None)
        nodes = LocalClient(services, access).list_nodes()
        return render(request, access, "facility.html.j2", **facility_view(spec, nodes))

    @console.get("/nodes")
    def nodes(request: Request, done: str = "") -> HTMLResponse:
        access = page(("GET", f"{API}/nodes"))(request)
        found = LocalClient(services, access).list_nodes(trend_minutes=TREND_MINUTES)
        for node in found:
            trend = node.get("trend", {})
            node["sparks"] = [
                sparkline([100 * v for v in trend.get("cpu_utilisation", [])], f"{node['name']} CPU %, per minute"),
                sparkline(trend.get("power_watts", []), f"{node['name']} power W, per minute"),
            ]
        return render(
            request,
            access,
            "nodes.html.j2",
            nodes=found,
            racks=rack_power_kw(found),
            done=done,
            trend_minutes=TREND_MINUTES,
        )

    @console.post("/nodes/{name}/{verb}")
    async def change_node(request: Request, name: str, verb: str) -> Response:
        if verb not in ("cordon", "drain", "uncordon"):
            raise InvalidInput(f"unknown node change {verb!r}", hint="cordon, drain or uncordon")
        access, form = await acting(request, ("POST", f"{API}/nodes/{{name}}/{{verb}}"))
        client = LocalClient(services, access)
        await run_in_threadpool(client.change_node, verb, name, form.get("reason", "") or "from the console")
        return back("/console/nodes", f"{verb}: {name}")

    @console.get("/energy")
    def energy(request: Request, days: float = 30.0) -> HTMLResponse:
        access = page(("GET", f"{API}/energy"))(request)
        report = LocalClient(services, access).energy_report(period_days=days)
        return render(request, access, "energy.html.j2", report=report, days=days)

    @console.get("/alerts")
    def alerts(request: Request, state: str = "", done: str = "") -> HTMLResponse:
        access = page(("GET", f"{API}/alerts"))(request)
        client = LocalClient(services, access)
        found = client.list_alerts(state=state or None, limit=200)
        order = {"firing": 0, "pending": 1}
        found.sort(key=lambda a: (order.get(a["state"], 2), a["started_at"]), reverse=False)
        return render(
            request, access, "alerts.html.j2", alerts=found, silences=client.list_silences(), state=state, done=done
        )

    @console.post("/alerts/{alert_id}/ack")
    async def ack_alert(request: Request, alert_id: str) -> Response:
        access, _ = await acting(request, ("POST", f"{API}/alerts/{{alert_id}}/ack"))
        await run_in_threadpool(LocalClient(services, access).ack_alert, alert_id)
        return back("/console/alerts", f"acknowledged {alert_id}")

    @console.post("/alerts/{alert_id}/silence")
    async def silence_alert(request: Request, alert_id: str) -> Response:
        """Silence what this alert is: its rule on its labels, for the hours asked."""
        access, form = await acting(request, ("POST", f"{API}/silences"))
        client = LocalClient(services, access)
        alert = await run_in_threadpool(client.show_alert, alert_id)
        hours = float(form.get("hours") or 1)
        if not 0 < hours <= 24 * 30:
            raise InvalidInput("a silence lasts more than 0 and at most 720 hours", where="hours")
        matchers = {k: str(v) for k, v in alert["labels"].items() if k != "severity"}
        await run_in_threadpool(
            partial(client.silence_alerts, matchers, duration_s=hours * 3600, comment=form.get("comment", ""))
        )
        return back("/console/alerts", f"silenced {alert['labels'].get('alertname', alert_id)} for {hours:g} h")

    @console.post("/silences/{silence_id}/end")
    async def unsilence(request: Request, silence_id: str) -> Response:
        access, _ = await acting(request, ("DELETE", f"{API}/silences/{{silence_id}}"))
        await run_in_threadpool(LocalClient(services, access).unsilence, silence_id)
        return back("/console/alerts", f"ended silence {silence_id}")

    @console.get("/planner")
    def planner_form(request: Request) -> HTMLResponse:
        access = caller(request)
        return render(request, access, "planner.html.j2", workload=EXAMPLE)

    @console.post("/planner")
    async def planner(request: Request) -> HTMLResponse:
        """Any logged-in user may plan (the design core reads nothing of the data center's records)."""
        access = await run_in_threadpool(caller, request)
        text = (await form_of(request)).get("workload", "")
        catalogs = [p for p in services.settings.catalog.split(os.pathsep) if p]
        try:
            plan = await run_in_threadpool(plan_text, text, catalogs)
        except AidcError as exc:
            return render(request, access, "planner.html.j2", 422, workload=text, error=exc)
        return render(request, access, "planner.html.j2", workload=text, plan=plan)

    return console


_NO_STORE = {"cache-control": "no-store"}
# (chart title, the metric the server keeps, how a value is shown)
TRAFFIC = (
    ("Requests per second", "aidc_deployment_requests_per_second", 1.0),
    ("p99 latency, ms", "aidc_deployment_latency_p99_seconds", 1000.0),
    ("Errors, % of requests", "aidc_deployment_error_ratio", 100.0),
)


def traffic_view(deployment: dict[str, Any], now: float) -> dict[str, Any]:
    """The deployment page's charts: the split now, and each kept metric per version over minutes before now."""
    canary = float(deployment.get("canary_percent") or 0) if deployment.get("canary") else 0.0
    parts = [(str(deployment["stable"]), 100.0 - canary)]
    if deployment.get("canary"):
        parts.append((str(deployment["canary"]), canary))
    history = deployment.get("history", {})
    charts = [
        line_chart(
            title,
            {
                f"version {version}": [((at - now) / 60, value * scale) for at, value in points]
                for version, points in sorted(history.get(metric, {}).items())
            },
            x_label="minutes before now",
        )
        for title, metric, scale in TRAFFIC
    ]
    return {"split": split_bar(parts), "charts": charts}


def _count(rows: list[dict[str, Any]], key: str) -> dict[str, int]:
    """How many rows have each value of ``key``, by value."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row[key]] = counts.get(row[key], 0) + 1
    return dict(sorted(counts.items()))
