"""Every verb of the Client protocol gives the same result on this machine's store (LocalClient) and through a live
`aidc server` on that store (RemoteClient).

The verbs come from the protocol itself: a verb added to `aidc.client.base.Client` without a case here fails
`test_every_verb_of_the_protocol_has_a_case`. Each case runs on the local client, then on the remote one, against the
same store; what may differ by design (ids, times, secrets, the tag a case puts in names it creates) is normalised
away, and everything else must be equal — or both must raise the same error with the same words.
"""

from __future__ import annotations

import inspect
import re
import secrets
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.api.conftest import LiveServer, start_server, stop

from aidc.client.base import Client
from aidc.client.local import LocalClient
from aidc.client.remote import RemoteClient
from aidc.errors import AidcError, InvalidInput
from aidc.platform import Platform
from aidc.report.sample_run import record_sample_runs
from aidc.settings import Settings

OK = "20250101-120000-a1b2c3"
HOST = socket.gethostname()  # the one node of the embedded default (no facility spec, no Ray cluster)
BROKEN_SPEC = "pipeline: parity\nstages: 3\n"  # a job that fails at once: the server never starts a process for it
# Values that differ between two calls by design: made anew (ids, times, secrets) or the client's own identity.
VOLATILE = {
    "id",
    "token",
    "token_id",
    "revoked_at",
    "created_at",
    "updated_at",
    "at",
    "hash",
    "prev_hash",
    "last_used_at",
    "expires_at",
    "finished_at",
    "started_at",
    "idempotency_key",
    "master_key_id",
    "retired",
    "kept",
    "seq",
    "source",
    "actor",
    "log",
    "report_path",
    "seconds",
    "submitter",
    "principal",
    "from",
    "changed_by",
    "age_s",
    "created_by",
    "ended_by",
    "ended_at",
}
Case = Callable[[Client, str], Any]
TAGS = re.compile(r"(local|remote)\d+")  # what a case puts in the names it creates, on each client
JOB_ID = re.compile(r"job-\d{8}-\d{6}-[0-9a-f]{6}")


