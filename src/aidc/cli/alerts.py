"""`aidc alerts list|show|ack|silence|unsilence|export`: the data center's alerts, judged against its design."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import Any

import typer

from aidc.cli.output import console, handles_errors, print_json, table
from aidc.errors import InvalidInput

JSON = typer.Option(False, "--json", help="Print JSON.")
STATE_STYLE = {"firing": "red", "pending": "yellow", "resolved": "green", "inactive": "dim"}
SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "dim"}


def _styled(value: str, styles: dict[str, str]) -> str:
    style = styles.get(value)
    return f"[{style}]{value}[/]" if style else value


def _when(text: str | None) -> str:
    return text.replace("T", " ")[:19] if text else "-"


def _where(labels: dict[str, Any]) -> str:
    shown = {k: v for k, v in labels.items() if k not in ("alertname", "severity")}
    return ", ".join(f"{k}={v}" for k, v in shown.items()) or "-"


def _duration_s(text: str) -> float:
    from aidc.monitoring.alerts.rules import seconds

    try:
        return seconds(text)
    except ValueError:
        raise InvalidInput(f"bad duration {text!r}", where="--for", hint="e.g. 30m, 2h, 1d") from None


def print_alert(a: dict[str, Any]) -> None:
    console.print(
        f"[bold]{a['labels'].get('alertname', a['rule'])}[/]  {_styled(a['state'], STATE_STYLE)}  "
        f"{_styled(a['severity'], SEVERITY_STYLE)}  {a['id']}",
        highlight=False,
    )
    rows = [
        ("summary", a["summary"]),
        ("where", _where(a["labels"])),
        ("value", "-" if a["value"] is None else f"{a['value']:g}"),
        ("threshold", "-" if a["threshold"] is None else f"{a['threshold']:g}"),
        ("rule", f"{a['rule']} ({a['origin']})"),
        ("pending since", _when(a["started_at"])),
        ("fired", _when(a["fired_at"])),
        ("resolved", _when(a["resolved_at"])),
        ("acknowledged", f"{a['acked_by']} at {_when(a['acked_at'])}" if a["acked_by"] else "no"),
        ("runbook", a["runbook"] or "-"),
    ]
    if a["project"]:
        rows.insert(2, ("project", a["project"]))
    for key, value in rows:
        console.print(f"  {key:<14} {value}", highlight=False)


def register(app: typer.Typer) -> None:
    alerts = typer.Typer(
        help="Alerts: live telemetry judged against the facility's design and the platform's rules.",
        no_args_is_help=True,
    )
    app.add_typer(alerts, name="alerts")

    @alerts.command("list")
    @handles_errors
    def list_(
        state: str = typer.Option(
            None,
            "--state",
            "-s",
            help="pending, firing, resolved or inactive (cleared before it fired; not listed otherwise).",
        ),
        limit: int = typer.Option(100, "--limit", "-n", help="At most this many, newest first."),
        silences: bool = typer.Option(False, "--silences", help="List the silences in force instead."),
        as_json: bool = JSON,
    ) -> None:
        """Alerts, newest first (or, with --silences, the silences in force)."""
        from aidc.cli.connect import open_client

        with closing(open_client()) as client:
            found = client.list_silences() if silences else client.list_alerts(state=state, limit=limit)
        if as_json:
            print_json(found)
            return
        if silences:
            t = table(f"{len(found)} silences", ["id", "matchers", "until", "by", "comment"], [])
            for s in found:
                matchers = ", ".join(
                    f"{k}{'' if v.startswith(('=~', '!=')) else '='}{v}" for k, v in s["matchers"].items()
                )
                t.add_row(s["id"], matchers, _when(s["expires_at"]), s["created_by"], s["comment"])
            console.print(t)
            return
        t = table(f"{len(found)} alerts", ["id", "state", "severity", "alert", "where", "value", "since", "ack"], [])
        for a in found:
            t.add_row(
                a["id"][:12],
                _styled(a["state"], STATE_STYLE),
                _styled(a["severity"], SEVERITY_STYLE),
                a["labels"].get("alertname", a["rule"]),
                _where(a["labels"]),
                "-" if a["value"] is None else f"{a['value']:.4g}",
                _when(a["fired_at"] or a["started_at"]),
                a["acked_by"] or "",
            )
        console.print(t)

    @alerts.command("show")
    @handles_errors
    def show(
        alert_id: str = typer.Argument(..., metavar="ALERT", help="Alert id or a unique prefix."), as_json: bool = JSON
    ) -> None:
        """One alert: its rule, where, the value that fired it, its times, runbook and acknowledgement."""
        from aidc.cli.connect import open_client

        with closing(open_client()) as client:
            alert = client.show_alert(alert_id)
        if as_json:
            print_json(alert)
        else:
            print_alert(alert)

    @alerts.command("ack")
    @handles_errors
    def ack(
        alert_id: str = typer.Argument(..., metavar="ALERT", help="Alert id or a unique prefix."), as_json: bool = JSON
    ) -> None:
        """Acknowledge an alert: someone is on it (operators)."""
        from aidc.cli.connect import open_client

        with closing(open_client()) as client:
            alert = client.ack_alert(alert_id)
        if as_json:
            print_json(alert)
        else:
            console.print(f"{alert['id']} acknowledged by {alert['acked_by']}", highlight=False)

    @alerts.command("silence")
    @handles_errors
    def silence(
        matchers: list[str] = typer.Argument(
            ..., metavar="MATCHER...", help="LABEL=VALUE, LABEL=~REGEX or LABEL!=VALUE."
        ),
        duration: str = typer.Option("2h", "--for", help="How long: 30m, 2h, 1d (at most 90d)."),
        comment: str = typer.Option("", "--comment", "-c", help="Why (shown in the list and the audit log)."),
        as_json: bool = JSON,
    ) -> None:
        """Silence the alerts whose labels match every matcher: recorded, but nobody is notified (operators)."""
        from aidc.cli.connect import open_client
        from aidc.services.alerts import parse_matchers

        parsed = parse_matchers(matchers)
        seconds = _duration_s(duration)
        with closing(open_client()) as client:
            made = client.silence_alerts(parsed, duration_s=seconds, comment=comment)
        if as_json:
            print_json(made)
        else:
            console.print(f"silence {made['id']} until {_when(made['expires_at'])} UTC", highlight=False)

    @alerts.command("unsilence")
    @handles_errors
    def unsilence(
        silence_id: str = typer.Argument(..., metavar="SILENCE", help="Silence id."), as_json: bool = JSON
    ) -> None:
        """End a silence now (operators)."""
        from aidc.cli.connect import open_client

        with closing(open_client()) as client:
            ended = client.unsilence(silence_id)
        if as_json:
            print_json(ended)
        else:
            console.print(f"silence {ended['id']} ended", highlight=False)

    @alerts.command("export")
    @handles_errors
    def export(
        output: Path = typer.Option(None, "--output", "-o", help="Write the rule file here (default: print it)."),
    ) -> None:
        """Every rule the server judges — shipped, site, derived from the facility spec — as a Prometheus rule file."""
        from aidc.cli.connect import open_client

        with closing(open_client()) as client:
            text = client.export_alert_rules()
        if output is None:
            typer.echo(text, nl=False)
        else:
            output.write_text(text, encoding="utf-8")
            console.print(f"wrote {output} (check it with `promtool check rules {output}`)", highlight=False)
