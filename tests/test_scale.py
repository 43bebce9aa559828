"""--shard I/N and `prober merge`: N parts join into exactly the unsharded spec."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest


@pytest.fixture
def tree(sample_media, tmp_path) -> Path:
    root, manifest = sample_media
    tree = tmp_path / "tree"
    for n in range(4):
        for rel, info in manifest.items():
            if info["expect"] in ("video", "image", "dicom", "bad"):
                dest = tree / f"batch{n}" / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(root / rel, dest)
    return tree


def _as_sets(spec: dict) -> dict[str, set[str]]:
    return {k: {json.dumps(e, sort_keys=True) for e in v} for k, v in spec.items()
            if isinstance(v, list)}  # fmt: skip


def _shard_and_merge(run_prober, tmp_path, args, env=None, n=3):
    whole = run_prober(*args, "--images", "groups", "-o", tmp_path / "whole.json", env=env)
    assert whole.returncode == 3, whole.stderr  # the tree has broken files
    parts = []
    for i in range(n):
        part = tmp_path / f"part{i}.json"
        proc = run_prober(*args, "--images", "groups", "--shard", f"{i}/{n}", "-o", part, env=env)
        assert proc.returncode in (0, 3), proc.stderr
        parts.append(part)
    merged = tmp_path / "merged.json"
    proc = run_prober("merge", *parts, "-o", merged)
    assert proc.returncode == 0, proc.stderr
    whole_spec = json.loads((tmp_path / "whole.json").read_text())
    part_specs = [json.loads(p.read_text()) for p in parts]
    merged_spec = json.loads(merged.read_text())
    # no object in two shards, none lost
    urls = [v["objectUrl"] for s in part_specs for v in s["videos"]]
    assert len(urls) == len(set(urls)) == len(whole_spec["videos"])
    groups = [g["title"] for s in part_specs for g in s.get("image_groups", [])]
    assert len(groups) == len(set(groups))  # every folder group whole in one shard
    assert all(s["videos"] for s in part_specs)  # the hash spreads the work
    assert "_prober" in part_specs[0] and "_prober" not in merged_spec
    assert _as_sets(merged_spec) == _as_sets(whole_spec)
    return parts


def test_shard_and_merge_local(tree, run_prober, tmp_path):
    parts = _shard_and_merge(run_prober, tmp_path, [tree])
    # refusals: a missing shard, parts of another run
    proc = run_prober("merge", *parts[:2], "-o", tmp_path / "m.json")
    assert proc.returncode == 2 and "2/3 missing" in proc.stderr
    proc = run_prober("merge", *parts[:2], "--partial", "-o", tmp_path / "m.json")
    assert proc.returncode == 0, proc.stderr
    other = tmp_path / "other.json"
    proc = run_prober(tree / "batch0", "--shard", "2/3", "-o", other)
    proc = run_prober("merge", *parts[:2], other, "-o", tmp_path / "m2.json")
    assert proc.returncode == 2 and "different runs" in proc.stderr
    assert not (tmp_path / "m2.json").exists()


def test_shard_and_merge_s3(tree, moto_server, run_prober, tmp_path, unique_name):
    bucket = unique_name("shard")
    moto_server.create_bucket(bucket)
    moto_server.upload_tree(bucket, tree)
    _shard_and_merge(run_prober, tmp_path, [f"s3://{bucket}/"], env=moto_server.env(), n=4)


def test_merge_deduplicates_and_keeps_flags(tree, run_prober, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert (
        run_prober(tree / "batch0", tree / "batch1", "-o", a, "--skip-duplicate-urls").returncode
        == 3
    )
    assert run_prober(tree / "batch1", tree / "batch2", "-o", b).returncode == 3
    proc = run_prober("merge", a, b, "-o", tmp_path / "m.json")
    assert proc.returncode == 0, proc.stderr
    merged = json.loads((tmp_path / "m.json").read_text())
    urls = [v["objectUrl"] for v in merged["videos"]]
    assert len(urls) == len(set(urls))
    assert {u.split("/tree/")[1].split("/")[0] for u in urls} == {"batch0", "batch1", "batch2"}
    assert merged["skip_duplicate_urls"] is True


@pytest.mark.parametrize("bad", ["3/3", "x", "1/0", "-1/2"])
def test_bad_shard_is_a_usage_error(bad, tree, run_prober):
    proc = run_prober(tree, "--shard", bad)
    assert proc.returncode == 2 and "--shard" in proc.stderr


@pytest.mark.parametrize("unique_urls", [True, False])
def test_spec_spool_keeps_listing_order_and_one_entry_per_url(unique_urls, tmp_path):
    """Results arrive in completion order; the spec lists them in listing order. With
    distinct objectUrls (one bucket listing) in-order arrivals skip SQLite; late ones are
    merged back in place. Otherwise a repeated objectUrl is written once."""
    from prober.model import Entry, Kind, Metadata, Result, Status
    from prober.sinks.spec import JsonSpecWriter, SpecOptions

    def result(seq: int, url: str) -> Result:
        meta = Metadata(25.0, 2.0, 64, 48, 1000, "video/mp4")
        entry = Entry(url=url, key=url.rsplit("/", 1)[1], size=1000, etag="e", seq=seq)
        return Result(entry, Kind.VIDEO, Status.OK, metadata=meta)

    arrivals = [1, 2, 5, 3, 6, 4, 9, 7, 8, 10]  # a probe run: some finish late
    out = tmp_path / "spec.json"
    writer = JsonSpecWriter(str(out), SpecOptions(unique_urls=unique_urls))
    for seq in arrivals:
        writer.write(result(seq, f"s3://b/{seq:02d}.mp4"))
    if not unique_urls:  # a URL list naming an object twice
        writer.write(result(11, "s3://b/03.mp4"))
    writer.close(commit=True)
    urls = [v["objectUrl"] for v in json.loads(out.read_text())["videos"]]
    assert urls == [f"s3://b/{i:02d}.mp4" for i in range(1, 11)]
