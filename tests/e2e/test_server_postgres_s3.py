"""`aidc server` as a site runs it — PostgreSQL metadata, S3 artifacts, encryption at rest on — taking a user's job
through to a deployment, with a master-key rotation and a server restart in the middle of the job.

The pace is the test's: the job's training workers hold after epoch 1 (training.worker's AIDC_TEST_HOLD_FILE) while
the test rotates the key through the server (`aidc keys rotate`, as an admin) and stops the server (SIGTERM). The
server comes back on the same stores; the job, whose local Ray stopped with the server, is re-queued and resumes its
run (docs/control-plane.md, "Restarts and crashes") and registers the model. The job's deploy stage deploys nothing
(a job holds no serving rights), so the user deploys the version with `aidc deploy` and asks the endpoint with
`aidc predict`.

What a user would notice is asserted: the job's state and its run, the registered version and its lineage, the
artifacts in the bucket (ciphertext there, the plaintext through aidc), what was written before the rotation still
readable after it and re-wrapped under the new key, the audit chain verifying across the restart, the predictions.

Real peers throughout, all on 127.0.0.1: PostgreSQL (a database of its own), the moto S3 server, the server's Ray,
Ray Train on 2 CPU workers, ONNX Runtime behind the deployment.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from tests.api.conftest import LiveServer, start_server, stop
from tests.conftest import fresh_postgres
from tests.e2e.test_digits_pipeline import ROOT, pipeline_file
from tests.pace import HANG_S, wait_until

from aidc.store.artifacts.envelope import MAGIC

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

_spec = importlib.util.spec_from_file_location("contract_conftest", Path(__file__).parents[1] / "contract/conftest.py")
assert _spec is not None and _spec.loader is not None
_contract = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_contract)
moto_s3_url = _contract.moto_s3_url  # the contract suites' moto server fixture, shared
AIDC = str(Path(sys.executable).with_name("aidc"))
MODEL = "digits-cnn"


def api(server: LiveServer, token: str) -> httpx.Client:
    return httpx.Client(base_url=f"{server.url}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=120)


def aidc(server: LiveServer, token: str, *args: str) -> Any:
    """``aidc ARGS --json`` through the server as the token's holder (a user's own shell: no store of the server's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIDC_")}
    env |= {"AIDC_SERVER": server.url, "AIDC_TOKEN": token, "AIDC_HOME": str(server.home.parent / "user-home")}
    done = subprocess.run(
        [AIDC, *args, "--json"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=HANG_S, check=False
    )
    assert done.returncode == 0, f"aidc {' '.join(args)}: {done.stderr[-3000:]}"
    return json.loads(done.stdout)


def process_gone(worker: str) -> bool:
    """The job's process (``host:pid:start time``, as the server stores it) has ended."""
    import psutil

    _, pid, started = worker.rsplit(":", 2)
    try:
        proc = psutil.Process(int(pid))
        return proc.status() == psutil.STATUS_ZOMBIE or f"{proc.create_time():.2f}" != started
    except psutil.NoSuchProcess:
        return True


class Bucket:
    """The S3 bucket as anyone with its credentials sees it: the bytes at rest, without aidc."""

    def __init__(self, endpoint: str, url: str) -> None:
        import boto3

        parts = urlsplit(url)
        self.name, self.prefix = parts.netloc, parts.path.strip("/") + "/"
        self.s3 = boto3.client("s3", endpoint_url=endpoint)

    def objects(self) -> dict[str, dict[str, Any]]:
        """Every object under the store's prefix: key → its ETag."""
        found = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=self.prefix):
            for obj in page.get("Contents", []):
                found[obj["Key"].removeprefix(self.prefix)] = obj["ETag"]
        return found

    def read(self, key: str) -> bytes:
        return bytes(self.s3.get_object(Bucket=self.name, Key=self.prefix + key)["Body"].read())

    def data_objects(self) -> dict[str, str]:
        """The artifacts' data objects (sha256/ab/<62 hex>): digest → ETag."""
        return {
            "sha256:" + "".join(k.split("/")[1:3]): etag
            for k, etag in self.objects().items()
            if k.startswith("sha256/") and k.count("/") == 2
        }

    def key_ids(self) -> dict[str, set[str]]:
        """Master key id each artifact's data key is wrapped under (its key records, keys/sha256/...json)."""
        wrapped: dict[str, set[str]] = {}
        for key in self.objects():
            if key.startswith("keys/sha256/") and key.endswith(".json"):
                digest = "sha256:" + "".join(key.split("/")[2:4])
                wrapped.setdefault(digest, set()).add(json.loads(self.read(key))["master_key_id"])
        return wrapped


