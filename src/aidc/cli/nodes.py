"""`aidc nodes list|show|cordon|drain|uncordon` and `aidc energy report`: the data center's machines, their power,
and the energy and carbon of its work."""

from __future__ import annotations

import re
from contextlib import closing
from typing import Any

import typer

from aidc.cli.output import carbon_text, console, handles_errors, print_json, pue_text, table
from aidc.errors import InvalidInput

NAME = typer.Argument(..., metavar="NODE", help="Node name (as the spec names it), hostname or Ray node id.")
JSON = typer.Option(False, "--json", help="Print JSON.")
STATUS_STYLE = {"up": "green", "down": "red", "absent": "yellow", "unmonitored": "dim"}


def _gib(value: float | None) -> str:
    return f"{value / 2**30:.1f}" if value else "-"


def _power(t: dict[str, Any]) -> str:
    if "power_watts" not in t:
        return "-"
    return f"{t['power_watts']:.0f} W" + ("" if t.get("power_measured") else " (modelled)")


def _state(n: dict[str, Any]) -> str:
    style = STATUS_STYLE.get(n["status"], "")
    held = " [yellow]drained[/]" if n["drained"] else (" [yellow]cordoned[/]" if n["cordoned"] else "")
    return f"[{style}]{n['status']}[/]{held}" if style else n["status"] + held


def print_node(n: dict[str, Any]) -> None:
    t = n.get("telemetry") or {}
    where = " / ".join(x for x in (n.get("hall"), n.get("rack")) if x) or "not in the facility spec"
    console.print(f"[bold]{n['name']}[/]  {_state(n)}  {where}", highlight=False)
    rows = [
        ("host", n.get("host") or "-"),
        ("role / model", f"{n.get('role') or '-'} / {n.get('model') or '-'}"),
        ("power feeds", ", ".join(n.get("feeds") or []) or "-"),
        (
            "CPUs / GPUs",
            f"{n.get('cpus') or '-'} / {n.get('gpus') or 0:g}" + (f" {n['gpu_model']}" if n.get("gpu_model") else ""),
        ),
        ("memory GiB", _gib(n.get("memory_bytes"))),
        ("cpu", f"{t['cpu_utilisation'] * 100:.0f} %" if "cpu_utilisation" in t else "-"),
        ("memory used GiB", _gib(t.get("memory_used_bytes"))),
        ("power", _power(t)),
        ("inlet", f"{t['inlet_celsius']:.1f} °C" if "inlet_celsius" in t else "-"),
    ]
    if n.get("hold_reason"):
        rows.append(("held because", n["hold_reason"]))
    for job in n.get("jobs", []):
        rows.append(("job", f"{job['id']} ({job['project']}, {job['cpus']:g} CPU, {job['gpus']:g} GPU)"))
    if n.get("failures_in_window"):
        rows.append(("failures", f"{n['failures_in_window']} in the cordon's window"))
    for failure in n.get("failures", []):
        rows.append(("failure", f"{failure['at'][:19]} {failure['reason']} (run {failure['run_id'] or '-'})"))
    for key, value in rows:
        console.print(f"  {key:<16} {value}", highlight=False)


def _period_days(text: str) -> float:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([hdw]?)\s*", text)
    if not m:
        raise InvalidInput(f"bad period {text!r}", where="--period", hint="e.g. 30d, 12h, 2w (a bare number is days)")
    value, unit = float(m.group(1)), m.group(2) or "d"
    return value * {"h": 1 / 24, "d": 1.0, "w": 7.0}[unit]


