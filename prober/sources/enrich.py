"""``--enrich SPEC``: the entries of an existing Encord spec (JSON or CSV) as a source.

Each video's objectUrl is mapped back to the backend that can read it — every
backend module recognises its own URL forms through ``parse_object_url(url)`` →
``(source spec, key)`` — so private buckets are read with their credentials, not
over anonymous HTTPS. Anything else http(s) is read as a plain URL.
"""

from __future__ import annotations

import csv
import importlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson

from prober.errors import UsageError
from prober.model import Entry, Kind
from prober.sources.base import Source
from prober.sources.context import SourceContext
from prober.urls import key_from_url_path

# backend modules asked, in order, whether a URL is theirs
BACKENDS = ("s3", "gcs", "azure")


def load_spec(path: str) -> dict[str, Any]:
    """A spec as a dict; a CSV spec becomes the equivalent JSON structure."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise UsageError(f"--enrich {path}: {exc.strerror}") from None
    if p.suffix.lower() == ".csv":
        return _csv_spec(raw.decode("utf-8-sig"), path)
    return parse_json_spec(raw, f"--enrich {path}")


def parse_json_spec(raw: bytes, where: str) -> dict[str, Any]:
    """A JSON spec's top-level object; a one-line UsageError naming ``where`` if not."""
    try:
        spec = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"{where}: not valid JSON ({exc.msg})") from None
    if not isinstance(spec, dict):
        raise UsageError(f"{where}: not an Encord spec (expected a JSON object)")
    return spec


def _csv_spec(text: str, path: str) -> dict[str, Any]:
    rows = list(csv.DictReader(text.splitlines()))
    if not rows or "ObjectUrl" not in rows[0]:
        raise UsageError(f"--enrich {path}: CSV needs an ObjectUrl column")
    videos: list[dict[str, Any]] = []
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        url = (row.get("ObjectUrl") or "").strip()
        if not url:
            continue
        title = (row.get("Title") or "").strip()
        create = (row.get("Create video") or "").strip().lower()
        if create in ("true", "false"):
            section = "image_sequences" if create == "true" else "image_groups"
            group = groups.setdefault(
                (section, title), {"title": title, "createVideo": create == "true"}
            )
            group[f"objectUrl_{len(group) - 2}"] = url
        else:
            entry: dict[str, Any] = {"objectUrl": url}
            if title:
                entry["title"] = title
            videos.append(entry)
    spec: dict[str, Any] = {"videos": videos}
    for (section, _), group in groups.items():
        spec.setdefault(section, []).append(group)
    return spec


class ObjectResolver:
    """objectUrl → (source that can read it, handle), one source per bucket."""

    def __init__(self, ctx: SourceContext) -> None:
        self.ctx = ctx
        self.sources: dict[str, Source] = {}
        self.modules = []
        for name in BACKENDS:
            module = importlib.import_module(f"prober.sources.{name}")
            if hasattr(module, "parse_object_url"):
                self.modules.append(module)

    def resolve(self, url: str) -> tuple[Source, Any]:
        from prober.sources import open_source

        for module in self.modules:
            parsed = module.parse_object_url(url)
            if parsed is not None:
                spec, key = parsed
                source = self.sources.get(spec)
                if source is None:
                    source = self.sources[spec] = open_source(spec, self.ctx)
                return source, source.handle_for(key)  # type: ignore[attr-defined]
        lower = url.lower()
        if lower.startswith(("http://", "https://")):
            from prober.sources.http import HttpSource

            source = self.sources.get("http")
            if source is None:
                source = self.sources["http"] = HttpSource("http", self.ctx)
            return source, url
        if lower.startswith("file://"):
            from prober.sources.local import LocalSource

            source = self.sources.get("file")
            if source is None:
                source = self.sources["file"] = LocalSource("/", self.ctx)
            return source, unquote(urlsplit(url).path)
        raise UsageError(f"--enrich: cannot read objectUrl {url[:120]!r} (unknown URL form)")

    async def close(self) -> None:
        for source in self.sources.values():
            await source.close()


class EnrichSource:
    """Streams the spec's video entries (by index); reads go to the resolved backend."""

    def __init__(self, path: str, spec: dict[str, Any], ctx: SourceContext) -> None:
        self.name = f"--enrich {path}"
        self.spec = spec
        self.resolver = ObjectResolver(ctx)
        self._by_entry: dict[int, Source] = {}

    async def entries(self) -> AsyncIterator[Entry]:
        videos = self.spec.get("videos") or []
        if not isinstance(videos, list):
            raise UsageError(f'{self.name}: "videos" must be a list')
        for index, item in enumerate(videos):
            url = item.get("objectUrl") if isinstance(item, dict) else None
            if not isinstance(url, str) or not url:
                continue
            source, handle = self.resolver.resolve(url)
            key = _key_of(url)
            entry = Entry(url=url, key=key, size=None, handle=handle, kind=Kind.VIDEO)
            entry.extra = {"index": index, "source": source}
            yield entry

    async def read(self, entry: Entry, start: int, end: int) -> bytes:
        assert entry.extra is not None
        source: Source = entry.extra["source"]
        return await source.read(entry, start, end)

    async def close(self) -> None:
        await self.resolver.close()


def _key_of(url: str) -> str:
    if url.startswith("arn:"):
        return url.split("/", 2)[-1] if url.count("/") >= 2 else url
    return key_from_url_path(urlsplit(url).path) or url
