"""Sample media generated at test time with PyAV (nothing binary is committed).

    manifest = make_sample_media(Path(".cache/media"))
    # {"mp4/h264_aac_faststart.mp4": {"expect": "video", "fps": 25.0, ...}, ...}
    truth = ffprobe_truth(Path(".cache/media/mp4/h264_aac_faststart.mp4"))
    # {"fps": 25.0, "duration": 2.0, "width": 320, ..., "mime_type_by_ext": "video/mp4"}

Generation is deterministic for a given PyAV/FFmpeg build (single-threaded encoders,
bit-exact muxing, seeded random bytes), takes well under a few seconds and every file is
small (< 300 KB). Results are cached: a second call with the same ``dest`` only checks
the files. The manifest is also written next to (not inside) ``dest`` as
``<dest>.manifest.json`` so that uploading ``dest`` as a tree uploads media only.

Manifest fields: ``expect`` (video | image | dicom | bad | skip -- what the prober should do
with the object when classifying by extension), and where relevant ``container``,
``codec``, ``fps``, ``width``, ``height``, ``display_width``, ``display_height``,
``duration`` (nominal), ``rotation``, ``moov`` (start | end), ``mime_type`` (expected
``videoMetadata.mime_type``), ``has_audio``, ``sniff`` (what content sniffing should find
for a file without a known extension), ``copy_of``.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import subprocess
from array import array
from fractions import Fraction
from pathlib import Path
from typing import Any

__all__ = [
    "MEDIA_VERSION",
    "MIME_BY_EXT",
    "MIME_BY_FORMAT",
    "TRICKY_KEYS",
    "ffprobe",
    "ffprobe_label",
    "ffprobe_truth",
    "make_sample_media",
    "manifest_path",
]

MEDIA_VERSION = 1  # bump when the generated set changes

# copies of a good MP4 under keys that need URL-encoding
TRICKY_KEYS = (
    "tricky names/Café clip+1 (copy).mp4",
    "tricky names/hash#tag 100% done?.mp4",
    "tricky names/a b/c d.mp4",
    "tricky names/no_extension",
)

# --- same tables as /work/shared/corpus/truth.py ------------------------------------------
IMAGE_FORMATS = {
    "image2", "gif", "apng", "webp_pipe", "png_pipe", "jpeg_pipe", "bmp_pipe", "tiff_pipe",
    "gif_pipe", "webp", "jpegls_pipe", "j2k_pipe", "pam_pipe", "pgm_pipe", "ppm_pipe",
    "qoi_pipe", "svg_pipe", "dpx_pipe", "exr_pipe",
}  # fmt: skip
IMAGE_CODECS = {"png", "bmp", "tiff", "webp", "gif", "apng"}
MIME_BY_EXT = {
    "mp4": "video/mp4", "m4v": "video/mp4", "mov": "video/quicktime", "mkv": "video/x-matroska",
    "webm": "video/webm", "avi": "video/x-msvideo", "ts": "video/mp2t", "m2ts": "video/mp2t",
    "mpg": "video/mpeg", "mpeg": "video/mpeg", "flv": "video/x-flv", "3gp": "video/3gpp",
    "ogv": "video/ogg", "wmv": "video/x-ms-wmv", "m4a": "audio/mp4", "mp3": "audio/mpeg",
    "jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp",
    "gif": "image/gif", "tif": "image/tiff", "tiff": "image/tiff", "bmp": "image/bmp",
    "dcm": "application/dicom",
}  # fmt: skip
MIME_BY_FORMAT = {
    "mov,mp4,m4a,3gp,3g2,mj2": "video/mp4", "matroska,webm": "video/x-matroska",
    "avi": "video/x-msvideo", "mpegts": "video/mp2t", "mpeg": "video/mpeg", "flv": "video/x-flv",
    "ogg": "video/ogg", "asf": "video/x-ms-asf", "mp3": "audio/mpeg", "gif": "image/gif",
    "apng": "image/apng", "image2": "image/jpeg", "jpeg_pipe": "image/jpeg",
    "png_pipe": "image/png", "webp_pipe": "image/webp", "tiff_pipe": "image/tiff",
    "bmp_pipe": "image/bmp",
}  # fmt: skip


# ------------------------------------------------------------------------------ ffprobe
def ffprobe(path: str | os.PathLike[str]) -> tuple[int, dict[str, Any], str]:
    """``ffprobe -v error -print_format json -show_format -show_streams`` on a file or URL."""
    exe = shutil.which("ffprobe")
    if exe is None:
        raise RuntimeError("ffprobe not found (apt-get install -y ffmpeg)")
    p = subprocess.run(
        [exe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    )
    try:
        data = json.loads(p.stdout or "{}")
    except ValueError:
        data = {}
    return p.returncode, data, p.stderr.strip()


def _fnum(x: Any) -> float | None:
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def _ratio(s: Any) -> float | None:
    try:
        n, d = str(s).split("/")
        return None if int(d) == 0 else float(Fraction(int(n), int(d)))
    except ValueError:
        return None


def _rotation_of(st: dict[str, Any]) -> tuple[int, str | None]:
    for sd in st.get("side_data_list", []) or []:
        if "rotation" in sd:
            return round(float(sd["rotation"])), "displaymatrix"
    tag = (st.get("tags") or {}).get("rotate")
    if tag is not None:
        return round(float(tag)), "tags.rotate"
    return 0, None


def ffprobe_label(path: str | os.PathLike[str], rel: str | None = None) -> dict[str, Any]:
    """The full record /work/shared/corpus/truth.py writes for one file (same logic).

    ``rel`` is the object key used for the ``bad/`` folder rule and the extension;
    it defaults to the file name.
    """
    path = Path(path)
    rel = rel if rel is not None else path.name
    size = path.stat().st_size
    rec: dict[str, Any] = {"file_size": size}
    is_dicom = False
    if size >= 132:
        with open(path, "rb") as f:
            f.seek(128)
            is_dicom = f.read(4) == b"DICM"
    rc, data, err = ffprobe(path)
    fmt = data.get("format") or {}
    streams = data.get("streams") or []
    vids = [
        s
        for s in streams
        if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
    ]
    auds = [s for s in streams if s.get("codec_type") == "audio"]
    ok = rc == 0 and bool(fmt) and bool(vids or auds)
    rec["ffprobe_ok"] = ok
    if not ok:
        rec["ffprobe_error"] = err or f"exit {rc}, no audio/video stream"
    rec["format_name"] = fmt.get("format_name")
    rec["format_duration"] = _fnum(fmt.get("duration"))
    rec["bit_rate"] = int(fmt["bit_rate"]) if str(fmt.get("bit_rate", "")).isdigit() else None
    rec["nb_streams"] = fmt.get("nb_streams")
    rec["has_video"] = bool(vids)
    rec["has_audio"] = bool(auds)
    if auds:
        a = auds[0]
        rec["audio"] = {
            "codec_name": a.get("codec_name"),
            "sample_rate": a.get("sample_rate"),
            "channels": a.get("channels"),
            "duration": _fnum(a.get("duration")),
        }
    if vids:
        v = vids[0]
        w, h = v.get("width"), v.get("height")
        rot, rot_src = _rotation_of(v)
        swap = rot % 180 != 0
        rec["video"] = {
            "codec_name": v.get("codec_name"),
            "profile": v.get("profile"),
            "pix_fmt": v.get("pix_fmt"),
            "width": w,
            "height": h,
            "r_frame_rate": v.get("r_frame_rate"),
            "avg_frame_rate": v.get("avg_frame_rate"),
            "r_frame_rate_float": _ratio(v.get("r_frame_rate")),
            "avg_frame_rate_float": _ratio(v.get("avg_frame_rate")),
            "time_base": v.get("time_base"),
            "nb_frames": int(v["nb_frames"]) if str(v.get("nb_frames", "")).isdigit() else None,
            "duration": _fnum(v.get("duration")),
            "start_time": _fnum(v.get("start_time")),
            "rotation": rot,
            "rotation_source": rot_src,
            "display_width": h if swap else w,
            "display_height": w if swap else h,
        }
    parts = rel.split("/")
    if "bad" in parts[:-1]:
        expect = "bad"
    elif is_dicom:
        expect = "dicom"
    elif not ok:
        expect = "bad"
    elif vids and (
        rec["format_name"] in IMAGE_FORMATS
        or (
            len(vids) == 1
            and not auds
            and vids[0].get("codec_name") in IMAGE_CODECS
            and vids[0].get("nb_frames") in (None, "1")
        )
    ):
        expect = "image"
    elif not vids and auds:
        expect = "audio_only"
    else:
        expect = "video"
    rec["expect"] = expect
    base = rel.rsplit("/", 1)[-1]
    ext = base.rsplit(".", 1)[-1].lower() if "." in base else ""
    sug: dict[str, Any] = {
        "mime_type_by_ext": MIME_BY_EXT.get(ext),
        "mime_type_by_content": MIME_BY_FORMAT.get(rec["format_name"] or ""),
    }
    if (
        rec["format_name"] == "matroska,webm"
        and vids
        and vids[0].get("codec_name") in ("vp8", "vp9", "av1")
        and all(a.get("codec_name") in ("vorbis", "opus") for a in auds)
    ):
        sug["mime_type_by_content"] = "video/webm"
    if vids and expect == "video":
        vd = rec["video"]
        sug.update(
            {
                "fps": vd["avg_frame_rate_float"] or vd["r_frame_rate_float"],
                "duration": (
                    rec["format_duration"] if rec["format_duration"] is not None else vd["duration"]
                ),
                "width": vd["width"],
                "height": vd["height"],
                "display_width": vd["display_width"],
                "display_height": vd["display_height"],
                "file_size": size,
            }
        )
    rec["suggested"] = sug
    return rec


def ffprobe_truth(path: str | os.PathLike[str], rel: str | None = None) -> dict[str, Any]:
    """The ``suggested`` dict of expected.json for one file: ``mime_type_by_ext``,
    ``mime_type_by_content`` and, for videos, ``fps`` (avg_frame_rate, else r_frame_rate),
    ``duration`` (format, else stream), ``width``, ``height``, ``display_width``,
    ``display_height`` (swapped by a 90/270 rotation), ``file_size``."""
    return ffprobe_label(path, rel)["suggested"]


# ------------------------------------------------------------------------------ synthesis
def _encoder(*names: str) -> str | None:
    import av

    for n in names:
        try:
            av.codec.Codec(n, "w")
            return n
        except Exception:
            continue
    return None


_RAMP = bytes(range(256)) * 16


def _video_frame(width: int, height: int, i: int) -> Any:
    """A moving diagonal ramp (yuv420p), cheap to build without numpy."""
    import av

    frame = av.VideoFrame(width, height, "yuv420p")
    for idx, plane in enumerate(frame.planes):
        w, h, stride = plane.width, plane.height, plane.line_size
        pad = b"\x00" * (stride - w)
        shift = (4 * i) if idx == 0 else (2 * i + 64 * idx)
        rows = [_RAMP[(y + shift) % 256 : (y + shift) % 256 + w] + pad for y in range(h)]
        plane.update(b"".join(rows))
    return frame


def _sine_frames(rate: int, seconds: float, frame_size: int, fmt: str = "fltp") -> list[Any]:
    import av

    total = round(rate * seconds)
    out = []
    for start in range(0, total, frame_size):
        n = min(frame_size, total - start)
        samples = array(
            "f", (0.3 * math.sin(2 * math.pi * 440 * (start + k) / rate) for k in range(n))
        )
        fr = av.AudioFrame(format=fmt, layout="mono", samples=n)
        buf = samples.tobytes()
        fr.planes[0].update(buf + b"\x00" * (fr.planes[0].buffer_size - len(buf)))
        fr.sample_rate = rate
        fr.pts = start
        fr.time_base = Fraction(1, rate)
        out.append(fr)
    return out


def _encode(
    path: Path,
    fmt: str,
    vcodec: str,
    width: int,
    height: int,
    rate: Fraction,
    frames: int,
    *,
    acodec: str | None = None,
    audio_rate: int = 48000,
    options: dict[str, str] | None = None,
    vopts: dict[str, str] | None = None,
    pix_fmt: str = "yuv420p",
    rotation: int = 0,
) -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    opts = {"fflags": "+bitexact", **(options or {})}
    with av.open(str(path), "w", format=fmt, options=opts) as out:
        vs = out.add_stream(vcodec, rate=rate)
        vs.width, vs.height, vs.pix_fmt = width, height, pix_fmt
        vs.codec_context.flags |= av.codec.context.Flags.bitexact
        vs.thread_count = 1
        vs.codec_context.options = {**(vopts or {})}
        if vcodec == "libx264":
            vs.codec_context.options = {
                "preset": "ultrafast",
                "crf": "30",
                "threads": "1",
                "x264-params": "log-level=none",
                **(vopts or {}),
            }
            vs.codec_context.gop_size = 25
        if rotation:
            vs.set_display_rotation(rotation)
        astream = None
        if acodec:
            astream = out.add_stream(acodec, rate=audio_rate)
            astream.layout = "mono"
            astream.codec_context.flags |= av.codec.context.Flags.bitexact
            astream.thread_count = 1
        for i in range(frames):
            vf = _video_frame(width, height, i)
            vf.pts = i
            vf.time_base = Fraction(1) / rate
            for pkt in vs.encode(vf.reformat(format=pix_fmt) if pix_fmt != "yuv420p" else vf):
                out.mux(pkt)
        for pkt in vs.encode(None):
            out.mux(pkt)
        if astream is not None:
            fs = astream.codec_context.frame_size or 1024
            afmt = astream.codec_context.format.name
            seconds = frames / float(rate)
            for af in _sine_frames(audio_rate, seconds, fs, "fltp"):
                if afmt != "fltp":
                    af = _convert_audio(af, afmt, audio_rate)
                for pkt in astream.encode(af):
                    out.mux(pkt)
            for pkt in astream.encode(None):
                out.mux(pkt)


def _convert_audio(frame: Any, fmt: str, rate: int) -> Any:
    import av

    res = av.AudioResampler(format=fmt, layout="mono", rate=rate)
    frames = res.resample(frame)
    return frames[0]


def _image(path: Path, codec: str, width: int, height: int) -> None:
    """Encode one frame with an image codec and write the packet as the file."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    ctx = av.CodecContext.create(codec, "w")
    ctx.width, ctx.height = width, height
    ctx.pix_fmt = "yuvj420p" if codec == "mjpeg" else "rgb24"
    ctx.time_base = Fraction(1, 25)
    ctx.flags |= av.codec.context.Flags.bitexact
    frame = _video_frame(width, height, 3).reformat(format=ctx.pix_fmt)
    frame.pts = 0
    data = b"".join(bytes(p) for p in ctx.encode(frame))
    data += b"".join(bytes(p) for p in ctx.encode(None))
    path.write_bytes(data)


