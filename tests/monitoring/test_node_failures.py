"""A node where training keeps failing is cordoned by itself: each failure is kept per node in the store; the
``node_failure_limit``-th within ``node_failure_window_s`` cordons the node (the same hold `aidc nodes cordon`
sets, audited as ``system:recovery``), and the NodeCordonedAfterFailures alert says why.

Real store (SQLite) and the shipped alert rules; the node inventory is given (no Ray needed to name a node). The
end-to-end path — a real worker death on a real Ray cordoning its node — is in tests/training/test_recovery.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aidc.cluster.inventory import ComputeNode
from aidc.monitoring.alerts.engine import Evaluator
from aidc.monitoring.alerts.rules import shipped_rules
from aidc.monitoring.alerts.signals import job_signals
from aidc.platform import Platform
from aidc.security.roles import local_access
from aidc.services.nodes import Nodes
from aidc.settings import Settings

BOX = ComputeNode("box-7.lab", "ray-node-7", "10.0.0.7", True, 8.0, 0.0, None, 2**34, {"aidc.node": "box-7"})
OTHER = ComputeNode("box-8", "ray-node-8", "10.0.0.8", True, 8.0, 0.0, None, 2**34, {})


@pytest.fixture()
def nodes(tmp_path: Path) -> Iterator[Nodes]:
    settings = Settings(home=tmp_path / "home", node_failure_limit=3, node_failure_window_s=600)
    platform = Platform(settings)
    yield Nodes(platform.metadata, platform.guard, lambda: None, settings, cluster=lambda: [BOX, OTHER])
    platform.close()


def test_the_third_failure_within_the_window_cordons_the_node_as_the_system(nodes: Nodes) -> None:
    store = nodes.store
    first = nodes.record_failure("ray-node-7", "worker 1 (pid 11) died: ActorDiedError", run_id="run-1")
    nodes.record_failure("ray-node-8", "worker 0 (pid 12) died", run_id="run-1")  # another node's: not counted
    second = nodes.record_failure("ray-node-7", "worker 0 (pid 13) died", run_id="run-2")
    assert (first["node"], first["failures"], first["cordoned"]) == ("box-7", 1, False)
    assert (second["failures"], second["cordoned"]) == (2, False)
    assert store.cordoned_nodes() == set()

    third = nodes.record_failure("ray-node-7", "worker 1 (pid 14) died: NodeDiedError", run_id="run-3")
    assert third["cordoned"] and third["now"] and third["failures"] == 3
    shown = {n["name"]: n for n in nodes.list(local_access())}["box-7"]
    assert shown["cordoned"] and "3 failures within 600 s" in shown["hold_reason"]
    assert "NodeDiedError" in shown["hold_reason"]  # the last failure, said
    assert not {n["name"]: n for n in nodes.list(local_access())}["box-8"]["cordoned"]
    shown = nodes.show(local_access(), "box-7")  # `aidc nodes show`: the failures that counted, latest last
    assert shown["failures_in_window"] == 3 and [f["run_id"] for f in shown["failures"]] == ["run-1", "run-2", "run-3"]
    # the history is the store's, per node, oldest first
    assert [f.run_id for f in store.node_failures(node="box-7")] == ["run-1", "run-2", "run-3"]
    assert all(f.host == "box-7.lab" for f in store.node_failures(node="box-7"))
    # audited as the system, with the count and the run that tipped it
    entry = nodes.guard.security.audit_list(actor="system:recovery", action="node.cordon")[0]
    assert entry.target == "node:box-7" and entry.details["failures"] == 3 and entry.details["run_id"] == "run-3"

    # a fourth failure keeps the hold, and does not cordon (or audit) again
    fourth = nodes.record_failure("ray-node-7", "worker 1 died", run_id="run-4")
    assert fourth["cordoned"] and not fourth["now"]
    assert len(nodes.guard.security.audit_list(actor="system:recovery")) == 1


def test_failures_outside_the_window_do_not_count_and_a_limit_of_zero_never_cordons(
    nodes: Nodes, tmp_path: Path
) -> None:
    store = nodes.store
    old = datetime.now(UTC) - timedelta(seconds=601)
    for _ in range(2):
        made = store.add_node_failure("box-7", "long ago", host="box-7")
        _backdate(store, made.id, old)
    assert nodes.record_failure("ray-node-7", "now")["failures"] == 1
    assert store.cordoned_nodes() == set()

    never = Nodes(store, nodes.guard, lambda: None, Settings(home=tmp_path / "h2", node_failure_limit=0))
    never._cluster = lambda: [BOX]
    for _ in range(5):
        assert not never.record_failure("ray-node-7", "again")["cordoned"]
    assert store.cordoned_nodes() == set()


def test_the_alert_says_which_node_was_cordoned_after_failures_and_ends_on_uncordon(nodes: Nodes) -> None:
    for i in range(3):
        nodes.record_failure("ray-node-7", f"worker died ({i})")
    rules = [r for r in shipped_rules() if r.name == "NodeCordonedAfterFailures"]
    assert rules, "the shipped rules have NodeCordonedAfterFailures"
    evaluator = Evaluator(rules)
    now = datetime.now(UTC).timestamp()
    evaluator.observe(job_signals(nodes.store)(now))
    fired = [c for c in evaluator.evaluate(now) if c["event"] == "firing"]
    assert [c["labels"]["node"] for c in fired] == ["box-7"]
    assert "box-7 was cordoned automatically" in fired[0]["summary"] and "3 times" in fired[0]["summary"]

    nodes.uncordon(local_access(), "box-7")  # an operator releases it: the signal ends (and the alert with it)
    assert not [s for s in job_signals(nodes.store)(now + 1) if s.metric == "aidc_node_cordoned_after_failures"]


def _backdate(store: object, failure_id: int, at: datetime) -> None:
    from sqlalchemy import update

    from aidc.store.metadata.schema import NodeFailureRow

    with store._session() as s:  # type: ignore[attr-defined]
        s.execute(update(NodeFailureRow).where(NodeFailureRow.id == failure_id).values(at=at))
