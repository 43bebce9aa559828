"""Probe one object: fetch the header bytes with a few ranged reads, parse them off the loop.

The plan, per object:

1. Round 1 — one or two ranges in parallel: the head (64 KiB; 256 KiB for MPEG-TS/PS)
   and, for formats whose duration lives at the end (TS, PS, Ogg), the tail, sized
   from the listing. Small objects come whole in one request. (AVI keeps frame count
   and rate in its header; FFmpeg's read of the idx1 index at the end only builds a
   seek index, so AVI gets no tail: a hole there reads as end-of-file.)
2. Look at the structure in pure Python: find the MP4 ``moov`` box by walking the
   top-level boxes and fetch exactly it when it is not in the head (moov at the end);
   reject objects whose boxes or Matroska segment run past their end (truncated),
   text or images dressed as video.
3. MP4/MOV with one constant-rate H.264 track (most real buckets): read the answer
   from the moov box in pure Python (fastmp4.py), no FFmpeg at all. Otherwise:
   parse with PyAV from an in-memory sparse file in a thread pool. A read that falls
   into a hole returns end-of-file and is noted; if parsing then fails or lacks a
   field, fetch what FFmpeg asked for and parse again (a few rounds at most).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from prober.errors import ObjectError, WrongKind
from prober.model import Metadata
from prober.probe import containers as ct
from prober.probe.fastmp4 import fast_metadata
from prober.probe.hints import Hints, Incomplete
from prober.probe.mime import bmff_mime, matroska_mime
from prober.probe.sparse import SparseFile

KiB = 1024
MiB = 1024 * KiB

HEAD = 64 * KiB
# extension → (head, tail) for formats that keep what we need at the end too
PLANS: dict[str, tuple[int, int]] = {
    **dict.fromkeys(("ts", "m2ts", "mts", "m2t", "trp", "tsv"), (256 * KiB, 256 * KiB)),
    **dict.fromkeys(("mpg", "mpeg", "m2p", "vob", "mpe", "ps"), (256 * KiB, 256 * KiB)),
    **dict.fromkeys(("ogv", "ogg", "ogm"), (64 * KiB, 64 * KiB)),
}
MOOV_FOLLOW = 64 * KiB  # bytes after a leading moov, where FFmpeg reads the first samples
WHOLE_TAIL = 16 * MiB  # after the last mdat, fetch the rest at once when it is this small
MISS_BLOCK = 128 * KiB
FRAGMENT_TAIL = 64 * KiB  # fragmented MP4: the mfra index at the end
MOOF_BLOCK = 16 * KiB  # a moof box (sample table of one fragment) is usually smaller
TAIL_ZONE = 1 * MiB  # misses this close to the end are index reads worth a round trip
MAX_ROUNDS = 5

RangeReader = Callable[[int, int], Awaitable[bytes]]


@dataclass(slots=True)
class ProbeStats:
    bytes_fetched: int = 0
    requests: int = 0
    round_trips: int = 0


class _Fetcher:
    """Fetches ranges into a SparseFile, counting requests and round trips."""

    def __init__(self, read: RangeReader, size: int, stats: ProbeStats) -> None:
        self.read = read
        self.sf = SparseFile(size)
        self.stats = stats

    async def fetch(self, ranges: list[tuple[int, int]]) -> None:
        ranges = _merge([(max(0, a), min(b, self.sf.size)) for a, b in ranges if a < self.sf.size])
        ranges = [r for r in ranges if not self.sf.has(*r)]
        if not ranges:
            return
        self.stats.round_trips += 1
        self.stats.requests += len(ranges)
        datas = await asyncio.gather(*(self.read(a, b) for a, b in ranges))
        for (a, _), data in zip(ranges, datas, strict=True):
            self.stats.bytes_fetched += len(data)
            self.sf.add(a, data)


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for a, b in sorted(r for r in ranges if r[1] > r[0]):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


async def probe(
    read: RangeReader,
    size: int | None,
    ext: str,
    executor: Executor | None,
    stats: ProbeStats,
    learn_size: Callable[[], int | None] | None = None,
) -> Metadata:
    """Probe one object. ``read(start, end)`` returns bytes [start, end).

    ``size`` comes from the listing; when it is unknown (a bare URL) the first read
    must reveal it through ``learn_size``.
    """
    ext = ext.lower()
    head_len, tail_len = PLANS.get(ext, (HEAD, 0))
    if size is None:
        first = await read(0, head_len)
        stats.requests += 1
        stats.round_trips += 1
        stats.bytes_fetched += len(first)
        size = learn_size() if learn_size else None
        if size is None:
            size = len(first) if len(first) < head_len else None
        if size is None:
            raise ObjectError("http", "the store did not say how large the object is")
        f = _Fetcher(read, size, stats)
        f.sf.add(0, first)
    else:
        f = _Fetcher(read, size, stats)
    if size == 0:
        raise ObjectError("empty", "empty: zero-byte object")

    round1 = [(0, head_len)]
    if tail_len and size > head_len + tail_len:
        round1.append((size - tail_len, size))
    elif tail_len:
        round1 = [(0, size)]
    await f.fetch(round1)

    hints = await _inspect(f, ext)
    if hints.moov is not None:
        meta = fast_metadata(hints.moov, size, ext, hints.mime, hints.duration, hints.rotation or 0)
        hints.moov = None
        if meta is not None:
            return meta
    from prober.probe.parse import parse  # PyAV: loaded on first need

    loop = asyncio.get_running_loop()
    miss_block = MISS_BLOCK
    while True:
        f.sf.misses.clear()
        try:
            meta = await loop.run_in_executor(executor, parse, f.sf, hints)
            # a fragmented MP4's duration comes from the index at the end (mfra): when
            # FFmpeg went looking there and found a hole, fetch it and parse again
            tail = [(p, n) for p, n in f.sf.misses if p >= size - TAIL_ZONE]
            if not (hints.fragmented and tail) or f.stats.round_trips >= MAX_ROUNDS:
                return meta
            before = f.stats.round_trips
            await f.fetch([(p, p + max(n, miss_block)) for p, n in tail])
            if f.stats.round_trips == before:
                return meta
        except (Incomplete, ObjectError) as exc:
            error = exc.error if isinstance(exc, Incomplete) else exc
            if not f.sf.misses or f.stats.round_trips >= MAX_ROUNDS:
                raise error from None
            wanted = [(pos, pos + max(n, miss_block)) for pos, n in f.sf.misses]
            before = f.stats.round_trips
            await f.fetch(wanted)
            if f.stats.round_trips == before:
                raise error from None  # nothing new to fetch
            miss_block *= 4


async def _inspect(f: _Fetcher, ext: str) -> Hints:
    """Look at the structure; fetch the moov if needed; reject what is plainly not video."""
    sf = f.sf
    size = sf.size
    head = sf.get(0, min(size, 4096)) or b""
    hints = Hints(ext=ext)

    if ct.is_dicom(head):
        raise WrongKind("dicom", "not a video: DICOM content")
    image = ct.sniff_image(head)
    if image and not (image == "BMP" and int.from_bytes(head[2:6], "little") != size):
        raise WrongKind("image", f"not a video: {image} image content")
    text = ct.sniff_text(head)
    if text:
        raise ObjectError("not_media", f"not a media file ({text})")

    if ct.looks_like_bmff(head):
        await _fetch_moov(f, hints)
    elif head[:4] == ct.EBML_MAGIC:
        doctype, truncated = ct.ebml_info(sf.get(0, min(size, HEAD)) or head, size)
        if truncated:
            raise ObjectError(
                "truncated", "truncated: the Matroska segment runs past the end of the object"
            )
        hints.mime = matroska_mime(doctype)
    elif ct.riff_truncated(head, size):
        raise ObjectError("truncated", "truncated: the RIFF chunk runs past the end of the object")
    return hints


async def _fragmented_timing(
    f: _Fetcher, moov: bytes, first_fragment: int
) -> tuple[float | None, float | None]:
    """A fragmented MP4's duration without walking every fragment: the mehd box if the
    muxer wrote one, else the mfra index at the end → each track's last moof → its
    start time plus its samples' durations (what FFmpeg's full walk adds up); the
    longest track wins, as in ffprobe's format duration."""
    info = ct.fragment_info(moov)
    size = f.sf.size
    if not info.tracks or size < 16:
        return None, None
    await f.fetch([(size - FRAGMENT_TAIL, size)])
    start = ct.mfra_offset(f.sf.get(size - 16, 16) or b"", size)
    if start is not None:
        await f.fetch([(start, size)])
        last = ct.last_fragments(f.sf.get(start, size - start) or b"")
        last = {t: v for t, v in last.items() if t in info.tracks}
    else:  # no index (skip_trailer, some recorders): find the last moof from the end
        window = min(size, max(2 * first_fragment + FRAGMENT_TAIL, 4 * FRAGMENT_TAIL), WHOLE_TAIL)
        await f.fetch([(size - window, size)])
        at = ct.find_last_moof(f.sf.get(size - window, window) or b"", size - window, size)
        if at is None:
            return None, None
        last = {t: (0, at) for t in info.tracks}
    moofs = sorted({offset for _, offset in last.values()})
    await f.fetch([(at, at + MOOF_BLOCK) for at in moofs])
    ends: list[float] = []
    fps = None
    for track, (time, at) in last.items():
        header = f.sf.get(at, 8) or b""
        if header[4:8] != b"moof":
            continue
        moof_size = int.from_bytes(header[:4], "big")
        await f.fetch([(at, at + moof_size)])  # only when a moof outgrew MOOF_BLOCK
        timescale, default = info.tracks[track]
        base, span, count = ct.fragment_span(f.sf.get(at, moof_size) or b"", track, default)
        if track == info.video_track and span and count > 1:
            fps = count * timescale / span
        if base is None and start is None:
            continue  # no tfdt and no index: this moof's start time is unknown
        ends.append(((base if base is not None else time) + span) / timescale)
    duration = max(ends) if ends else None
    if info.fragment_duration and info.movie_timescale:  # mehd, when the muxer wrote one
        duration = info.fragment_duration / info.movie_timescale
    return duration, fps


