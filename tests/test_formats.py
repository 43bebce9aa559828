"""Every Encord data type and format: groups, sequences, DICOM series, CSV, JSONL,
client metadata, titles, prober.toml."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import orjson
import pytest


@pytest.fixture
def image_tree(sample_media, tmp_path) -> Path:
    """Two folders of images named to test natural order, a DICOM series, two videos."""
    root, _ = sample_media
    tree = tmp_path / "tree"
    jpg = (root / "images/frame.jpg").read_bytes()
    for folder, names in {
        "cam a/day 1": ["10.jpg", "2.jpg", "1.jpg", "frame_100.jpg", "frame_20.jpg"],
        "cam b": ["b.png", "a.png"],
    }.items():
        (tree / folder).mkdir(parents=True)
        for name in names:
            (tree / folder / name).write_bytes(jpg)
    (tree / "ct/series 7").mkdir(parents=True)
    for name in ("slice10.dcm", "slice9.dcm", "slice1.dcm"):
        shutil.copy(root / "dicom/series1/slice1.dcm", tree / "ct/series 7" / name)
    (tree / "videos").mkdir()
    shutil.copy(root / "mp4/h264_aac_faststart.mp4", tree / "videos/a.mp4")
    shutil.copy(root / "webm/vp9_opus.webm", tree / "videos/b.webm")
    return tree


def _urls(entry: dict) -> list[str]:
    """objectUrl_0..N, asserting they are contiguous from 0."""
    keys = sorted((k for k in entry if k.startswith("objectUrl_")), key=lambda k: int(k[10:]))
    assert keys == [f"objectUrl_{i}" for i in range(len(keys))]
    return [entry[k] for k in keys]


def _names(urls: list[str]) -> list[str]:
    return [u.rsplit("/", 1)[1] for u in urls]


@pytest.mark.parametrize("mode", ["groups", "sequences"])
def test_image_groups_and_sequences_local(mode, image_tree, run_prober, tmp_path):
    out = tmp_path / "spec.json"
    proc = run_prober(
        image_tree, "--images", mode, "-o", out, "--url-prefix", "https://cdn.example/x"
    )
    assert proc.returncode == 0, proc.stderr
    spec = json.loads(out.read_text())
    section = "image_groups" if mode == "groups" else "image_sequences"
    assert spec["images"] == []
    groups = {g["title"]: g for g in spec[section]}
    assert set(groups) == {"cam a/day 1", "cam b"}
    for g in groups.values():
        assert g["createVideo"] is (mode == "sequences")
    assert _names(_urls(groups["cam a/day 1"])) == [
        "1.jpg", "2.jpg", "10.jpg", "frame_20.jpg", "frame_100.jpg"
    ]  # fmt: skip
    assert _urls(groups["cam b"]) == ["https://cdn.example/x/cam%20b/a.png",
                                      "https://cdn.example/x/cam%20b/b.png"]  # fmt: skip
    # DICOM: one series per folder, natural order
    (series,) = spec["dicom_series"]
    assert series["title"] == "ct/series 7"
    assert _names(_urls(series)) == ["slice1.dcm", "slice9.dcm", "slice10.dcm"]
    assert len(spec["videos"]) == 2
    assert all("videoMetadata" in v for v in spec["videos"])


def test_mixed_bucket_every_type_over_s3(
    image_tree, moto_server, run_prober, tmp_path, unique_name
):
    bucket = unique_name("mixed")
    moto_server.create_bucket(bucket)
    moto_server.upload_tree(bucket, image_tree)
    out = tmp_path / "spec.json"
    proc = run_prober(f"s3://{bucket}", "--images", "sequences", "-o", out, env=moto_server.env())
    assert proc.returncode == 0, proc.stderr
    spec = json.loads(out.read_text())
    base = f"https://{bucket}.s3.us-east-1.amazonaws.com/"
    assert sorted(v["objectUrl"] for v in spec["videos"]) == [base + "videos/a.mp4",
                                                               base + "videos/b.webm"]  # fmt: skip
    seqs = {g["title"]: _urls(g) for g in spec["image_sequences"]}
    assert seqs["cam a/day 1"][0] == base + "cam%20a/day%201/1.jpg"
    assert _names(seqs["cam a/day 1"]) == [
        "1.jpg",
        "2.jpg",
        "10.jpg",
        "frame_20.jpg",
        "frame_100.jpg",
    ]
    assert spec["dicom_series"][0]["objectUrl_2"] == base + "ct/series%207/slice10.dcm"
    for entry in spec["image_sequences"] + spec["dicom_series"]:
        assert entry["title"]


def test_csv_spec(image_tree, run_prober, tmp_path):
    out = tmp_path / "spec.csv"
    proc = run_prober(image_tree, "--images", "groups", "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert "no videoMetadata" in proc.stderr
    assert "left out 0 images and 3 DICOM" in proc.stderr
    rows = list(csv.reader(io.StringIO(out.read_text())))
    assert rows[0] == ["ObjectUrl", "Title", "Create video"]
    videos = [r for r in rows[1:] if r[2] == ""]
    assert sorted(r[1] for r in videos) == ["a.mp4", "b.webm"]
    group_rows = [r for r in rows[1:] if r[1] == "cam a/day 1"]
    assert [r[0].rsplit("/", 1)[1] for r in group_rows] == [
        "1.jpg", "2.jpg", "10.jpg", "frame_20.jpg", "frame_100.jpg"
    ]  # fmt: skip
    assert {r[2] for r in group_rows} == {"false"}
    assert not any(r[0].endswith(".dcm") for r in rows)


def test_csv_refuses_single_images(image_tree, run_prober, tmp_path):
    proc = run_prober(image_tree, "--format", "csv", "-o", tmp_path / "s.csv")
    assert proc.returncode == 0, proc.stderr
    assert "left out 7 images and 3 DICOM" in proc.stderr
    text = (tmp_path / "s.csv").read_text()
    assert ".jpg" not in text and ".png" not in text


@pytest.mark.parametrize("flag", ["--skip-duplicate-urls", "--client-metadata"])
def test_csv_rejects_json_only_flags(flag, image_tree, run_prober, tmp_path):
    args = [flag] if flag == "--skip-duplicate-urls" else [flag, str(tmp_path / "cm.jsonl")]
    (tmp_path / "cm.jsonl").write_text("")
    proc = run_prober(image_tree, "-o", tmp_path / "s.csv", *args)
    assert proc.returncode == 2
    assert "CSV" in proc.stderr and "Traceback" not in proc.stderr


def test_jsonl_spec(image_tree, run_prober, tmp_path):
    out = tmp_path / "spec.jsonl"
    proc = run_prober(image_tree, "--images", "groups", "-o", out)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    sections = [line["section"] for line in lines]
    assert sections.count("videos") == 2
    assert sections.count("image_groups") == 2
    assert sections.count("dicom_series") == 1


def test_titles_and_skip_duplicate_urls(image_tree, run_prober, tmp_path):
    for mode, expected in [("name", "a.mp4"), ("key", "videos/a.mp4"), ("none", None)]:
        proc = run_prober(image_tree / "videos", image_tree / "cam b", "--title", mode,
                          "--skip-duplicate-urls", "-q")  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        spec = json.loads(proc.stdout)
        assert spec["skip_duplicate_urls"] is True
        video = next(v for v in spec["videos"] if v["objectUrl"].endswith("/a.mp4"))
        if expected is None:
            assert "title" not in video
        else:
            assert video["title"] == expected.rsplit("/", 1)[-1] if mode == "key" else expected


def test_client_metadata_by_key_and_url(image_tree, run_prober, tmp_path):
    cm = tmp_path / "cm.jsonl"
    cm.write_text(
        json.dumps({"key": "videos/a.mp4", "clientMetadata": {"camera": "front", "n": 1}}) + "\n"
        + json.dumps({"objectUrl": "https://cdn.example/x/cam%20b/a.png",
                      "clientMetadata": {"label": "ü"}}) + "\n"
    )  # fmt: skip
    proc = run_prober(
        image_tree, "--client-metadata", cm, "--url-prefix", "https://cdn.example/x", "-q"
    )
    assert proc.returncode == 0, proc.stderr
    spec = json.loads(proc.stdout)
    video = next(v for v in spec["videos"] if v["objectUrl"].endswith("/a.mp4"))
    assert video["clientMetadata"] == {"camera": "front", "n": 1}
    image = next(i for i in spec["images"] if i["objectUrl"].endswith("cam%20b/a.png"))
    assert image["clientMetadata"] == {"label": "ü"}
    others = [v for v in spec["videos"] + spec["images"] if v is not video and v is not image]
    assert all("clientMetadata" not in v for v in others)


def test_client_metadata_over_10mb_is_rejected(image_tree, run_prober, tmp_path):
    cm = tmp_path / "cm.jsonl"
    big = {"blob": "x" * 10_000_001}
    cm.write_bytes(orjson.dumps({"key": "videos/a.mp4", "clientMetadata": big}) + b"\n")
    proc = run_prober(image_tree, "--client-metadata", cm, "-o", tmp_path / "s.json")
    assert proc.returncode == 2
    assert "videos/a.mp4" in proc.stderr and "10 MB" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "s.json").exists()


def test_prober_toml(image_tree, run_prober, tmp_path):
    work = tmp_path / "cron"
    work.mkdir()
    (work / "prober.toml").write_text(
        f'sources = ["{image_tree / "videos"}"]\n'
        'output = "spec.json"\nfailures = "failed.csv"\nconcurrency = 8\nimages = "groups"\n'
        'title = "key"\nskip_duplicate_urls = true\n'
    )
    proc = run_prober(cwd=work)
    assert proc.returncode == 0, proc.stderr
    spec = json.loads((work / "spec.json").read_text())
    assert sorted(v["title"] for v in spec["videos"]) == ["a.mp4", "b.webm"]
    assert spec["skip_duplicate_urls"] is True
    assert (work / "failed.csv").read_text().strip() == "objectUrl,error"
    # flags override the file: another output, other sources
    proc = run_prober(image_tree / "cam b", "-o", "other.json", "--config", "prober.toml", cwd=work)
    assert proc.returncode == 0, proc.stderr
    other = json.loads((work / "other.json").read_text())
    assert other["videos"] == [] and len(other["image_groups"]) == 1


def test_no_sources_anywhere_shows_an_example(run_prober, tmp_path):
    proc = run_prober(cwd=tmp_path)
    assert proc.returncode == 2
    assert "example: prober s3://" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_bad_config_is_a_usage_error(run_prober, tmp_path):
    (tmp_path / "prober.toml").write_text('sources = ["x"]\nconcurency = 3\n')
    proc = run_prober(cwd=tmp_path)
    assert proc.returncode == 2
    assert "concurency" in proc.stderr and "Traceback" not in proc.stderr
    (tmp_path / "prober.toml").write_text('sources = ["x"]\nconcurrency = "many"\n')
    proc = run_prober(cwd=tmp_path)
    assert proc.returncode == 2 and "--concurrency" in proc.stderr


def test_enrich_every_url_form_keeps_everything_else(sample_media, moto_server, gcs_server,
                                                      azurite, http_store, run_prober, tmp_path,
                                                      unique_name):  # fmt: skip
    """Each video's objectUrl is read through the backend that owns it; only
    videoMetadata changes, and the order of entries, unknown keys and flags stay."""
    root, _ = sample_media
    faststart = (root / "mp4/h264_aac_faststart.mp4").read_bytes()
    portrait = (root / "mp4/h264_rotated90.mp4").read_bytes()
    bucket, gbucket, container = unique_name("en"), unique_name("gen"), unique_name("aen")
    moto_server.create_bucket(bucket)
    for key in ("s3 form/a+b.mp4", "virtual/c d.mp4", "path/e.mp4", "obs/f.mp4"):
        moto_server.put(bucket, key, faststart)
    moto_server.put(bucket, "portrait.mp4", portrait)
    gcs_server.create_bucket(gbucket)
    gcs_server.put(gbucket, "g#1.mp4", faststart)
    gcs_server.put(gbucket, "https form.mp4", faststart)
    azurite.create_container(container)
    azurite.put(container, "dir/z ü.mp4", faststart)
    http_store.put("plain/h.mp4", faststart)
    urls = [
        f"s3://{bucket}/s3%20form/a%2Bb.mp4",
        f"https://{bucket}.s3.us-east-1.amazonaws.com/virtual/c%20d.mp4",
        f"https://s3.us-east-1.amazonaws.com/{bucket}/path/e.mp4",
        f"https://{bucket}.obs.eu-de.otc.t-systems.com/obs/f.mp4",
        f"gs://{gbucket}/g%231.mp4",
        f"https://storage.cloud.google.com/{gbucket}/https%20form.mp4",
        f"{azurite.blob_endpoint}/{container}/dir/z%20%C3%BC.mp4",
        http_store.url_for("plain/h.mp4"),
    ]
    stale = {"fps": 1.0, "duration": 1.0, "width": 1, "height": 1, "file_size": 1,
             "mime_type": "video/mp4"}  # fmt: skip
    spec = {
        "videos": [
            {"objectUrl": url, "title": f"video {i}", "clientMetadata": {"i": i}, "x-unknown": [i]}
            for i, url in enumerate(urls)
        ]
        + [
            {"objectUrl": f"https://{bucket}.s3.us-east-1.amazonaws.com/portrait.mp4",
             "videoMetadata": stale},
            {"objectUrl": f"s3://{bucket}/missing.mp4", "title": "gone", "videoMetadata": stale},
        ],
        "images": [{"objectUrl": "https://example.com/a.jpg", "title": "keep me"}],
        "image_groups": [{"title": "g", "createVideo": False, "objectUrl_0": "https://e/1.jpg"}],
        "dicom_series": [{"title": "d", "objectUrl_0": "https://e/1.dcm"}],
        "skip_duplicate_urls": True,
        "someFutureKey": {"kept": True},
    }  # fmt: skip
    src = tmp_path / "spec.json"
    src.write_text(json.dumps(spec))
    env = {**moto_server.env(), **gcs_server.env(), **azurite.env()}
    out, fail = tmp_path / "enriched.json", tmp_path / "f.csv"
    proc = run_prober("--enrich", src, "-o", out, "--failures", fail,
                      "--endpoint-url", moto_server.endpoint, env=env)  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    got = json.loads(out.read_text())
    # nothing but videoMetadata changed, order included
    strip = [{k: v for k, v in e.items() if k != "videoMetadata"} for e in got["videos"]]
    assert strip == [{k: v for k, v in e.items() if k != "videoMetadata"} for e in spec["videos"]]
    assert {k: v for k, v in got.items() if k != "videos"} == {
        k: v for k, v in spec.items() if k != "videos"
    }
    for entry in got["videos"][: len(urls)]:
        meta = entry["videoMetadata"]
        assert (meta["width"], meta["height"], meta["fps"]) == (320, 240, 25.0), entry
        assert meta["file_size"] == len(faststart) and meta["duration"] == pytest.approx(2.0)
    refreshed = got["videos"][len(urls)]["videoMetadata"]
    assert (refreshed["width"], refreshed["height"]) == (240, 320)  # stale value replaced
    assert "videoMetadata" not in got["videos"][-1]  # failed: left without stale metadata
    assert f"s3://{bucket}/missing.mp4" in fail.read_text()

    proc = run_prober("--enrich", src, "-o", out, "--drop-failed",
                      "--endpoint-url", moto_server.endpoint, env=env)  # fmt: skip
    assert proc.returncode == 3
    assert [v.get("title") for v in json.loads(out.read_text())["videos"]][-1] is None
    assert len(json.loads(out.read_text())["videos"]) == len(urls) + 1


def test_enrich_csv_spec_becomes_json(sample_media, http_store, run_prober, tmp_path):
    root, _ = sample_media
    http_store.put("v.mp4", (root / "mp4/h264_aac_faststart.mp4").read_bytes())
    src = tmp_path / "spec.csv"
    src.write_text(
        "ObjectUrl,Title,Create video\n"
        f"{http_store.url_for('v.mp4')},clip,\n"
        "https://e/1.jpg,group one,false\nhttps://e/2.jpg,group one,false\n"
    )
    proc = run_prober("--enrich", src, "-q")
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["videos"][0]["title"] == "clip" and got["videos"][0]["videoMetadata"]["fps"] == 25.0
    assert got["image_groups"] == [{"title": "group one", "createVideo": False,
                                    "objectUrl_0": "https://e/1.jpg",
                                    "objectUrl_1": "https://e/2.jpg"}]  # fmt: skip
