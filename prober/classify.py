"""Object kinds by extension (case-insensitive)."""

from __future__ import annotations

from prober.model import Kind

VIDEO_EXTS = frozenset(
    "mp4 m4v mov qt mkv webm avi ts m2ts mts m2t mpg mpeg mpe m2p vob flv f4v 3gp 3g2 ogv ogm "
    "wmv asf mxf divx dv mjpeg mj2 y4m".split()
)
IMAGE_EXTS = frozenset("jpg jpeg png webp gif tif tiff bmp heic heif avif jp2 j2k jfif".split())
DICOM_EXTS = frozenset({"dcm", "dicom"})


def extension(key: str) -> str:
    name = key.rstrip("/").rsplit("/", 1)[-1]
    stem, dot, ext = name.rpartition(".")
    return ext.strip().lower() if dot and stem.strip() else ""


def classify(key: str) -> Kind:
    ext = extension(key)
    if ext in VIDEO_EXTS:
        return Kind.VIDEO
    if ext in IMAGE_EXTS:
        return Kind.IMAGE
    if ext in DICOM_EXTS:
        return Kind.DICOM
    return Kind.OTHER
