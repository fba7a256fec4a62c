"""The user's own Python a spec names (``module:function``): found in the pipeline's folder or an installed package,
imported fresh, and digested so a fixed module re-runs its stage on ``--resume``."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aidc.errors import InvalidInput

REF = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_]\w*$")


def is_ref(value: str) -> bool:
    """Whether ``value`` names a callable as ``module:function`` (``mypkg.models:build``)."""
    return bool(REF.match(value))


def _in_folder(module: str, folder: str | None) -> Path | None:
    """The source file of ``module`` inside the pipeline's folder, if it is there."""
    if not folder:
        return None
    base = Path(folder).joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def source_file(ref: str, folder: str | None) -> Path | None:
    """The file ``ref``'s module is read from: the pipeline's folder first, then installed packages."""
    module = ref.partition(":")[0]
    found = _in_folder(module, folder)
    if found is not None:
        return found
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin) if spec is not None and spec.origin and spec.origin.endswith(".py") else None


def source_digest(ref: str, folder: str | None) -> str:
    """SHA-256 of the module's source (\"missing\" when it cannot be found: the stage then says why when it runs)."""
    path = source_file(ref, folder)
    if path is None:
        return "missing"
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def load_callable(ref: str, folder: str | None, *, what: str) -> Callable[..., Any]:
    """The function ``ref`` names. A module in the pipeline's folder is imported afresh (a long-lived worker must not
    keep a version the user has since fixed); ``what`` says in an error what the function was for."""
    if not is_ref(ref):
        raise InvalidInput(f"{what} {ref!r} is not MODULE:FUNCTION", hint="for example mymodels:build")
    module_name, _, name = ref.partition(":")
    local = _in_folder(module_name, folder)
    if local is not None and folder:
        top = module_name.split(".")[0]
        for loaded in [m for m in sys.modules if m == top or m.startswith(top + ".")]:
            del sys.modules[loaded]
        sys.path.insert(0, folder)
        try:
            module = importlib.import_module(module_name)
        finally:
            sys.path.remove(folder)
    else:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and module_name.startswith(exc.name):
                where = f"the pipeline's folder ({folder}) or " if folder else ""
                raise InvalidInput(
                    f"{what} {ref!r}: no module {module_name!r} in {where}the installed packages",
                    hint=f"put {module_name.replace('.', '/')}.py next to the pipeline file, or pip install it",
                ) from None
            raise
    function = getattr(module, name, None)
    if not callable(function):
        raise InvalidInput(
            f"{what} {ref!r}: {module.__file__} defines no function {name!r}",
            hint=f"define `def {name}(...)` in it, or name another function",
        )
    return function  # type: ignore[no-any-return]
