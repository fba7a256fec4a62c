"""A job's process whose server goes away mid-run (stopped or restarting): it records no outcome — a server back in
time would take "failed" for one and the job would never resume — and exits for the server to re-queue it; a job
that fails of its own records the failure as before."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from aidc.errors import InvalidInput, ServerUnreachable
from aidc.jobs.worker import SERVER_GONE, run_job


class Store:
    """The records a job's process reaches through its server: the job, its run and the transitions it asks for."""

    def __init__(self, tmp_path: Any) -> None:
        self.job = SimpleNamespace(
            id="job-1", run_id=None, attempts=1, path_name="p.yaml", spec_text="x", project="a", state="running"
        )
        self.transitions: list[tuple[str, Any]] = []

    def get_job(self, job_id: str) -> Any:
        return self.job

    def transition_job(self, job_id: str, from_states: Any, to: Any, **fields: Any) -> bool:
        self.transitions.append((to, fields.get("last_error")))
        return True


class Book:
    def __init__(self) -> None:
        self.entries: list[tuple[str, dict[str, Any]]] = []

    def record(self, access: Any, action: str, target: str, **details: Any) -> None:
        self.entries.append((action, details))


def runner_failing_with(exc: Exception) -> Any:
    class Runner:
        def run(self, spec: Any, *, resume: Any) -> Any:
            raise exc

    return lambda access, observer, project: Runner()


@pytest.fixture(autouse=True)
def _in(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the job writes its pipeline file where it works


def test_a_job_that_loses_its_server_records_no_outcome_and_exits_to_be_requeued(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    store, book = Store(tmp_path), Book()
    lost = ServerUnreachable("the job cannot reach the aidc server at http://127.0.0.1:1: ConnectError")
    assert run_job("job-1", store, book, runner_failing_with(lost)) == SERVER_GONE  # type: ignore[arg-type]
    assert store.transitions == [] and book.entries == []
    said = capsys.readouterr().out
    assert "stopped: the job cannot reach the aidc server" in said and "re-queues the job" in said


def test_a_job_that_fails_of_its_own_records_the_failure(tmp_path: Any) -> None:
    store, book = Store(tmp_path), Book()
    bad = InvalidInput("no such column 'label'")
    assert run_job("job-1", store, book, runner_failing_with(bad)) == 1  # type: ignore[arg-type]
    assert [(to, error["code"]) for to, error in store.transitions] == [("failed", "invalid_input")]
    assert [action for action, _ in book.entries] == ["job.fail"]


class GoneStore(Store):
    """The server answers the job's reads, then goes away as the process reports how its run ended."""

    def transition_job(self, job_id: str, from_states: Any, to: Any, **fields: Any) -> bool:
        raise ServerUnreachable("the job cannot reach the aidc server at http://127.0.0.1:1: ConnectError")


@pytest.mark.parametrize(
    "ending", [KeyboardInterrupt(), InvalidInput("no such column 'label'"), RuntimeError("a stage's own bug")]
)
def test_a_server_gone_as_the_outcome_is_recorded_is_a_lost_server_not_a_crash(
    tmp_path: Any, capsys: pytest.CaptureFixture[str], ending: BaseException
) -> None:
    """Stopped, failed or crashed: whatever ended the run, if the server is gone when the process goes to say so,
    the process exits as one that lost its server (re-queued to resume), not with a traceback."""
    store, book = GoneStore(tmp_path), Book()
    assert run_job("job-1", store, book, runner_failing_with(ending)) == SERVER_GONE  # type: ignore[arg-type]
    assert book.entries == []
    out = capsys.readouterr()
    assert "re-queues the job" in out.out and "Traceback" not in out.out + out.err
