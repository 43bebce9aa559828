"""Sources → bounded entry queue → probe workers → bounded result queue → sinks.

One producer streams every source's listing, classifies each entry and queues the
videos; ``concurrency`` worker coroutines probe them (FFmpeg's parsing runs in a
small thread pool sized to the cores); one writer task feeds the sinks. Queues are
bounded, so memory stays flat however many objects the listing yields.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import os
import time
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from prober.classify import classify, extension
from prober.errors import ObjectError, WrongKind
from prober.limiter import AdaptiveLimiter
from prober.model import Entry, Kind, Result, Status
from prober.retry import with_retries
from prober.shard import folder_key, shard_of
from prober.sinks import SinkSet
from prober.sources.base import Source
from prober.state import StateStore
from prober.urls import redact

log = logging.getLogger("prober")


@dataclass(slots=True)
class Filters:
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    shard: tuple[int, int] | None = None  # (index, count)
    group_images: bool = False  # images form folder groups: shard them by folder

    def accept(self, key: str) -> bool:
        if self.include and not any(_glob(key, p) for p in self.include):
            return False
        if self.exclude and any(_glob(key, p) for p in self.exclude):
            return False
        return True

    def in_shard(self, key: str, kind: Kind) -> bool:
        if self.shard is None:
            return True
        index, count = self.shard
        grouped = kind is Kind.DICOM or (kind is Kind.IMAGE and self.group_images)
        return shard_of(folder_key(key) if grouped else key, count) == index


def _glob(key: str, pattern: str) -> bool:
    """``*.mp4`` matches at any depth (like rclone's basename rules); a pattern with '/' matches the key."""
    if "/" in pattern:
        return fnmatch.fnmatchcase(key, pattern)
    return fnmatch.fnmatchcase(key.rsplit("/", 1)[-1], pattern) or fnmatch.fnmatchcase(key, pattern)


@dataclass(slots=True)
class Counters:
    listed: int = 0
    probed: int = 0
    failed: int = 0
    images: int = 0
    dicom: int = 0
    skipped: int = 0
    cached: int = 0
    bytes_fetched: int = 0
    requests: int = 0
    retries: int = 0
    listing_done: bool = False
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def done(self) -> int:
        return self.probed + self.failed

    @property
    def handled(self) -> int:
        return self.probed + self.failed + self.images + self.dicom + self.skipped

    def add(self, result: Result) -> None:
        if result.status is Status.FAILED:
            self.failed += 1
        elif result.status is Status.SKIPPED:
            self.skipped += 1
        elif result.kind is Kind.VIDEO:
            self.probed += 1
        elif result.kind is Kind.IMAGE:
            self.images += 1
        elif result.kind is Kind.DICOM:
            self.dicom += 1
        self.cached += result.cached
        self.bytes_fetched += result.bytes_fetched
        self.requests += result.requests


@dataclass(slots=True)
class PipelineConfig:
    concurrency: int = 64
    sniff: bool = False
    retries: int = 5
    filters: Filters = field(default_factory=Filters)
    parse_threads: int = 0  # 0: one per core
    grace: float = 5.0  # seconds in-flight probes get to finish after a stop
    state: StateStore | None = None


def deliver(
    result: Result, counters: Counters, sinks: SinkSet, state: StateStore | None
) -> Awaitable[None] | None:
    """The writer's work on one result, in either engine: count it, hand it to the
    sinks; what it returns (when not None) remembers it in --state, for a result
    that was fetched. Plain calls, not a coroutine per result: a --state rerun hands
    the writer tens of thousands of unchanged results a second."""
    counters.add(result)
    sinks.write(result)
    if state is not None and (result.requests or result.bytes_fetched):
        return state.record(result)
    return None


_DONE = object()
STATE_BATCH = 256  # listed objects looked up in --state with one query


@dataclass(slots=True)
class _Lookup:
    batch: list[tuple[Source, Entry, Kind]]
    rows: asyncio.Future[dict[str, tuple]]


class Pipeline:
    def __init__(
        self,
        sources: list[Source],
        sinks: SinkSet,
        config: PipelineConfig,
    ) -> None:
        self.sources = sources
        self.sinks = sinks
        self.config = config
        self.counters = Counters()
        self.stopping = asyncio.Event()
        self.interrupted = False
        self._write_error: Exception | None = None
        threads = config.parse_threads or max(1, os.cpu_count() or 1)
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ffmpeg")
        n = max(1, config.concurrency)
        self.limiter = AdaptiveLimiter(n)
        self.work: asyncio.Queue[object] = asyncio.Queue(maxsize=n * 2)
        self.results: asyncio.Queue[object] = asyncio.Queue(maxsize=n * 4)

    def stop(self) -> None:
        """Stop listing; let in-flight probes finish (up to ``grace`` seconds)."""
        self.interrupted = True
        self.stopping.set()

    async def run(self) -> Counters:
        n = max(1, self.config.concurrency)
        writer = asyncio.create_task(self._writer(), name="writer")
        workers = [asyncio.create_task(self._worker(), name=f"worker-{i}") for i in range(n)]
        producer = asyncio.create_task(self._produce(), name="producer")
        try:
            stop_wait = asyncio.create_task(self.stopping.wait())
            await asyncio.wait({producer, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            if producer.done():
                stop_wait.cancel()
                producer.result()  # re-raise a listing failure
            else:
                producer.cancel()
                await asyncio.gather(producer, return_exceptions=True)
            for _ in workers:
                await self._put_work(_DONE)
            if self.stopping.is_set():
                _, pending = await asyncio.wait(workers, timeout=self.config.grace)
                for task in pending:
                    task.cancel()
            await asyncio.gather(*workers, return_exceptions=self.stopping.is_set())
            await self.results.put(_DONE)
            await writer
            if self._write_error is not None:
                raise self._write_error
        finally:
            for task in (producer, *workers, writer):
                if not task.done():
                    task.cancel()
            await asyncio.gather(producer, *workers, writer, return_exceptions=True)
            self.executor.shutdown(wait=False, cancel_futures=True)
        return self.counters

    async def _put_work(self, item: object) -> None:
        if self.stopping.is_set():
            # drain queued entries nobody will start
            while not self.work.empty():
                self.work.get_nowait()
        await self.work.put(item)

    # -- stages ---------------------------------------------------------------------
    async def _produce(self) -> None:
        filters = self.config.filters
        state = self.config.state
        sniff = self.config.sniff
        stopping = self.stopping
        counters = self.counters
        position = 0
        batch: list[tuple[Source, Entry, Kind]] = []  # --state: looked up together
        # --state: the batch whose rows are being looked up while the next one fills
        pending: _Lookup | None = None
        try:
            for source in self.sources:
                async for entry in source.entries():
                    if stopping.is_set():
                        return
                    if not filters.accept(entry.key):
                        continue
                    position += 1  # in the whole listing, so shards and Ray keep listing order
                    kind = entry.kind or classify(entry.key)
                    if not filters.in_shard(entry.key, kind):
                        continue
                    counters.listed += 1
                    entry.seq = position
                    if kind is Kind.VIDEO or (kind is Kind.OTHER and sniff):
                        if state is not None:
                            batch.append((source, entry, kind))
                            if len(batch) >= STATE_BATCH:
                                pending = await self._look_up(batch, pending)
                                batch = []
                        else:
                            await self.work.put((source, entry, kind, None))
                    elif kind is Kind.OTHER:
                        await self.results.put(Result(entry, kind, Status.SKIPPED))
                    else:
                        await self.results.put(Result(entry, kind, Status.OK))
            pending = await self._look_up(batch, pending)
            if pending is not None:
                await self._dispatch(pending)
                pending = None
        finally:
            if pending is not None and not pending.rows.done():
                pending.rows.cancel()
        counters.listing_done = True

    async def _look_up(
        self, batch: list[tuple[Source, Entry, Kind]], pending: _Lookup | None
    ) -> _Lookup | None:
        """--state, one query per batch, run while the next batch is listed; then the
        batch before it is handed on."""
        lookup = None
        if batch:
            state = self.config.state
            assert state is not None
            urls = [entry.url for _, entry, _ in batch]
            lookup = _Lookup(batch, asyncio.ensure_future(state.rows(urls)))
        if pending is not None:
            await self._dispatch(pending)
        return lookup

    async def _dispatch(self, lookup: _Lookup) -> None:
        """Unchanged objects go straight to the sinks (nothing to fetch or remember: no
        hop through the writer's queue), new ones to the probe workers; objects the
        listing gave no ETag for (URL lists) go to a worker with their stored row, to be
        compared after one HEAD."""
        state = self.config.state
        assert state is not None
        rows = await lookup.rows
        for source, entry, kind in lookup.batch:
            row = rows.get(entry.url)
            cached = state.match(entry, row) if entry.etag and entry.size is not None else None
            if cached is not None:
                self._deliver(cached)  # never anything to remember
            else:
                await self.work.put((source, entry, kind, row))

    def _deliver(self, result: Result) -> Awaitable[None] | None:
        """:func:`deliver`; a sink that cannot write (disk full …) stops the run."""
        if self._write_error is not None:
            return None
        try:
            return deliver(result, self.counters, self.sinks, self.config.state)
        except Exception as exc:
            self._write_error = exc
            self.stopping.set()
            return None

    async def _worker(self) -> None:
        while True:
            item = await self.work.get()
            if item is _DONE:
                return
            if self.stopping.is_set():
                continue
            source, entry, kind, row = item  # type: ignore[misc]
            result = None
            if row is not None and (entry.etag is None or entry.size is None):
                result = await self._stat_and_match(source, entry, row)
            if result is None:
                result = await self.probe_one(source, entry, kind)
            await self.results.put(result)

    async def _stat_and_match(self, source: Source, entry: Entry, row: tuple) -> Result | None:
        """One HEAD to learn ETag and size, then the stored result if they match."""
        stat = getattr(source, "stat", None)
        state = self.config.state
        if stat is None or state is None:
            return None
        try:
            await with_retries(lambda: stat(entry), self.config.retries)
        except ObjectError:
            return None  # the probe will meet and report the same problem
        return state.match(entry, row)

    async def probe_one(self, source: Source, entry: Entry, kind: Kind) -> Result:
        from prober.probe import ProbeStats, probe  # PyAV and the parsers: when needed

        stats = ProbeStats()
        retries = 0 if getattr(source, "retries_itself", False) else self.config.retries
        limiter = self.limiter

        def on_retry(exc: BaseException) -> None:
            self.counters.retries += 1
            if isinstance(exc, ObjectError) and exc.status in (429, 503):
                before = limiter.limit
                limiter.throttled()
                if limiter.limit < before:
                    log.debug("store throttles: concurrency lowered to %d", limiter.limit)

        async def attempt(start: int, end: int) -> bytes:
            async with limiter:
                data = await source.read(entry, start, end)
            limiter.succeeded()
            return data

        async def read(start: int, end: int) -> bytes:
            return await with_retries(lambda: attempt(start, end), retries, on_retry=on_retry)

        started = time.perf_counter()
        result = Result(entry, Kind.VIDEO if kind is Kind.OTHER else kind, Status.OK)
        try:
            result.metadata = await probe(
                read,
                entry.size,
                extension(entry.key),
                self.executor,
                stats,
                learn_size=lambda: entry.size,
            )
        except WrongKind as exc:
            if kind is Kind.OTHER:  # --sniff found an image or a DICOM file
                result.kind = Kind.IMAGE if exc.kind == "image" else Kind.DICOM
            else:
                result.status, result.error = Status.FAILED, str(exc)
        except ObjectError as exc:
            if kind is Kind.OTHER and exc.reason in ("not_media", "no_video", "empty"):
                result.kind, result.status, result.error = Kind.OTHER, Status.SKIPPED, str(exc)
            else:
                result.status, result.error = Status.FAILED, str(exc)
        except Exception as exc:  # a bug or an input nobody foresaw: this object fails, not the run
            log.debug("probing %s failed unexpectedly", redact(entry.url), exc_info=True)
            result.status = Status.FAILED
            result.error = f"internal error: {type(exc).__name__}: {exc}"[:300]
        result.bytes_fetched = stats.bytes_fetched
        result.requests = stats.requests
        result.round_trips = stats.round_trips
        result.latency = time.perf_counter() - started
        return result

    async def _writer(self) -> None:
        results = self.results
        while True:
            item = results.get_nowait() if results.qsize() else await results.get()
            if item is _DONE:
                return
            # after a write error: keep draining, so no worker blocks on a full queue
            remember = self._deliver(item)  # type: ignore[arg-type]
            if remember is not None:
                try:
                    await remember
                except Exception as exc:  # the state cannot be written: stop the run
                    self._write_error = exc
                    self.stopping.set()
