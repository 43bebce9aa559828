"""Faults on the real protocols: throttling, resets, 4xx, reruns with --state, kills, secrets."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.corpus_check import read_report
from tests.media import ffprobe_truth


def _videos(manifest: dict) -> list[str]:
    return sorted(rel for rel, i in manifest.items() if i["expect"] == "video")


def _url_file(store, keys, path: Path) -> Path:
    path.write_text("".join(store.url_for(k) + "\n" for k in keys))
    return path


def test_throttling_resets_and_4xx(sample_media, http_store, run_prober, tmp_path):
    """30% 503 + Retry-After: 1, 5% of connections reset on first attempt, forced 403/404."""
    root, manifest = sample_media
    http_store.add_tree(root)
    for i, rel in enumerate(_videos(manifest)):  # many distinct keys over the sample videos
        for n in range(6):
            http_store.put_file(f"many/{n}/{i}_{Path(rel).name}", root / rel)
    good = [k for k in http_store.keys() if k.startswith("many/")]
    http_store.put_file("deny/forbidden.mp4", root / "mp4/h264_aac_faststart.mp4")
    http_store.put_file("gone/deleted.mp4", root / "mp4/h264_aac_faststart.mp4")
    http_store.forced_status.update({"deny/forbidden.mp4": 403, "gone/deleted.mp4": 404})
    http_store.fail_ratio, http_store.retry_after, http_store.reset_ratio = 0.3, "1", 0.05
    urls = _url_file(http_store, [*good, "deny/forbidden.mp4", "gone/deleted.mp4"],
                     tmp_path / "urls.txt")  # fmt: skip
    out, fail, rep = tmp_path / "spec.json", tmp_path / "f.csv", tmp_path / "r.jsonl"
    proc = run_prober("--urls", urls, "-o", out, "--failures", fail, "--report", rep,
                      "--retries", "10", "-c", "32")  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    totals = http_store.totals()
    assert totals.failures > 20 and totals.resets > 0  # the faults really happened
    spec = json.loads(out.read_text())
    assert sorted(v["objectUrl"] for v in spec["videos"]) == sorted(
        http_store.url_for(k) for k in good
    )
    report = read_report(rep)
    for key in good:
        got = report[key]["videoMetadata"]
        truth = ffprobe_truth(
            root / next(r for r in _videos(manifest) if key.endswith(Path(r).name))
        )
        assert (got["width"], got["height"]) == (truth["display_width"], truth["display_height"])
        assert abs(got["fps"] - truth["fps"]) / truth["fps"] < 1e-3
    with fail.open(newline="") as fh:
        rows = {r["objectUrl"]: r["error"] for r in csv.DictReader(fh)}
    assert rows == {
        http_store.url_for("deny/forbidden.mp4"): "HTTP 403 Forbidden",
        http_store.url_for("gone/deleted.mp4"): "HTTP 404 Not Found",
    }
    # 4xx are never retried
    assert http_store.stats("deny/forbidden.mp4").gets == 1
    assert http_store.stats("gone/deleted.mp4").gets == 1


def test_rerun_with_state_fetches_nothing_unchanged(sample_media, http_store, run_prober, tmp_path):
    root, manifest = sample_media
    videos = _videos(manifest)
    http_store.add_tree(root)
    urls = _url_file(http_store, videos, tmp_path / "urls.txt")
    state, out1, out2 = tmp_path / "state.sqlite", tmp_path / "1.json", tmp_path / "2.json"
    proc = run_prober("--urls", urls, "-o", out1, "--state", state)
    assert proc.returncode == 0, proc.stderr
    first = json.loads(out1.read_text())

    http_store.reset_counters()
    proc = run_prober("--urls", urls, "-o", out2, "--state", state)
    assert proc.returncode == 0, proc.stderr
    assert http_store.totals().gets == 0  # one HEAD per URL, no GET
    assert http_store.totals().heads == len(videos)
    assert json.loads(out2.read_text()) == first
    assert f"{len(videos)} unchanged" in proc.stderr

    # one object changes: only it is fetched again, and its entry follows the new bytes
    changed = "mp4/h264_aac_faststart.mp4"
    http_store.put(changed, (root / "mp4/h264_2997_640x360.mp4").read_bytes())
    http_store.reset_counters()
    proc = run_prober("--urls", urls, "-o", out2, "--state", state)
    assert proc.returncode == 0, proc.stderr
    fetched = {k for k, s in http_store.all_stats().items() if s.gets}
    assert fetched == {changed}
    third = {v["objectUrl"]: v for v in json.loads(out2.read_text())["videos"]}
    assert third[http_store.url_for(changed)]["videoMetadata"]["width"] == 640


def test_rerun_with_state_over_s3_listing(
    sample_media, moto_server, run_prober, tmp_path, unique_name
):
    """S3 listings carry ETag and size: an unchanged rerun needs no request per object."""
    root, _ = sample_media
    bucket = unique_name("state")
    moto_server.create_bucket(bucket)
    moto_server.upload_tree(bucket, root / "mp4")
    state = tmp_path / "s.sqlite"
    proc = run_prober(f"s3://{bucket}/", "--state", state, "--report", tmp_path / "1.jsonl",
                      env=moto_server.env())  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    proc = run_prober(f"s3://{bucket}/", "--state", state, "--report", tmp_path / "2.jsonl",
                      env=moto_server.env())  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    second = read_report(tmp_path / "2.jsonl")
    assert all(line["cached"] and line["requests"] == 0 for line in second.values())
    first = read_report(tmp_path / "1.jsonl")
    assert {k: v["videoMetadata"] for k, v in first.items()} == {
        k: v["videoMetadata"] for k, v in second.items()
    }


def test_sigterm_flushes_state_and_resume_does_not_repeat(
    sample_media, http_store, tmp_path, run_prober
):
    root, manifest = sample_media
    http_store.add_tree(root)
    keys = []
    for n in range(40):
        for rel in _videos(manifest):
            key = f"r/{n}/{rel}"
            http_store.put_file(key, root / rel)
            keys.append(key)
    http_store.latency = 0.2
    urls = _url_file(http_store, keys, tmp_path / "urls.txt")
    state, out = tmp_path / "state.sqlite", tmp_path / "spec.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "prober", "--urls", str(urls), "-o", str(out), "--state", str(state),
         "-c", "8"], stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    time.sleep(3)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr and "PARTIAL" in stderr
    with sqlite3.connect(state) as db:
        done = {row[0] for row in db.execute("SELECT url FROM results")}
    assert 0 < len(done) < len(keys)
    partial = json.loads(out.read_text())
    assert {v["objectUrl"] for v in partial["videos"]} <= done

    http_store.latency = 0.0
    http_store.reset_counters()
    proc2 = run_prober("--urls", urls, "-o", out, "--state", state)
    assert proc2.returncode == 0, proc2.stderr
    refetched = {http_store.url_for(k) for k, s in http_store.all_stats().items() if s.gets}
    assert not refetched & done
    assert len(json.loads(out.read_text())["videos"]) == len(keys)


def test_kill_9_never_leaves_a_truncated_spec(sample_media, tmp_path):
    root, manifest = sample_media
    tree = tmp_path / "tree"
    for n in range(150):
        for rel in _videos(manifest):
            dest = tree / str(n) / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.link(root / rel, dest)
    out = tmp_path / "out" / "spec.json"
    out.parent.mkdir()
    out.write_text('{"old": true}\n')
    cmd = [sys.executable, "-m", "prober", str(tree), "-o", str(out), "-q"]
    for delay in (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0):
        proc = subprocess.Popen(cmd, cwd=tmp_path)
        time.sleep(delay)
        proc.kill()
        proc.wait()
        spec = json.loads(out.read_text())  # always complete JSON: old or new
        assert spec == {"old": True} or len(spec["videos"]) == 150 * len(_videos(manifest))
    subprocess.run(cmd, cwd=tmp_path, check=True, timeout=120)
    assert len(json.loads(out.read_text())["videos"]) == 150 * len(_videos(manifest))


def test_adaptive_concurrency_backs_off(sample_media, http_store, run_prober, tmp_path):
    root, manifest = sample_media
    for n in range(30):
        for rel in _videos(manifest):
            http_store.put_file(f"a/{n}/{rel}", root / rel)
    http_store.fail_ratio, http_store.retry_after = 0.5, "0"
    urls = _url_file(http_store, http_store.keys(), tmp_path / "urls.txt")
    proc = run_prober("--urls", urls, "-o", tmp_path / "s.json", "-c", "64", "--retries", "12",
                      "--debug")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "concurrency lowered" in proc.stderr


def test_no_secret_reaches_any_output(sample_media, moto_server, azurite, http_store, run_prober,
                                      tmp_path, unique_name):  # fmt: skip
    from datetime import UTC, datetime, timedelta

    from azure.storage.blob import BlobSasPermissions, generate_blob_sas

    root, _ = sample_media
    data = (root / "mp4/h264_aac_faststart.mp4").read_bytes()
    bucket = unique_name("sec")
    moto_server.create_bucket(bucket)
    moto_server.put(bucket, "clip.mp4", data)
    presigned = moto_server.client.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "clip.mp4"}, ExpiresIn=600
    )
    container = unique_name("sec")
    azurite.create_container(container)
    azurite.put(container, "clip.mp4", data)
    azurite.put(container, "missing-later.mp4", data)
    account, key = (
        "devstoreaccount1",
        azurite.connection_string.split("AccountKey=")[1].split(";")[0],
    )
    sas = generate_blob_sas(account, container, "clip.mp4", account_key=key,
                            permission=BlobSasPermissions(read=True),
                            expiry=datetime.now(UTC) + timedelta(hours=1))  # fmt: skip
    blob_url = f"{azurite.endpoint}/{account}/{container}/clip.mp4?{sas}"
    bad_sas_url = f"{azurite.endpoint}/{account}/{container}/nope.mp4?{sas}"
    urls = tmp_path / "urls.txt"
    urls.write_text(f"{presigned}\n{blob_url}\n{bad_sas_url}\n")
    outs = [tmp_path / n for n in ("spec.json", "f.csv", "r.jsonl", "state.sqlite")]
    proc = run_prober("--urls", urls, "-o", outs[0], "--failures", outs[1], "--report", outs[2],
                      "--state", outs[3], "--debug")  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    spec = json.loads(outs[0].read_text())
    assert len(spec["videos"]) == 2
    secrets = ["X-Amz-Signature", "Signature=", "sig=", "AWSAccessKeyId", key[:20],
               sas.split("sig=")[1][:16]]  # fmt: skip
    texts = [p.read_bytes().decode("latin-1") for p in outs] + [proc.stdout, proc.stderr]
    for text in texts:
        for secret in secrets:
            assert secret not in text, secret
