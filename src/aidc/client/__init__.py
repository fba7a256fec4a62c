"""Clients: the verbs the CLI calls, on this machine's store (LocalClient) or through a server (RemoteClient).

Both implement the Client protocol (client/base.py) and return the same JSON-ready data. The CLI picks one
(aidc.cli.connect): the server from AIDC_SERVER/AIDC_TOKEN or what `aidc login` saved, else the local store.
"""

from __future__ import annotations

from aidc.client.base import Client
from aidc.client.credentials import forget_credentials, load_credentials, save_credentials, server_of

__all__ = ["Client", "forget_credentials", "load_credentials", "save_credentials", "server_of"]
