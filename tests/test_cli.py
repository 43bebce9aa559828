"""End to end through the command line, on media generated at test time (no corpus needed)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.corpus_check import read_report
from tests.media import ffprobe_truth


def _check_against_ffprobe(report: dict[str, dict[str, Any]], root: Path, manifest: dict) -> None:
    for rel, info in manifest.items():
        line = report[rel]
        if info["expect"] == "video":
            assert line["status"] == "ok", (rel, line["error"])
            truth = ffprobe_truth(root / rel)
            got = line["videoMetadata"]
            assert abs(got["fps"] - truth["fps"]) / truth["fps"] <= 1e-3, rel
            assert abs(got["duration"] - truth["duration"]) <= max(0.05, 1 / truth["fps"]), rel
            assert (got["width"], got["height"]) == (
                truth["display_width"],
                truth["display_height"],
            ), rel
            assert got["file_size"] == truth["file_size"] == (root / rel).stat().st_size
            assert got["mime_type"] == info["mime_type"], rel
        elif info["expect"] == "bad":
            assert line["status"] == "failed" and line["error"], rel
        elif info["expect"] == "image":
            assert (line["kind"], line["status"]) == ("image", "ok"), rel
        elif info["expect"] == "dicom":
            assert (line["kind"], line["status"]) == ("dicom", "ok"), rel
        elif info["expect"] == "skip":
            assert line["status"] == "skipped", rel


def test_local_folder_matches_ffprobe(sample_media, run_prober, tmp_path):
    root, manifest = sample_media
    rep = tmp_path / "r.jsonl"
    proc = run_prober(root, "-o", tmp_path / "spec.json", "--report", rep)
    assert proc.returncode == 3, proc.stderr
    _check_against_ffprobe(read_report(rep), root, manifest)


def test_mixed_s3_bucket(sample_media, moto_server, run_prober, tmp_path, unique_name):
    """Videos get videoMetadata, images go to images[], junk is skipped, corrupt files fail: exit 3."""
    root, manifest = sample_media
    bucket = unique_name("mixed")
    moto_server.create_bucket(bucket)
    moto_server.upload_tree(bucket, root)
    out, fail, rep = tmp_path / "spec.json", tmp_path / "f.csv", tmp_path / "r.jsonl"
    proc = run_prober(f"s3://{bucket}/", "-o", out, "--failures", fail, "--report", rep,
                      env=moto_server.env())  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    report = read_report(rep)
    _check_against_ffprobe(report, root, manifest)
    spec = json.loads(out.read_text())
    base = f"https://{bucket}.s3.us-east-1.amazonaws.com/"
    videos = {v["objectUrl"]: v for v in spec["videos"]}
    want_videos = {rel for rel, i in manifest.items() if i["expect"] == "video"}
    assert len(videos) == len(want_videos)
    assert all(url.startswith(base) for url in videos)
    assert {i["objectUrl"] for i in spec["images"]} == {
        base + rel for rel, i in manifest.items() if i["expect"] == "image"
    }
    with fail.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["objectUrl"] for r in rows} == {
        base + rel.replace(" ", "%20") for rel, i in manifest.items() if i["expect"] == "bad"
    }
    assert all(r["error"] for r in rows)
    reasons = {r["objectUrl"].rsplit("/", 1)[1]: r["error"] for r in rows}
    assert reasons["zero_bytes.mp4"].startswith("empty")
    assert reasons["truncated_moov_end.mp4"].startswith("truncated")
    assert reasons["text.mov"].startswith("not a media file")
    assert "1 skipped" in proc.stderr or "2 skipped" in proc.stderr  # notes.txt, no_extension


def test_tricky_keys_are_encoded(sample_media, moto_server, run_prober, tmp_path, unique_name):
    root, _ = sample_media
    bucket = unique_name("tricky")
    moto_server.create_bucket(bucket)
    moto_server.upload_tree(bucket, root / "tricky names", prefix="tricky names/")
    out = tmp_path / "spec.json"
    proc = run_prober(f"s3://{bucket}/tricky names/", "-o", out, "--url-style", "path",
                      env=moto_server.env())  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    urls = sorted(v["objectUrl"] for v in json.loads(out.read_text())["videos"])
    base = f"https://s3.us-east-1.amazonaws.com/{bucket}/tricky%20names/"
    assert urls == [
        base + "Caf%C3%A9%20clip%2B1%20%28copy%29.mp4",
        base + "a%20b/c%20d.mp4",
        base + "hash%23tag%20100%25%20done%3F.mp4",
    ]


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("virtual", "https://{b}.s3.eu-west-2.amazonaws.com/clips/a%2Bb.mp4"),
        ("path", "https://s3.eu-west-2.amazonaws.com/{b}/clips/a%2Bb.mp4"),
        ("s3", "s3://{b}/clips/a%2Bb.mp4"),
    ],
)
def test_url_styles_and_bucket_region(style, expected, sample_media, moto_server, run_prober,
                                      tmp_path, unique_name):  # fmt: skip
    root, _ = sample_media
    bucket = unique_name("styles")
    moto_server.create_bucket(bucket, region="eu-west-2")
    moto_server.put(bucket, "clips/a+b.mp4", (root / "mp4/h264_aac_faststart.mp4").read_bytes())
    moto_server.put(bucket, "other/skip.mp4", b"")
    out = tmp_path / "spec.json"
    proc = run_prober(f"s3://{bucket}/clips", "-o", out, "--url-style", style,
                      env=moto_server.env())  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    spec = json.loads(out.read_text())
    assert [v["objectUrl"] for v in spec["videos"]] == [expected.format(b=bucket)]
    assert spec["videos"][0]["title"] == "a+b.mp4"


def test_http_urls_from_stdin_and_status_failures(sample_media, http_store, run_prober, tmp_path):
    root, _ = sample_media
    http_store.add_tree(root)
    http_store.forced_status["mp4/h264_2997_640x360.mp4"] = 403
    http_store.forced_status["mkv/h264_aac.mkv"] = 404
    keys = ["mp4/h264_aac_faststart.mp4", "mp4/h264_2997_640x360.mp4", "mkv/h264_aac.mkv",
            "tricky names/hash#tag 100% done?.mp4"]  # fmt: skip
    urls = "".join(http_store.url_for(k) + "\n" for k in keys)
    fail = tmp_path / "f.csv"
    proc = run_prober("--urls", "-", "-o", tmp_path / "spec.json", "--failures", fail, input=urls)
    assert proc.returncode == 3, proc.stderr
    spec = json.loads((tmp_path / "spec.json").read_text())
    assert sorted(v["objectUrl"] for v in spec["videos"]) == sorted(
        http_store.url_for(k) for k in (keys[0], keys[3])
    )
    with fail.open(newline="") as fh:
        rows = {r["objectUrl"]: r["error"] for r in csv.DictReader(fh)}
    assert rows[http_store.url_for(keys[1])].startswith("HTTP 403")
    assert rows[http_store.url_for(keys[2])].startswith("HTTP 404")
    # 4xx are never retried
    assert http_store.stats(keys[1]).requests == 1
    assert http_store.stats(keys[2]).requests == 1


def test_throttling_is_retried_with_retry_after(sample_media, http_store, run_prober, tmp_path):
    root, manifest = sample_media
    http_store.add_tree(root)
    http_store.fail_ratio = 0.3
    http_store.retry_after = "0"
    videos = [rel for rel, i in manifest.items() if i["expect"] == "video"]
    urls = tmp_path / "urls.txt"
    urls.write_text("".join(http_store.url_for(k) + "\n" for k in videos))
    proc = run_prober("--urls", urls, "-o", tmp_path / "spec.json", "--retries", "8")
    assert proc.returncode == 0, proc.stderr
    spec = json.loads((tmp_path / "spec.json").read_text())
    assert len(spec["videos"]) == len(videos)
    assert http_store.totals().failures > 0


def test_default_output_is_stdout(sample_media, run_prober):
    root, _ = sample_media
    proc = run_prober(root / "mp4", "-q")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    spec = json.loads(proc.stdout)
    assert len(spec["videos"]) == 4 and spec["images"] == []


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ([], "no SOURCE"),
        (["--concurrency", "0", "x"], "--concurrency"),
        (["--bogus-flag", "x"], "unrecognized"),
        (["ftp://host/x"], "unsupported source scheme"),
        (["--format", "xml", "x"], "--format"),
        (["s3://b/", "--url-style", "weird"], "--url-style"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args, needle, run_prober, moto_server):
    proc = run_prober(*args, env=moto_server.env())
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


def test_fatal_errors_exit_1_and_keep_old_output(moto_server, run_prober, tmp_path):
    out = tmp_path / "spec.json"
    out.write_text("OLD")
    cases = [
        (["s3://no-such-bucket-here/"], moto_server.env(), "does not exist"),
        ([str(tmp_path / "missing-dir")], None, "no such file or directory"),
        (["s3://b/", "--endpoint-url", "http://127.0.0.1:9", "--retries", "0", "--timeout", "2"],
         {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_ENDPOINT_URL": None},
         "cannot reach"),
    ]  # fmt: skip
    for args, env, needle in cases:
        proc = run_prober(*args, "-o", out, env=env)
        assert proc.returncode == 1, (args, proc.stderr)
        assert needle in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert "Traceback" not in proc.stderr
        assert out.read_text() == "OLD"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.json"]  # no temp files left


@pytest.mark.parametrize("flag", ["-o", "--failures", "--report", "--state"])
def test_unwritable_outputs_are_usage_errors(flag, sample_media, run_prober, tmp_path):
    root, _ = sample_media
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    proc = run_prober(root / "mp4", flag, blocker / "sub" / "out")
    assert proc.returncode == 2, proc.stderr
    assert flag in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = run_prober(root / "mp4", flag, tmp_path)  # a directory
    assert proc.returncode == 2 and "is a directory" in proc.stderr


def test_debug_shows_the_traceback(moto_server, run_prober):
    proc = run_prober("s3://no-such-bucket-here/", "--debug", env=moto_server.env())
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr


def test_output_is_replaced_atomically(sample_media, run_prober, tmp_path):
    root, _ = sample_media
    out = tmp_path / "spec.json"
    out.write_text("OLD")
    proc = run_prober(root / "mp4", "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(out.read_text())["videos"]) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.json"]


def test_sigint_stops_cleanly_with_130(sample_media, http_store, tmp_path):
    root, manifest = sample_media
    http_store.add_tree(root)
    http_store.latency = 1.0
    videos = [rel for rel, i in manifest.items() if i["expect"] == "video"]
    urls = tmp_path / "urls.txt"
    urls.write_text("".join(http_store.url_for(k) + "\n" for k in videos * 20))
    out = tmp_path / "spec.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "prober", "--urls", str(urls), "-o", str(out), "-c", "4"],
        stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    time.sleep(2.5)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "PARTIAL" in stderr
    spec = json.loads(out.read_text())  # what was done, valid JSON
    assert len(spec["videos"]) < len(videos) * 20


def test_sniff_probes_unknown_extensions(sample_media, run_prober, tmp_path):
    root, _ = sample_media
    rep = tmp_path / "r.jsonl"
    proc = run_prober(root / "tricky names", root / "misc", "--sniff", "-o", tmp_path / "s.json",
                      "--report", rep)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = read_report(rep)
    assert report["no_extension"]["status"] == "ok"
    assert report["no_extension"]["videoMetadata"]["mime_type"] == "video/mp4"
    assert report["notes.txt"]["status"] == "skipped"


def test_include_exclude(sample_media, run_prober):
    root, _ = sample_media
    proc = run_prober(
        root, "--include", "*.mp4", "--exclude", "bad/*", "--exclude", "tricky*", "-q"
    )
    assert proc.returncode == 0, proc.stderr
    spec = json.loads(proc.stdout)
    assert sorted(v["title"] for v in spec["videos"]) == [
        "h264_2997_640x360.mp4", "h264_aac_faststart.mp4", "h264_aac_moov_end.mp4",
        "h264_rotated90.mp4",
    ]  # fmt: skip
    assert spec["images"] == []


def test_environment_is_not_leaked(moto_server, run_prober):
    env = {**moto_server.env(), "AWS_SECRET_ACCESS_KEY": "SUPERSECRETVALUE123"}
    proc = run_prober("s3://no-such-bucket-here/", env=env)
    assert "SUPERSECRETVALUE123" not in proc.stderr + proc.stdout
    assert os.environ.get("AWS_SECRET_ACCESS_KEY") != "SUPERSECRETVALUE123"


def test_a_store_that_ignores_range_is_never_downloaded_whole(sample_media, tmp_path, monkeypatch):
    """A server answering 200 to ranged GETs: the head is taken from the start of the
    body, but reaching a moov at the end would be a download, so that object fails."""
    import asyncio
    import http.server
    import socketserver
    import threading

    from prober.errors import ObjectError
    from prober.sources import SourceContext, wire
    from prober.sources.http import HttpSource, entry_for_url

    root, _ = sample_media
    data = (root / "mp4/h264_aac_moov_end.mp4").read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args: object) -> None:
            return None

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(wire, "NO_RANGE_LIMIT", 40_000)  # the sample is ~59 KB
    url = f"http://127.0.0.1:{server.server_address[1]}/v.mp4"

    async def go() -> None:
        ctx = SourceContext()
        source = HttpSource(url, ctx)
        try:
            entry = entry_for_url(url)
            assert await source.read(entry, 0, 1000) == data[:1000]
            assert entry.size == len(data)
            with pytest.raises(ObjectError, match="ignores Range requests"):
                await source.read(entry, len(data) - 2000, len(data))
        finally:
            await ctx.close()

    try:
        asyncio.run(go())
    finally:
        server.shutdown()
