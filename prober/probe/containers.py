"""Cheap, pure-Python looks at container structure, on bytes already fetched.

Used to plan which byte ranges to fetch (where is the MP4 ``moov``?), to catch
truncated or corrupt objects that FFmpeg would happily half-parse (a top-level box
or Matroska segment that runs past the end of the object), and to read what
PyAV does not expose (the ``tkhd`` display matrix, the ``ftyp`` brand, the EBML
DocType). Nothing here does I/O.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prober.errors import ObjectError

# Top-level ISO-BMFF box types we accept as evidence that a file is ISO-BMFF.
TOP_LEVEL_BOXES = frozenset(
    {
        b"ftyp",
        b"moov",
        b"mdat",
        b"free",
        b"skip",
        b"wide",
        b"pnot",
        b"uuid",
        b"moof",
        b"mfra",
        b"styp",
        b"sidx",
        b"meta",
        b"pdin",
        b"prft",
        b"emsg",
        b"junk",
        b"ssix",
    }
)
CONTAINER_BOXES = frozenset({b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"udta"})


@dataclass(slots=True)
class Box:
    type: bytes
    offset: int
    size: int  # whole box, header included; for size==0 boxes: up to end of file
    header: int  # header length (8 or 16)

    @property
    def end(self) -> int:
        return self.offset + self.size


@dataclass(slots=True)
class BmffLayout:
    """What a top-level walk of an ISO-BMFF object found so far."""

    boxes: list[Box] = field(default_factory=list)
    brand: bytes | None = None
    compatible: tuple[bytes, ...] = ()
    next_offset: int | None = None  # first box header we have not seen yet (None: walk done)

    def find(self, kind: bytes) -> Box | None:
        for box in self.boxes:
            if box.type == kind:
                return box
        return None


Reader = Callable[[int, int], bytes | None]
"""``reader(offset, length)`` → bytes if they were fetched, else None."""


def looks_like_bmff(head: bytes) -> bool:
    return len(head) >= 8 and head[4:8] in TOP_LEVEL_BOXES


def walk_bmff(read: Reader, size: int) -> BmffLayout:
    """Walk top-level boxes as far as the fetched bytes allow.

    Raises ObjectError when the structure is impossible (a box that overruns the
    object, a zero-length box in the middle).
    """
    layout = BmffLayout()
    offset = 0
    while offset < size:
        if size - offset < 8:
            break  # trailing padding shorter than a box header: ignore, as FFmpeg does
        hdr = read(offset, 16 if size - offset >= 16 else 8)
        if hdr is None:
            layout.next_offset = offset
            return layout
        box_size, kind = struct.unpack(">I4s", hdr[:8])
        header = 8
        if box_size == 1:
            if len(hdr) < 16:
                raise ObjectError(
                    "corrupt", f"corrupt: box '{_fourcc(kind)}' has a truncated 64-bit size"
                )
            box_size = struct.unpack(">Q", hdr[8:16])[0]
            header = 16
        elif box_size == 0:
            box_size = size - offset
        if box_size < header:
            if offset == 0:
                raise ObjectError("not_media", "not a media file (bad first MP4 box)")
            raise ObjectError(
                "corrupt",
                f"corrupt: box '{_fourcc(kind)}' at {offset} has an invalid size {box_size}",
            )
        box = Box(kind, offset, box_size, header)
        layout.boxes.append(box)
        if kind == b"ftyp" and layout.brand is None:
            body = read(offset + header, min(box_size - header, 64))
            if body is not None and len(body) >= 4:
                layout.brand = body[:4]
                layout.compatible = tuple(body[i : i + 4] for i in range(8, len(body) - 3, 4))
        if box.end > size:
            what = _fourcc(kind)
            if kind == b"mdat":
                raise ObjectError(
                    "truncated",
                    f"truncated: object is {size} bytes but its media data runs to {box.end}",
                )
            raise ObjectError(
                "corrupt" if kind == b"moov" else "truncated",
                f"{'corrupt' if kind == b'moov' else 'truncated'}: '{what}' box runs past the end "
                f"of the object ({box.end} > {size} bytes)",
            )
        offset = box.end
    layout.next_offset = None
    return layout


def _fourcc(kind: bytes) -> str:
    return kind.decode("latin-1").replace("\x00", " ") if kind.isascii() else kind.hex()


def iter_children(
    data: bytes, start: int = 0, end: int | None = None
) -> Iterator[tuple[bytes, int, int]]:
    """Yield (type, payload_start, payload_end) of the boxes inside ``data[start:end]``."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                return
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            return
        yield kind, pos + header, pos + size
        pos += size


