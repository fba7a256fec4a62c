"""The services' authorization guard as the library core's callers meet it (the CLI and the API call these
services; the API's route check refuses most of these callers first, so the guard's own refusal is what holds for
every other caller): who is refused, with which words, and the audit entry each refusal leaves.

In process, on SQLite: the mutation run of ``services/guard.py`` (``make mutate``) needs the guard in the test's
own process.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.api.conftest import JOB_SPEC

from aidc.errors import NotFound, PermissionDenied
from aidc.platform import Platform
from aidc.security.records import AuditEntry
from aidc.security.roles import Access, local_access
from aidc.settings import Settings


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    platform = Platform(Settings(home=tmp_path / "home"))
    local = local_access()
    platform.security.create_project(local, "alpha")
    platform.security.create_project(local, "beta")
    yield platform
    platform.close()


def caller(platform: Platform, name: str, role: str, project: str) -> Access:
    security, local = platform.security, local_access()
    security.create_principal(local, name)
    security.grant(local, name, role, project)
    token = security.create_token(local, name=name, principal=name)["token"]
    return security.authenticate(token, "test")


def last_entry(platform: Platform) -> AuditEntry:
    return max(platform.security.audit_list(), key=lambda e: e.seq)


def test_a_caller_without_a_data_center_permission_is_told_what_it_needs_and_the_refusal_is_audited(
    platform: Platform,
) -> None:
    viewer = caller(platform, "vic", "viewer", "alpha")
    with pytest.raises(PermissionDenied) as refused:
        platform.nodes.change(viewer, "cordon", "gpu-07")
    assert refused.value.message == "vic may not cordon node gpu-07"
    assert refused.value.hint == "this needs nodes:manage: ask an admin for a role that has it (`aidc users grant`)"
    entry = last_entry(platform)
    assert (entry.actor, entry.action, entry.target, entry.result, entry.project) == (
        "vic",
        "node.cordon",
        "node gpu-07",
        "denied",
        None,
    )
    assert entry.details["error"] == "permission_denied"
    assert platform.security.audit_verify().ok


def test_a_caller_who_can_see_a_job_but_not_cancel_it_is_refused_naming_the_project_and_audited_there(
    platform: Platform,
) -> None:
    job, _ = platform.jobs.submit(local_access(), spec_text=JOB_SPEC, path_name="data.yaml", project="alpha")
    viewer = caller(platform, "vic", "viewer", "alpha")
    with pytest.raises(PermissionDenied) as refused:
        platform.jobs.cancel(viewer, job["id"])
    assert refused.value.message == f"vic may not change job {job['id']} (project alpha)"
    assert refused.value.hint == "ask an admin for a role that may: `aidc users grant`"
    entry = last_entry(platform)
    assert (entry.actor, entry.action, entry.result, entry.project) == ("vic", "jobs.cancel", "denied", "alpha")
    assert platform.jobs.show(local_access(), job["id"])["state"] == "queued"  # nothing changed


def test_a_record_of_a_project_the_caller_cannot_see_is_missing_in_the_same_words_and_the_probe_is_audited(
    platform: Platform,
) -> None:
    job, _ = platform.jobs.submit(local_access(), spec_text=JOB_SPEC, path_name="data.yaml", project="alpha")
    outsider = caller(platform, "bea", "researcher", "beta")
    before = last_entry(platform).seq
    with pytest.raises(NotFound) as hidden:
        platform.jobs.cancel(outsider, job["id"])
    with pytest.raises(NotFound) as missing:
        platform.jobs.cancel(outsider, "job-20260101-000000-000000")
    # alpha's job does not exist for beta's researcher: the very words of a missing one (its id cannot be probed)
    assert hidden.value.message == f"no job {job['id']!r}" and hidden.value.hint == missing.value.hint
    # the attempt on a real record is on record, in alpha, as a denial
    [denial] = [e for e in platform.security.audit_list() if e.seq > before]
    assert (denial.actor, denial.action, denial.target, denial.result, denial.project) == (
        "bea",
        "jobs.cancel",
        f"job {job['id']}",
        "denied",
        "alpha",
    )
    assert denial.details["error"] == "not_found"
    assert platform.jobs.show(local_access(), job["id"])["state"] == "queued"


def test_an_allowed_change_is_audited_once_with_what_it_changed(platform: Platform) -> None:
    job, _ = platform.jobs.submit(local_access(), spec_text=JOB_SPEC, path_name="data.yaml", project="alpha")
    researcher = caller(platform, "ria", "researcher", "alpha")
    before = last_entry(platform).seq
    platform.jobs.cancel(researcher, job["id"])
    [entry] = [e for e in platform.security.audit_list() if e.seq > before]
    assert (entry.actor, entry.action, entry.target, entry.result, entry.project) == (
        "ria",
        "job.cancel",
        f"job:{job['id']}",
        "ok",
        "alpha",
    )
    assert entry.details["was"] == "queued"  # the state it was cancelled from


def test_a_record_the_caller_may_see_is_shown_as_stored_with_its_project_and_nothing_more(
    platform: Platform,
) -> None:
    md = platform.metadata
    run = md.create_run("run-alpha-1", "digits", {}, None, project="alpha")
    md.finish_run(run.id, "succeeded")
    md.register_model_version(
        "digits-cnn",
        onnx_digest=None,
        checkpoint_digest=None,
        run_id=run.id,
        dataset_version_id=None,
        metrics={},
        project="alpha",
    )
    researcher = caller(platform, "ria", "researcher", "alpha")
    # what `aidc runs show` and `aidc models show` print for the run and the model: the stored record, its project
    # among its fields, and no field the guard made up
    shown_run = platform.runs.run_details(researcher, run.id)["run"]
    assert shown_run == md.run_details_json(run.id)["run"] and shown_run["project"] == "alpha"
    shown_model = platform.records.show_model(researcher, "digits-cnn:1")["model"]
    assert shown_model == md.get_model_version("digits-cnn", 1, project="alpha").to_json()
    assert shown_model["project"] == "alpha"
