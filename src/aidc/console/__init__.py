"""The web console: the data center at a glance, in a browser, for every role.

Thin, like the CLI and the API: each page calls the same Client verbs (``client.local.LocalClient`` as the caller
the session stands for), and each page and action is allowed exactly when the API route it mirrors would be
(``security.policy``). Server-rendered HTML, a little script for live parts, no CDN: it works offline.
"""

from __future__ import annotations

from aidc.console.app import create_console

__all__ = ["create_console"]
