"""The Encord upload spec, written as results stream in.

Each top-level list (``videos``, ``images``, ...) is spooled to its own temporary
file as entries arrive, and folder groups (image groups/sequences, DICOM series)
to a temporary SQLite table; ``close()`` stitches them into one JSON document and
renames it into place. Memory does not grow with the number of objects.
"""

from __future__ import annotations

import csv
import heapq
import os
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from typing import Any

import orjson

from prober.model import Kind, Result, Status
from prober.sinks.atomic import AtomicFile
from prober.sinks.client_metadata import ClientMetadata

SECTIONS = ("videos", "images", "image_groups", "image_sequences", "dicom_series")
SPOOL_BATCH = 1000  # spooled entries written to SQLite together
GROUP_SECTIONS = ("image_groups", "image_sequences", "dicom_series")
HEADER_KEY = "_prober"
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
        header: dict[str, Any] | None = None,
        unique_urls: bool = False,
    ) -> None:
        self.images = images
        self.title = title
        self.skip_duplicate_urls = skip_duplicate_urls
        self.client_metadata = client_metadata
        self.header = header  # "_prober" key of shard parts, for `prober merge`
        # no objectUrl can come twice (one bucket listing): no need to look for repeats
        self.unique_urls = unique_urls


class SpecBuilder:
    """Result → (section, entry) for single entries; folder members go to a spool."""

    def __init__(self, options: SpecOptions) -> None:
        self.options = options

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
        title = self.options.title
        if title == "name":
            entry["title"] = e.name
        elif title == "key":
            entry["title"] = e.key
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


class Spool:
    """Entries on disk until the end: single entries by listing order, group members
    by folder. Results arrive in completion order; specs come out in listing order.

    When the run's objectUrls are known to be distinct (one bucket listing), single
    entries that arrive in listing order — all of them on a ``--state`` rerun — are
    appended to a flat file per section, and only those that arrive late go to
    SQLite; the two sorted streams are merged at the end. Otherwise every entry goes
    to SQLite, which keeps the first of each objectUrl."""

    def __init__(self, folder: str, unique_urls: bool = False) -> None:
        self.folder = folder
        self.path = os.path.join(folder, "spool.sqlite")
        self.db = sqlite3.connect(self.path)
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.unique_urls = unique_urls
        self._singles: list[tuple[str, int, str, bytes]] = []
        self._runs: dict[str, _Run] = {}  # section → its in-order entries
        self._late: set[str] = set()  # sections with entries in SQLite
        # an objectUrl is written once per list, whichever sources or parts repeat it
        self.db.execute(
            "CREATE TABLE s (section TEXT, seq INTEGER, url TEXT, entry BLOB,"
            " UNIQUE (section, url))"
        )
        self.db.execute(
            "CREATE TABLE m (section TEXT, grp TEXT, title TEXT, sortkey TEXT, url TEXT,"
            " UNIQUE (section, grp, url))"
        )

    def add_single(self, section: str, seq: int, entry: dict[str, Any]) -> None:
        blob = orjson.dumps(entry)
        if self.unique_urls:
            run = self._runs.get(section)
            if run is None:
                run = self._runs[section] = _Run(os.path.join(self.folder, f"{section}.run"))
            if seq > run.last:
                run.append(seq, blob)
                return
        self._late.add(section)
        self._singles.append((section, seq, entry["objectUrl"], blob))
        if len(self._singles) >= SPOOL_BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._singles:
            self.db.executemany("INSERT OR IGNORE INTO s VALUES (?,?,?,?)", self._singles)
            self._singles.clear()

    def singles(self, section: str) -> Iterator[bytes]:
        run = self._runs.get(section)
        in_order = run.read() if run is not None else iter(())
        if section not in self._late:
            for _, blob in in_order:
                yield blob
            return
        self._flush()
        late = self.db.execute("SELECT seq, entry FROM s WHERE section=? ORDER BY seq", (section,))
        for _, blob in heapq.merge(in_order, late, key=_first):
            yield blob

    def add(self, row: tuple[str, str, str, str, str]) -> None:
        self.db.execute("INSERT OR IGNORE INTO m VALUES (?,?,?,?,?)", row)

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
        for run in self._runs.values():
            run.fh.close()
        self.db.close()


class _Run:
    """Entries appended in increasing listing order: ``seq entry`` lines (orjson never
    writes a raw newline)."""

    def __init__(self, path: str) -> None:
        self.fh = open(path, "w+b", buffering=1 << 20)  # closed with the spool
        self.last = 0

    def append(self, seq: int, blob: bytes) -> None:
        self.fh.write(b"%d %s\n" % (seq, blob))
        self.last = seq

    def read(self) -> Iterator[tuple[int, bytes]]:
        self.fh.flush()
        self.fh.seek(0)
        for line in self.fh:
            seq, _, blob = line.partition(b" ")
            yield int(seq), blob[:-1]