class Site:
    """The server's environment and stores, and the process serving them now (restartable on the same stores)."""

    def __init__(self, home: Path, env: dict[str, str], stack: ExitStack) -> None:
        self.home, self.env, self.stack = home, env, stack
        self.admin_token = secrets.token_urlsafe(32)
        self.proc: subprocess.Popen[bytes] | None = None
        self.server: LiveServer | None = None
        self.stack.callback(self.stop)

    def start(self) -> LiveServer:
        self.proc, self.server = start_server(self.home, self.admin_token, env=self.env)
        return self.server

    def restart(self) -> LiveServer:
        """Stopped, started again as an operator does: same stores, same home (its master key), same port."""
        assert self.server is not None
        self.stop()
        server = self.server
        with server.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [AIDC, "server", "--port", str(urlsplit(server.url).port)],
                env=server.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

        def up() -> bool:
            assert self.proc is not None and self.proc.poll() is None, server.log.read_text()[-3000:]
            try:
                return httpx.get(f"{server.url}/api/v1/health", timeout=10).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, "the server answering again after its restart", every=0.2)
        return server

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)  # SIGTERM, as an init system stops it
            self.proc = None

    def platform(self):  # noqa: ANN201 - test helper
        """aidc's own view of the stores, as the server opens them (its master key file in its home)."""
        from aidc.platform import Platform
        from aidc.settings import Settings

        return Platform(
            Settings(
                home=self.home,
                metadata_url=self.env["AIDC_METADATA_URL"],
                artifact_url=self.env["AIDC_ARTIFACT_URL"],
                s3_endpoint_url=self.env["AIDC_S3_ENDPOINT_URL"],
            )
        )


