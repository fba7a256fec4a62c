"""A command's stdout is its own: when a Ray worker dies, Ray's driver prints "(raylet) A worker died or was
killed…" on stdout whatever ``log_to_driver`` says, which broke `aidc run --json` (one JSON document). aidc's Ray
connection sends those lines to the ``aidc.cluster.ray`` log instead.

Real engines: a local Ray started by ``ray_cluster`` in a fresh process (as a command starts it), an actor whose
process really exits.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.cluster.fresh import run_fresh

pytestmark = pytest.mark.slow

SCRIPT = """
import json, logging, os, sys, threading
from aidc.cluster.compute import ray_cluster
import ray

said = threading.Event()
lines = []
class Seen(logging.Handler):
    def emit(self, record):
        lines.append(record.getMessage())
        said.set()
logging.getLogger("aidc.cluster.ray").addHandler(Seen())
logging.getLogger("aidc.cluster.ray").setLevel(logging.INFO)

with ray_cluster("", num_cpus=1):
    @ray.remote(num_cpus=0)
    class Doomed:
        def die(self):
            os._exit(1)
    try:
        ray.get(Doomed.remote().die.remote())
    except ray.exceptions.RayActorError as exc:
        died = type(exc).__name__
    logged = said.wait(120)  # Ray publishes the worker's death a moment after the call fails
    print(json.dumps({"died": died, "logged": logged, "lines": lines}))
"""


def test_a_dying_worker_leaves_the_commands_stdout_one_json_document(tmp_path: Path) -> None:
    done = run_fresh(SCRIPT, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout)  # the whole of stdout is the one document the script printed
    assert answer["died"] == "ActorDiedError" and answer["logged"], answer
    assert any("A worker died or was killed" in line for line in answer["lines"]), answer
