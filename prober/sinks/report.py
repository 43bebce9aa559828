"""``--report`` (JSONL, one line per object) and ``--failures`` (CSV objectUrl,error)."""

from __future__ import annotations

import csv
from typing import Any

import orjson

from prober.model import Result, Status
from prober.sinks.atomic import AtomicFile
from prober.urls import redact


def report_line(result: Result) -> dict[str, Any]:
    e = result.entry
    line: dict[str, Any] = {
        "objectUrl": redact(e.url),
        "key": e.key,
        "kind": result.kind.value,
        "status": result.status.value,
        "error": result.error,
        "file_size": e.size,
        "etag": e.etag,
    }
    if result.metadata is not None:
        line["videoMetadata"] = result.metadata.video_metadata()
        line["metadata"] = result.metadata.extended()
    line["bytes_fetched"] = result.bytes_fetched
    line["requests"] = result.requests
    line["round_trips"] = result.round_trips
    line["latency_ms"] = round(result.latency * 1000, 1)
    if result.cached:
        line["cached"] = True
    return line


class ReportWriter:
    def __init__(self, path: str) -> None:
        self.out = AtomicFile(path)

    def write(self, result: Result) -> None:
        self.out.fh.write(orjson.dumps(report_line(result)).decode() + "\n")

    def close(self, commit: bool) -> None:
        (self.out.commit if commit else self.out.abort)()


class FailuresWriter:
    """Like Encord's failed-upload log: one row per object that failed."""

    def __init__(self, path: str) -> None:
        self.out = AtomicFile(path, newline="")
        self.csv = csv.writer(self.out.fh)
        self.csv.writerow(["objectUrl", "error"])

    def write(self, result: Result) -> None:
        if result.status is Status.FAILED:
            self.csv.writerow([redact(result.entry.url), result.error or "failed"])

    def close(self, commit: bool) -> None:
        (self.out.commit if commit else self.out.abort)()
