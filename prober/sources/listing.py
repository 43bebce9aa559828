"""Listing a bucket in key ranges at once, yielded in listing order.

A listing is a chain of pages: each one's continuation token comes with the answer to
the one before, so 1,000 pages cost 1,000 round trips one after another. When the keys
are roughly known in advance — ``--state`` remembers the last run's — the key space can
be cut into ranges of about a page each and the ranges listed side by side, each from
its lower bound (S3 ``StartAfter``, GCS ``startOffset``). Any sorted set of split keys
gives ranges that together cover every key exactly once, whether or not those keys
still exist, so a stale hint costs requests, never correctness.

Stores list keys in UTF-8 byte order, which is the order of Python's ``str``
comparison (code points), so range bounds are compared as plain strings. An
S3-compatible store that lists in some other order would lose keys at range ends:
``PROBER_LIST_RANGES=0`` lists page after page, as without ``--state``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from functools import partial
from typing import Any, TypeVar

from prober.sources.context import ListingHints, switched_on
from prober.urls import key_from_url_path

T = TypeVar("T")

ENV_SWITCH = "PROBER_LIST_RANGES"
#: keys per range: one full listing page
RANGE_KEYS = 1000
#: ranges listed at the same time (each holds at most DEPTH pages not yet consumed)
LANES = 16
DEPTH = 2

Bound = tuple[str | None, str | None]  # (after this key, up to and including this key)
#: one page: ``fetch(token, after)`` -> (items, next token or None); ``after`` is only
#: given for a range's first page (S3 ``StartAfter``, GCS ``startOffset``)
Fetch = Callable[[str | None, str | None], Awaitable[tuple[list[T], str | None]]]


async def split_keys(
    hints: ListingHints | None, object_url: Callable[[str], str], prefix: str
) -> list[str]:
    """Keys that cut a listing into page-sized ranges, from what ``--state`` saw last
    time (no hints, no state: none)."""
    if hints is None or not switched_on(ENV_SWITCH):
        return []
    base = object_url("")
    urls = await hints.split_urls(object_url(prefix), RANGE_KEYS)
    return [k for k in (key_from_url_path(u[len(base) :]) for u in urls) if k]


async def ranged_pages(
    fetch: Fetch[T], splits: list[str], key: Callable[[T], str], concurrency: int
) -> AsyncIterator[list[T]]:
    """Every page of the listing, in order, the ranges between ``splits`` listed up to
    ``LANES`` at a time (fewer at a low ``--concurrency``: a quarter of it)."""
    producers = [partial(range_pages, fetch, lo, hi, key) for lo, hi in key_ranges(splits)]
    async for page in ordered_concat(producers, min(LANES, max(1, concurrency // 4))):
        yield page


async def range_pages(
    fetch: Fetch[T], after: str | None, last: str | None, key: Callable[[T], str]
) -> AsyncIterator[list[T]]:
    """The pages of the keys in (after, last]; each page's successor is requested as
    soon as it is handed on, overlapping with the work on it."""
    page, token = await fetch(None, after)
    while True:
        if after is not None and page and key(page[0]) <= after:
            # inclusive offsets (GCS), or a store that ignores StartAfter and lists
            # from the start: keep this range's keys only
            page = [item for item in page if key(item) > after]
        page, ended = clip(page, last, key)
        if ended or not token:
            yield page
            return
        pending = asyncio.ensure_future(fetch(token, None))
        try:
            yield page
            page, token = await pending
        finally:
            if not pending.done():  # the run stopped listing early
                pending.cancel()
                pending.add_done_callback(_retrieve)


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Consume an abandoned task's outcome (no 'exception was never retrieved')."""
    if not task.cancelled():
        task.exception()


def key_ranges(split_keys: Iterable[str]) -> list[Bound]:
    """``[(None, k1), (k1, k2), … (kn, None)]`` for sorted, distinct split keys."""
    keys = sorted(set(split_keys))
    return list(zip([None, *keys], [*keys, None], strict=True))


def clip(page: list[T], last: str | None, key: Callable[[T], str]) -> tuple[list[T], bool]:
    """The items of a sorted page up to ``last`` (inclusive), and whether the range ended."""
    if last is None or not page or key(page[-1]) < last:
        return page, False
    return [item for item in page if key(item) <= last], True


async def ordered_concat(
    producers: list[Callable[[], AsyncIterator[T]]], lanes: int = LANES, depth: int = DEPTH
) -> AsyncIterator[T]:
    """The items of every producer, producer after producer, while up to ``lanes`` of
    them run ahead concurrently (each buffering at most ``depth`` items).

    A producer's exception is raised here when its turn comes; closing this generator
    cancels the producers still running."""
    queues: list[asyncio.Queue[tuple[bool, object]]] = []
    tasks: list[asyncio.Task[None]] = []

    async def pump(produce: Callable[[], AsyncIterator[T]], q: asyncio.Queue) -> None:
        try:
            async with contextlib.aclosing(produce()) as items:
                async for item in items:
                    await q.put((True, item))
        except Exception as exc:  # handed to the consumer, raised in order
            await q.put((False, exc))
        else:
            await q.put((False, None))

    def start_upto(n: int) -> None:
        while len(tasks) < min(n, len(producers)):
            q: asyncio.Queue[tuple[bool, object]] = asyncio.Queue(depth)
            queues.append(q)
            tasks.append(asyncio.create_task(pump(producers[len(tasks)], q)))

    try:
        for i in range(len(producers)):
            start_upto(i + max(lanes, 1))
            q = queues[i]
            while True:
                more, item = await q.get()
                if more:
                    yield item  # type: ignore[misc]
                elif item is None:
                    break
                else:
                    raise item  # type: ignore[misc]
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