def _first_fragment_size(layout: ct.BmffLayout, moov: ct.Box) -> int:
    """Bytes of the first moof + mdat after the moov, to size a tail window by."""
    after = [b for b in layout.boxes if b.offset >= moov.end][:2]
    return sum(b.size for b in after) if after and after[0].type == b"moof" else 0


async def _fetch_moov(f: _Fetcher, hints: Hints) -> None:
    sf = f.sf
    size = sf.size
    for _ in range(MAX_ROUNDS):
        layout = ct.walk_bmff(sf.get, size)
        moov = layout.find(b"moov")
        if moov is not None:
            want_end = moov.end + (MOOV_FOLLOW if moov.end < size else 0)
            if not sf.has(moov.offset, moov.end):
                await f.fetch([(moov.offset, want_end)])
                continue
            moov_bytes = sf.get(moov.offset, moov.size) or b""
            info = ct.parse_moov(moov_bytes)
            hints.moov = moov_bytes
            hints.mime = bmff_mime(layout.brand, layout.compatible)
            if (
                info.timescale
                and info.duration
                and not info.fragmented
                and info.duration < 2**32 - 1
            ):
                hints.duration = info.duration / info.timescale
            hints.rotation = info.video_rotation
            if info.fragmented:
                hints.fragmented = True
                hints.duration, hints.fps = await _fragmented_timing(
                    f, moov_bytes, _first_fragment_size(layout, moov)
                )
            return
        if layout.next_offset is None:
            raise ObjectError("corrupt", "corrupt: moov atom not found")
        nxt = layout.next_offset
        remaining = size - nxt
        await f.fetch([(nxt, nxt + (remaining if remaining <= WHOLE_TAIL else HEAD))])
    raise ObjectError("corrupt", "corrupt: could not locate the moov atom")
