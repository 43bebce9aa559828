"""--inventory: S3 Inventory CSV reports replace the listing (moto stands in for S3)."""

from __future__ import annotations

import csv
import gzip
import io
import json
from urllib.parse import quote_plus

import orjson


def _report(bucket: str, objects: list[tuple[str, bytes]], etags: dict[str, str]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, quoting=csv.QUOTE_ALL)
    for key, data in objects:
        writer.writerow([bucket, quote_plus(key), str(len(data)), "2026-11-25T00:00:00.000Z",
                         etags[key]])  # fmt: skip
    return gzip.compress(buf.getvalue().encode())


def test_inventory_manifest_on_s3_matches_listing(sample_media, moto_server, run_prober, tmp_path,
                                                  unique_name):  # fmt: skip
    root, manifest = sample_media
    bucket, dest = unique_name("inv"), unique_name("invdest")
    moto_server.create_bucket(bucket)
    moto_server.create_bucket(dest)
    objects = []
    for rel, info in manifest.items():
        if info["expect"] in ("video", "image", "bad"):
            data = (root / rel).read_bytes()
            moto_server.put(bucket, rel, data)
            objects.append((rel, data))
    s3 = moto_server.client
    etags = {k: s3.head_object(Bucket=bucket, Key=k)["ETag"].strip('"') for k, _ in objects}
    half = len(objects) // 2
    files = []
    for i, part in enumerate((objects[:half], objects[half:])):
        key = f"inv/{bucket}/cfg/data/part-{i}.csv.gz"
        moto_server.put(dest, key, _report(bucket, part, etags))
        files.append({"key": key, "size": 1, "MD5checksum": "x"})
    manifest_key = f"inv/{bucket}/cfg/2026-11-25T01-00Z/manifest.json"
    moto_server.put(dest, manifest_key, orjson.dumps({
        "sourceBucket": bucket, "destinationBucket": f"arn:aws:s3:::{dest}",
        "fileFormat": "CSV", "fileSchema": "Bucket, Key, Size, LastModifiedDate, ETag",
        "files": files,
    }))  # fmt: skip
    listed, inv = tmp_path / "listed.json", tmp_path / "inv.json"
    proc = run_prober(f"s3://{bucket}/", "-o", listed, env=moto_server.env())
    assert proc.returncode == 3, proc.stderr
    proc = run_prober("--inventory", f"s3://{dest}/{manifest_key}", "-o", inv,
                      "--state", tmp_path / "s.sqlite", env=moto_server.env())  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    a, b = json.loads(listed.read_text()), json.loads(inv.read_text())
    for section in ("videos", "images"):
        assert sorted(map(json.dumps, a[section])) == sorted(map(json.dumps, b[section]))
    assert any("%2B" in v["objectUrl"] for v in b["videos"])  # "Café clip+1" decoded, re-encoded
    # the inventory carries ETags: a rerun with --state fetches nothing
    proc = run_prober("--inventory", f"s3://{dest}/{manifest_key}", "-o", inv, "--report",
                      tmp_path / "r.jsonl", "--state", tmp_path / "s.sqlite",
                      env=moto_server.env())  # fmt: skip
    lines = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert all(x["requests"] == 0 for x in lines if x["status"] == "ok")


def test_inventory_local_csv_and_refusals(sample_media, moto_server, run_prober, tmp_path,
                                          unique_name):  # fmt: skip
    root, _ = sample_media
    bucket = unique_name("invl")
    moto_server.create_bucket(bucket)
    data = (root / "mp4/h264_aac_faststart.mp4").read_bytes()
    moto_server.put(bucket, "a b.mp4", data)
    etag = moto_server.client.head_object(Bucket=bucket, Key="a b.mp4")["ETag"].strip('"')
    local = tmp_path / "part.csv"
    local.write_text(f'"{bucket}","a+b.mp4","{len(data)}","2026-11-25T00:00:00.000Z","{etag}"\n')
    proc = run_prober("--inventory", local, "-q", env=moto_server.env())
    assert proc.returncode == 0, proc.stderr
    [video] = json.loads(proc.stdout)["videos"]
    assert video["objectUrl"].endswith("/a%20b.mp4")
    parquet = tmp_path / "manifest.json"
    parquet.write_text(json.dumps({"fileFormat": "Parquet", "files": []}))
    proc = run_prober("--inventory", parquet, env=moto_server.env())
    assert proc.returncode == 2 and "Parquet reports are not supported" in proc.stderr