def manifest_path(dest: str | os.PathLike[str]) -> Path:
    """Where :func:`make_sample_media` caches its manifest (next to ``dest``)."""
    d = Path(dest)
    return d.parent / f"{d.name}.manifest.json"


def _load_cached(dest: Path) -> dict[str, dict[str, Any]] | None:
    mp = manifest_path(dest)
    try:
        doc = json.loads(mp.read_text())
    except (OSError, ValueError):
        return None
    if doc.get("version") != MEDIA_VERSION or not isinstance(doc.get("files"), dict):
        return None
    files: dict[str, dict[str, Any]] = doc["files"]
    for rel, info in files.items():
        p = dest / rel
        if not p.is_file() or p.stat().st_size != info.get("file_size"):
            return None
    return files


def make_sample_media(dest: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Generate (or reuse) the sample set under ``dest``; return the manifest
    ``{relative/posix/path: {"expect": ..., ...}}``."""
    dest = Path(dest)
    cached = _load_cached(dest)
    if cached is not None:
        return cached
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)

    h264 = _encoder("libx264", "h264")
    vcodec = h264 or "mpeg4"
    vname = "h264" if h264 else "mpeg4"
    aac = _encoder("aac")
    m: dict[str, dict[str, Any]] = {}

    def video(rel: str, **info: Any) -> None:
        info.setdefault("display_width", info.get("width"))
        info.setdefault("display_height", info.get("height"))
        m[rel] = {"expect": "video", **info}

    r25, r2997 = Fraction(25), Fraction(30000, 1001)

    # MP4, moov first (faststart) and moov last (PyAV's default)
    _encode(dest / "mp4/h264_aac_faststart.mp4", "mp4", vcodec, 320, 240, r25, 50,
            acodec=aac, options={"movflags": "faststart"})  # fmt: skip
    video("mp4/h264_aac_faststart.mp4", container="mp4", codec=vname, fps=25.0, width=320,
          height=240, duration=2.0, moov="start", has_audio=bool(aac), mime_type="video/mp4")  # fmt: skip
    _encode(dest / "mp4/h264_aac_moov_end.mp4", "mp4", vcodec, 320, 240, r25, 50, acodec=aac)
    video("mp4/h264_aac_moov_end.mp4", container="mp4", codec=vname, fps=25.0, width=320,
          height=240, duration=2.0, moov="end", has_audio=bool(aac), mime_type="video/mp4")  # fmt: skip
    _encode(dest / "mp4/h264_2997_640x360.mp4", "mp4", vcodec, 640, 360, r2997, 30,
            options={"movflags": "faststart"})  # fmt: skip
    video("mp4/h264_2997_640x360.mp4", container="mp4", codec=vname, fps=30000 / 1001,
          width=640, height=360, duration=30 * 1001 / 30000, moov="start", has_audio=False,
          mime_type="video/mp4")  # fmt: skip
    _encode(dest / "mp4/h264_rotated90.mp4", "mp4", vcodec, 320, 240, r25, 25,
            options={"movflags": "faststart"}, rotation=90)  # fmt: skip
    video("mp4/h264_rotated90.mp4", container="mp4", codec=vname, fps=25.0, width=320,
          height=240, display_width=240, display_height=320, rotation=90, duration=1.0,
          moov="start", has_audio=False, mime_type="video/mp4")  # fmt: skip

    # other containers
    _encode(dest / "mkv/h264_aac.mkv", "matroska", vcodec, 320, 240, r25, 25, acodec=aac)
    video("mkv/h264_aac.mkv", container="matroska", codec=vname, fps=25.0, width=320,
          height=240, duration=1.0, has_audio=bool(aac), mime_type="video/x-matroska")  # fmt: skip
    vpx = _encoder("libvpx-vp9", "libvpx")
    if vpx:
        opus = _encoder("libopus", "opus")
        _encode(dest / "webm/vp9_opus.webm", "webm", vpx, 320, 240, r25, 25, acodec=opus,
                vopts={"deadline": "realtime", "cpu-used": "8", "crf": "40", "b": "0"})  # fmt: skip
        video("webm/vp9_opus.webm", container="webm", codec="vp9" if "vp9" in vpx else "vp8",
              fps=25.0, width=320, height=240, duration=1.0, has_audio=bool(opus),
              mime_type="video/webm")  # fmt: skip
    _encode(dest / "ts/h264_aac.ts", "mpegts", vcodec, 320, 240, r25, 25, acodec=aac)
    video("ts/h264_aac.ts", container="mpegts", codec=vname, fps=25.0, width=320, height=240,
          duration=1.0, has_audio=bool(aac), mime_type="video/mp2t")  # fmt: skip
    _encode(dest / "avi/mpeg4.avi", "avi", "mpeg4", 320, 240, r25, 25,
            vopts={"qscale": "10"})  # fmt: skip
    video("avi/mpeg4.avi", container="avi", codec="mpeg4", fps=25.0, width=320, height=240,
          duration=1.0, has_audio=False, mime_type="video/x-msvideo")  # fmt: skip

    # images
    _image(dest / "images/frame.jpg", "mjpeg", 320, 240)
    m["images/frame.jpg"] = {"expect": "image", "width": 320, "height": 240,
                             "mime_type": "image/jpeg"}  # fmt: skip
    _image(dest / "images/frame.png", "png", 160, 120)
    m["images/frame.png"] = {"expect": "image", "width": 160, "height": 120,
                             "mime_type": "image/png"}  # fmt: skip

    # DICOM-like: preamble + DICM + a few padding bytes
    (dest / "dicom/series1").mkdir(parents=True)
    for n in (1, 2):
        (dest / f"dicom/series1/slice{n}.dcm").write_bytes(
            b"\x00" * 128 + b"DICM" + b"\x02\x00\x00\x00UL\x04\x00" + bytes(64)
        )
        m[f"dicom/series1/slice{n}.dcm"] = {"expect": "dicom", "mime_type": "application/dicom"}

    # bad inputs
    bad = dest / "bad"
    bad.mkdir()
    (bad / "zero_bytes.mp4").write_bytes(b"")
    (bad / "random_bytes.mp4").write_bytes(random.Random(1234).randbytes(32 * 1024))
    moov_end = (dest / "mp4/h264_aac_moov_end.mp4").read_bytes()
    (bad / "truncated_moov_end.mp4").write_bytes(moov_end[: int(len(moov_end) * 0.4)])
    (bad / "text.mov").write_bytes(b"This is not a video.\n" * 20)
    for name, why in (
        ("zero_bytes.mp4", "empty"),
        ("random_bytes.mp4", "random bytes"),
        ("truncated_moov_end.mp4", "first 40% of a moov-at-end MP4: no moov"),
        ("text.mov", "text"),
    ):
        m[f"bad/{name}"] = {"expect": "bad", "reason": why}

    (dest / "misc").mkdir()
    (dest / "misc/notes.txt").write_text("not media\n")
    m["misc/notes.txt"] = {"expect": "skip"}

    # tricky keys: copies of the faststart MP4
    src_rel = "mp4/h264_aac_faststart.mp4"
    for key in TRICKY_KEYS:
        p = dest / key
        p.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dest / src_rel, p)
        info = {k: v for k, v in m[src_rel].items()}
        info["copy_of"] = src_rel
        if "." not in key.rsplit("/", 1)[-1]:
            info = {"expect": "skip", "sniff": "video", "copy_of": src_rel,
                    "mime_type": "video/mp4"}  # fmt: skip
        m[key] = info

    for rel, info in m.items():
        info["file_size"] = (dest / rel).stat().st_size
    manifest_path(dest).write_text(
        json.dumps(
            {"version": MEDIA_VERSION, "files": m}, indent=1, ensure_ascii=False, sort_keys=True
        )
    )
    return m


if __name__ == "__main__":  # python tests/media.py [DEST]
    import sys
    import time

    t0 = time.perf_counter()
    target = Path(sys.argv[1] if len(sys.argv) > 1 else ".cache/media")
    man = make_sample_media(target)
    for rel, info in sorted(man.items()):
        print(f"{info['file_size']:>8}  {info['expect']:<6} {rel}")
    print(f"{len(man)} files in {time.perf_counter() - t0:.2f}s -> {target}")
