"""HTTP details every backend that speaks HTTP itself shares: Retry-After, the total
size in a Content-Range, reading a body only as far as needed, ETags."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp

from prober.errors import ObjectError
from prober.model import Entry


@contextmanager
def network_errors() -> Iterator[None]:
    """aiohttp's connection faults and timeouts as per-object errors, which the shared
    retry policy retries."""
    try:
        yield
    except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
        raise ObjectError("network", f"network: connection failed ({type(exc).__name__})") from None
    except TimeoutError:
        raise ObjectError("timeout", "timeout: no answer in time") from None
    except asyncio.IncompleteReadError:
        raise ObjectError("network", "network: connection closed mid-body") from None


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


# a store that ignores Range sends the object from byte 0: reading past this much of it
# to reach a range (an MP4's moov at the end) would be a download, not a probe
NO_RANGE_LIMIT = 8 << 20


async def read_ignoring_range(resp: aiohttp.ClientResponse, start: int, end: int) -> bytes:
    """Bytes [start, end) from a 200 answer to a ranged GET, or an ObjectError when
    getting there means streaming more than NO_RANGE_LIMIT of the object."""
    length = resp.content_length
    want = end if length is None else min(end, length)
    if want > NO_RANGE_LIMIT:
        resp.close()
        raise ObjectError(
            "no_range",
            f"the store ignores Range requests: reading to byte {want:,} would download "
            f"{want / 1e6:.0f} MB of the object",
        )
    data = await read_upto(resp, want)
    resp.close()
    return data[start:end]


def learn_etag(entry: Entry, headers: Mapping[str, str]) -> None:
    """Remember the first ETag seen: later reads must see the same object (If-Match)."""
    if entry.etag is None:
        etag = headers.get("ETag")
        if etag:
            entry.etag = etag.strip('"')