@pytest.fixture()
def site(tmp_path: Path, moto_s3_url: str) -> Iterator[Site]:
    with ExitStack() as stack:
        env = {
            "AIDC_METADATA_URL": stack.enter_context(fresh_postgres("aidc_e2e")),
            "AIDC_ARTIFACT_URL": f"s3://aidc-e2e-{secrets.token_hex(6)}/artifacts",
            "AIDC_S3_ENDPOINT_URL": moto_s3_url,
            "AIDC_RAY_NUM_CPUS": "2",
            "AIDC_TEST_HOLD_FILE": str(tmp_path / "hold"),
            **{k: os.environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")},
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
        yield Site(tmp_path / "home", env, stack)


def test_a_job_survives_a_key_rotation_and_a_server_restart_and_its_model_is_deployed(
    site: Site, tmp_path: Path
) -> None:
    server = site.start()
    admin = api(server, site.admin_token)
    admin.post("/projects", json={"name": "alpha"}).raise_for_status()
    admin.post("/principals", json={"name": "alice"}).raise_for_status()
    for role in ("researcher", "operator"):  # she submits jobs and deploys what they register
        admin.post("/principals/alice/roles", json={"role": role, "project": "alpha"}).raise_for_status()
    alice_token = admin.post("/principals/alice/tokens", json={"name": "alice"}).json()["token"]
    alice = api(server, alice_token)

    hold = Path(site.env["AIDC_TEST_HOLD_FILE"])
    hold.write_text("epoch:1")  # the training workers hold once epoch 1 is reported (and checkpointed)
    spec = pipeline_file(
        tmp_path,
        data={"augment": {"copies": 0}},
        train={"epochs": 4, "early_stopping": None},
        evaluate={"min_accuracy": 0.9},
    ).read_text()
    submitted = alice.post("/jobs", json={"pipeline": spec, "project": "alpha"})
    assert submitted.status_code == 201, submitted.text
    job_id = submitted.json()["id"]

    wait_until(lambda: Path(f"{hold}.held").exists(), "the job's training holding after epoch 1", timeout=2 * HANG_S)
    job = alice.get(f"/jobs/{job_id}").json()
    assert job["state"] == "running"
    run_id = job["run_id"]

    # written before the rotation: the data stage's artifacts and epoch 1's checkpoint, ciphertext in the bucket
    bucket = Bucket(site.env["AIDC_S3_ENDPOINT_URL"], site.env["AIDC_ARTIFACT_URL"])
    before = bucket.data_objects()
    wrapped_before = bucket.key_ids()
    assert before and set(wrapped_before) == set(before), "every artifact has a key record"
    (first_key,) = {k for ids in wrapped_before.values() for k in ids}

    rotated = aidc(server, site.admin_token, "keys", "rotate")
    assert rotated["failed"] == [] and rotated["retired"] == [first_key]
    assert rotated["master_key_id"] != first_key and rotated["rewrapped"] >= len(before)
    assert {k for ids in bucket.key_ids().values() for k in ids} == {rotated["master_key_id"]}
    assert {d: bucket.data_objects()[d] for d in before} == before, "a rotation rewrites no data object"

    platform = site.platform()
    try:
        data_started = {s.name: s.started_at for s in platform.metadata.list_stages(run_id)}["data"]
    finally:
        platform.close()

    site.stop()  # SIGTERM: its local Ray, and the training it held, stop with it
    hold.unlink()
    # the job's process ends too (its Ray and its server gone); the server comes back once it has, to find a job
    # left running without its process (docs/control-plane.md, "Restarts and crashes")
    wait_until(lambda: process_gone(job["worker"]), f"the job's process ({job['worker']}) ended with the server")
    server = site.restart()

    seen: dict[str, Any] = {}

    def ended() -> bool:
        seen.update(alice.get(f"/jobs/{job_id}").json())
        return seen["state"] in ("succeeded", "failed", "cancelled")

    wait_until(ended, f"job {job_id} to end after the restart", timeout=2 * HANG_S)
    log = alice.get(f"/jobs/{job_id}/logs").text
    assert seen["state"] == "succeeded", log[-5000:]
    print(log)  # (shown when a later check fails)
    # what the docs promise of a job whose process ended while the server was down: re-queued, its run resumed
    assert seen["attempts"] == 2, seen
    # The first attempt recorded no outcome. How its process ended is a race the docs allow either way ("Restarts
    # and crashes"): it found its server gone and says so (exit 75; tests/jobs/test_job_worker.py), or the local Ray
    # stopping with the server took it down first, without a word (Ray ends a driver whose raylet is gone; seen
    # beside stress-ng --cpu 2). Either way it was re-queued and resumed its run.
    first_attempt = log.partition(f"job {job_id} attempt 2")[0]
    last = first_attempt.rstrip().splitlines()[-1]
    assert not last.partition(" ")[2].startswith(("stage train: ", "failed", "stopped (", "succeeded")), log[-5000:]
    if "stopped: " in last:
        assert last.endswith("the server re-queues the job when it finds this process gone"), last
    assert "Traceback" not in log
    [requeued] = admin.get("/audit", params={"action": "job.requeue"}).json()
    assert requeued["target"] == f"job:{job_id}" and requeued["details"]["why"] in ("server restart", "worker_died")
    assert seen["run_id"] == run_id and f"resumed run {run_id}" in log, log[-5000:]
    assert "[train] resumed after epoch 1" in log, log[-5000:]
    assert f"not deploying {MODEL}:1: a job's process holds no serving rights" in log, log[-5000:]

    # the registered version, in alpha, with its lineage back to the job's run and the data stage's dataset
    shown = aidc(server, alice_token, "models", "show", f"{MODEL}:1", "--project", "alpha")
    assert (shown["model"]["project"], shown["model"]["run_id"]) == ("alpha", run_id)
    chain = {(e["src_kind"], e["dst_kind"]): e["src_id"] for e in shown["lineage"]}
    assert chain == {
        ("onnx", "model_version"): shown["model"]["onnx_digest"],
        ("checkpoint", "onnx"): shown["model"]["checkpoint_digest"],
        ("run", "checkpoint"): run_id,
        ("dataset_version", "run"): str(shown["model"]["dataset_version_id"]),
    }
    platform = site.platform()
    try:
        version = platform.metadata.get_model_version(MODEL, 1, project="alpha")
        stages = {s.name: s for s in platform.metadata.list_stages(run_id)}
        assert all(s.status == "succeeded" for s in stages.values()), stages
        assert stages["data"].started_at == data_started, "the data stage, finished before the restart, ran again"
        dataset = platform.metadata.get_dataset_version(version.dataset_version_id)
        assert (dataset.run_id, dataset.project) == (run_id, "alpha")
        splits = stages["data"].outputs["splits"]["artifact"]
        offline = np.array(stages["evaluate"].outputs["predictions"]["predicted"])

        # in the bucket: ciphertext; through aidc: the plaintext, whose SHA-256 is its address — old and new alike
        after = bucket.data_objects()
        for digest in (version.onnx_digest, version.checkpoint_digest, dataset.artifact_digest, splits):
            assert digest in after, digest
        for digest in after:
            stored, plain = bucket.read(f"sha256/{digest[7:9]}/{digest[9:]}"), platform.artifacts.get_bytes(digest)
            assert stored.startswith(MAGIC) and plain not in stored
            assert "sha256:" + hashlib.sha256(plain).hexdigest() == digest
        assert set(before) <= set(after), "what was written before the rotation is still there"
        assert {k for ids in bucket.key_ids().values() for k in ids} == {rotated["master_key_id"]}

        from aidc.data.preprocess import load_arrays

        data = load_arrays(platform.artifacts.get_bytes(splits))
    finally:
        platform.close()

    # the audit chain verifies across the restart: from before the rotation to the re-queue after the restart
    chain_report = aidc(server, site.admin_token, "audit", "verify")
    [rotation] = admin.get("/audit", params={"action": "keys.rotate"}).json()
    assert rotation["result"] == "ok" and rotation["details"]["previous"] == [first_key], rotation
    assert chain_report["ok"], chain_report
    assert chain_report["first_seq"] < rotation["seq"] < requeued["seq"] <= chain_report["head_seq"]

    # the user deploys what the job registered and asks the endpoint
    deployed = aidc(server, alice_token, "deploy", f"{MODEL}:1", "--project", "alpha")
    try:
        assert deployed["stable"] == f"{MODEL}:1"
        np.save(tmp_path / "x.npy", data["x_test"])
        answer = aidc(server, alice_token, "predict", MODEL, "--input", str(tmp_path / "x.npy"), "--project", "alpha")
        assert (answer["deployment"], answer["model_version"]) == (MODEL, "1")
        logits = np.array(answer["outputs"]["logits"]["data"]).reshape(answer["outputs"]["logits"]["shape"])
        live = logits.argmax(axis=1)
        assert (live == offline).all(), "the endpoint answers as the job's evaluation did"
        assert (live == data["y_test"]).mean() >= 0.9
    finally:
        admin.delete(f"/deployments/{MODEL}", params={"project": "alpha"})
