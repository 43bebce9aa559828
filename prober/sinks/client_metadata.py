"""``--client-metadata FILE``: per-object clientMetadata, JSONL keyed by object URL or key.

Loaded once into a temporary SQLite table, so a file with millions of lines costs
disk, not memory. Encord rejects clientMetadata over 10 MB; so does prober, up front,
naming the object.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from typing import Any

import orjson

from prober.errors import UsageError

LIMIT = 10_000_000  # bytes of serialized JSON


class ClientMetadata:
    def __init__(self, path: str) -> None:
        self.tmpdir = tempfile.mkdtemp(prefix="prober-cm-")
        self.db = sqlite3.connect(os.path.join(self.tmpdir, "cm.sqlite"))
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("CREATE TABLE cm (k TEXT PRIMARY KEY, v BLOB)")
        try:
            self._load(path)
        except BaseException:
            self.close()
            raise

    def _load(self, path: str) -> None:
        try:
            fh = open(path, "rb")
        except OSError as exc:
            raise UsageError(f"--client-metadata {path}: {exc.strerror}") from None
        with fh:
            batch: list[tuple[str, bytes]] = []
            for lineno, raw in enumerate(fh, 1):
                if not raw.strip():
                    continue
                where = f"--client-metadata {path}:{lineno}"
                try:
                    row = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    raise UsageError(f"{where}: not a JSON object") from None
                if not isinstance(row, dict):
                    raise UsageError(f"{where}: not a JSON object")
                ident = row.get("objectUrl") or row.get("key")
                if not isinstance(ident, str) or not ident:
                    raise UsageError(f'{where}: needs "objectUrl" or "key"')
                meta = row.get("clientMetadata")
                if not isinstance(meta, dict):
                    raise UsageError(f'{where}: "clientMetadata" must be a JSON object')
                blob = orjson.dumps(meta)
                if len(blob) > LIMIT:
                    raise UsageError(
                        f"{where}: clientMetadata for {ident} is {len(blob) / 1e6:.1f} MB "
                        "serialized; Encord accepts at most 10 MB"
                    )
                batch.append((ident, blob))
                if len(batch) >= 1000:
                    self._insert(batch)
            self._insert(batch)
        self.db.commit()

    def _insert(self, batch: list[tuple[str, bytes]]) -> None:
        self.db.executemany("INSERT OR REPLACE INTO cm VALUES (?, ?)", batch)
        batch.clear()

    def lookup(self, url: str, key: str) -> dict[str, Any] | None:
        for ident in (url, key):
            row = self.db.execute("SELECT v FROM cm WHERE k=?", (ident,)).fetchone()
            if row is not None:
                value: dict[str, Any] = orjson.loads(row[0])
                return value
        return None

    def close(self) -> None:
        self.db.close()
        import shutil

        shutil.rmtree(self.tmpdir, ignore_errors=True)
