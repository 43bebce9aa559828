"""``--enrich``: the input spec, unchanged but for fresh ``videoMetadata``.

Every other field, unknown keys included, and the order of entries are kept. A video
that fails keeps its entry but loses any stale ``videoMetadata`` (``--drop-failed``
removes the entry instead); the failure goes to ``--failures`` as usual.
"""

from __future__ import annotations

from typing import Any

import orjson

from prober.model import Result, Status
from prober.sinks.atomic import AtomicFile


class EnrichWriter:
    def __init__(self, path: str | None, spec: dict[str, Any], drop_failed: bool = False) -> None:
        self.path = path
        self.spec = spec
        self.drop_failed = drop_failed
        self.metadata: dict[int, dict[str, Any] | None] = {}

    def write(self, result: Result) -> None:
        index = (result.entry.extra or {}).get("index")
        if index is None:
            return
        if result.status is Status.OK and result.metadata is not None:
            self.metadata[index] = result.metadata.video_metadata()
        elif result.status is Status.FAILED:
            self.metadata[index] = None

    def close(self, commit: bool) -> None:
        if not commit:
            return
        videos = self.spec.get("videos")
        if isinstance(videos, list):
            kept = []
            for index, item in enumerate(videos):
                if index in self.metadata and isinstance(item, dict):
                    meta = self.metadata[index]
                    if meta is not None:
                        item["videoMetadata"] = meta
                    elif self.drop_failed:
                        continue
                    else:
                        item.pop("videoMetadata", None)
                kept.append(item)
            self.spec["videos"] = kept
        out = AtomicFile(self.path)
        try:
            out.fh.write(orjson.dumps(self.spec, option=orjson.OPT_INDENT_2).decode() + "\n")
            out.commit()
        except BaseException:
            out.abort()
            raise
