"""Every file of ../shared/corpus through each backend, checked against ffprobe's ground truth.

Skipped when the corpus is not beside the clone (a user's clone); CI has it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.corpus_check import check_corpus_report, read_report

pytestmark = pytest.mark.corpus


def _spec_checks(spec: dict[str, Any], report: dict[str, dict[str, Any]]) -> None:
    ok_videos = {
        r["objectUrl"] for r in report.values() if r["kind"] == "video" and r["status"] == "ok"
    }
    assert {v["objectUrl"] for v in spec["videos"]} == ok_videos
    failed = {r["objectUrl"] for r in report.values() if r["status"] == "failed"}
    assert not failed & {v["objectUrl"] for v in spec["videos"]}
    images = {r["objectUrl"] for r in report.values() if r["kind"] == "image"}
    assert {i["objectUrl"] for i in spec["images"]} == images
    for video in spec["videos"]:
        assert set(video["videoMetadata"]) == {
            "fps",
            "duration",
            "width",
            "height",
            "file_size",
            "mime_type",
        }


def _failures(path: Path) -> dict[str, str]:
    import csv

    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["objectUrl", "error"]
    return {url: err for url, err in rows[1:]}


def _corpus_over_bucket(store, source, corpus_dir, corpus_expected, run_prober, tmp_path):
    """Upload the whole corpus to a new bucket "corpus" of an emulator, run prober over
    ``source`` (that bucket); check every file against its ground truth, the spec
    against the report, and bad files against the failures. Returns the spec."""
    store.create_bucket("corpus")
    store.upload_tree("corpus", corpus_dir, prefix="")
    out, rep, fail = tmp_path / "spec.json", tmp_path / "r.jsonl", tmp_path / "f.csv"
    proc = run_prober(source, "-o", out, "--report", rep, "--failures", fail,
                      "--concurrency", "256", env=store.env())  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    report = read_report(rep)
    report = {k: v for k, v in report.items() if k in corpus_expected}
    assert check_corpus_report(report, corpus_expected) == []
    spec = json.loads(out.read_text())
    _spec_checks(spec, report)
    failures = _failures(fail)
    bad = [k for k, t in corpus_expected.items() if t["expect"] == "bad"]
    assert {report[k]["objectUrl"] for k in bad} <= set(failures)
    return spec


def test_corpus_over_s3(moto_server, corpus_dir, corpus_expected, run_prober, tmp_path):
    spec = _corpus_over_bucket(moto_server, "s3://corpus/", corpus_dir, corpus_expected,
                               run_prober, tmp_path)  # fmt: skip
    # objectUrls take the amazonaws.com form whatever endpoint prober read from
    assert all(
        v["objectUrl"].startswith("https://corpus.s3.us-east-1.amazonaws.com/")
        for v in spec["videos"]
    )


def test_corpus_over_gcs(gcs_server, corpus_dir, corpus_expected, run_prober, tmp_path):
    spec = _corpus_over_bucket(gcs_server, "gs://corpus/", corpus_dir, corpus_expected,
                               run_prober, tmp_path)  # fmt: skip
    # gs://bucket/key (key percent-encoded) whatever endpoint prober read from
    assert all(v["objectUrl"].startswith("gs://corpus/") for v in spec["videos"])
    assert " " not in "".join(v["objectUrl"] for v in spec["videos"])


def test_corpus_over_azure(azurite, corpus_dir, corpus_expected, run_prober, tmp_path):
    spec = _corpus_over_bucket(azurite, "az://corpus/", corpus_dir, corpus_expected,
                               run_prober, tmp_path)  # fmt: skip
    # under an emulator, the objectUrl is the emulator's own account URL
    assert all(
        v["objectUrl"].startswith(f"{azurite.blob_endpoint}/corpus/") for v in spec["videos"]
    )
    assert " " not in "".join(v["objectUrl"] for v in spec["videos"])


def test_corpus_over_http(http_store, corpus_dir, corpus_expected, run_prober, tmp_path):
    http_store.add_tree(corpus_dir)
    urls = tmp_path / "urls.txt"
    urls.write_text("".join(http_store.url_for(k) + "\n" for k in sorted(corpus_expected)))
    rep = tmp_path / "r.jsonl"
    proc = run_prober("--urls", urls, "-o", tmp_path / "spec.json", "--report", rep, "--sniff")
    assert proc.returncode == 3, proc.stderr
    report = read_report(rep)
    assert check_corpus_report(report, corpus_expected, sniffed=True) == []
    spec = json.loads((tmp_path / "spec.json").read_text())
    _spec_checks(spec, report)
    # objectUrls are the URLs as given
    assert {v["objectUrl"] for v in spec["videos"]} <= {
        http_store.url_for(k) for k in corpus_expected
    }


def test_corpus_local(corpus_dir, corpus_expected, run_prober, tmp_path):
    rep = tmp_path / "r.jsonl"
    proc = run_prober(corpus_dir, "-o", tmp_path / "spec.json", "--report", rep)
    assert proc.returncode == 3, proc.stderr
    report = read_report(rep)
    assert check_corpus_report(report, corpus_expected) == []
    spec = json.loads((tmp_path / "spec.json").read_text())
    _spec_checks(spec, report)
    assert all(v["objectUrl"].startswith("file:///") for v in spec["videos"])
    assert " " not in "".join(v["objectUrl"] for v in spec["videos"])


def test_no_full_download_of_large_videos(
    http_store, corpus_dir, corpus_expected, run_prober, tmp_path
):
    big = [
        k
        for k, t in corpus_expected.items()
        if t["expect"] == "video" and t["file_size"] > 1_000_000
    ]
    assert big, "the corpus has videos over 1 MB"
    http_store.add_tree(corpus_dir)
    urls = tmp_path / "urls.txt"
    urls.write_text("".join(http_store.url_for(k) + "\n" for k in big))
    proc = run_prober("--urls", urls, "-o", tmp_path / "spec.json")
    assert proc.returncode == 0, proc.stderr
    for key in big:
        sent = http_store.stats(key).bytes_sent
        assert 0 < sent < corpus_expected[key]["file_size"] / 4, (key, sent)
