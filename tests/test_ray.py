"""--engine ray on a local 2-CPU Ray against moto S3: the same entries as the local engine."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("ray")


def test_ray_engine_matches_local(sample_media, moto_server, run_prober, tmp_path, unique_name):
    root, _ = sample_media
    bucket = unique_name("ray")
    moto_server.create_bucket(bucket)
    for n in range(3):
        moto_server.upload_tree(bucket, root, prefix=f"set{n}/")
    env = {**moto_server.env(), "RAY_AUTH_MODE": "disabled"}
    local, distributed = tmp_path / "local.json", tmp_path / "ray.json"
    proc = run_prober(f"s3://{bucket}/", "-o", local, "--images", "groups", env=env)
    assert proc.returncode == 3, proc.stderr
    proc = run_prober(f"s3://{bucket}/", "-o", distributed, "--images", "groups",
                      "--engine", "ray", "--ray-tasks", "3", "--failures", tmp_path / "f.csv",
                      env=env, timeout=120)  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    a, b = json.loads(local.read_text()), json.loads(distributed.read_text())
    assert a.keys() == b.keys()
    for section in a:
        assert sorted(map(json.dumps, a[section])) == sorted(map(json.dumps, b[section])), section
    assert len(a["videos"]) == 33
    assert len((tmp_path / "f.csv").read_text().splitlines()) == 1 + 3 * 4


def test_ray_engine_reports_fatal_errors(moto_server, run_prober):
    env = {**moto_server.env(), "RAY_AUTH_MODE": "disabled"}
    proc = run_prober("s3://no-such-bucket-ray/", "--engine", "ray", "--ray-tasks", "2", env=env,
                      timeout=120)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "does not exist" in proc.stderr and "Traceback" not in proc.stderr
