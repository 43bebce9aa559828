"""A pure-Python fast path for the common MP4/MOV: read the answer straight from ``moov``.

Opening a file with FFmpeg costs ~0.6 ms of CPU even on bytes in memory (building the
sample index, then ``find_stream_info`` decoding a frame per stream). For the bulk of
real buckets -- ISO-BMFF with one H.264 video track at a constant frame rate and AAC
or no audio -- everything ffprobe reports is in the ``moov`` box: frame rate and frame
count from ``stts``/``stsz``, dimensions and pixel format from the SPS in ``avcC``,
durations from ``mvhd``, rotation from ``tkhd``. This module reads exactly those and
reproduces FFmpeg's own arithmetic (avg_frame_rate = timescale x frames / duration;
r_frame_rate = timescale / the one stts delta; format bit rate = size x 8 / duration).

It answers only when every input is unambiguous; anything else -- another codec, more
than one video track, a variable frame rate, an edit list that shifts the start, an
SPS it cannot fully read, fragments -- returns None and the caller falls back to PyAV,
the general path. tests/test_fastpath.py checks it field by field against PyAV on the
whole corpus.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from fractions import Fraction

from prober.model import Metadata
from prober.probe.containers import iter_children
from prober.probe.hints import displayed_size, variable_rate
from prober.probe.mime import container_mime

MOV_FORMAT = "mov,mp4,m4a,3gp,3g2,mj2"
AAC_OTI = frozenset({0x40, 0x66, 0x67, 0x68})
HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})
PIX_FMTS = {  # (chroma_format_idc, bit depth, full range) -> FFmpeg's h264 decoder output
    (1, 8, False): "yuv420p",
    (1, 8, True): "yuvj420p",
    (2, 8, False): "yuv422p",
    (2, 8, True): "yuvj422p",
    (1, 10, False): "yuv420p10le",
    (1, 10, True): "yuv420p10le",
    (2, 10, False): "yuv422p10le",
    (2, 10, True): "yuv422p10le",
}


class _Unsupported(Exception):
    """Not a case the fast path answers with certainty: use PyAV."""


@dataclass(slots=True)
class _Track:
    handler: bytes = b""
    timescale: int = 0
    fourcc: bytes = b""
    avcc: bytes | None = None
    colr_full_range: bool | None = None
    audio_oti: int | None = None
    stts: list[tuple[int, int]] = field(default_factory=list)
    sample_count: int = -1
    ctts_first: int | None = None
    elst: list[tuple[int, int]] | None = None  # (segment duration, media time)


def fast_metadata(
    moov: bytes, size: int, ext: str, mime: str | None, duration: float | None, rotation: int
) -> Metadata | None:
    """Metadata from a complete ``moov`` box, or None when PyAV must decide."""
    if not duration or duration <= 0:
        return None
    try:
        return _metadata(moov, size, ext, mime, duration, rotation)
    except (_Unsupported, struct.error, IndexError, ValueError, ZeroDivisionError):
        return None


def _metadata(
    moov: bytes, size: int, ext: str, mime: str | None, duration: float, rotation: int
) -> Metadata:
    start = 8 if moov[4:8] == b"moov" else 0
    if moov[:4] == b"\x00\x00\x00\x01":
        start = 16
    mvhd_ts = mvhd_dur = 0
    tracks: list[_Track] = []
    for kind, a, b in iter_children(moov, start):
        if kind == b"mvhd":
            if moov[a] == 1:
                mvhd_ts, mvhd_dur = struct.unpack_from(">IQ", moov, a + 20)
            else:
                mvhd_ts, mvhd_dur = struct.unpack_from(">II", moov, a + 12)
        elif kind == b"trak":
            tracks.append(_trak(moov, a, b))
        elif kind in (b"mvex", b"cmov"):
            raise _Unsupported(kind)  # fragments, compressed moov
    if not mvhd_ts:
        raise _Unsupported("mvhd")
    video = [t for t in tracks if t.handler == b"vide"]
    audio = [t for t in tracks if t.handler == b"soun"]
    if len(video) != 1 or any(t.handler not in (b"vide", b"soun") for t in tracks):
        raise _Unsupported("tracks")
    v = video[0]
    if v.fourcc not in (b"avc1", b"avc3") or v.avcc is None or not v.timescale:
        raise _Unsupported("video codec")
    if v.sample_count <= 0 or not v.stts:
        raise _Unsupported("samples")

    # frame rates exactly as libavformat/mov.c derives them
    stts_dur = sum(n * d for n, d in v.stts)
    stts_frames = sum(n for n, _ in v.stts)
    if stts_dur <= 0 or stts_frames <= 0:
        raise _Unsupported("stts")
    if not (len(v.stts) == 1 or (len(v.stts) == 2 and v.stts[1][0] == 1)):
        raise _Unsupported("variable frame rate: FFmpeg estimates r_frame_rate from packets")
    avg = _limit(Fraction(v.timescale * stts_frames, stts_dur))
    r_rate = _limit(Fraction(v.timescale, v.stts[0][1])) if v.stts[0][1] else None
    fps = _rate(avg) or _rate(r_rate)
    if fps is None:
        raise _Unsupported("fps")

    # the start must be 0 for every stream (else PyAV works out where it is)
    if _video_start(v) != 0 or any(not _audio_starts_at_zero(t) for t in audio):
        raise _Unsupported("start time")

    sps = _parse_sps(_first_sps(v.avcc))
    full = sps.full_range if sps.full_range is not None else bool(v.colr_full_range)
    pix_fmt = PIX_FMTS.get((sps.chroma, sps.bit_depth, full))
    if pix_fmt is None:
        raise _Unsupported("pixel format")
    width, height = sps.width, sps.height
    if width <= 0 or height <= 0:
        raise _Unsupported("size")

    audio_codec = None
    if audio:
        a0 = audio[0]
        if a0.fourcc != b"mp4a" or a0.audio_oti not in AAC_OTI:
            raise _Unsupported("audio codec")
        audio_codec = "aac"

    duration_us = (mvhd_dur * 1_000_000 + mvhd_ts // 2) // mvhd_ts
    bit_rate = int(size * 8.0 * 1_000_000 / duration_us) if duration_us > 0 else None
    fps_f = float(fps)
    disp_w, disp_h = displayed_size(width, height, rotation)
    return Metadata(
        fps=fps_f,
        duration=round(duration, 6),
        width=disp_w,
        height=disp_h,
        file_size=size,
        mime_type=mime or container_mime(MOV_FORMAT, ext),
        container=MOV_FORMAT,
        codec="h264",
        pix_fmt=pix_fmt,
        coded_width=width,
        coded_height=height,
        rotation=rotation,
        frame_count=v.sample_count,
        vfr=variable_rate(r_rate, fps_f),
        has_audio=bool(audio),
        audio_codec=audio_codec,
        bit_rate=bit_rate or None,
        start_time=0.0,
    )


def _limit(value: Fraction) -> Fraction:
    """av_reduce(..., INT_MAX): the closest fraction with terms below 2**31."""
    if value.numerator < 2**31 and value.denominator < 2**31:
        return value
    raise _Unsupported("rate terms beyond INT_MAX")


def _rate(value: Fraction | None) -> Fraction | None:
    # parse.py's rule: FFmpeg's 90k/1k tick rates are time bases, not frame rates
    if value is None or value <= 0 or value in (90000, 1000) or value > 1000:
        return None
    return value


def _video_start(t: _Track) -> int:
    """First presentation time after the edit list, in media units (0 is what we accept)."""
    ctts0 = t.ctts_first or 0
    if t.elst is None:
        return ctts0
    if len(t.elst) != 1:
        raise _Unsupported("edit list")
    _, media_time = t.elst[0]
    if media_time < 0:
        raise _Unsupported("empty edit")
    return ctts0 - media_time


def _audio_starts_at_zero(t: _Track) -> bool:
    # a single edit skipping the encoder's priming samples still starts at 0
    return t.elst is None or (len(t.elst) == 1 and t.elst[0][1] >= 0)


def _trak(d: bytes, start: int, end: int) -> _Track:
    t = _Track()
    for kind, a, b in iter_children(d, start, end):
        if kind == b"edts":
            for k2, a2, b2 in iter_children(d, a, b):
                if k2 == b"elst":
                    t.elst = _elst(d, a2, b2)
        elif kind == b"mdia":
            for k2, a2, b2 in iter_children(d, a, b):
                if k2 == b"mdhd":
                    t.timescale = struct.unpack_from(">I", d, a2 + (20 if d[a2] == 1 else 12))[0]
                elif k2 == b"hdlr":
                    t.handler = d[a2 + 8 : a2 + 12]
                elif k2 == b"minf":
                    for k3, a3, b3 in iter_children(d, a2, b2):
                        if k3 == b"stbl":
                            _stbl(d, a3, b3, t)
    return t


def _elst(d: bytes, a: int, b: int) -> list[tuple[int, int]]:
    version = d[a]
    (n,) = struct.unpack_from(">I", d, a + 4)
    if n > 16:
        raise _Unsupported("long edit list")
    out = []
    pos = a + 8
    for _ in range(n):
        if version == 1:
            seg, media = struct.unpack_from(">Qq", d, pos)
            pos += 20
        else:
            seg, media = struct.unpack_from(">Ii", d, pos)
            pos += 12
        out.append((seg, media))
    if pos > b:
        raise _Unsupported("elst")
    return out


def _stbl(d: bytes, a: int, b: int, t: _Track) -> None:
    for kind, s, e in iter_children(d, a, b):
        if kind == b"stsd":
            _stsd(d, s, e, t)
        elif kind == b"stts":
            (n,) = struct.unpack_from(">I", d, s + 4)
            if n > 2:
                raise _Unsupported("stts entries")  # FFmpeg's r_frame_rate needs packets
            if s + 8 + 8 * n > e:
                raise _Unsupported("stts")
            t.stts = [struct.unpack_from(">II", d, s + 8 + 8 * i) for i in range(n)]
        elif kind == b"stsz":
            t.sample_count = struct.unpack_from(">I", d, s + 8)[0]
        elif kind == b"stz2":
            t.sample_count = struct.unpack_from(">I", d, s + 8)[0]
        elif kind == b"ctts":
            (n,) = struct.unpack_from(">I", d, s + 4)
            if n:
                t.ctts_first = struct.unpack_from(">i", d, s + 12)[0]
        elif kind in (b"cslg", b"saiz", b"saio", b"senc"):
            raise _Unsupported(kind)  # composition shifts, encryption: PyAV decides


def _stsd(d: bytes, s: int, e: int, t: _Track) -> None:
    (n,) = struct.unpack_from(">I", d, s + 4)
    if n != 1:
        raise _Unsupported("several sample descriptions")
    entries = list(iter_children(d, s + 8, e))
    if len(entries) != 1:
        raise _Unsupported("stsd")
    fourcc, a, b = entries[0]
    t.fourcc = fourcc
    if t.handler == b"vide" or fourcc in (b"avc1", b"avc3"):
        # VisualSampleEntry: 6 reserved + 2 dref index + 70 bytes of fields, then boxes
        for k, a2, b2 in iter_children(d, a + 78, b):
            if k == b"avcC":
                t.avcc = d[a2:b2]
            elif k == b"colr" and d[a2 : a2 + 4] == b"nclx" and b2 - a2 >= 11:
                t.colr_full_range = bool(d[a2 + 10] & 0x80)
    elif fourcc == b"mp4a":
        version = struct.unpack_from(">H", d, a + 8)[0]
        skip = {0: 28, 1: 44, 2: 64}.get(version)
        if skip is None:
            raise _Unsupported("mp4a version")
        for k, a2, b2 in iter_children(d, a + skip, b):
            if k == b"esds":
                t.audio_oti = _esds_oti(d, a2 + 4, b2)
            elif k == b"wave":
                for k3, a3, b3 in iter_children(d, a2, b2):
                    if k3 == b"esds":
                        t.audio_oti = _esds_oti(d, a3 + 4, b3)


def _esds_oti(d: bytes, pos: int, end: int) -> int | None:
    """objectTypeIndication of the DecoderConfigDescriptor inside an ES_Descriptor."""

    def desc(p: int) -> tuple[int, int, int]:
        tag = d[p]
        p += 1
        length = 0
        for _ in range(4):
            c = d[p]
            p += 1
            length = (length << 7) | (c & 0x7F)
            if not c & 0x80:
                break
        return tag, p, length

    tag, p, _ = desc(pos)
    if tag != 0x03:
        return None
    flags = d[p + 2]
    p += 3
    if flags & 0x80:
        p += 2
    if flags & 0x40:
        p += 1 + d[p]
    if flags & 0x20:
        p += 2
    tag, p, _ = desc(p)
    if tag != 0x04 or p >= end:
        return None
    return d[p]


# --- H.264 SPS ----------------------------------------------------------------------


@dataclass(slots=True)
class Sps:
    width: int
    height: int
    chroma: int
    bit_depth: int
    full_range: bool | None  # None: no video_signal_type in the VUI


def _first_sps(avcc: bytes) -> bytes:
    if len(avcc) < 8 or avcc[0] != 1:
        raise _Unsupported("avcC")
    n = avcc[5] & 0x1F
    if n < 1:
        raise _Unsupported("no SPS")
    length = struct.unpack_from(">H", avcc, 6)[0]
    sps = avcc[8 : 8 + length]
    if len(sps) != length or not sps or sps[0] & 0x1F != 7:
        raise _Unsupported("SPS")
    return sps


class _Bits:
    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = int.from_bytes(data, "big")
        self.end = len(data) * 8
        self.pos = 0

    def u(self, n: int) -> int:
        if self.pos + n > self.end:
            raise _Unsupported("SPS ends early")
        self.pos += n
        return (self.data >> (self.end - self.pos)) & ((1 << n) - 1)

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise _Unsupported("bad exp-Golomb code")
        return (1 << zeros) - 1 + (self.u(zeros) if zeros else 0)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


def _parse_sps(nal: bytes) -> Sps:
    rbsp = nal[1:].replace(b"\x00\x00\x03", b"\x00\x00")
    r = _Bits(rbsp)
    profile = r.u(8)
    r.u(16)  # constraint flags, level
    r.ue()  # seq_parameter_set_id
    chroma, bit_depth, separate_planes = 1, 8, 0
    if profile in HIGH_PROFILES:
        chroma = r.ue()
        if chroma == 3:
            separate_planes = r.u(1)
        bit_depth = r.ue() + 8
        if r.ue() + 8 != bit_depth:
            raise _Unsupported("luma and chroma bit depths differ")
        r.u(1)  # qpprime_y_zero_transform_bypass
        if r.u(1):  # seq_scaling_matrix_present
            for i in range(8 if chroma != 3 else 12):
                if r.u(1):
                    last = nxt = 8
                    for _ in range(16 if i < 6 else 64):
                        if nxt:
                            nxt = (last + r.se() + 256) % 256
                        last = nxt or last
    if chroma not in (1, 2):
        raise _Unsupported("chroma format")  # 4:0:0 and 4:4:4 have their own rules
    r.ue()  # log2_max_frame_num_minus4
    poc_type = r.ue()
    if poc_type == 0:
        r.ue()
    elif poc_type == 1:
        r.u(1)
        r.se()
        r.se()
        for _ in range(r.ue()):
            r.se()
    r.ue()  # max_num_ref_frames
    r.u(1)  # gaps_in_frame_num_allowed
    w_mbs = r.ue() + 1
    h_units = r.ue() + 1
    frame_mbs_only = r.u(1)
    if not frame_mbs_only:
        raise _Unsupported("interlaced")
    r.u(1)  # direct_8x8_inference
    crop = (0, 0, 0, 0)
    if r.u(1):
        crop = (r.ue(), r.ue(), r.ue(), r.ue())
    full_range = None
    if r.u(1):  # vui_parameters_present
        if r.u(1) and r.u(8) == 255:  # aspect_ratio_info -> idc == Extended_SAR
            r.u(32)
        if r.u(1):  # overscan_info_present
            r.u(1)
        if r.u(1):  # video_signal_type_present
            r.u(3)
            full_range = bool(r.u(1))
    if separate_planes:
        raise _Unsupported("separate colour planes")
    sub_w, sub_h = (2, 2) if chroma == 1 else (2, 1)
    width = w_mbs * 16 - sub_w * (crop[0] + crop[1])
    height = h_units * 16 - sub_h * (crop[2] + crop[3])
    if crop != (0, 0, 0, 0) and (width <= 0 or height <= 0):
        raise _Unsupported("cropping")
    return Sps(width, height, chroma, bit_depth, full_range)
