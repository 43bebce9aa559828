"""An in-memory, read-only file made of the byte ranges fetched so far.

FFmpeg parses from it as if it were the whole object (it knows the real size).
A read that falls in a hole returns end-of-file and is remembered as a *miss*,
so the prober can fetch exactly what FFmpeg wanted and parse again.
"""

from __future__ import annotations

import bisect
import io

AVSEEK_SIZE = 0x10000


class SparseFile(io.RawIOBase):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self._starts: list[int] = []
        self._chunks: list[bytes] = []
        self._pos = 0
        self.misses: list[tuple[int, int]] = []

    # -- building -------------------------------------------------------------------
    def add(self, start: int, data: bytes) -> None:
        """Add a fetched range, merging with neighbours so lookups stay simple."""
        if not data:
            return
        end = start + len(data)
        i = bisect.bisect_right(self._starts, start) - 1
        # absorb an overlapping/adjacent chunk on the left
        if i >= 0 and self._starts[i] + len(self._chunks[i]) >= start:
            left_start = self._starts[i]
            left = self._chunks[i]
            if left_start + len(left) >= end:
                return  # already have it
            data = left[: start - left_start] + data
            start = left_start
            del self._starts[i], self._chunks[i]
        else:
            i += 1
        # absorb chunks starting inside or right after the new one
        while i < len(self._starts) and self._starts[i] <= start + len(data):
            s, c = self._starts[i], self._chunks[i]
            if s + len(c) > start + len(data):
                data = data + c[start + len(data) - s :]
            del self._starts[i], self._chunks[i]
        self._starts.insert(i, start)
        self._chunks.insert(i, data)

    def has(self, start: int, end: int) -> bool:
        i = bisect.bisect_right(self._starts, start) - 1
        return i >= 0 and self._starts[i] + len(self._chunks[i]) >= min(end, self.size)

    def get(self, start: int, length: int) -> bytes | None:
        """Bytes [start, start+length) if all fetched (clipped at EOF), else None."""
        end = min(start + length, self.size)
        i = bisect.bisect_right(self._starts, start) - 1
        if i < 0:
            return None
        s, c = self._starts[i], self._chunks[i]
        if s + len(c) < end:
            return None
        return c[start - s : end - s]

    # -- file protocol for PyAV -------------------------------------------------------
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == AVSEEK_SIZE:
            return self.size
        if whence == io.SEEK_SET:
            self._pos = offset
        elif whence == io.SEEK_CUR:
            self._pos += offset
        elif whence == io.SEEK_END:
            self._pos = self.size + offset
        else:
            return -1
        return self._pos

    def read(self, n: int = -1) -> bytes:
        pos = self._pos
        if pos >= self.size:
            return b""
        if n is None or n < 0:
            n = self.size - pos
        i = bisect.bisect_right(self._starts, pos) - 1
        if i >= 0:
            s, c = self._starts[i], self._chunks[i]
            if pos < s + len(c):
                out = c[pos - s : pos - s + n]
                self._pos = pos + len(out)
                return out
        self.misses.append((pos, min(n, self.size - pos)))
        return b""

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)
