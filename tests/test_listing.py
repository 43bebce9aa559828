"""Listing in key ranges (prober/sources/listing.py) and where the split keys come from
(--state). The ranged listing against a real S3 API is in test_s3_fastpath.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import orjson
import pytest

from prober.model import Entry, Kind, Metadata, Result, Status
from prober.sources.listing import clip, key_ranges, ordered_concat, ranged_pages, split_keys
from prober.state import StateStore


def test_key_ranges_cover_every_key_once():
    ranges = key_ranges(["m", "c", "m", "x"])
    assert ranges == [(None, "c"), ("c", "m"), ("m", "x"), ("x", None)]
    assert key_ranges([]) == [(None, None)]
    keys = ["a", "c", "d", "m", "n", "x", "y", "é", "日本"]
    owned = [k for lo, hi in ranges for k in keys
             if (lo is None or k > lo) and (hi is None or k <= hi)]  # fmt: skip
    assert owned == keys


def test_clip_stops_at_the_range_end():
    key = str
    assert clip(["a", "b"], "c", key) == (["a", "b"], False)
    assert clip(["a", "b", "c"], "c", key) == (["a", "b", "c"], True)
    assert clip(["a", "b", "d"], "c", key) == (["a", "b"], True)
    assert clip(["a", "b"], None, key) == (["a", "b"], False)
    assert clip([], "c", key) == ([], False)


def _producer(
    items: list[int], log: list[str], name: str, delay: float, fail: bool = False
) -> Callable[[], AsyncIterator[int]]:
    async def produce() -> AsyncIterator[int]:
        log.append(f"start {name}")
        for item in items:
            await asyncio.sleep(delay)
            yield item
        if fail:
            raise RuntimeError(f"{name} failed")

    return produce


async def test_ordered_concat_keeps_order_and_runs_ahead():
    log: list[str] = []
    # the later producers are faster: their items wait until their turn
    producers = [_producer([i * 10 + j for j in range(3)], log, str(i), 0.02 / (i + 1))
                 for i in range(5)]  # fmt: skip
    out = [x async for x in ordered_concat(producers, lanes=3, depth=2)]
    assert out == [i * 10 + j for i in range(5) for j in range(3)]
    # at most three running at once: the fourth starts only when the first is consumed
    assert log[:3] == ["start 0", "start 1", "start 2"]


async def test_ordered_concat_raises_in_turn_and_cancels_the_rest():
    log: list[str] = []
    producers = [
        _producer([1, 2], log, "a", 0.001),
        _producer([3], log, "b", 0.001, fail=True),
        _producer(list(range(100)), log, "c", 0.001),
    ]
    out: list[int] = []
    with pytest.raises(RuntimeError, match="b failed"):
        async for x in ordered_concat(producers, lanes=3):
            out.append(x)
    assert out == [1, 2, 3]
    await asyncio.sleep(0.01)
    assert all(t.done() for t in asyncio.all_tasks() if t is not asyncio.current_task())


async def test_state_offers_every_nth_url_under_a_prefix(tmp_path):
    state = StateStore(str(tmp_path / "s.sqlite"))
    await state.open()
    try:
        urls = [f"s3://b/clips/{i:03d}.mp4" for i in range(10)] + ["s3://b/other/x.mp4",
                                                                    "s3://c/clips/y.mp4"]  # fmt: skip
        for url in urls:
            meta = Metadata(25.0, 1.0, 64, 48, 100, "video/mp4")
            result = Result(Entry(url=url, key=url, size=100, etag="e"), Kind.VIDEO, Status.OK,
                            metadata=meta, requests=1)  # fmt: skip
            await state.record(result)
        await state.flush()
        assert await state.split_urls("s3://b/clips/", 3) == [
            "s3://b/clips/002.mp4", "s3://b/clips/005.mp4", "s3://b/clips/008.mp4"
        ]  # fmt: skip
        assert await state.split_urls("s3://b/", 11) == ["s3://b/other/x.mp4"]
        assert await state.split_urls("s3://nothing/", 1) == []
        # and the stored result comes back whole
        entry = Entry(url=urls[0], key="clips/000.mp4", size=100, etag="e")
        rows = await state.rows([urls[0]])
        cached = state.match(entry, rows[urls[0]])
        assert cached is not None and cached.cached
        assert cached.metadata == Metadata(25.0, 1.0, 64, 48, 100, "video/mp4")
        # rows written by the first releases held the metadata as a JSON object
        old = (*rows[urls[0]][:6], orjson.dumps({"fps": 25.0, "duration": 1.0, "width": 64,
               "height": 48, "file_size": 100, "mime_type": "video/mp4"}))  # fmt: skip
        again = state.match(entry, old)
        assert again is not None and again.metadata == cached.metadata
    finally:
        await state.close()


async def test_ranges_hold_when_the_store_ignores_start_after():
    """Each range keeps its own keys even if every page starts from the beginning (or
    from the offset itself, as GCS's inclusive startOffset does)."""
    keys = [f"k{i:03d}" for i in range(25)]

    async def from_the_start(token, after):
        start = int(token or 0)
        nxt = str(start + 10) if start + 10 < len(keys) else None
        return keys[start : start + 10], nxt

    async def inclusive(token, after):
        start = int(token) if token else (keys.index(after) if after else 0)
        nxt = str(start + 10) if start + 10 < len(keys) else None
        return keys[start : start + 10], nxt

    for fetch in (from_the_start, inclusive):
        got = [k async for page in ranged_pages(fetch, ["k013", "k004", "k020"], str, 8)
               for k in page]  # fmt: skip
        assert got == keys, fetch.__name__


async def test_split_keys_from_the_state_and_the_switch(monkeypatch):
    class Hints:
        async def split_urls(self, url_prefix: str, every: int) -> list[str]:
            assert url_prefix == "s3://b/clips/" and every == 1000
            return ["s3://b/clips/a%20b.mp4", "s3://b/clips/c.mp4"]

    def url(key: str) -> str:
        return "s3://b/" + key.replace(" ", "%20")

    assert await split_keys(Hints(), url, "clips/") == ["clips/a b.mp4", "clips/c.mp4"]
    assert await split_keys(None, url, "clips/") == []
    monkeypatch.setenv("PROBER_LIST_RANGES", "0")
    assert await split_keys(Hints(), url, "clips/") == []
