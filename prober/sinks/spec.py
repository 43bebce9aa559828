"""The Encord upload spec, written as results stream in.

Each top-level list (``videos``, ``images``, ...) is spooled to its own temporary
file as entries arrive, and folder groups (image groups/sequences, DICOM series)
to a temporary SQLite table; ``close()`` stitches them into one JSON document and
renames it into place. Memory does not grow with the number of objects.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from typing import IO, Any

import orjson

from prober.model import Kind, Result, Status
from prober.sinks.atomic import AtomicFile
from prober.sinks.client_metadata import ClientMetadata

SECTIONS = ("videos", "images", "image_groups", "image_sequences", "dicom_series")
_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> str:
    """A sortable string where numbers compare by value: ``2.jpg`` < ``10.jpg``."""
    return _DIGITS.sub(lambda m: m.group(1).zfill(20), name.casefold())


def folder_of(key: str) -> str:
    return key.rsplit("/", 1)[0] if "/" in key else ""


class SpecOptions:
    def __init__(
        self,
        images: str = "single",
        title: str = "name",
        skip_duplicate_urls: bool = False,
        client_metadata: ClientMetadata | None = None,
    ) -> None:
        self.images = images
        self.title = title
        self.skip_duplicate_urls = skip_duplicate_urls
        self.client_metadata = client_metadata


class SpecBuilder:
    """Result → (section, entry) for single entries; folder members go to a spool."""

    def __init__(self, options: SpecOptions) -> None:
        self.options = options

    def title(self, key: str, name: str) -> str | None:
        if self.options.title == "none":
            return None
        return key if self.options.title == "key" else name

    def single(self, result: Result) -> tuple[str, dict[str, Any]] | None:
        if result.status is not Status.OK:
            return None
        e = result.entry
        if result.kind is Kind.VIDEO and result.metadata is not None:
            section = "videos"
        elif result.kind is Kind.IMAGE and self.options.images == "single":
            section = "images"
        else:
            return None
        entry: dict[str, Any] = {"objectUrl": e.url}
        title = self.title(e.key, e.name)
        if title is not None:
            entry["title"] = title
        if result.metadata is not None:
            entry["videoMetadata"] = result.metadata.video_metadata()
        cm = self.options.client_metadata
        if cm is not None and (meta := cm.lookup(e.url, e.key)) is not None:
            entry["clientMetadata"] = meta
        return section, entry

    def grouped(self, result: Result) -> tuple[str, str, str, str, str] | None:
        """(section, group id, title, sort key, url) for members of folder groups."""
        if result.status is not Status.OK:
            return None
        e = result.entry
        if result.kind is Kind.DICOM:
            section = "dicom_series"
        elif result.kind is Kind.IMAGE and self.options.images in ("groups", "sequences"):
            section = "image_groups" if self.options.images == "groups" else "image_sequences"
        else:
            return None
        group = e.url.rsplit("/", 1)[0]
        return section, group, folder_of(e.key) or "/", natural_key(e.name), e.url


class GroupSpool:
    """Members of folder groups, kept on disk until the end."""

    def __init__(self, folder: str) -> None:
        self.path = os.path.join(folder, "groups.sqlite")
        self.db = sqlite3.connect(self.path)
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute(
            "CREATE TABLE m (section TEXT, grp TEXT, title TEXT, sortkey TEXT, url TEXT)"
        )
        self.count = 0

    def add(self, row: tuple[str, str, str, str, str]) -> None:
        self.db.execute("INSERT INTO m VALUES (?,?,?,?,?)", row)
        self.count += 1

    def groups(self, section: str) -> Iterator[tuple[str, list[str]]]:
        cur = self.db.execute(
            "SELECT grp, title, url FROM m WHERE section=? ORDER BY grp, sortkey, url", (section,)
        )
        current: str | None = None
        title = ""
        urls: list[str] = []
        for grp, t, url in cur:
            if grp != current:
                if current is not None:
                    yield title, urls
                current, title, urls = grp, t, []
            urls.append(url)
        if current is not None:
            yield title, urls

    def close(self) -> None:
        self.db.close()


def group_entry(section: str, title: str, urls: list[str]) -> dict[str, Any]:
    entry: dict[str, Any] = {"title": title}
    if section == "image_groups":
        entry["createVideo"] = False
    elif section == "image_sequences":
        entry["createVideo"] = True
    for i, url in enumerate(urls):
        entry[f"objectUrl_{i}"] = url
    return entry


class _SpoolingWriter:
    """Shared by every spec format: single entries are emitted as they come, folder
    groups are spooled and emitted at the end, in natural order."""

    def __init__(self, options: SpecOptions) -> None:
        self.options = options
        self.builder = SpecBuilder(options)
        self.tmpdir = tempfile.mkdtemp(prefix="prober-spec-")
        self.spool = GroupSpool(self.tmpdir)
        self.counts: dict[str, int] = dict.fromkeys(SECTIONS, 0)

    def _emit(self, section: str, entry: dict[str, Any]) -> None:
        raise NotImplementedError

    def _finish(self, commit: bool) -> None:
        raise NotImplementedError

    def write(self, result: Result) -> None:
        single = self.builder.single(result)
        if single is not None:
            self._emit(*single)
            self.counts[single[0]] += 1
            return
        member = self.builder.grouped(result)
        if member is not None:
            self.spool.add(member)

    def close(self, commit: bool) -> None:
        try:
            if commit:
                for section in ("image_groups", "image_sequences", "dicom_series"):
                    for title, urls in self.spool.groups(section):
                        self._emit(section, group_entry(section, title, urls))
                        self.counts[section] += 1
            self._finish(commit)
        finally:
            self.spool.close()
            shutil.rmtree(self.tmpdir, ignore_errors=True)


class JsonSpecWriter(_SpoolingWriter):
    """``--format json``: the Encord spec, each top-level list spooled to its own file."""

    def __init__(self, path: str | None, options: SpecOptions) -> None:
        super().__init__(options)
        self.path = path
        self.parts: dict[str, IO[bytes]] = {}

    def _emit(self, section: str, entry: dict[str, Any]) -> None:
        fh = self.parts.get(section)
        if fh is None:
            fh = open(os.path.join(self.tmpdir, section + ".part"), "w+b")
            self.parts[section] = fh
        if self.counts[section]:
            fh.write(b",\n")
        fh.write(b"    " + orjson.dumps(entry))

    def _finish(self, commit: bool) -> None:
        try:
            if commit:
                out = AtomicFile(self.path)
                try:
                    self._assemble(out.fh)
                    out.commit()
                except BaseException:
                    out.abort()
                    raise
        finally:
            for fh in self.parts.values():
                fh.close()

    def _assemble(self, out: IO[str]) -> None:
        out.write("{\n")
        first = True
        for section in SECTIONS:
            if section not in ("videos", "images") and not self.counts[section]:
                continue
            out.write(("" if first else ",\n") + f'  "{section}": [')
            first = False
            fh = self.parts.get(section)
            if fh is not None and self.counts[section]:
                out.write("\n")
                out.flush()
                fh.seek(0)
                _copy_bytes(fh, out)
                out.write("\n  ")
            out.write("]")
        if self.options.skip_duplicate_urls:
            out.write(',\n  "skip_duplicate_urls": true')
        out.write("\n}\n")


class JsonlSpecWriter(_SpoolingWriter):
    """``--format jsonl``: one line per spec entry, ``{"section": ..., "entry": {...}}``.

    For pipelines that stream specs; ``prober merge`` turns parts back into JSON.
    """

    def __init__(self, path: str | None, options: SpecOptions) -> None:
        super().__init__(options)
        self.out = AtomicFile(path)

    def _emit(self, section: str, entry: dict[str, Any]) -> None:
        self.out.fh.write(orjson.dumps({"section": section, "entry": entry}).decode() + "\n")

    def _finish(self, commit: bool) -> None:
        (self.out.commit if commit else self.out.abort)()


class CsvSpecWriter(_SpoolingWriter):
    """``--format csv``: Encord's CSV, ``ObjectUrl,Title,Create video``.

    Videos are one row each (no videoMetadata: CSV has no column for it); image
    groups and sequences one row per image with the group's title and ``false`` /
    ``true``. CSV cannot carry single images or DICOM series: those are left out and
    counted, and the CLI says so.
    """

    HEADER = ("ObjectUrl", "Title", "Create video")

    def __init__(self, path: str | None, options: SpecOptions) -> None:
        super().__init__(options)
        self.out = AtomicFile(path, newline="")
        self.csv = csv.writer(self.out.fh)
        self.csv.writerow(self.HEADER)
        self.refused: dict[str, int] = {"images": 0, "dicom_series": 0}

    def write(self, result: Result) -> None:
        if result.status is Status.OK and result.kind is Kind.DICOM:
            self.refused["dicom_series"] += 1
            return
        super().write(result)

    def _emit(self, section: str, entry: dict[str, Any]) -> None:
        if section == "videos":
            self.csv.writerow([entry["objectUrl"], entry.get("title", ""), ""])
        elif section in ("image_groups", "image_sequences"):
            create = "true" if section == "image_sequences" else "false"
            i = 0
            while (url := entry.get(f"objectUrl_{i}")) is not None:
                self.csv.writerow([url, entry["title"], create])
                i += 1
        elif section == "images":
            self.refused["images"] += 1

    def _finish(self, commit: bool) -> None:
        (self.out.commit if commit else self.out.abort)()


def _copy_bytes(src: IO[bytes], out: IO[str]) -> None:
    buffer = getattr(out, "buffer", None)
    if buffer is not None:
        out.flush()
        shutil.copyfileobj(src, buffer)
        buffer.flush()
        return
    while chunk := src.read(1 << 20):
        out.write(chunk.decode("utf-8"))
