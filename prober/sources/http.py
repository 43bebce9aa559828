"""Objects named by http(s) URLs: one URL on the command line, or ``--urls FILE|-``.

No listing: the size is learnt from the first ranged GET's ``Content-Range``.
A server that ignores ``Range`` and answers 200 is read only as far as needed,
then the connection is dropped: never a full download.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import TextIO
from urllib.parse import urlsplit

import aiohttp

from prober.errors import HttpStatusError, ObjectError, UsageError
from prober.model import Entry
from prober.sources.context import SourceContext
from prober.sources.wire import (
    content_range_total,
    learn_etag,
    network_errors,
    read_ignoring_range,
    retry_after,
)
from prober.urls import key_from_url_path, object_url


def entry_for_url(url: str) -> Entry:
    """The objectUrl drops a signature query (it is a credential); reads use the full URL."""
    parts = urlsplit(url)
    key = key_from_url_path(parts.path)
    return Entry(url=object_url(url), key=key or parts.netloc, size=None, handle=url)


class HttpSource:
    """A single http(s) URL."""

    def __init__(self, spec: str, ctx: SourceContext) -> None:
        self.name = spec
        self.ctx = ctx

    async def entries(self) -> AsyncIterator[Entry]:
        yield entry_for_url(self.name)

    def handle_for(self, key: str) -> str:
        return key  # the URL itself

    async def read(self, entry: Entry, start: int, end: int) -> bytes:
        return await http_range(self.ctx.http(), entry, start, end)

    async def stat(self, entry: Entry) -> None:
        """HEAD: learn size and ETag (for --state), without a byte of the body."""
        await http_head(self.ctx.http(), entry)

    async def close(self) -> None:
        return None


class UrlListSource(HttpSource):
    """``--urls FILE`` (``-`` for stdin): one URL a line; blank lines and ``#`` comments skipped."""

    async def entries(self) -> AsyncIterator[Entry]:
        try:
            fh = sys.stdin if self.name == "-" else await asyncio.to_thread(_open_text, self.name)
        except OSError as exc:
            raise UsageError(f"--urls {self.name}: {exc.strerror}") from None
        try:
            while lines := await asyncio.to_thread(fh.readlines, 1 << 16):
                for raw in lines:
                    line = raw.strip()
                    if not line or line.startswith("#"):
                        continue
                    if not line.startswith(("http://", "https://")):
                        raise UsageError(f"--urls {self.name}: not an http(s) URL: {line[:80]}")
                    yield entry_for_url(line)
        finally:
            if fh is not sys.stdin:
                fh.close()


def _open_text(path: str) -> TextIO:
    return open(path, encoding="utf-8")


async def http_range(session: aiohttp.ClientSession, entry: Entry, start: int, end: int) -> bytes:
    headers = {"Range": f"bytes={start}-{end - 1}", "Accept-Encoding": "identity"}
    if entry.etag and not entry.etag.startswith("W/"):
        headers["If-Match"] = f'"{entry.etag}"'  # a change between reads is an error, not a mix
    with network_errors():
        async with session.get(entry.handle, headers=headers, allow_redirects=True) as resp:
            if resp.status == 206:
                total = content_range_total(resp.headers.get("Content-Range", ""))
                if total is not None:
                    entry.size = total
                learn_etag(entry, resp.headers)
                return await resp.content.read()
            if resp.status == 200:
                # the server ignored Range: take what we need, then drop the connection
                length = resp.content_length
                if length is not None:
                    entry.size = length
                learn_etag(entry, resp.headers)
                return await read_ignoring_range(resp, start, end)
            if resp.status == 416:
                total = content_range_total(resp.headers.get("Content-Range", ""))
                entry.size = total if total is not None else 0
                return b""
            if resp.status == 412:
                raise ObjectError(
                    "changed", "changed: the object changed while being probed (ETag)", status=412
                )
            raise HttpStatusError(
                resp.status,
                resp.reason or "",
                retry_after=retry_after(resp.headers.get("Retry-After")),
            )


async def http_head(session: aiohttp.ClientSession, entry: Entry) -> None:
    with network_errors():
        async with session.head(entry.handle, allow_redirects=True) as resp:
            if resp.status >= 400:
                raise HttpStatusError(
                    resp.status,
                    resp.reason or "",
                    retry_after=retry_after(resp.headers.get("Retry-After")),
                )
            if resp.content_length is not None:
                entry.size = resp.content_length
            learn_etag(entry, resp.headers)
