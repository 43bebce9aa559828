"""MIME types from what the container says about itself, not from the extension alone.

ISO-BMFF files are told apart by their ``ftyp`` brand (``qt  `` is QuickTime, ``3gp*``
is 3GPP), Matroska by its EBML DocType; for the rest FFmpeg's demuxer name decides.
The extension only breaks a tie FFmpeg cannot (ASF: ``.wmv`` vs ``.asf``).
"""

from __future__ import annotations

FORMAT_MIME: dict[str, str] = {
    "avi": "video/x-msvideo",
    "mpegts": "video/mp2t",
    "mpeg": "video/mpeg",
    "mpegvideo": "video/mpeg",
    "flv": "video/x-flv",
    "ogg": "video/ogg",
    "asf": "video/x-ms-asf",
    "mxf": "application/mxf",
    "h264": "video/h264",
    "hevc": "video/h265",
    "ivf": "video/x-ivf",
    "m4v": "video/mp4",
    "dv": "video/dv",
    "nut": "video/x-nut",
    "rm": "application/vnd.rn-realmedia",
    "yuv4mpegpipe": "video/x-yuv4mpeg",
}


def bmff_mime(brand: bytes | None, compatible: tuple[bytes, ...] = ()) -> str:
    if brand is None:
        return "video/quicktime"  # old QuickTime files start with moov/mdat/wide, no ftyp
    if brand == b"qt  ":
        return "video/quicktime"
    if brand.startswith(b"3g2"):
        return "video/3gpp2"
    if brand.startswith(b"3g"):
        return "video/3gpp"
    if brand in (b"M4A ", b"M4B "):
        return "audio/mp4"
    if brand == b"M4V ":
        return "video/mp4"
    if brand in (b"mjp2", b"mj2s"):
        return "video/mj2"
    return "video/mp4"


def matroska_mime(doctype: str | None) -> str:
    return "video/webm" if doctype == "webm" else "video/x-matroska"


def container_mime(format_name: str, ext: str) -> str:
    first = format_name.split(",")[0]
    if first == "asf":
        return "video/x-ms-wmv" if ext == "wmv" else "video/x-ms-asf"
    if first == "mpegts" or format_name == "mpegts":
        return "video/mp2t"
    return FORMAT_MIME.get(first, f"video/x-{first}")
