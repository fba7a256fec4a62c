"""`aidc doctor`'s checks: is this host ready to run aidc (Python, torch, Ray, GPU, ONNX Runtime, stores, disk)?

Each check returns ``{"name", "status": "ok"|"warn"|"fail", "detail", "hint"}``; a check that crashes is
reported as failed with its exception, so one broken piece never hides the others. Heavy libraries are
imported inside their check, so importing this module stays cheap.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import uuid
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from aidc.settings import Settings
    from aidc.store.artifacts import ArtifactStore
    from aidc.store.metadata import MetadataStore


class Installation(Protocol):
    """What the checks look at: the settings, and the stores they name, opened on first use (so that a store
    which cannot be opened is one failed check, not a failed command)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def metadata(self) -> MetadataStore: ...
    @property
    def artifacts(self) -> ArtifactStore: ...


GiB = 1024**3
DISK_WARN_GIB = 5.0
DISK_FAIL_GIB = 1.0
INSTALL_HINT = "reinstall aidc with `make install` (it pins torch==2.13.0 and ray==2.60.0)"

Check = dict[str, Any]


def check(name: str, status: str, detail: str, hint: str | None = None) -> Check:
    return {"name": name, "status": status, "detail": detail, "hint": hint}


def redact(url: str) -> str:
    """A URL with any password replaced by ***, as it may be shown to people."""
    return re.sub(r"(://[^:/@\s]*):[^@/\s]*@", r"\1:***@", url)


def check_python(_: Installation) -> Check:
    v = sys.version_info
    version = f"{v.major}.{v.minor}.{v.micro} ({sys.executable})"
    if v < (3, 11):
        return check("python", "fail", version, "aidc needs Python 3.11 or newer")
    return check("python", "ok", version)


def check_torch(_: Installation) -> Check:
    import torch

    cuda = torch.cuda.is_available()
    detail = f"{torch.__version__}, CUDA {'available (' + str(torch.version.cuda) + ')' if cuda else 'not available'}"
    return check("torch", "ok", detail)


def check_ray(_: Installation) -> Check:
    # the installed distribution's version: importing ray itself costs seconds
    return check("ray", "ok", metadata.version("ray"))


def check_gpu(_: Installation) -> Check:
    import torch

    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        return check("gpu", "ok", f"{len(names)} × " + ", ".join(sorted(set(names))))
    if shutil.which("nvidia-smi"):
        return check(
            "gpu",
            "warn",
            "an NVIDIA driver is present but this torch cannot use CUDA",
            "install a CUDA build of torch to train on the GPU; CPU training still works",
        )
    return check("gpu", "ok", "none — CPU training")


def check_onnxruntime(_: Installation) -> Check:
    import onnxruntime

    return check(
        "onnxruntime", "ok", f"{onnxruntime.__version__}, providers: {', '.join(onnxruntime.get_available_providers())}"
    )


def check_metadata_store(install: Installation) -> Check:
    install.metadata.list_runs(limit=1)  # opening migrates the schema; a query proves it answers
    return check("metadata store", "ok", redact(install.settings.metadata_url))


def check_artifact_store(install: Installation) -> Check:
    store = install.artifacts
    # unique bytes: the store is content-addressed, and deleting a probe must never delete a real artifact
    probe = f"aidc doctor probe {uuid.uuid4()}".encode()
    ref = store.put_bytes(probe)
    try:
        if store.get_bytes(ref.digest) != probe:
            return check(
                "artifact store",
                "fail",
                f"{redact(store.url)}: read back different bytes",
                "the store returns wrong data; check its backend",
            )
    finally:
        store.delete(ref.digest)
    return check("artifact store", "ok", f"{redact(store.url)} (write, read, delete)")


def check_disk(install: Installation) -> Check:
    path = Path(install.settings.home)
    while not path.exists() and path != path.parent:  # AIDC_HOME may not exist before the first run
        path = path.parent
    free = shutil.disk_usage(path).free / GiB
    detail = f"{free:.1f} GiB free under {install.settings.home}"
    if free < DISK_FAIL_GIB:
        return check(
            "disk",
            "fail",
            detail,
            f"free space under AIDC_HOME or point AIDC_HOME elsewhere (need ≥ {DISK_FAIL_GIB:g} GiB)",
        )
    if free < DISK_WARN_GIB:
        return check(
            "disk",
            "warn",
            detail,
            f"datasets, checkpoints and reports need room; ≥ {DISK_WARN_GIB:g} GiB is comfortable",
        )
    return check("disk", "ok", detail)


def check_host(_: Installation) -> Check:
    import psutil

    mem = psutil.virtual_memory()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return check(
        "cpu and memory",
        "ok",
        f"{psutil.cpu_count(logical=True)} CPUs ({usable} usable by this process), "
        f"{mem.total / GiB:.1f} GiB memory, {mem.available / GiB:.1f} GiB available",
    )


def check_settings(install: Installation) -> Check:
    shown = {k: redact(v) for k, v in install.settings.public().items()}
    return check("settings", "ok", "\n".join(f"{k}={v}" for k, v in shown.items()))


CHECKS: list[tuple[str, Callable[[Installation], Check]]] = [
    ("python", check_python),
    ("torch", check_torch),
    ("ray", check_ray),
    ("gpu", check_gpu),
    ("onnxruntime", check_onnxruntime),
    ("metadata store", check_metadata_store),
    ("artifact store", check_artifact_store),
    ("disk", check_disk),
    ("cpu and memory", check_host),
    ("settings", check_settings),
]


def run_checks(install: Installation) -> list[Check]:
    """Every check, in the order a newcomer fixes things; a crashing check is a failed one."""
    from aidc.errors import AidcError

    results = []
    for name, fn in CHECKS:
        try:
            results.append(fn(install))
        except AidcError as exc:
            results.append(check(name, "fail", redact(exc.message), exc.hint))
        except (ImportError, metadata.PackageNotFoundError) as exc:
            results.append(check(name, "fail", f"not installed: {exc}", INSTALL_HINT))
        except Exception as exc:  # noqa: BLE001 - doctor reports every failure instead of stopping at the first
            results.append(check(name, "fail", redact(f"{type(exc).__name__}: {exc}"), None))
    return results