@dataclass(slots=True)
class MoovInfo:
    timescale: int = 0
    duration: int = 0  # in timescale units (mvhd)
    video_rotation: int = 0
    has_video_track: bool = False
    fragmented: bool = False


def parse_moov(moov: bytes) -> MoovInfo:
    """Read mvhd duration, and the first video track's display-matrix rotation."""
    info = MoovInfo()
    for kind, a, b in iter_children(moov, 8 if moov[4:8] == b"moov" else 0):
        if kind == b"mvhd" and b - a >= 20:
            if moov[a] == 1 and b - a >= 32:
                info.timescale, info.duration = struct.unpack_from(">IQ", moov, a + 20)
            else:
                info.timescale, info.duration = struct.unpack_from(">II", moov, a + 12)
        elif kind == b"mvex":
            info.fragmented = True
        elif kind == b"trak" and not info.has_video_track:
            rotation, is_video = _trak_rotation(moov, a, b)
            if is_video:
                info.has_video_track = True
                info.video_rotation = rotation
    return info


def _trak_rotation(data: bytes, start: int, end: int) -> tuple[int, bool]:
    rotation = 0
    is_video = False
    for kind, a, b in iter_children(data, start, end):
        if kind == b"tkhd":
            matrix_at = a + (52 if data[a] == 1 else 40)
            if matrix_at + 36 <= b:
                m = struct.unpack_from(">9i", data, matrix_at)
                rotation = matrix_rotation(m)
        elif kind == b"mdia":
            for k2, a2, b2 in iter_children(data, a, b):
                if k2 == b"hdlr" and b2 - a2 >= 12 and data[a2 + 8 : a2 + 12] == b"vide":
                    is_video = True
    return rotation, is_video


def matrix_rotation(m: tuple[int, ...]) -> int:
    """Rotation in degrees as ffprobe reports it (av_display_rotation_get, rounded)."""
    a, b, c, d = m[0] / 65536, m[1] / 65536, m[3] / 65536, m[4] / 65536
    s0, s1 = math.hypot(a, c), math.hypot(b, d)
    if s0 == 0 or s1 == 0:
        return 0
    deg = -math.degrees(math.atan2(b / s1, a / s0))
    rot = round(deg)
    return 0 if rot == 0 else rot  # avoid -0


# --- Matroska / WebM -------------------------------------------------------------

EBML_MAGIC = b"\x1a\x45\xdf\xa3"
SEGMENT_ID = b"\x18\x53\x80\x67"


def _vint(data: bytes, pos: int) -> tuple[int, int, bool]:
    """Decode an EBML variable-size integer → (value, length, all_ones)."""
    first = data[pos]
    if first == 0:
        raise ValueError("invalid EBML vint")
    length = 8 - first.bit_length() + 1
    value = first & (0xFF >> length)
    for i in range(1, length):
        value = (value << 8) | data[pos + i]
    return value, length, value == (1 << (7 * length)) - 1


def ebml_info(head: bytes, size: int) -> tuple[str | None, bool]:
    """(DocType, truncated) from the start of a Matroska/WebM object."""
    try:
        _, idlen = 4, 4
        hsize, hlen, _ = _vint(head, idlen)
        body_start = idlen + hlen
        body_end = body_start + hsize
        doctype = None
        pos = body_start
        while pos < min(body_end, len(head)):
            # element IDs are vints too; keep their marker bits
            first = head[pos]
            id_len = 8 - first.bit_length() + 1
            el_id = head[pos : pos + id_len]
            pos += id_len
            el_size, slen, _ = _vint(head, pos)
            pos += slen
            if el_id == b"\x42\x82":
                doctype = head[pos : pos + el_size].rstrip(b"\x00").decode("ascii", "replace")
            pos += el_size
        pos = body_end
        if head[pos : pos + 4] != SEGMENT_ID:
            return doctype, False
        seg_size, slen, unknown = _vint(head, pos + 4)
        if unknown:
            return doctype, False
        return doctype, pos + 4 + slen + seg_size > size
    except (IndexError, ValueError):
        return None, False