def _first(row: tuple[int, bytes]) -> int:
    return row[0]


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
    """Shared by every spec format: results are spooled as they arrive; ``close``
    reads them back in order (listing order; groups by folder, members in natural
    order) and the format writes them out."""

    def __init__(self, path: str | None, options: SpecOptions) -> None:
        self.path = path
        self.options = options
        self.builder = SpecBuilder(options)
        self.tmpdir = tempfile.mkdtemp(prefix="prober-spec-")
        self.spool = Spool(self.tmpdir, options.unique_urls)

    def write(self, result: Result) -> None:
        single = self.builder.single(result)
        if single is not None:
            self.spool.add_single(single[0], result.entry.seq, single[1])
            return
        member = self.builder.grouped(result)
        if member is not None:
            self.spool.add(member)

    def entries(self, section: str) -> Iterator[bytes]:
        """Serialized entries of one top-level list, in order."""
        if section in ("videos", "images"):
            yield from self.spool.singles(section)
            return
        for title, urls in self.spool.groups(section):
            yield orjson.dumps(group_entry(section, title, urls))

    def _finish(self, out: AtomicFile) -> None:
        raise NotImplementedError

    def _open(self) -> AtomicFile:
        return AtomicFile(self.path)

    def close(self, commit: bool) -> None:
        try:
            if commit:
                out = self._open()
                try:
                    self._finish(out)
                    out.commit()
                except BaseException:
                    out.abort()
                    raise
        finally:
            self.spool.close()
            shutil.rmtree(self.tmpdir, ignore_errors=True)


class JsonSpecWriter(_SpoolingWriter):
    """``--format json``: the Encord spec, one entry per line."""

    def _finish(self, out: AtomicFile) -> None:
        fh = out.fh
        fh.write("{\n")
        first_section = True
        if self.options.header is not None:
            fh.write(f'  "{HEADER_KEY}": ' + orjson.dumps(self.options.header).decode())
            first_section = False
        for section in SECTIONS:
            first = True
            for blob in self.entries(section):
                if first:
                    fh.write(("" if first_section else ",\n") + f'  "{section}": [\n    ')
                    first = first_section = False
                else:
                    fh.write(",\n    ")
                fh.write(blob.decode())
            if first and section in ("videos", "images"):  # always present, maybe empty
                fh.write(("" if first_section else ",\n") + f'  "{section}": []')
                first_section = False
            elif not first:
                fh.write("\n  ]")
        if self.options.skip_duplicate_urls:
            fh.write(',\n  "skip_duplicate_urls": true')
        fh.write("\n}\n")


class JsonlSpecWriter(_SpoolingWriter):
    """``--format jsonl``: one line per spec entry, ``{"section": ..., "entry": {...}}``."""

    def _finish(self, out: AtomicFile) -> None:
        for section in SECTIONS:
            prefix = f'{{"section":"{section}","entry":'
            for blob in self.entries(section):
                out.fh.write(prefix + blob.decode() + "}\n")


class CsvSpecWriter(_SpoolingWriter):
    """``--format csv``: Encord's CSV, ``ObjectUrl,Title,Create video``.

    Videos are one row each (no videoMetadata: CSV has no column for it); image
    groups and sequences one row per image with the group's title and ``false`` /
    ``true``. CSV cannot carry single images or DICOM series: those are left out and
    counted, and the CLI says so.
    """

    HEADER = ("ObjectUrl", "Title", "Create video")

    def __init__(self, path: str | None, options: SpecOptions) -> None:
        super().__init__(path, options)
        self.refused: dict[str, int] = {"images": 0, "dicom_series": 0}

    def write(self, result: Result) -> None:
        if result.status is Status.OK and result.kind is Kind.DICOM:
            self.refused["dicom_series"] += 1
        elif (
            result.status is Status.OK
            and result.kind is Kind.IMAGE
            and (self.options.images == "single")
        ):
            self.refused["images"] += 1
        else:
            super().write(result)

    def _open(self) -> AtomicFile:
        return AtomicFile(self.path, newline="")

    def _finish(self, out: AtomicFile) -> None:
        writer = csv.writer(out.fh)
        writer.writerow(self.HEADER)
        for blob in self.entries("videos"):
            entry = orjson.loads(blob)
            writer.writerow([entry["objectUrl"], entry.get("title", ""), ""])
        for section in ("image_groups", "image_sequences"):
            create = "true" if section == "image_sequences" else "false"
            for title, urls in self.spool.groups(section):
                for url in urls:
                    writer.writerow([url, title, create])
