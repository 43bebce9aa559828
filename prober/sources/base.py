"""The one interface every storage backend implements.

A backend lists entries and serves byte ranges; it knows nothing of probing or
output. Ranges are half-open: ``read(entry, 0, 65536)`` is the first 64 KiB.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from prober.model import Entry


@runtime_checkable
class Source(Protocol):
    #: what the user typed, for messages (never contains a secret)
    name: str
    # Optional: ``unique_urls = True`` on a backend whose entries can never repeat an
    # objectUrl (a bucket listing; not a URL list or an inventory). A run of one such
    # source lets the spec skip looking for repeats.

    def entries(self) -> AsyncIterator[Entry]:
        """Stream the entries under this source (paginated, never all in memory)."""
        ...

    async def read(self, entry: Entry, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of the object. May set ``entry.size`` if it was unknown.

        Raises ObjectError (e.g. HttpStatusError) for per-object failures.
        """
        ...

    async def close(self) -> None: ...
