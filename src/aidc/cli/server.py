"""`aidc server`: the control plane — REST API (OpenAPI at /docs) on uvicorn over this machine's stores."""

from __future__ import annotations

from pathlib import Path

import typer

from aidc.cli.output import console, err_console, handles_errors
from aidc.errors import InvalidInput, NotFound

PRUNE_EVERY_S = 24 * 3600.0


def register(app: typer.Typer) -> None:
    @app.command("server")
    @handles_errors
    def server(
        host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
        port: int = typer.Option(8080, "--port", min=1, max=65535, help="Port to listen on."),
        tls_cert: Path = typer.Option(None, "--tls-cert", help="PEM certificate: serve HTTPS (needs --tls-key)."),
        tls_key: Path = typer.Option(None, "--tls-key", help="PEM private key of --tls-cert."),
        ray_address: str = typer.Option(
            "",
            "--ray-address",
            help="Ray cluster to run jobs on (default: AIDC_RAY_ADDRESS, else a local Ray started on the first job).",
        ),
        facility: Path = typer.Option(
            None,
            "--facility",
            help="Facility spec the server runs (default: AIDC_FACILITY): nodes in their racks, modelled power, "
            "PUE and grid carbon.",
        ),
        telemetry: bool = typer.Option(
            True, "--telemetry/--no-telemetry", help="Sample this host's telemetry (AIDC_TELEMETRY_INTERVAL_S)."
        ),
        alert_rules: Path = typer.Option(
            None,
            "--alert-rules",
            help="A site's alerts file: rules added to the shipped and facility-derived ones, notifiers and routes "
            "(default: AIDC_ALERT_RULES).",
        ),
        alerts: bool = typer.Option(
            True, "--alerts/--no-alerts", help="Judge the alert rules every AIDC_ALERTS_INTERVAL_S and notify."
        ),
        jobs: bool = typer.Option(
            True,
            "--jobs/--no-jobs",
            help="Run submitted jobs here (--no-jobs: only queue them, for a server that serves the API alone).",
        ),
        job_user: str = typer.Option(
            "",
            "--job-user",
            help="OS user to run job processes as (default: AIDC_JOB_USER; needs a server run as root), e.g. nobody: "
            "jobs then cannot read AIDC_HOME, and each runs on a local Ray of its own.",
        ),
    ) -> None:
        """Start the control plane; its first start creates user `admin` and prints its token once."""
        import uvicorn

        from aidc.api import create_app
        from aidc.api.app import settle_heap
        from aidc.platform import Platform

        if (tls_cert is None) != (tls_key is None):
            raise InvalidInput("--tls-cert and --tls-key go together", hint="pass both to serve HTTPS, or neither")
        for path in (tls_cert, tls_key):
            if path is not None and not path.is_file():
                raise NotFound(f"no such file: {path}")
        from aidc.security.keys import prepare_server
        from aidc.security.roles import local_access

        platform = Platform()
        if facility is not None:
            if not facility.is_file():
                raise NotFound(f"no such facility spec: {facility}", hint="check the path (or unset --facility)")
            platform.settings.facility = str(facility)
        if platform.facility is not None:  # loaded now: a spec error stops the start, with its file:line:col
            err_console.print(
                f"facility {platform.facility.name} ({platform.settings.facility}): "
                f"{sum(1 for _ in platform.facility.node_instances())} servers in "
                f"{sum(1 for _ in platform.facility.racks())} racks",
                highlight=False,
            )
        runner = None
        if alert_rules is not None:
            if not alert_rules.is_file():
                raise NotFound(f"no such alerts file: {alert_rules}", hint="check the path (or unset --alert-rules)")
            platform.settings.alert_rules = str(alert_rules)
        if alerts:  # built now: a mistake in the site's alerts file stops the start, with its file:line:col
            from aidc.jobs.launcher import LOG_NAME, job_dir
            from aidc.monitoring.alerts.runner import build_runner, load_site
            from aidc.monitoring.alerts.signals import job_signals, serving_signals

            home = platform.settings.home
            runner = build_runner(
                platform.metadata,
                platform.facility,
                load_site(platform.settings.alert_rules or None),
                interval_s=platform.settings.alerts_interval_s,
                signals=[
                    job_signals(platform.metadata, lambda job: job_dir(home, job) / LOG_NAME),
                    serving_signals(
                        lambda: [
                            (d.name, d.project, d.url)
                            for d in platform.metadata.list_deployments(status="running")
                            if d.controller  # a managed deployment: its URL is a router with /-/stats
                        ],
                        keep=platform.metadata.add_samples,  # its traffic history (the console's deployment charts)
                    ),
                ],
            )
            err_console.print(f"alerts: {len(runner.evaluator.rules)} rules", highlight=False)
        created = prepare_server(platform.settings)  # server mode: artifacts encrypted unless AIDC_ENCRYPTION=off
        if created:
            err_console.print(created, highlight=False)
        local = local_access()
        token = platform.security.bootstrap(local, platform.settings.admin_token.get_secret_value())
        if token:
            err_console.print(
                "[bold]First start:[/] created user [bold]admin[/] (admin on every project). "
                "Its API token, shown only this once — store it now:",
                highlight=False,
            )
            console.print(token, highlight=False, markup=False, soft_wrap=True)
        platform.security.prune_audit(local)
        scheme = "https" if tls_cert else "http"
        err_console.print(
            f"aidc control plane on {scheme}://{host}:{port}  (API docs: {scheme}://{host}:{port}/docs; "
            f"metadata: {platform.metadata.url.split('@')[-1]})",
            highlight=False,
        )
        scheduler = None
        if jobs:
            from aidc.jobs.scheduler import build_scheduler

            if job_user:
                platform.settings.job_user = job_user
            local_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
            scheduler = build_scheduler(
                platform.metadata,
                platform.security,
                platform.settings,
                ray_address=ray_address,
                server_url=f"{scheme}://{local_host}:{port}",
                ca_file=platform.settings.ca_file or (str(tls_cert) if tls_cert else ""),
                data_roots=platform.runs.data_roots,
            )
            scheduler.on_ended = platform.job_stores.forget
            if platform.settings.job_user:
                err_console.print(f"jobs run as OS user {platform.settings.job_user}", highlight=False)
        collector = None
        if telemetry:
            from aidc.monitoring.collector import local_collector

            collector = local_collector(platform.metadata, platform.settings, platform.facility)
            address = ray_address or platform.settings.ray_address
            if address:  # a cluster: an actor on each of its other nodes, pinned by node id
                from aidc.monitoring.collector import start_cluster_collectors

                actors = start_cluster_collectors(address, platform.metadata, platform.settings, platform.facility)
                err_console.print(f"telemetry: collectors on {len(actors)} more Ray node(s)", highlight=False)
        app = create_app(
            platform, prune_every_s=PRUNE_EVERY_S, scheduler=scheduler, telemetry=collector, alert_runner=runner
        )
        settle_heap()
        uvicorn.run(
            app,
            host=host,
            port=port,
            ssl_certfile=str(tls_cert) if tls_cert else None,
            ssl_keyfile=str(tls_key) if tls_key else None,
            log_level="info",
            # The app believes X-Forwarded-For only from AIDC_TRUSTED_PROXIES (api/gate.py); uvicorn's own
            # handling would believe it from 127.0.0.1 — any local process — before the app saw the request.
            proxy_headers=False,
        )
