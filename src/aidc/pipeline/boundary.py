"""The user-code boundary: a stage's failure is the user's (their code, data or spec values) or ours, never muddled.

A failure is the user's when its traceback passes through their files (anything outside aidc's own package, the
Python installation and its site-packages) after aidc's last frame — aidc called their code, and it (or a library it
called, such as torch) raised — or when a stage refused their input with InvalidInput,
InvalidSpec or NotFound. It is a platform fault when it raised inside aidc on input aidc accepted. Environment
failures (a backend down, a key missing) stay plain StageFailed: neither theirs nor a bug.
"""

from __future__ import annotations

import sys
import sysconfig
import traceback
from pathlib import Path
from types import TracebackType

from aidc.errors import AidcError, InvalidInput, InvalidSpec, NotFound, PlatformFault, StageFailed, UserCodeError

AIDC_PACKAGE = Path(__file__).resolve().parents[1]
USER_FRAMES_SHOWN = 3
USERS_INPUT = (InvalidInput, InvalidSpec, NotFound)


def _installed_roots() -> tuple[Path, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    return tuple(Path(r).resolve() for r in roots | {sys.prefix, sys.base_prefix})


def is_users_file(filename: str) -> bool:
    """Whether code at ``filename`` is the user's: not aidc's, not Python's or an installed package's."""
    if filename.startswith("<"):  # <frozen ...>, <string>: never a file of theirs to point at
        return False
    path = Path(filename).resolve()
    return not any(path.is_relative_to(root) for root in (AIDC_PACKAGE, *_installed_roots()))


def is_aidc_file(filename: str) -> bool:
    return not filename.startswith("<") and Path(filename).resolve().is_relative_to(AIDC_PACKAGE)


def users_frames(tb: TracebackType | None) -> list[traceback.FrameSummary]:
    """The frames of the user's code that aidc called into when ``tb`` was raised, outermost first: those after aidc's
    last frame (code of theirs that merely called aidc, which then failed, does not make the failure theirs)."""
    frames = traceback.extract_tb(tb)
    last_aidc = max((i for i, f in enumerate(frames) if is_aidc_file(f.filename)), default=-1)
    return [f for f in frames[last_aidc + 1 :] if is_users_file(f.filename)]


def from_users_code(exc: BaseException, *, stage: str, run_id: str, log_path: str) -> UserCodeError | None:
    """``exc`` as a UserCodeError pointing at the user's innermost frame, if their code raised it; else None.
    Call it where the traceback is still live (on the worker that ran the stage: tracebacks do not travel)."""
    frames = users_frames(exc.__traceback__)
    if not frames:
        return None
    last = frames[-1]
    shown = "".join(traceback.format_list(frames[-USER_FRAMES_SHOWN:])).rstrip()
    what = f"{type(exc).__name__}: {exc}"
    return UserCodeError(
        f"stage {stage!r} failed in your code: {what}",
        stage=stage,
        run_id=run_id,
        cause=f"{what}\n{shown}",
        log_path=log_path,
        where=f"{last.filename}:{last.lineno}",
        hint=f"fix it at {last.filename}:{last.lineno} (full traceback in {log_path}), then "
        f"`aidc run --resume {run_id}`",
    )


def classify(exc: BaseException, *, stage: str, run_id: str, log_path: str, spec_at: str | None) -> StageFailed:
    """The failure of stage ``stage`` as the user should read it: theirs (UserCodeError), ours (PlatformFault) or
    the environment's (StageFailed). ``spec_at``: the stage's place in their pipeline file, ``FILE:LINE``."""
    if isinstance(exc, StageFailed):
        exc.stage, exc.run_id, exc.log_path = stage, run_id, log_path
        return exc
    if isinstance(exc, USERS_INPUT):
        return UserCodeError(
            f"stage {stage!r} refused its input: {exc.message}",
            stage=stage,
            run_id=run_id,
            cause=exc.message,
            log_path=log_path,
            where=exc.where or spec_at,
            hint=exc.hint or f"fix the stage's settings or data, then `aidc run --resume {run_id}`",
        )
    if isinstance(exc, AidcError):
        return StageFailed(
            f"stage {stage!r} failed: {exc.message}",
            stage=stage,
            run_id=run_id,
            cause=exc.message,
            log_path=log_path,
            where=exc.where,
            hint=exc.hint or f"see {log_path}; once fixed, continue with `aidc run --resume {run_id}`",
        )
    from aidc import __version__

    what = f"{type(exc).__name__}: {exc}"
    return PlatformFault(
        f"stage {stage!r} failed inside aidc: {what}",
        stage=stage,
        run_id=run_id,
        cause=what,
        log_path=log_path,
        hint=f"this is a fault in aidc {__version__}, not in your pipeline: please report it with {log_path}; "
        f"`aidc run --resume {run_id}` tries the stage again",
    )