# --- RIFF (AVI) --------------------------------------------------------------------


def riff_truncated(head: bytes, size: int) -> bool:
    if len(head) < 12 or head[:4] != b"RIFF":
        return False
    riff_size = struct.unpack_from("<I", head, 4)[0]
    return riff_size + 8 > size and riff_size != 0xFFFFFFFF


# --- content sniffing --------------------------------------------------------------

IMAGE_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"BM", 0, "BMP"),
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
)


def sniff_image(head: bytes) -> str | None:
    for magic, at, name in IMAGE_MAGIC:
        if head[at : at + len(magic)] == magic:
            if name == "BMP" and len(head) < 26:
                continue
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return None


def is_dicom(head: bytes) -> bool:
    return head[128:132] == b"DICM"


def sniff_text(head: bytes) -> str | None:
    """A short description when the object is plainly text (an XML error page, HTML, JSON)."""
    sample = head[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not sample:
        return None
    if sample.startswith(b"<?xml") or sample.startswith(b"<Error"):
        if b"<Error>" in head[:4096] or b"<Code>" in head[:4096]:
            return "an XML error page"
        return "XML text"
    if sample[:15].lower().startswith((b"<!doctype html", b"<html")):
        return "an HTML page"
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError:
        return None
    printable = sum(32 <= c < 127 or c in (9, 10, 13) for c in sample)
    if printable / len(sample) > 0.97:
        return "plain text"
    return None


# --- fragmented MP4 ------------------------------------------------------------------


@dataclass(slots=True)
class FragmentInfo:
    """What a fragmented MP4's moov says about its tracks' timing."""

    # track id → (mdhd timescale, trex default sample duration)
    tracks: dict[int, tuple[int, int]] = field(default_factory=dict)
    video_track: int = 0
    movie_timescale: int = 0
    fragment_duration: int = 0  # mehd, in the movie timescale (0: absent)


def fragment_info(moov: bytes) -> FragmentInfo:
    info = FragmentInfo()
    start = 8 if moov[4:8] == b"moov" else 0
    trex: dict[int, int] = {}
    timescales: dict[int, int] = {}
    for kind, a, b in iter_children(moov, start):
        if kind == b"mvhd" and b - a >= 20:
            info.movie_timescale = struct.unpack_from(">I", moov, a + (20 if moov[a] == 1 else 12))[
                0
            ]
        elif kind == b"mvex":
            for k2, a2, b2 in iter_children(moov, a, b):
                if k2 == b"mehd" and b2 - a2 >= 8:
                    fmt = ">Q" if moov[a2] == 1 else ">I"
                    info.fragment_duration = struct.unpack_from(fmt, moov, a2 + 4)[0]
                elif k2 == b"trex" and b2 - a2 >= 24:
                    track, _, duration = struct.unpack_from(">III", moov, a2 + 4)
                    trex[track] = duration
        elif kind == b"trak":
            track_id, timescale = _trak_timing(moov, a, b)
            if track_id and timescale:
                timescales[track_id] = timescale
                if not info.video_track and _trak_rotation(moov, a, b)[1]:
                    info.video_track = track_id
    info.tracks = {t: (ts, trex.get(t, 0)) for t, ts in timescales.items()}
    return info


def _trak_timing(data: bytes, start: int, end: int) -> tuple[int, int]:
    track_id = timescale = 0
    for kind, a, b in iter_children(data, start, end):
        if kind == b"tkhd" and b - a >= 24:
            track_id = struct.unpack_from(">I", data, a + (20 if data[a] == 1 else 12))[0]
        elif kind == b"mdia":
            for k2, a2, b2 in iter_children(data, a, b):
                if k2 == b"mdhd" and b2 - a2 >= 24:
                    timescale = struct.unpack_from(">I", data, a2 + (20 if data[a2] == 1 else 12))[
                        0
                    ]
    return track_id, timescale


def mfra_offset(tail: bytes, size: int) -> int | None:
    """Where the mfra box starts, from the mfro box in the last 16 bytes."""
    if len(tail) < 16 or tail[-12:-8] != b"mfro":
        return None
    mfra_size = struct.unpack_from(">I", tail, len(tail) - 4)[0]
    return size - mfra_size if 16 <= mfra_size <= size else None


def last_fragments(mfra: bytes) -> dict[int, tuple[int, int]]:
    """track id → (time, moof offset) of its last random-access entry in an mfra."""
    out: dict[int, tuple[int, int]] = {}
    for kind, a, b in iter_children(mfra, 8 if mfra[4:8] == b"mfra" else 0):
        if kind != b"tfra" or b - a < 16:
            continue
        version = mfra[a]
        track, sizes, count = struct.unpack_from(">III", mfra, a + 4)
        if count == 0:
            continue
        extra = ((sizes >> 4) & 3) + ((sizes >> 2) & 3) + (sizes & 3) + 3
        entry = (16 if version == 1 else 8) + extra
        at = a + 16 + (count - 1) * entry
        if at + entry <= b:
            out[track] = struct.unpack_from(">QQ" if version == 1 else ">II", mfra, at)
    return out


def fragment_span(moof: bytes, track_id: int, default_duration: int) -> tuple[int | None, int, int]:
    """(baseMediaDecodeTime or None, summed sample durations, sample count) of one
    moof for a track."""
    base: int | None = None
    total = count = 0
    for kind, a, b in iter_children(moof, 8 if moof[4:8] == b"moof" else 0):
        if kind != b"traf":
            continue
        default = default_duration
        track = None
        for k2, a2, b2 in iter_children(moof, a, b):
            if k2 == b"tfhd" and b2 - a2 >= 8:
                flags = int.from_bytes(moof[a2 + 1 : a2 + 4], "big")
                track = struct.unpack_from(">I", moof, a2 + 4)[0]
                at = a2 + 8 + (8 if flags & 0x01 else 0) + (4 if flags & 0x02 else 0)
                if flags & 0x08 and at + 4 <= b2:
                    default = struct.unpack_from(">I", moof, at)[0]
            elif track != track_id:
                continue
            elif k2 == b"tfdt" and b2 - a2 >= 8:
                base = struct.unpack_from(">Q" if moof[a2] == 1 else ">I", moof, a2 + 4)[0]
            elif k2 == b"trun" and b2 - a2 >= 8:
                total += _trun_duration(moof, a2, b2, default)
                count += struct.unpack_from(">I", moof, a2 + 4)[0]
    return base, total, count


def _trun_duration(data: bytes, a: int, b: int, default: int) -> int:
    flags = int.from_bytes(data[a + 1 : a + 4], "big")
    count = struct.unpack_from(">I", data, a + 4)[0]
    if not flags & 0x100:
        return count * default
    at = a + 8 + (4 if flags & 0x01 else 0) + (4 if flags & 0x04 else 0)
    step = 4 * sum(bool(flags & f) for f in (0x100, 0x200, 0x400, 0x800))
    total = 0
    for _ in range(count):
        if at + 4 > b:
            break
        total += struct.unpack_from(">I", data, at)[0]
        at += step
    return total


def find_last_moof(window: bytes, window_start: int, size: int) -> int | None:
    """Offset of the last moof in a tail window, accepted only if the boxes from it
    (moof, then mdat and anything else) chain exactly to the end of the object."""
    at = len(window)
    while (at := window.rfind(b"moof", 0, at)) >= 4:
        start = at - 4
        pos = start
        while pos + 8 <= len(window):
            box_size = struct.unpack_from(">I", window, pos)[0]
            if box_size == 1 and pos + 16 <= len(window):
                box_size = struct.unpack_from(">Q", window, pos + 8)[0]
            elif box_size == 0:
                box_size = len(window) - pos
            if box_size < 8:
                break
            pos += box_size
        if pos == len(window) and window_start + len(window) == size:
            return window_start + start
    return None
