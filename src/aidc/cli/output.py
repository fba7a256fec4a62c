"""How every command renders: Rich tables for people, --json for programs, errors as one located line."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.table import Table

from aidc.errors import AidcError, InvalidSpec

# emoji=False: Rich would print a location like `spec.yaml:100:3` as `spec.yaml💯3` (":100:" is an emoji code)
console = Console(emoji=False)
err_console = Console(stderr=True, soft_wrap=True, emoji=False)  # long paths and commands stay whole, copyable
F = TypeVar("F", bound=Callable[..., Any])
DEBUG = {"on": False}


def print_json(data: Any) -> None:
    """Machine output: plain JSON on stdout, nothing else."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def emit_text(text: str, output: Path | None) -> None:
    """A rendered report to ``output`` (saying so on stderr) or to stdout, always ending in one newline."""
    text = text if text.endswith("\n") else text + "\n"
    if output is not None:
        output.write_text(text, encoding="utf-8")
        say_wrote(output)
    else:
        sys.stdout.write(text)


def say_wrote(path: Path, what: str = "") -> None:
    """Tell the person a file was written: on stderr, so that stdout stays the command's result (JSON parses)."""
    err_console.print(f"wrote {what}{path}", highlight=False, markup=False)


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    t = Table(title=title, title_justify="left", header_style="bold")
    for col in columns:
        t.add_column(col)
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    return t


def report_error(exc: AidcError) -> None:
    if isinstance(exc, InvalidSpec) and len(exc.problems) > 1:
        err_console.print(f"[bold red]error:[/] {len(exc.problems)} problems", highlight=False)
        for p in exc.problems:
            err_console.print(f"  {p}", highlight=False, markup=False)
        return
    err_console.print("[bold red]error:[/] ", end="", highlight=False)
    err_console.print(str(exc), highlight=False, markup=False)


def handles_errors(fn: F) -> F:
    """Translate AidcError into its exit code and one message; tracebacks only with --debug."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AidcError as exc:
            if DEBUG["on"]:
                raise
            report_error(exc)
            raise SystemExit(exc.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/]")
            raise SystemExit(130) from None

    return wrapper  # type: ignore[return-value]


def pue_text(figures: dict[str, Any]) -> str:
    """Where an energy figure's PUE came from, in words: metered, the spec's design value, or the default."""
    pue = figures["pue"]
    source = figures.get("pue_source")
    if source == "meter":
        meters = (figures.get("meter") or {}).get("meters") or []
        by = f" by {', '.join(meters)}" if meters else ""
        return f"PUE {pue:g} measured{by}"
    if source == "design":
        return f"PUE {pue:g} from the spec's design, no facility meter"
    return f"PUE {pue:g} assumed: no facility meter, no design PUE in the spec"


def carbon_text(figures: dict[str, Any]) -> str:
    """gCO2e with the grid intensity it rests on: the spec's hourly profile or its flat value."""
    if figures.get("gco2e") is None:
        return "gCO2e unknown (no grid intensity in the spec)"
    how = "hourly profile" if figures.get("grid_source") == "profile" else "flat"
    g = figures.get("grid_g_per_kwh")
    at = f" at {g:.0f} g/kWh {'mean, ' if how == 'hourly profile' else ''}{how}" if g is not None else ""
    return f"{figures['gco2e']:.1f} gCO2e{at}"
