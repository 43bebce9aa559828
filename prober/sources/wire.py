"""HTTP details every backend that speaks HTTP itself shares: Retry-After, the total
size in a Content-Range, reading a body only as far as needed, ETags."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp

from prober.model import Entry


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def content_range_total(value: str | None) -> int | None:
    """The object size in ``bytes 0-65535/1234567`` (or ``bytes */1234``)."""
    total = str(value or "").rpartition("/")[2]
    return int(total) if total.isdigit() else None


async def read_upto(resp: aiohttp.ClientResponse, n: int) -> bytes:
    """At most ``n`` bytes of a body (a server that ignored Range, an error document)."""
    buf = bytearray()
    async for chunk in resp.content.iter_chunked(65536):
        buf += chunk
        if len(buf) >= n:
            break
    return bytes(buf[:n])


def learn_etag(entry: Entry, headers: Mapping[str, str]) -> None:
    """Remember the first ETag seen: later reads must see the same object (If-Match)."""
    if entry.etag is None:
        etag = headers.get("ETag")
        if etag:
            entry.etag = etag.strip('"')
