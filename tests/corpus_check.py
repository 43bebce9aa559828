"""Compare prober's report with ffprobe ground truth (expected.json's shape)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FAMILIES = [
    {"video/mp4", "video/quicktime", "video/3gpp", "video/3gpp2", "audio/mp4"},
    {"video/webm", "video/x-matroska"},
    {"video/x-ms-wmv", "video/x-ms-asf"},
]


def expected_mime(suggested: dict[str, Any]) -> str | None:
    """The extension's type when the content is of that family, else the content's."""
    by_ext, by_content = suggested.get("mime_type_by_ext"), suggested.get("mime_type_by_content")
    if by_ext and by_content:
        for fam in FAMILIES:
            if by_ext in fam and by_content in fam:
                return by_ext
    return by_content if by_content else by_ext


def check_video(got: dict[str, Any], truth: dict[str, Any]) -> list[str]:
    """Problems with one videoMetadata against expected.json's 'suggested' values."""
    sug = truth["suggested"]
    problems = []
    fps = sug["fps"]
    if abs(got["fps"] - fps) / fps > 1e-3:
        problems.append(f"fps {got['fps']} != {fps}")
    tol = max(0.05, 1.0 / fps)
    if abs(got["duration"] - sug["duration"]) > tol:
        problems.append(f"duration {got['duration']} != {sug['duration']} (±{tol:.3f})")
    if (got["width"], got["height"]) != (sug["display_width"], sug["display_height"]):
        problems.append(
            f"size {got['width']}x{got['height']} != {sug['display_width']}x{sug['display_height']}"
        )
    if got["file_size"] != truth["file_size"]:
        problems.append(f"file_size {got['file_size']} != {truth['file_size']}")
    mime = expected_mime(sug)
    if got["mime_type"] != mime:
        problems.append(f"mime {got['mime_type']} != {mime}")
    return problems


def read_report(path: Path) -> dict[str, dict[str, Any]]:
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return {line["key"]: line for line in lines}


def check_corpus_report(
    report: dict[str, dict[str, Any]], expected: dict[str, dict[str, Any]], sniffed: bool = False
) -> list[str]:
    """Every corpus file classified and probed as its ground truth says."""
    problems: list[str] = []
    for key, truth in expected.items():
        line = report.get(key)
        name = key.rsplit("/", 1)[-1]
        has_ext = "." in name.strip(". ")
        if line is None:
            problems.append(f"{key}: missing from the report")
            continue
        expect = truth["expect"]
        if expect == "video":
            if not has_ext and not sniffed:
                if line["status"] != "skipped":
                    problems.append(f"{key}: no extension, expected skipped, got {line['status']}")
                continue
            if line["status"] != "ok" or "videoMetadata" not in line:
                problems.append(f"{key}: expected ok, got {line['status']} {line.get('error')}")
                continue
            problems += [f"{key}: {p}" for p in check_video(line["videoMetadata"], truth)]
            if truth["file_size"] > 1_000_000 and line["bytes_fetched"] >= truth["file_size"] / 2:
                problems.append(f"{key}: fetched {line['bytes_fetched']} of {truth['file_size']}")
        elif expect == "bad":
            if line["status"] != "failed" or not line.get("error"):
                problems.append(f"{key}: bad file not in failures ({line['status']})")
        elif expect == "image":
            if line["kind"] != "image" or line["status"] != "ok":
                problems.append(f"{key}: expected image, got {line['kind']} {line['status']}")
        elif expect == "dicom":
            if line["kind"] != "dicom" or line["status"] != "ok":
                problems.append(f"{key}: expected dicom, got {line['kind']} {line['status']}")
        elif expect == "audio_only":
            if line["status"] == "ok":
                problems.append(f"{key}: audio-only file reported as ok")
    return problems
