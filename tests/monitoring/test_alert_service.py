"""Who sees and changes which alerts, through the client a user holds: the data center's alerts for every role, a
project's alert (a failed job) only for that project's readers — *not found*, word for word, for the rest — and
acknowledging and silencing for operators on every project, each change in the audit log."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from aidc.client.local import LocalClient
from aidc.errors import NotFound, PermissionDenied
from aidc.platform import Platform
from aidc.security.roles import Access
from aidc.settings import Settings

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


def _alert(id_: str, project: str | None, alertname: str) -> dict[str, object]:
    return {
        "id": id_,
        "fingerprint": id_,
        "rule": alertname,
        "origin": "platform",
        "severity": "warning",
        "state": "firing",
        "labels": {"alertname": alertname, **({"project": project} if project else {})},
        "project": project,
        "summary": alertname,
        "value": 1.0,
        "started_at": T0,
        "fired_at": T0,
    }


@pytest.fixture()
def platform(tmp_path: Path) -> Platform:
    p = Platform(Settings(home=tmp_path))
    p.metadata.save_alerts(
        [
            _alert("rack0001", None, "RackPowerOverBudget"),
            _alert("jobalpha", "alpha", "JobFailed"),
            _alert("jobbeta1", "beta", "JobFailed"),
        ]
    )
    return p


def client(platform: Platform, who: str, *bindings: tuple[str, str]) -> LocalClient:
    return LocalClient(platform, Access(who, "user", frozenset(bindings)))


def test_viewers_see_the_data_centers_alerts_and_their_projects_only(platform: Platform) -> None:
    viewer = client(platform, "val", ("viewer", "alpha"))
    assert {a["id"] for a in viewer.list_alerts()} == {"rack0001", "jobalpha"}
    assert viewer.show_alert("jobalpha")["project"] == "alpha"
    with pytest.raises(NotFound) as hidden:
        viewer.show_alert("jobbeta1")
    with pytest.raises(NotFound) as missing:
        viewer.show_alert("nosuch00")
    assert str(hidden.value).replace("jobbeta1", "X") == str(missing.value).replace("nosuch00", "X")
    with pytest.raises(PermissionDenied):
        viewer.ack_alert("rack0001")
    with pytest.raises(PermissionDenied):
        viewer.silence_alerts({"rack": "r1"}, duration_s=600)
    nobody = client(platform, "nobody")
    with pytest.raises(PermissionDenied):
        nobody.list_alerts()


def test_operators_on_every_project_acknowledge_and_silence_and_it_is_audited(platform: Platform) -> None:
    local_operator = client(platform, "olga", ("operator", "alpha"))
    with pytest.raises(PermissionDenied):  # the data center's alerts: an operator of one project does not silence them
        local_operator.silence_alerts({"rack": "r1"}, duration_s=600)
    operator = client(platform, "omar", ("operator", "*"))
    assert operator.ack_alert("rack")["acked_by"] == "omar"  # a unique prefix will do
    made = operator.silence_alerts({"rack": "r1"}, duration_s=600, comment="fan swap")
    assert [s["id"] for s in operator.list_silences()] == [made["id"]]
    assert operator.unsilence(made["id"])["ended_by"] == "omar"
    actions = [(e["action"], e["actor"]) for e in LocalClient(platform).audit_list()]
    for action in ("alerts.ack", "alerts.silence", "alerts.unsilence"):
        assert (action, "omar") in actions
    assert ("alerts.silence", "olga") in actions  # the refusal is audited too
