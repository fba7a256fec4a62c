"""Which client a command uses: the server named by AIDC_SERVER/AIDC_TOKEN or saved by `aidc login`, else this
machine's store through its services."""

from __future__ import annotations

from aidc.client.base import Client
from aidc.client.credentials import load_credentials
from aidc.errors import Unauthenticated
from aidc.settings import Settings


def open_client(settings: Settings | None = None) -> Client:
    settings = settings or Settings()
    server, token = settings.server, settings.token.get_secret_value()
    saved = load_credentials(settings.home)
    if not server and saved:
        server, token = saved["server"], token or saved["token"]
    if not server:
        from aidc.client.local import LocalClient
        from aidc.platform import Platform

        return LocalClient(Platform(settings))
    if not token:
        raise Unauthenticated(f"no API token for {server}", hint="run `aidc login URL`, or set AIDC_TOKEN")
    from aidc.client.remote import RemoteClient

    return RemoteClient(server, token, ca_file=settings.ca_file, home=settings.home)
