"""A local folder (recursive walk) or a single local file.

objectUrls are ``file://`` URLs, or ``--url-prefix URL`` joined with the path
relative to the folder (for a folder that is also served over HTTP or synced
to a bucket).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from prober.errors import FatalError, ObjectError
from prober.model import Entry
from prober.sources.context import SourceContext
from prober.urls import encode_key

BATCH = 512


class LocalSource:
    unique_urls = True  # a listing: no objectUrl comes twice (see sources/base.py)

    def __init__(self, spec: str, ctx: SourceContext) -> None:
        self.name = spec
        path = spec[len("file://") :] if spec.startswith("file://") else spec
        self.root = Path(path).expanduser().resolve()
        self.url_prefix = ctx.options.url_prefix

    def object_url(self, rel: str, path: Path) -> str:
        if self.url_prefix:
            return self.url_prefix.rstrip("/") + "/" + encode_key(rel)
        return "file://" + encode_key(str(path))

    async def entries(self) -> AsyncIterator[Entry]:
        if not self.root.exists():
            raise FatalError(f"{self.name}: no such file or directory")
        if self.root.is_file():
            st = self.root.stat()
            yield self._entry(self.root.name, self.root, st)
            return
        walker = _walk(self.root)
        while True:
            batch = await asyncio.to_thread(_take, walker, BATCH)
            for rel, path, st in batch:
                yield self._entry(rel, path, st)
            if len(batch) < BATCH:
                return

    def _entry(self, rel: str, path: Path, st: os.stat_result) -> Entry:
        return Entry(
            url=self.object_url(rel, path),
            key=rel,
            size=st.st_size,
            etag=f"{st.st_mtime_ns:x}-{st.st_size:x}",
            handle=str(path),
        )

    def handle_for(self, key: str) -> str:
        return str(self.root / key)

    async def read(self, entry: Entry, start: int, end: int) -> bytes:
        try:
            data, size = await asyncio.to_thread(_pread, entry.handle, start, end - start)
        except FileNotFoundError:
            raise ObjectError("http", "not found (deleted since listing)", status=404) from None
        except PermissionError:
            raise ObjectError("http", "permission denied", status=403) from None
        if entry.size is None:
            entry.size = size
        return data

    async def close(self) -> None:
        return None


def _walk(root: Path) -> Iterator[tuple[str, Path, os.stat_result]]:
    """Depth-first walk in sorted order, so listings are stable run to run."""
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            items = sorted(os.scandir(folder), key=lambda e: e.name)
        except PermissionError:
            continue
        subdirs = []
        for item in items:
            if item.is_dir(follow_symlinks=False):
                subdirs.append(Path(item.path))
            elif item.is_file():
                path = Path(item.path)
                yield path.relative_to(root).as_posix(), path, item.stat()
        stack.extend(reversed(subdirs))


def _take(
    it: Iterator[tuple[str, Path, os.stat_result]], n: int
) -> list[tuple[str, Path, os.stat_result]]:
    out = []
    for item in it:
        out.append(item)
        if len(out) >= n:
            break
    return out


def _pread(path: str, offset: int, length: int) -> tuple[bytes, int]:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, length, offset), os.fstat(fd).st_size
    finally:
        os.close(fd)
