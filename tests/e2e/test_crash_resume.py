"""A crash in each stage of the digits pipeline, and `aidc run --resume` after it.

The crash is real and lands at a chosen point: the `aidc run` process is SIGKILLed (no handler, no cleanup) when
the stage's work is done and the runner is about to record it as finished — the stage's artifacts and side effects
exist, its record still says ``running``. Each resume must re-execute only what did not finish: the stages
recorded as finished are not started again (their records keep their start time), the crashed stage and those
after it are. One run goes through a crash in data, evaluate, export, register and deploy in turn (train has its
own tests: tests/e2e/test_digits_pipeline.py, tests/pipeline/test_stop_checkpoint.py), then a clean resume.

Real engines: the command's own Ray, Ray Train on 2 CPU workers, ONNX Runtime, SQLite, the file artifact store,
a deployment on the command's Ray (undone when the run ends, as without --serve).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from tests.e2e.test_digits_pipeline import ROOT, pipeline_file, platform_for
from tests.pace import HANG_S, wait_until

pytestmark = pytest.mark.slow

STAGES = ["data", "train", "evaluate", "export", "register", "deploy"]

# `aidc run` with two hooks on the metadata store, in the command's own process (where the runner records stages):
# every stage it starts is appended to $CRASH_LOG, and when the stage named $CRASH_AT is about to be recorded as
# finished the process kills itself.
AIDC_CRASHING = """\
import os, signal, sys
from aidc.store.metadata.sql import SqlMetadataStore

names = {}
start, finish = SqlMetadataStore.start_stage, SqlMetadataStore.finish_stage

def start_stage(self, run_id, name, kind, **kw):
    row = start(self, run_id, name, kind, **kw)
    names[row.id] = name
    with open(os.environ["CRASH_LOG"], "a") as log:
        log.write(name + "\\n")
    return row

def finish_stage(self, stage_run_id, status, **kw):
    if names.get(stage_run_id) == os.environ.get("CRASH_AT"):
        os.kill(os.getpid(), signal.SIGKILL)
    return finish(self, stage_run_id, status, **kw)

SqlMetadataStore.start_stage, SqlMetadataStore.finish_stage = start_stage, finish_stage
from aidc.cli.app import main
sys.argv = ["aidc", *sys.argv[1:]]
main()
"""


def aidc_crashing_at(home: Path, crash_at: str | None, *args: str) -> tuple[int, list[str], str]:
    """Run ``aidc ARGS`` crashing at ``crash_at``'s finish; (exit code, the stages it started, stderr). Whatever the
    killed command left running (its Ray) is ended with it: the command runs in a session of its own."""
    started = home / f"started-{crash_at}.log"
    env = {
        **os.environ,
        "AIDC_HOME": str(home),
        "AIDC_RAY_NUM_CPUS": "2",
        "CRASH_LOG": str(started),
        "CRASH_AT": crash_at or "",
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", AIDC_CRASHING, *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _, err = proc.communicate(timeout=HANG_S)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the crashed command's Ray, which nothing else will stop
        if proc.poll() is None:
            proc.communicate()
    return proc.returncode, started.read_text().split() if started.exists() else [], err


def test_a_crash_in_each_stage_is_resumed_by_executing_only_what_did_not_finish(tmp_path: Path) -> None:
    home = tmp_path / "home"
    spec = pipeline_file(
        tmp_path,
        train={"epochs": 2, "early_stopping": None},
        evaluate={"min_accuracy": 0.5},
        data={"augment": {"copies": 0}},
    )
    code, started, err = aidc_crashing_at(home, "data", "run", str(spec))
    assert code == -signal.SIGKILL, err[-3000:]
    assert started == ["data"]
    platform = platform_for(home)
    try:
        [run] = platform.metadata.list_runs()
        assert run.status == "running"  # what a crash leaves: nobody recorded the end

        def stage_records() -> dict[str, tuple[str, object]]:
            return {s.name: (s.status, s.started_at) for s in platform.metadata.list_stages(run.id)}

        # each resume crashes in the next stage: the stages before the one that crashed last are finished
        for crashed, crash_now in zip(
            ["data", "evaluate", "export", "register"], ["evaluate", "export", "register", "deploy"], strict=True
        ):
            before = stage_records()
            finished = [name for name in STAGES if before.get(name, ("",))[0] == "succeeded"]
            code, started, err = aidc_crashing_at(home, crash_now, "run", "--resume", run.id)
            assert code == -signal.SIGKILL, err[-3000:]
            # only what had not finished is executed again: from the stage that crashed to the one crashing now
            assert started == STAGES[STAGES.index(crashed) : STAGES.index(crash_now) + 1], (crashed, crash_now)
            after = stage_records()
            assert all(after[name] == before[name] for name in finished), "a finished stage was run again"
            assert after[crash_now][0] == "running"

        before = stage_records()
        code, started, err = aidc_crashing_at(home, None, "run", "--resume", run.id)
        assert code == 0, err[-3000:]
        assert started == ["deploy"]
        assert platform.metadata.get_run(run.id).status == "succeeded"
        after = stage_records()
        assert [name for name in STAGES if after[name][0] == "succeeded"] == STAGES
        assert all(after[name] == before[name] for name in STAGES[:-1])
        # the stages whose work was done before the crash did it once more on resume, and nothing twice in the end:
        # one registered version of the model (the register stage's crash came after it registered one)
        versions = platform.metadata.list_model_versions()
        assert [(v.name, v.version) for v in versions] == [("digits-cnn", 1)], versions
    finally:
        platform.close()
    # Nothing the killed commands started outlives them. Their Ray's daemons and workers end as the death of the
    # process above each reaches them, one after another: on a loaded machine that takes a moment, so wait for it.
    wait_until(lambda: not left_running(), "the end of every process the crashed commands started")


def left_running() -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["environ"]) if (p.info["environ"] or {}).get("CRASH_LOG")]