def top_frame(nodes: list[dict[str, Any]], jobs: list[dict[str, Any]], where: str) -> Any:
    """One frame of `aidc top`: nodes by rack with CPU, memory, GPUs and power, then the running jobs."""
    from rich.console import Group
    from rich.text import Text

    watts = [n["telemetry"]["power_watts"] for n in nodes if "power_watts" in (n.get("telemetry") or {})]
    modelled = any(not n["telemetry"].get("power_measured", True) for n in nodes if n.get("telemetry"))
    head = Text.assemble(
        ("aidc top", "bold"),
        f"  {where}  ·  {sum(1 for n in nodes if n['status'] == 'up')}/{len(nodes)} nodes up  ·  ",
        (f"{sum(watts) / 1000:.2f} kW", "bold"),
        " (partly modelled)" if modelled else "",
        f"  ·  {len(jobs)} jobs running",
    )
    t = table(None, ["rack", "node", "state", "cpu %", "mem GiB", "GPU util", "GPU °C", "power", "inlet"], [])
    for n in nodes:
        tel = n.get("telemetry") or {}
        gpus = tel.get("gpus") or []
        t.add_row(
            n.get("rack") or "-",
            n["name"],
            _state(n),
            f"{tel['cpu_utilisation'] * 100:.0f}" if "cpu_utilisation" in tel else "-",
            f"{_gib(tel.get('memory_used_bytes'))}/{_gib(tel.get('memory_total_bytes') or n.get('memory_bytes'))}",
            " ".join(f"{g.get('utilisation_ratio', 0) * 100:.0f}%" for g in gpus) or "-",
            " ".join(f"{g['temperature_celsius']:.0f}" for g in gpus if "temperature_celsius" in g) or "-",
            _power(tel),
            f"{tel['inlet_celsius']:.1f} °C" if "inlet_celsius" in tel else "-",
        )
    j = table(None, ["job", "project", "pipeline", "workers", "CPUs", "GPUs", "since"], [])
    for job in jobs:
        j.add_row(
            job["id"],
            job["project"],
            job["pipeline"],
            str(job["workers"]),
            f"{job['cpus'] * job['workers']:g}",
            f"{job['gpus'] * job['workers']:g}",
            (job.get("started_at") or "")[:19],
        )
    return Group(head, t, j)


