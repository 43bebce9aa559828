"""The "minimum bytes" per file: what FFmpeg itself reads to answer ffprobe's question.

PyAV opens the local file through a file object that records every read; the
union of the byte ranges read while opening it (``avformat_open_input`` +
``avformat_find_stream_info`` with FFmpeg's default options, as ffprobe does) and
reading the stream/format fields is the file's minimum. The I/O buffer is 4 KiB
(ffprobe's is 32 KiB), so the minimum is measured at a fine grain and is, if
anything, a little smaller than what ffprobe reads from a local file.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import av

av.logging.set_level(av.logging.PANIC)

BUFFER = 4096


class CountingFile(io.RawIOBase):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.f = open(path, "rb")
        self.size = os.fstat(self.f.fileno()).st_size
        self.ranges: list[tuple[int, int]] = []

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 0x10000:  # AVSEEK_SIZE
            return self.size
        return self.f.seek(offset, whence)

    def tell(self) -> int:
        return self.f.tell()

    def read(self, n: int = -1) -> bytes:
        pos = self.f.tell()
        data = self.f.read(n)
        if data:
            self.ranges.append((pos, pos + len(data)))
        return data

    def close(self) -> None:
        self.f.close()
        super().close()


def union(ranges: list[tuple[int, int]]) -> int:
    total, cur_a, cur_b = 0, -1, -1
    for a, b in sorted(ranges):
        if a > cur_b:
            total += max(0, cur_b - cur_a)
            cur_a, cur_b = a, b
        else:
            cur_b = max(cur_b, b)
    return total + max(0, cur_b - cur_a)


def min_bytes(path: str) -> int:
    f = CountingFile(path)
    try:
        with av.open(f, buffer_size=BUFFER) as c:
            _ = [(s.type, s.time_base, s.duration, s.codec_context.name) for s in c.streams]
            _ = (c.duration, c.bit_rate, c.format.name)
    except av.error.FFmpegError:
        pass
    finally:
        f.close()
    return union(f.ranges)


def min_bytes_cached(paths: list[str], cache: Path) -> dict[str, int]:
    """{path: minimum bytes}, remembered in ``cache`` by (path, size, mtime)."""
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    out: dict[str, int] = {}
    for p in paths:
        st = os.stat(p)
        tag = f"{p}|{st.st_size}|{st.st_mtime_ns}|{av.__version__}"
        if tag not in known:
            known[tag] = min_bytes(p)
        out[p] = known[tag]
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(known))
    return out


if __name__ == "__main__":
    import sys

    for p in sys.argv[1:]:
        print(min_bytes(p), os.path.getsize(p), p)