def normal(value: Any) -> Any:
    """``value`` with volatile fields dropped and the cases' tags replaced, so local and remote compare equal."""
    if isinstance(value, dict):
        return {k: normal(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, (list, tuple)):
        return [normal(v) for v in value]
    if isinstance(value, str):
        return JOB_ID.sub("JOB", TAGS.sub("TAG", value))
    if isinstance(value, Path):
        return "a path" if value.is_file() else "no file"
    return value


PARITY_ALERT = "parity-alert-1"  # a firing alert the fixture writes into the store both clients read


def job_of(client: Client, tag: str) -> str:
    made = client.submit_job(BROKEN_SPEC, path_name="p.yaml", project="default", idempotency_key=f"k-{tag}")
    return str(made["id"])


def token_of(client: Client, tag: str) -> str:
    return str(client.create_token(f"t-{tag}-2", user="admin")["id"])


CASES: dict[str, list[Case]] = {
    "whoami": [lambda c, t: sorted(c.whoami())],  # who differs by design (local:<user> vs admin): the fields do not
    "list_tokens": [lambda c, t: c.list_tokens("admin")],
    "create_token": [lambda c, t: c.create_token(f"t-{t}", user="admin", scopes=["runs:read"], expires_days=3)],
    "revoke_token": [lambda c, t: c.revoke_token(token_of(c, t), user="admin")],
    "list_principals": [lambda c, t: c.list_principals()],
    "create_principal": [lambda c, t: c.create_principal(f"u-{t}")],
    "set_disabled": [lambda c, t: c.set_disabled(f"u-{t}", True), lambda c, t: c.set_disabled("nobody", True)],
    "grant": [lambda c, t: c.grant(f"u-{t}", "viewer", "default"), lambda c, t: c.grant(f"u-{t}", "king", "default")],
    "revoke_role": [lambda c, t: c.revoke_role(f"u-{t}", "viewer", "default")],
    "list_projects": [lambda c, t: c.list_projects()],
    "create_project": [lambda c, t: c.create_project(f"p-{t}", "made by the parity test")],
    "assign": [lambda c, t: c.assign("default", "run", OK), lambda c, t: c.assign("no-such", "run", OK)],
    "audit_list": [lambda c, t: c.audit_list(action="project.create")],
    "audit_verify": [lambda c, t: c.audit_verify()],
    "audit_export": [lambda c, t: [e["action"] for e in c.audit_export()]],
    "list_runs": [lambda c, t: c.list_runs(), lambda c, t: c.list_runs(status="failed", limit=1)],
    "run_details": [lambda c, t: c.run_details(OK), lambda c, t: c.run_details("no-such-run")],
    "run_report": [lambda c, t: c.run_report(OK)],
    "list_models": [lambda c, t: c.list_models(), lambda c, t: c.list_models("digits-cnn")],
    "show_model": [lambda c, t: c.show_model("digits-cnn"), lambda c, t: c.show_model("nope:1")],
    "promote_model": [lambda c, t: c.promote_model("digits-cnn:1", "staging"), lambda c, t: c.promote_model("x", "y")],
    "list_datasets": [lambda c, t: c.list_datasets()],
    "list_deployments": [lambda c, t: c.list_deployments(include_stopped=True)],
    "show_deployment": [lambda c, t: c.show_deployment("nope")],
    "deploy": [lambda c, t: c.deploy("nope:1")],
    "change_deployment": [lambda c, t: c.change_deployment("scale", "nope", 2)],
    "predict": [lambda c, t: c.predict("nope", Path("x.npy"))],
    "generate": [lambda c, t: c.generate("nope", "def ", parameters={"max_tokens": 4})],
    "doctor": [lambda c, t: sorted({k for check in c.doctor() for k in check})],  # the checks differ: host vs server
    "submit_job": [lambda c, t: c.submit_job(BROKEN_SPEC, path_name="p.yaml", project="default")],
    "list_jobs": [lambda c, t: c.list_jobs(state="failed"), lambda c, t: c.list_jobs(state="bogus")],
    "show_job": [lambda c, t: c.show_job(job_of(c, t)), lambda c, t: c.show_job("job-none")],
    "cancel_job": [lambda c, t: c.cancel_job(job_of(c, t))],
    "job_logs": [lambda c, t: list(c.job_logs(job_of(c, t)))],
    "list_quotas": [lambda c, t: c.list_quotas()],
    "set_quota": [lambda c, t: c.set_quota("default", max_gpus=4), lambda c, t: c.set_quota("default", max_gpus=-1)],
    "list_nodes": [lambda c, t: [(n["name"], n["status"], n["in_spec"], n["cordoned"]) for n in c.list_nodes()]],
    "show_node": [lambda c, t: sorted(c.show_node(HOST)), lambda c, t: c.show_node("no-such-node")],
    "change_node": [
        lambda c, t: c.change_node("cordon", HOST, f"parity {t}"),
        lambda c, t: c.change_node("uncordon", HOST),
        lambda c, t: c.change_node("explode", HOST),
    ],
    "energy_report": [
        lambda c, t: sorted(c.energy_report(period_days=1)),
        lambda c, t: c.energy_report(period_days=0),
    ],
    "list_alerts": [lambda c, t: c.list_alerts(), lambda c, t: c.list_alerts(state="bogus")],
    "show_alert": [lambda c, t: c.show_alert(PARITY_ALERT), lambda c, t: c.show_alert("no-such-alert")],
    "ack_alert": [lambda c, t: c.ack_alert(PARITY_ALERT), lambda c, t: c.ack_alert("no-such-alert")],
    "list_silences": [lambda c, t: c.list_silences(include_ended=True)],
    "silence_alerts": [
        lambda c, t: c.silence_alerts({"rack": f"r-{t}", "node": "=~gpu-.*"}, duration_s=3600, comment="parity"),
        lambda c, t: c.silence_alerts({}, duration_s=60),
        lambda c, t: c.silence_alerts({"rack": "r1"}, duration_s=-1),
    ],
    "unsilence": [
        lambda c, t: c.unsilence(c.silence_alerts({"node": f"n-{t}"}, duration_s=60)["id"]),
        lambda c, t: c.unsilence("no-such-silence"),
    ],
    "export_alert_rules": [lambda c, t: c.export_alert_rules()],
    "key_status": [lambda c, t: c.key_status()],
    "rotate_keys": [lambda c, t: c.rotate_keys()],
}
# Verbs whose results differ by design, each with why; the test still calls them on both clients.
DIFFERENT_BY_DESIGN = {
    "audit_prune": "the server prunes its audit log itself: through it the verb is refused with a hint",
    "close": "closes the client's own connection or store; returns nothing",
}


def protocol_verbs() -> set[str]:
    return {name for name, _ in inspect.getmembers(Client, inspect.isfunction) if not name.startswith("_")}


def test_every_verb_of_the_protocol_has_a_case() -> None:
    assert protocol_verbs() == set(CASES) | set(DIFFERENT_BY_DESIGN)


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalClient, RemoteClient, LiveServer]]:
    home = tmp_path_factory.mktemp("client-parity") / "home"
    platform = Platform(Settings(home=home))
    record_sample_runs(platform.metadata)
    platform.metadata.save_alerts(
        [
            {
                "id": PARITY_ALERT,
                "fingerprint": "fp",
                "rule": "RackPowerOverBudget:r1",
                "origin": "facility",
                "severity": "critical",
                "state": "firing",
                "labels": {"alertname": "RackPowerOverBudget", "rack": "r1"},
                "summary": "rack r1 draws 11 kW",
                "value": 11_000.0,
                "threshold": 10_000.0,
                "started_at": datetime(2026, 12, 5, 9, 0, tzinfo=UTC),
                "fired_at": datetime(2026, 12, 5, 9, 2, tzinfo=UTC),
            }
        ]
    )
    platform.close()
    proc, server = start_server(home, secrets.token_urlsafe(32), "--no-jobs")
    local = LocalClient(Platform(Settings(home=home)))
    remote = RemoteClient(server.url, server.admin_token, home=home.parent / "remote-home")
    try:
        yield local, remote, server
    finally:
        local.close()
        remote.close()
        stop(proc)


def outcome(case: Case, client: Client, tag: str) -> Any:
    try:
        return ("ok", normal(case(client, tag)))
    except InvalidInput as exc:
        # Malformed arguments: the server's request schema words them (field path, allowed values), the services
        # word them on the store; the kind of error and the exit code are the same.
        return ("error", type(exc).__name__, exc.exit_code)
    except AidcError as exc:
        return ("error", type(exc).__name__, normal(exc.message), exc.hint)


@pytest.mark.parametrize("verb", sorted(CASES))
def test_both_clients_give_the_same_result(verb: str, clients: tuple[LocalClient, RemoteClient, LiveServer]) -> None:
    local, remote, _ = clients
    for i, case in enumerate(CASES[verb]):
        here, there = outcome(case, local, f"local{i}"), outcome(case, remote, f"remote{i}")
        assert here == there, f"{verb} case {i}"


def test_the_verbs_that_differ_by_design_differ_as_documented(
    clients: tuple[LocalClient, RemoteClient, LiveServer],
) -> None:
    local, remote, _ = clients
    pruned = local.audit_prune()  # once: a second call would judge a different prune
    assert pruned is None or "action" in pruned
    with pytest.raises(AidcError, match="prunes its audit log itself"):
        remote.audit_prune()
