"""Leaving Ray does not end the process: an ObjectRef freed while Ray's driver is half shut down makes its core
worker quit the whole process (exit status 1, nothing printed). CI lost two runs of the suite that way, in a test
that started and left Ray twice (docs/testing.md).

Real engines: a local Ray started by ``ray_cluster`` in a fresh process, as a command starts it. The only thing
staged is *when* the collection happens: the collection that another thread (or Ray's own allocations) may start at
any moment of the shutdown is made to happen right after the core worker stops, every time.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.cluster.fresh import run_fresh

pytestmark = pytest.mark.slow

SCRIPT = """
import gc
import ray
from aidc.cluster.compute import ray_cluster

gc.disable()  # no collection but the ones this script and leaving Ray make


class CollectedJustAfterShutdown:
    def __init__(self, core_worker):
        self.core_worker = core_worker

    def __getattr__(self, name):
        return getattr(self.core_worker, name)

    def shutdown_driver(self):
        self.core_worker.shutdown_driver()
        gc.collect()


class Cycle:
    pass


with ray_cluster("", num_cpus=1):
    lost = Cycle()
    lost.itself, lost.ref = lost, ray.put("a block")  # a ref only a reference cycle holds: freed by a collection
    del lost
    worker = ray._private.worker.global_worker
    worker.core_worker = CollectedJustAfterShutdown(worker.core_worker)
print("left Ray", flush=True)
"""


def test_a_ref_freed_by_a_collection_during_the_shutdown_does_not_end_the_process(tmp_path: Path) -> None:
    done = run_fresh(SCRIPT, tmp_path)
    assert (done.returncode, done.stdout) == (0, "left Ray\n"), done.stderr[-3000:]
