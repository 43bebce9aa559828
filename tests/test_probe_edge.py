"""Media unlike the corpus, made at test time with the ffmpeg CLI: fragmented MP4 with
and without an index, DASH with sidx, high-bitrate MPEG-TS/PS, MXF, a large
moov-at-end MP4. Compared with ffprobe and with the rate they were made at."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.corpus_check import read_report
from tests.media import ffprobe_truth

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg CLI")

SRC = ["-f", "lavfi", "-i"]
CASES: dict[str, tuple[list[str], float]] = {
    # name: (ffmpeg arguments after the inputs, nominal fps)
    "frag_index.mp4": (["-t", "6", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
                        "-movflags", "frag_keyframe+empty_moov"], 25),
    "frag_no_index.mp4": (["-t", "6", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
                           "-movflags", "frag_keyframe+empty_moov+skip_trailer"], 25),
    "frag_audio.mp4": (["-t", "6", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
                        "-c:a", "aac", "-movflags", "frag_keyframe+empty_moov+default_base_moof"],
                       25),
    "dash_sidx.mp4": (["-t", "6", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
                       "-movflags", "+dash+global_sidx+frag_keyframe+empty_moov"], 25),
    "ts_hi_bitrate.ts": (["-t", "4", "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "12M",
                          "-c:a", "aac"], 25),
    "ps_mpeg2.mpg": (["-t", "4", "-c:v", "mpeg2video", "-b:v", "15M", "-f", "vob"], 25),
    "mxf_mpeg2.mxf": (["-t", "4", "-c:v", "mpeg2video", "-b:v", "10M", "-f", "mxf"], 25),
    "moov_end_long.mp4": (["-t", "30", "-c:v", "libx264", "-preset", "ultrafast", "-g", "250",
                           "-s", "320x180"], 25),
}  # fmt: skip


@pytest.fixture(scope="module")
def edge_media(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("edge")
    for name, (args, fps) in CASES.items():
        inputs = [*SRC, f"testsrc2=size=1280x720:rate={fps}"]
        if "-c:a" in args:
            inputs += [*SRC, "sine=sample_rate=48000"]
        cmd = ["ffmpeg", "-v", "error", "-y", *inputs, *args, str(root / name)]
        subprocess.run(cmd, check=True, timeout=120)
    return root


def test_edge_media_match_ffprobe(edge_media, run_prober, tmp_path):
    rep = tmp_path / "r.jsonl"
    proc = run_prober(edge_media, "-o", tmp_path / "spec.json", "--report", rep)
    assert proc.returncode == 0, proc.stderr
    report = read_report(rep)
    for name, (_, fps) in CASES.items():
        line = report[name]
        got = line["videoMetadata"]
        truth = ffprobe_truth(edge_media / name)
        tolerance = max(0.05, 1 / fps)
        assert abs(got["duration"] - truth["duration"]) <= tolerance, (name, got, truth)
        assert (got["width"], got["height"]) == (truth["display_width"], truth["display_height"])
        # the rate the file was made at; ffprobe's whole-file average of a fragmented
        # file can drift from it (24.48 for a 25 fps DASH file)
        assert abs(got["fps"] - fps) / fps <= 1e-3, (name, got["fps"])
        assert line["round_trips"] <= 4, (name, line["round_trips"])
        assert line["bytes_fetched"] < truth["file_size"] / 2, name
    assert json.loads((tmp_path / "spec.json").read_text())["videos"]
