"""aidc: design, size, run and operate an AI data center from one package.

Importing aidc is cheap: torch, ray and onnxruntime load only when a command needs them.
"""

from __future__ import annotations

from aidc.errors import AidcError, InvalidSpec, NotFound

__version__ = "0.1.0"
__all__ = ["AidcError", "InvalidSpec", "NotFound", "__version__"]
