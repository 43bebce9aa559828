"""Local servers for tests, benchmarks and demos.

* :class:`HttpStore` -- an in-process HTTP object store (aiohttp in its own thread) with
  range requests, ETags and runtime fault injection.
* :class:`MotoServer`, :class:`FakeGcsServer`, :class:`Azurite` -- the three cloud
  emulators as subprocesses on free 127.0.0.1 ports.

Everything here works without pytest::

    from tests.servers import HttpStore, MotoServer
    with HttpStore() as store, MotoServer() as s3:
        store.put("a.mp4", b"...")
        s3.create_bucket("b")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .emulators import (
        AZURITE_ACCOUNT,
        AZURITE_KEY,
        AZURITE_VERSION,
        Azurite,
        EmulatorError,
        FakeGcsServer,
        MotoServer,
        azurite_binary,
        ensure_azurite,
        fake_gcs_binary,
        free_port,
        merged_env,
        node_available,
    )
    from .http_store import HttpStore, KeyStats

# Lazy exports (PEP 562): importing the emulators does not pull in aiohttp, and
# `python -m tests.servers.http_store DIR` runs without a double-import warning.
_EXPORTS = {
    "AZURITE_ACCOUNT": "emulators",
    "AZURITE_KEY": "emulators",
    "AZURITE_VERSION": "emulators",
    "Azurite": "emulators",
    "EmulatorError": "emulators",
    "FakeGcsServer": "emulators",
    "MotoServer": "emulators",
    "azurite_binary": "emulators",
    "ensure_azurite": "emulators",
    "fake_gcs_binary": "emulators",
    "free_port": "emulators",
    "merged_env": "emulators",
    "node_available": "emulators",
    "HttpStore": "http_store",
    "KeyStats": "http_store",
}


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{mod}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "AZURITE_ACCOUNT",
    "AZURITE_KEY",
    "AZURITE_VERSION",
    "Azurite",
    "EmulatorError",
    "FakeGcsServer",
    "HttpStore",
    "KeyStats",
    "MotoServer",
    "azurite_binary",
    "ensure_azurite",
    "fake_gcs_binary",
    "free_port",
    "merged_env",
    "node_available",
]
