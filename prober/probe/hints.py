"""What the pure-Python look at a container tells the FFmpeg parse (kept free of PyAV,
so a run that never needs FFmpeg never loads it)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from prober.errors import ObjectError


@dataclass(slots=True)
class Hints:
    """What the pure-Python container look already knows."""

    ext: str = ""
    mime: str | None = None  # from ftyp brand / EBML DocType
    duration: float | None = None  # from mvhd (what ffprobe 5.1 reports as format duration)
    rotation: int | None = None  # from tkhd matrix
    moov: bytes | None = None  # the whole moov box, for the pure-Python fast path
    fragmented: bool = False  # fragmented MP4: the duration lives in the mfra at the end
    fps: float | None = None  # fragmented MP4: frames / time of the last fragment


class Incomplete(Exception):
    """FFmpeg parsed, but a required field is missing; more bytes may help."""

    def __init__(self, message: str, error: ObjectError) -> None:
        super().__init__(message)
        self.error = error


def displayed_size(width: int, height: int, rotation: int) -> tuple[int, int]:
    """(width, height) as shown: a quarter turn swaps them, as ffprobe's side data does."""
    return (height, width) if abs(rotation) % 180 == 90 else (width, height)


def variable_rate(r_rate: Fraction | None, fps: float) -> bool:
    """Whether the stream's real base rate (``r_frame_rate``) differs from its average
    frame rate by more than 0.1 %: frames are not evenly spaced."""
    return bool(r_rate and abs(float(r_rate) - fps) > fps * 1e-3)
