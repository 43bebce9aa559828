"""``--inventory PATH``: S3 Inventory reports instead of a listing.

At 100M objects, listing a bucket is 100k LIST requests and hours of paging; S3
Inventory writes the same list (bucket, key, size, ETag) daily as CSV files.
PATH is the report's ``manifest.json`` on S3 (``s3://dest-bucket/…/manifest.json``:
its data files are read from the destination bucket) or local CSV / CSV.gz data
files (S3's default column order, or the schema of a local ``manifest.json`` given
instead). Objects are read through the S3 backend, so objectUrls, credentials and
If-Match are those of ``s3://bucket/``. CSV keys are URL-encoded by S3
(``+`` for a space) and decoded here. ORC and Parquet reports are refused clearly.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import orjson

from prober.errors import FatalError, UsageError
from prober.model import Entry
from prober.sources.context import SourceContext
from prober.sources.s3 import S3Source, split_bucket

DEFAULT_SCHEMA = ["Bucket", "Key", "Size", "LastModifiedDate", "ETag"]
BATCH = 1000


class InventorySource:
    def __init__(self, path: str, ctx: SourceContext) -> None:
        self.name = f"--inventory {path}"
        self.path = path
        self.ctx = ctx
        self.buckets: dict[str, S3Source] = {}

    async def _bucket(self, name: str) -> S3Source:
        source = self.buckets.get(name)
        if source is None:
            source = self.buckets[name] = S3Source(f"s3://{name}/", self.ctx)
            await source.detect_region()
        return source

    # -- where the rows come from -------------------------------------------------------
    async def _files(self) -> tuple[list[str], list[bytes | Path]]:
        """(schema, data files as bytes or local paths)."""
        if self.path.lower().startswith("s3://"):
            bucket, key = split_bucket(self.path, "s3://")
            dest = S3Source(f"s3://{bucket}/", self.ctx)
            try:
                manifest = orjson.loads(await _download(dest, key))
                schema, keys = _manifest(manifest, self.path)
                return schema, [await _download(dest, key) for key in keys]
            finally:
                await dest.close()
        return await asyncio.to_thread(self._local_files)

    def _local_files(self) -> tuple[list[str], list[bytes | Path]]:
        local = Path(self.path)
        if not local.exists():
            raise UsageError(f"{self.name}: no such file")
        if local.name.endswith(".json"):
            manifest = orjson.loads(local.read_bytes())
            schema, keys = _manifest(manifest, self.path)
            return schema, [local.parent / Path(k).name for k in keys]
        return DEFAULT_SCHEMA, [local]

    async def entries(self) -> AsyncIterator[Entry]:
        schema, files = await self._files()
        try:
            col_bucket, col_key = schema.index("Bucket"), schema.index("Key")
        except ValueError:
            raise UsageError(f"{self.name}: the report has no Bucket/Key columns") from None
        col_size = schema.index("Size") if "Size" in schema else None
        col_etag = schema.index("ETag") if "ETag" in schema else None
        col_latest = schema.index("IsLatest") if "IsLatest" in schema else None
        col_marker = schema.index("IsDeleteMarker") if "IsDeleteMarker" in schema else None
        for data in files:
            rows = _rows(data)
            while batch := await asyncio.to_thread(_take, rows, BATCH):
                for row in batch:
                    if col_latest is not None and row[col_latest].lower() == "false":
                        continue  # older versions: the spec wants the current object
                    if col_marker is not None and row[col_marker].lower() == "true":
                        continue
                    source = await self._bucket(row[col_bucket])
                    key = unquote_plus(row[col_key])
                    if key.endswith("/"):
                        continue
                    yield Entry(
                        url=source.object_url(key),
                        key=key,
                        size=int(row[col_size]) if col_size is not None and row[col_size] else None,
                        etag=(row[col_etag].strip('"') or None) if col_etag is not None else None,
                        handle=(source, key),
                    )

    async def read(self, entry: Entry, start: int, end: int) -> bytes:
        source, key = entry.handle
        inner = Entry(url=entry.url, key=key, size=entry.size, etag=entry.etag, handle=key)
        data = await source.read(inner, start, end)
        entry.size = inner.size if entry.size is None else entry.size
        return data

    async def close(self) -> None:
        for source in self.buckets.values():
            await source.close()


def _manifest(manifest: dict[str, Any], where: str) -> tuple[list[str], list[str]]:
    fmt = str(manifest.get("fileFormat", "CSV"))
    if fmt.upper() != "CSV":
        raise UsageError(f"--inventory {where}: {fmt} reports are not supported; use CSV")
    schema = [c.strip() for c in str(manifest.get("fileSchema", "")).split(",") if c.strip()]
    keys = [f["key"] for f in manifest.get("files", []) if isinstance(f, dict) and "key" in f]
    return schema or DEFAULT_SCHEMA, keys


async def _download(source: S3Source, key: str) -> bytes:
    """A whole (small) report file: manifests and gzipped CSVs, not media."""
    client = await source.client()
    try:
        resp = await client.get_object(Bucket=source.bucket, Key=key)
        async with resp["Body"] as body:
            data: bytes = await body.read()
            return data
    except Exception as exc:
        raise FatalError(
            f"--inventory: cannot read s3://{source.bucket}/{key} ({type(exc).__name__})"
        ) from None


def _rows(data: bytes | Path) -> Iterator[list[str]]:
    if isinstance(data, Path):
        raw = data.open("rb")
    else:
        raw = io.BytesIO(data)
    head = raw.read(2)
    raw.seek(0)
    binary = gzip.GzipFile(fileobj=raw) if head == b"\x1f\x8b" else raw
    with io.TextIOWrapper(binary, encoding="utf-8", newline="") as text:
        yield from csv.reader(text)


def _take(rows: Iterator[list[str]], n: int) -> list[list[str]]:
    out = []
    for row in rows:
        out.append(row)
        if len(out) >= n:
            break
    return out
