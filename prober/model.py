"""The values that flow through the pipeline: Entry → Result."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    VIDEO = "video"
    IMAGE = "image"
    DICOM = "dicom"
    OTHER = "other"  # unknown extension: skipped unless --sniff


@dataclass(slots=True)
class Entry:
    """One object as a source lists it.

    `url` is the objectUrl written to the spec (where Encord will read the object),
    `key` the path relative to the source root (titles, grouping, filters, sharding).
    `size` may be None for bare URLs until the first read learns it. `handle` is
    opaque to everything but the backend that produced the entry.
    """

    url: str
    key: str
    size: int | None = None
    etag: str | None = None
    handle: Any = None
    kind: Kind | None = None  # set when the source knows better than the extension
    seq: int = 0  # position in the listing: specs are written in listing order
    extra: dict[str, Any] | None = None  # source-private bookkeeping (e.g. enrich index)

    @property
    def name(self) -> str:
        return self.key.rstrip("/").rsplit("/", 1)[-1]


@dataclass(slots=True)
class Metadata:
    """What the probe learns about a video. The first six fields are Encord's videoMetadata."""

    fps: float
    duration: float
    width: int
    height: int
    file_size: int
    mime_type: str
    # extended, for --report
    container: str = ""
    codec: str | None = None
    pix_fmt: str | None = None
    coded_width: int = 0
    coded_height: int = 0
    rotation: int = 0
    frame_count: int | None = None
    vfr: bool = False
    has_audio: bool = False
    audio_codec: str | None = None
    bit_rate: int | None = None
    start_time: float | None = None

    def video_metadata(self) -> dict[str, Any]:
        return {
            "fps": self.fps,
            "duration": self.duration,
            "width": self.width,
            "height": self.height,
            "file_size": self.file_size,
            "mime_type": self.mime_type,
        }

    def extended(self) -> dict[str, Any]:
        return {
            "container": self.container,
            "codec": self.codec,
            "pix_fmt": self.pix_fmt,
            "coded_width": self.coded_width,
            "coded_height": self.coded_height,
            "rotation": self.rotation,
            "frame_count": self.frame_count,
            "vfr": self.vfr,
            "has_audio": self.has_audio,
            "audio_codec": self.audio_codec,
            "bit_rate": self.bit_rate,
            "start_time": self.start_time,
        }


class Status(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(slots=True)
class Result:
    entry: Entry
    kind: Kind
    status: Status
    metadata: Metadata | None = None
    error: str | None = None
    bytes_fetched: int = 0
    requests: int = 0
    round_trips: int = 0
    latency: float = 0.0
    cached: bool = False  # came from --state, nothing fetched
