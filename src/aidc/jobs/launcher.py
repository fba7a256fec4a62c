"""Job processes: each job runs as its own `python -m aidc.cli.job_process JOB` process, logging to its job.log.

A process rather than a thread of the server: a user's stage that crashes or leaks cannot take the server
down; a job is stopped (preempt, cancel) by a signal without touching the server's own state; one Ray driver
per process, as the runner expects; and a job keeps running while the server restarts, to be re-attached by
its pid (``worker`` = "host:pid:start-time", so a reused pid is never mistaken for it).

What a job's process holds (docs/control-plane.md, "What a job can reach"): an environment built from an allow-list
(no database URL, no key file, no S3 credentials, no server token), and on stdin — never in its environment or
arguments — the server's URL and the job's own credential, with which it reaches its stores through the API. With a
job user (``aidc server --job-user``) it runs as that OS user, in a scratch folder of its own outside AIDC_HOME, on
a local Ray of its own.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from aidc.errors import InvalidInput

LOG_NAME = "job.log"
# What a job's process may inherit of the server's environment: how to find Python and its libraries, locale, the
# accelerators, thread counts. Nothing else — whatever secret an operator put in the server's environment stays there.
PASSED_ON = (
    "PATH",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TERM",
    "PYTHONPATH",
    "PYTHONHASHSEED",
    "VIRTUAL_ENV",
    "LD_LIBRARY_PATH",
    "CUDA_VISIBLE_DEVICES",
    "CUDA_HOME",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NCCL_SOCKET_IFNAME",
    "GLOO_SOCKET_IFNAME",
    # the tests' pace-setter (training.worker.HOLD_FILE: workers hold after an epoch while a file exists), so that a
    # test holds a server's job mid-training; a path, never a secret, and unset in real use
    "AIDC_TEST_HOLD_FILE",
)
PASSED_ON_PREFIXES = ("LC_", "NVIDIA_", "RAY_")
NOT_PASSED_ON = ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS")  # the cluster's keys: given explicitly
# Settings a job's process reads (Settings from AIDC_*): none of them secret.
JOB_SETTINGS = ("ray_num_cpus", "stop_checkpoint_s", "s3_endpoint_url")


@contextmanager
def environ_passed_on() -> Iterator[None]:
    """This process's environment cut to what a job may see, while a Ray that will run jobs' code starts here (its
    processes, and the workers they start later, keep the environment they started with); restored afterwards, with
    what was set meanwhile (the cluster's token) kept."""
    keep = set(passed_on(os.environ)) | {"HOME", "USER", "LOGNAME", "SHELL", "TMPDIR", *NOT_PASSED_ON, "RAY_AUTH_MODE"}
    removed = {k: v for k, v in os.environ.items() if k not in keep}
    for key in removed:
        del os.environ[key]
    try:
        yield
    finally:
        for key, value in removed.items():
            os.environ.setdefault(key, value)


def job_dir(home: Path, job_id: str) -> Path:
    """Where a job's process works and logs."""
    return home / "jobs" / job_id


def passed_on(environ: Mapping[str, str]) -> dict[str, str]:
    """The part of ``environ`` a job's process (and a Ray it runs on) may see."""
    return {
        k: v
        for k, v in environ.items()
        if (k in PASSED_ON or k.startswith(PASSED_ON_PREFIXES)) and k not in NOT_PASSED_ON
    }


@dataclass(frozen=True)
class JobUser:
    """The OS identity job processes run as (``aidc server --job-user``)."""

    name: str
    uid: int
    gid: int

    @classmethod
    def named(cls, name: str) -> JobUser:
        import pwd

        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise InvalidInput(
                f"no OS user {name!r} to run jobs as", where="--job-user", hint="create it, or name another (nobody)"
            ) from None
        if entry.pw_uid == 0:
            raise InvalidInput("jobs must not run as root", where="--job-user", hint="name an unprivileged user")
        if os.geteuid() != 0:
            raise InvalidInput(
                "--job-user needs a server run as root (only root can start processes as another user)",
                where="--job-user",
                hint="start `aidc server` as root, or leave --job-user out (jobs then run as the server's user)",
            )
        return cls(name, entry.pw_uid, entry.pw_gid)

    def check_can_run(self, python: str) -> None:
        """Refuse now, at the server's start, if the job user cannot run this Python (e.g. one under /root)."""
        try:
            done = subprocess.run(
                [python, "-c", "import aidc.cli.job_process"],
                user=self.uid,
                group=self.gid,
                extra_groups=[],
                env=passed_on(os.environ) | {"HOME": "/"},
                cwd="/",
                capture_output=True,
                text=True,
                timeout=120,
            )
            why = (
                (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1] if done.returncode else ""
            )
        except OSError as exc:
            why = str(exc)
        if why:
            raise InvalidInput(
                f"job user {self.name} cannot run {python} with aidc: {why}",
                where="--job-user",
                hint="install Python and aidc where that user can read them (not under a 0700 home such as /root)",
            )


class Launcher(Protocol):
    def start(self, job_id: str, *, resume: bool, credential: str | None = None) -> str:
        """Start the job's process (``credential``: its token, handed on stdin); returns its ``worker`` handle."""

    def alive(self, worker: str) -> bool: ...
    def stop(self, worker: str, *, force: bool = False) -> None:
        """Ask the job to stop (its training checkpoints where it is; the run is resumable); ``force`` kills it."""


class ProcessLauncher:
    def __init__(
        self,
        home: Path,
        env: dict[str, str],
        ray_address: Callable[[], str] = lambda: "",
        *,
        server_url: str = "",
        ca_file: str = "",
        data_roots: Callable[[str], tuple[str, ...]] = lambda project: (),
        project_of: Callable[[str], str] = lambda job_id: "default",
        job_user: JobUser | None = None,
        scratch: Path | None = None,
    ) -> None:
        """``env``: what the job's process starts with (job_env); ``server_url``: where it reaches its stores;
        ``data_roots(project)``/``project_of(job_id)``: the folders its file sources are confined to; ``job_user``:
        the OS user it runs as, in a folder of its own under ``scratch``."""
        self.home = home
        self.env = env
        self.ray_address = ray_address  # the cluster the scheduler placed the job's gang on
        self.server_url, self.ca_file = server_url, ca_file
        self.data_roots, self.project_of = data_roots, project_of
        self.job_user = job_user
        self.scratch = scratch or Path(tempfile.gettempdir()) / "aidc-jobs"
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self.host = socket.gethostname()

    def _workdir(self, job_id: str) -> Path:
        """The job's own folder: under AIDC_HOME when it runs as the server's user, else one the job user owns."""
        if self.job_user is None:
            return job_dir(self.home, job_id)
        self.scratch.mkdir(parents=True, exist_ok=True)
        os.chmod(self.scratch, 0o711)  # the job user may enter its own folder, not list the others
        folder = self.scratch / job_id
        folder.mkdir(exist_ok=True)
        (folder / "tmp").mkdir(exist_ok=True)
        for path in (folder, folder / "tmp"):
            os.chown(path, self.job_user.uid, self.job_user.gid)
            os.chmod(path, 0o700)
        return folder

    @staticmethod
    def ray_tmp(job_id: str) -> Path:
        """The folder of a job user's own Ray: short, as Ray's socket paths under it must stay within 107 bytes."""
        import hashlib

        return Path(tempfile.gettempdir()) / f"aidc-ray-{hashlib.sha256(job_id.encode()).hexdigest()[:10]}"

    def ended(self, job_id: str) -> None:
        """The job's process is gone: its own Ray's session files go too (its scratch folder, with its stage logs,
        stays like a job folder)."""
        if self.job_user is not None:
            import shutil

            shutil.rmtree(self.ray_tmp(job_id), ignore_errors=True)

    def _ray_tmp(self, job_id: str) -> Path:
        assert self.job_user is not None
        folder = self.ray_tmp(job_id)
        folder.mkdir(exist_ok=True)
        os.chown(folder, self.job_user.uid, self.job_user.gid)
        os.chmod(folder, 0o700)
        return folder

    def start(self, job_id: str, *, resume: bool, credential: str | None = None) -> str:
        import psutil

        folder = job_dir(self.home, job_id)
        folder.mkdir(parents=True, exist_ok=True)
        work = self._workdir(job_id)
        env = dict(self.env) | {"AIDC_HOME": str(work)}
        if self.job_user is None:
            # the server's cluster: a cluster started now puts its Ray token in our environment (first)
            address = self.ray_address()
            ray_auth = {k: os.environ[k] for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN") if k in os.environ}
            env |= ray_auth | {"AIDC_RAY_ADDRESS": address}
        else:  # a local Ray of the job's own, under its user, in its folder
            env |= {
                "AIDC_RAY_ADDRESS": "",
                "HOME": str(work),
                "TMPDIR": str(work / "tmp"),
                "RAY_TMPDIR": str(self._ray_tmp(job_id)),
                "USER": self.job_user.name,
                "LOGNAME": self.job_user.name,
            }
        handover = self._handover(job_id, credential, work)
        identity: dict[str, Any] = (
            {"user": self.job_user.uid, "group": self.job_user.gid, "extra_groups": []} if self.job_user else {}
        )
        with (folder / LOG_NAME).open("ab") as log:
            # its own session: a Ctrl-C meant for the server's terminal must not stop the jobs
            proc = subprocess.Popen(
                [sys.executable, "-m", "aidc.cli.job_process", job_id],
                env=env,
                stdin=subprocess.PIPE if handover is not None else subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=work,
                **identity,
            )
        if handover is not None and proc.stdin is not None:
            try:
                proc.stdin.write(handover)
                proc.stdin.close()
            except BrokenPipeError:  # it died at once: the scheduler sees it gone and says so
                pass
        self._children[proc.pid] = proc
        try:
            started = psutil.Process(proc.pid).create_time()
        except psutil.NoSuchProcess:
            started = 0.0
        return f"{self.host}:{proc.pid}:{started:.2f}"

    def _handover(self, job_id: str, credential: str | None, work: Path) -> bytes | None:
        """What the job's process reads on stdin: the server to call, its credential, its data folders."""
        if credential is None:
            return None
        roots = self.data_roots(self.project_of(job_id))
        message = {
            "server": self.server_url,
            "token": credential,
            # the certificate itself, not its path: a job run as another user may not read the server's files
            "ca_pem": Path(self.ca_file).read_text() if self.ca_file else "",
            "data_roots": list(roots),
            "served_files": self.job_user is not None,  # it cannot read the folders itself: the server reads them
        }
        return (json.dumps(message) + "\n").encode()

    def _pid(self, worker: str) -> int | None:
        host, _, rest = worker.partition(":")
        pid, _, started = rest.partition(":")
        if host != self.host or not pid.isdigit():
            return None
        return int(pid)

    def alive(self, worker: str) -> bool:
        import psutil

        pid = self._pid(worker)
        if pid is None:
            return False
        child = self._children.get(pid)
        if child is not None:
            if child.poll() is None:
                return True
            del self._children[pid]
            return False
        try:  # a job of a previous server process: re-attached by pid and start time
            proc = psutil.Process(pid)
            started = worker.rsplit(":", 1)[-1]
            return proc.status() != psutil.STATUS_ZOMBIE and f"{proc.create_time():.2f}" == started
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return False

    def stop(self, worker: str, *, force: bool = False) -> None:
        pid = self._pid(worker)
        if pid is None or not self.alive(worker):
            return
        try:
            if force:
                os.killpg(pid, signal.SIGKILL)  # the job's whole session: its stage processes too
            else:
                os.kill(
                    pid, signal.SIGINT
                )  # the runner has the stage checkpoint and stop, records the run as interrupted
        except ProcessLookupError:
            pass

    def exit_code(self, worker: str) -> int | None:
        pid = self._pid(worker)
        child = self._children.get(pid) if pid is not None else None
        return child.poll() if child is not None else None
