"""``--state PATH``: results keyed by (objectUrl, ETag/generation, size), in SQLite (WAL).

A rerun looks every listed object up before touching the store: unchanged ones reuse
their stored result without fetching a byte, new or changed ones are probed. Results
are written in small batches as they arrive, so a run that is interrupted resumes
where it stopped. Transport failures (HTTP errors, timeouts) are not remembered — the
next run tries again; content failures (corrupt, truncated, not media) are, since an
unchanged object will fail the same way.

All SQLite work runs on one dedicated thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson

from prober.errors import FatalError
from prober.model import Entry, Kind, Metadata, Result, Status

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    url TEXT PRIMARY KEY,
    etag TEXT,
    size INTEGER,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    metadata BLOB,
    probed_at REAL NOT NULL
);
"""
# failures worth remembering for an unchanged object: its bytes will not change
STICKY_ERRORS = ("empty", "truncated", "corrupt", "not a", "no video")
_KINDS = {k.value: k for k in Kind}  # a dict lookup, not Enum's __call__, per row
_STATUSES = {s.value: s for s in Status}
_FIELDS = tuple(f.name for f in dataclasses.fields(Metadata))
_NFIELDS = len(_FIELDS)
FLUSH_EVERY = 256
FLUSH_SECONDS = 1.0


class StateStore:
    def __init__(self, path: str) -> None:
        self.path = path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="state")
        self._db: sqlite3.Connection | None = None
        self._pending: list[tuple[Any, ...]] = []
        self._last_flush = time.monotonic()

    async def open(self) -> None:
        try:
            await self._run(self._open)
        except sqlite3.Error as exc:
            raise FatalError(f"--state {self.path}: cannot open ({exc})") from None

    def _open(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=10000")
        db.executescript(SCHEMA)
        self._db = db

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    # -- lookups ------------------------------------------------------------------------
    async def rows(self, urls: list[str]) -> dict[str, tuple[Any, ...]]:
        """The stored rows (url first) for these URLs, one query for the whole batch."""
        rows: dict[str, tuple[Any, ...]] = await self._run(self._get_many, urls)
        return rows

    def match(self, entry: Entry, row: tuple[Any, ...] | None) -> Result | None:
        """The stored result if the object is unchanged (same ETag and size)."""
        if row is None or entry.size is None:
            return None
        _, etag, size, kind, status, error, blob = row
        if etag != entry.etag or size != entry.size:
            return None
        metadata = None
        if blob is not None:
            fields = orjson.loads(blob)
            if type(fields) is list and len(fields) == _NFIELDS:
                metadata = Metadata(*fields)  # positional: 5x cheaper than by name
            elif isinstance(fields, dict):  # how the first state files stored it
                metadata = Metadata(**fields)
            else:
                return None  # written by a prober with other fields: probe again
        return Result(entry, _KINDS[kind], _STATUSES[status], metadata, error, cached=True)

    def _get_many(self, urls: list[str]) -> dict[str, tuple[Any, ...]]:
        assert self._db is not None
        marks = ",".join("?" * len(urls))
        cur = self._db.execute(
            "SELECT url, etag, size, kind, status, error, metadata FROM results"
            f" WHERE url IN ({marks})",
            urls,
        )
        return {row[0]: row for row in cur}

    async def split_urls(self, url_prefix: str, every: int) -> list[str]:
        """Every ``every``-th stored URL under ``url_prefix``, in order: split points
        for listing a bucket in parallel ranges (prober/sources/listing.py)."""
        urls: list[str] = await self._run(self._every_nth, url_prefix, every)
        return urls

    def _every_nth(self, url_prefix: str, every: int) -> list[str]:
        """One index seek per split point (a window function over the prefix costs 15x
        more: it materializes every row)."""
        assert self._db is not None
        query = (
            "SELECT url FROM results WHERE url {} ?1 AND url < ?2 || char(1114111)"
            " ORDER BY url LIMIT 1 OFFSET ?3"
        )
        first, after = query.format(">="), query.format(">")
        urls: list[str] = []
        while True:
            row = self._db.execute(
                after if urls else first, (urls[-1] if urls else url_prefix, url_prefix, every - 1)
            ).fetchone()
            if row is None:
                return urls
            urls.append(row[0])

    # -- writes -------------------------------------------------------------------------
    async def record(self, result: Result) -> None:
        """Remember a fresh result; flushed in batches (and by ``close``)."""
        if result.cached or not _worth_keeping(result):
            return
        e = result.entry
        metadata = _metadata_blob(result.metadata) if result.metadata else None
        self._pending.append(
            (
                e.url,
                e.etag,
                e.size,
                result.kind.value,
                result.status.value,
                result.error,
                metadata,
                time.time(),
            )
        )
        now = time.monotonic()
        if len(self._pending) >= FLUSH_EVERY or now - self._last_flush >= FLUSH_SECONDS:
            await self.flush()

    async def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        self._last_flush = time.monotonic()
        await self._run(self._write, batch)

    def _write(self, batch: list[tuple[Any, ...]]) -> None:
        assert self._db is not None
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO results VALUES (?,?,?,?,?,?,?,?)", batch)

    async def close(self) -> None:
        try:
            await self.flush()
            if self._db is not None:
                await self._run(self._db.close)
        finally:
            self._pool.shutdown(wait=True)


def _worth_keeping(result: Result) -> bool:
    if result.status is Status.FAILED:
        return (result.error or "").startswith(STICKY_ERRORS)
    return True


def _metadata_blob(metadata: Metadata) -> bytes:
    """The fields as a JSON array, in declaration order."""
    return orjson.dumps([getattr(metadata, f) for f in _FIELDS])
