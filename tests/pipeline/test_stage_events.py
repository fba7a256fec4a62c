"""A stage's events reach the run from two threads of one worker: rank 0's checkpoint writer flushes while the
training thread goes on emitting (training.loop.CheckpointWriter). Before the pending sends were handed over under a
lock, a flush on one thread while the other appended failed inside Ray with a bare ``AssertionError`` — a preempted
training job that resumed then failed at an epoch's end (tests/api/test_jobs_preemption.py, under load)."""

from __future__ import annotations

import pickle
import threading
from pathlib import Path

from aidc.cluster.compute import ray_cluster
from aidc.pipeline.stage import StageContext


def test_events_emitted_on_one_thread_while_another_flushes_all_arrive(tmp_path: Path) -> None:
    from ray.util.queue import Queue

    with ray_cluster(num_cpus=2):
        queue = Queue(actor_options={"num_cpus": 0})
        ctx = StageContext("run-1", "train", None, queue, str(tmp_path / "train.log"), str(tmp_path))
        count = 3000
        done = threading.Event()
        flushes = 0

        def writer() -> None:  # the checkpoint writer: flushes again and again while training emits
            nonlocal flushes
            while not done.is_set():
                ctx.flush()
                flushes += 1

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            for step in range(count):
                ctx.emit("metric", name="loss", step=step, value=1.0 / (step + 1))
        finally:
            done.set()
            thread.join()
        ctx.flush()
        events = queue.get_nowait_batch(queue.qsize())
        # every one, once (the queue actor does not keep their order: ray.util.queue's actor is asynchronous)
        assert sorted(e["step"] for e in events) == list(range(count))
        assert flushes > 1  # the writer really flushed while the events were being emitted


def test_a_context_sent_to_a_worker_takes_no_pending_sends_and_a_working_lock(tmp_path: Path) -> None:
    ctx = StageContext("run-1", "train", None, None, str(tmp_path / "train.log"), str(tmp_path))
    ctx._sent.append("a send of this process")
    copy = pickle.loads(pickle.dumps(ctx))
    assert copy._sent == [] and copy.run_id == "run-1"
    with copy._sending:  # its own lock, usable in the process it arrives in
        pass
