"""PyAV (FFmpeg) over bytes already fetched → Metadata, or a typed failure.

Runs in a worker thread: it does no I/O, only parsing of a SparseFile.
"""

from __future__ import annotations

import logging
from fractions import Fraction

import av
import av.error
from av.stream import Disposition

from prober.errors import ObjectError
from prober.model import Metadata
from prober.probe.hints import Hints, Incomplete, displayed_size, variable_rate
from prober.probe.mime import container_mime
from prober.probe.sparse import SparseFile

logging.getLogger("libav").setLevel(logging.CRITICAL)
av.logging.set_level(None)  # no log callback: FFmpeg's trace logs never take the GIL

IMAGE_FORMATS = frozenset({"image2", "gif", "apng", "webp", "ico", "svg_pipe", "alias_pix"})

# FFmpeg options: the defaults read up to 5 MB to find stream info; we hand FFmpeg
# only what we fetched, and a hole reads as end-of-file, so these only cap the work.
AV_OPTIONS = {"probesize": str(4 << 20), "analyzeduration": "5000000"}


def parse(sf: SparseFile, hints: Hints) -> Metadata:
    sf.seek(0)
    try:
        container = av.open(sf, mode="r", options=AV_OPTIONS)
    except av.error.InvalidDataError as exc:
        raise ObjectError("not_media", f"not a media file ({_av_msg(exc)})") from None
    except av.error.FFmpegError as exc:
        raise ObjectError(
            "corrupt", f"corrupt: FFmpeg could not open it ({_av_msg(exc)})"
        ) from None
    try:
        return _metadata(container, sf.size, hints)
    finally:
        container.close()


def _av_msg(exc: Exception) -> str:
    msg = getattr(exc, "strerror", None) or str(exc)
    return str(msg).split(":")[0].strip() or type(exc).__name__


def _metadata(container: av.container.InputContainer, size: int, hints: Hints) -> Metadata:
    fmt = container.format.name
    if fmt in IMAGE_FORMATS or fmt.endswith("_pipe"):
        raise ObjectError("not_video", f"not a video: image content ({fmt})")
    video = [
        s
        for s in container.streams
        if s.type == "video" and not (s.disposition & Disposition.attached_pic)
    ]
    audio = [s for s in container.streams if s.type == "audio"]
    if not video:
        if audio:
            raise ObjectError("no_video", "no video stream (audio only)")
        raise ObjectError("no_video", "no video stream")
    s = video[0]
    cc = s.codec_context
    width, height = int(cc.width or 0), int(cc.height or 0)

    fps_frac = _rate(s.average_rate) or _rate(s.base_rate) or _rate(s.guessed_rate)
    if hints.fps:
        # fragmented MP4: FFmpeg saw the first fragment only; the last fragment's
        # sample table gives the steady rate
        fps_frac = Fraction(hints.fps).limit_denominator(1001)
    r_rate = _rate(s.base_rate)

    duration: float | None = hints.duration
    if not duration and container.duration and container.duration > 0:
        duration = container.duration / av.time_base
    if not duration and s.duration and s.time_base:
        duration = float(s.duration * s.time_base)
    frames = int(s.frames) if s.frames else None
    if not duration and frames and fps_frac:
        duration = frames / float(fps_frac)

    if width <= 0 or height <= 0:
        raise Incomplete(
            "size", ObjectError("corrupt", "corrupt: could not read the video dimensions")
        )
    if not fps_frac:
        raise Incomplete(
            "fps", ObjectError("corrupt", "corrupt: could not determine the frame rate")
        )
    if not duration or duration <= 0:
        raise Incomplete(
            "duration", ObjectError("corrupt", "corrupt: could not determine the duration")
        )

    rotation = hints.rotation if hints.rotation is not None else _tag_rotation(s.metadata)
    disp_w, disp_h = displayed_size(width, height, rotation)
    fps = float(fps_frac)
    ext = hints.ext
    return Metadata(
        fps=fps,
        duration=round(duration, 6),
        width=disp_w,
        height=disp_h,
        file_size=size,
        mime_type=hints.mime or container_mime(fmt, ext),
        container=fmt,
        codec=cc.name,
        pix_fmt=cc.pix_fmt,
        coded_width=width,
        coded_height=height,
        rotation=rotation,
        frame_count=frames,
        vfr=variable_rate(r_rate, fps),
        has_audio=bool(audio),
        audio_codec=audio[0].codec_context.name if audio else None,
        bit_rate=int(container.bit_rate) if container.bit_rate else None,
        start_time=(container.start_time / av.time_base)
        if container.start_time is not None
        else None,
    )


def _rate(value: Fraction | None) -> Fraction | None:
    if value is None or value.denominator == 0 or value <= 0:
        return None
    # FFmpeg's 90k/1k tick rates are time bases, not frame rates
    if value in (90000, 1000) or value > 1000:
        return None
    return value


def _tag_rotation(tags: dict[str, str]) -> int:
    try:
        return int(float(tags.get("rotate", 0))) % 360 if "rotate" in tags else 0
    except ValueError:
        return 0