def register(app: typer.Typer) -> None:
    @app.command("top")
    @handles_errors
    def top(
        interval: float = typer.Option(2.0, "--interval", "-n", min=0.5, help="Seconds between refreshes."),
        once: bool = typer.Option(False, "--once", help="Print one frame and exit."),
    ) -> None:
        """Live view of the data center: nodes by rack (CPU, memory, GPUs, power), and the running jobs."""
        import time

        from rich.live import Live

        from aidc.cli.connect import open_client

        with closing(open_client()) as client:

            def frame() -> Any:
                return top_frame(client.list_nodes(), client.list_jobs(state="running"), client.where)

            if once:
                console.print(frame())
                return
            with Live(frame(), console=console, refresh_per_second=4, screen=False) as live:
                try:
                    while True:
                        time.sleep(interval)
                        live.update(frame())
                except KeyboardInterrupt:
                    pass

    nodes = typer.Typer(help="Nodes: inventory, live telemetry, cordon, drain, uncordon.", no_args_is_help=True)
    app.add_typer(nodes, name="nodes")

    @nodes.command("list")
    @handles_errors
    def list_(as_json: bool = JSON) -> None:
        """Every node of the cluster and of the facility spec: rack, state, CPU, memory, power."""
        from aidc.cli.connect import open_client

        with closing(open_client()) as client:
            found = client.list_nodes()
        if as_json:
            print_json(found)
            return
        t = table(
            f"{len(found)} nodes", ["rack", "node", "state", "role", "CPUs", "GPUs", "cpu %", "mem GiB", "power"], []
        )
        for n in found:
            tel = n.get("telemetry") or {}
            t.add_row(
                n.get("rack") or "-",
                n["name"],
                _state(n),
                n.get("role") or "-",
                f"{n['cpus']:g}" if n.get("cpus") is not None else "-",
                f"{n['gpus']:g}" if n.get("gpus") is not None else "-",
                f"{tel['cpu_utilisation'] * 100:.0f}" if "cpu_utilisation" in tel else "-",
                f"{_gib(tel.get('memory_used_bytes'))}/{_gib(tel.get('memory_total_bytes') or n.get('memory_bytes'))}",
                _power(tel),
            )
        console.print(t)

    @nodes.command("show")
    @handles_errors
    def show(name: str = NAME, as_json: bool = JSON) -> None:
        """One node: where it sits, what it has, its latest readings and the jobs on it."""
        from aidc.cli.connect import open_client

        with closing(open_client()) as client:
            node = client.show_node(name)
        if as_json:
            print_json(node)
        else:
            print_node(node)

    def _hold(verb: str, name: str, reason: str, as_json: bool) -> None:
        from aidc.cli.connect import open_client

        with closing(open_client()) as client:
            state = client.change_node(verb, name, reason)
        if as_json:
            print_json(state)
            return
        done = {
            "cordon": "cordoned: it takes no new jobs",
            "drain": "drained",
            "uncordon": "released: it takes new jobs",
        }
        console.print(f"{state['node']} {done[verb]}", highlight=False)
        if verb == "drain":
            moved = state.get("jobs_requeued") or []
            console.print(
                f"  {len(moved)} job(s) asked to checkpoint and requeue: {', '.join(moved)}"
                if moved
                else "  no jobs were running there",
                highlight=False,
            )

    REASON = typer.Option("", "--reason", "-r", help="Why (shown in `aidc nodes list` and the audit log).")

    @nodes.command("cordon")
    @handles_errors
    def cordon(name: str = NAME, reason: str = REASON, as_json: bool = JSON) -> None:
        """No new jobs or replicas on the node; what runs there goes on."""
        _hold("cordon", name, reason, as_json)

    @nodes.command("drain")
    @handles_errors
    def drain(name: str = NAME, reason: str = REASON, as_json: bool = JSON) -> None:
        """Cordon the node and ask its jobs to checkpoint and requeue (they resume elsewhere)."""
        _hold("drain", name, reason, as_json)

    @nodes.command("uncordon")
    @handles_errors
    def uncordon(name: str = NAME, as_json: bool = JSON) -> None:
        """Release the node: it takes new jobs again."""
        _hold("uncordon", name, "", as_json)

    energy = typer.Typer(help="Energy and carbon: per node, per project, ISO/IEC 30134 KPIs.", no_args_is_help=True)
    app.add_typer(energy, name="energy")

    @energy.command("report")
    @handles_errors
    def report(
        period: str = typer.Option("30d", "--period", help="How far back: 30d, 12h, 2w."),
        project: str = typer.Option(None, "--project", "-p", help="Only this project's jobs."),
        as_json: bool = JSON,
    ) -> None:
        """IT and facility energy, carbon, PUE/REF/CUE/WUE over the period; per node and per project."""
        from aidc.cli.connect import open_client

        days = _period_days(period)
        with closing(open_client()) as client:
            r = client.energy_report(period_days=days, project=project)
        if as_json:
            print_json(r)
            return
        flag = "measured" if r["measured"] else "partly modelled"
        console.print(
            f"[bold]Energy, last {period}[/]: IT {r['it_kwh']:.3f} kWh ({flag}), facility {r['facility_kwh']:.3f} kWh "
            f"({pue_text(r)}), {carbon_text(r)}",
            highlight=False,
        )
        meter = r.get("meter")
        if meter:
            console.print(
                f"facility meter {', '.join(meter['meters'])}: {meter['facility_kwh']:.3f} kWh over "
                f"{meter['since']} … {meter['until']} ({meter['coverage']:.0%} of the period)"
                + (f" — {meter['note']}" if meter.get("note") else ""),
                highlight=False,
                markup=False,
            )
        kpis = ", ".join(f"{k} {'-' if v is None else f'{v:g}'}" for k, v in r["kpis"].items())
        console.print(f"ISO/IEC 30134: {kpis}", highlight=False)
        t = table("per node", ["node", "IT kWh", "measured"], [])
        for n in r["nodes"]:
            t.add_row(n["node"], f"{n['it_kwh']:.4f}", "yes" if n["measured"] else "modelled")
        console.print(t)
        t = table("per project", ["project", "jobs", "kWh", "gCO2e", "measured"], [])
        for p in r["projects"]:
            t.add_row(
                p["project"],
                str(p["jobs"]),
                f"{p['kwh']:.4f}",
                "-" if p["gco2e"] is None else f"{p['gco2e']:.1f}",
                "yes" if p["measured"] else "modelled",
            )
        console.print(t)
