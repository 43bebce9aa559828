"""Self-checks of the test infrastructure: HttpStore, the three emulators, sample media."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.media import TRICKY_KEYS, ffprobe_truth
from tests.servers import (
    Azurite,
    FakeGcsServer,
    HttpStore,
    MotoServer,
    merged_env,
)

TRICKY = [
    *TRICKY_KEYS,
    "plus+sign.mp4",
    "percent%41encoded.mp4",
    "q?x=1&y=2.mp4",
    "ünïcödé/日本語 ファイル.mp4",
    "semi;colon 'quote'.mp4",
]
DATA = bytes(range(256)) * 8  # 2048 bytes


def fetch(
    url: str, headers: Mapping[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=dict(headers or {}), method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


# ------------------------------------------------------------------------------ HttpStore
def test_url_for_encodes_keys(http_store: HttpStore) -> None:
    url = http_store.url_for("a b/c+d#e?f%g.mp4")
    assert url == f"{http_store.url}/a%20b/c%2Bd%23e%3Ff%25g.mp4"


@pytest.mark.parametrize(
    ("range_header", "status", "content_range", "body"),
    [
        (None, 200, None, DATA),
        ("bytes=0-9", 206, "bytes 0-9/2048", DATA[:10]),
        ("bytes=100-", 206, "bytes 100-2047/2048", DATA[100:]),
        ("bytes=-16", 206, "bytes 2032-2047/2048", DATA[-16:]),
        ("bytes=-99999", 206, "bytes 0-2047/2048", DATA),
        ("bytes=2000-99999", 206, "bytes 2000-2047/2048", DATA[2000:]),
        ("bytes=2048-", 416, "bytes */2048", None),
        ("bytes=-0", 416, "bytes */2048", None),
        ("bytes=9-3", 200, None, DATA),  # invalid -> ignored
        ("bytes=0-1,5-6", 200, None, DATA),  # multi-range -> ignored
        ("items=0-1", 200, None, DATA),
    ],
)
def test_range_semantics(
    http_store: HttpStore,
    range_header: str | None,
    status: int,
    content_range: str | None,
    body: bytes | None,
) -> None:
    http_store.put("dir/obj.bin", DATA)
    headers = {"Range": range_header} if range_header else {}
    st, hdrs, got = fetch(http_store.url_for("dir/obj.bin"), headers)
    assert st == status
    assert hdrs.get("Content-Range") == content_range
    if body is not None:
        assert got == body
        assert int(hdrs["Content-Length"]) == len(body)
        assert hdrs["Accept-Ranges"] == "bytes"


def test_head_etag_conditionals_and_replacement(http_store: HttpStore, tmp_path: Path) -> None:
    http_store.put("k.mp4", DATA)
    url = http_store.url_for("k.mp4")
    st, hdrs, body = fetch(url, method="HEAD")
    assert (st, body) == (200, b"")
    assert hdrs["Content-Length"] == "2048"
    assert hdrs["Content-Type"] == "video/mp4"
    etag = hdrs["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) == 34
    assert "GMT" in hdrs["Last-Modified"]
    st, hdrs, _ = fetch(url, {"Range": "bytes=0-3"}, method="HEAD")
    assert (st, hdrs["Content-Length"], hdrs["Content-Range"]) == (206, "4", "bytes 0-3/2048")

    assert fetch(url, {"If-Match": etag, "Range": "bytes=0-0"})[0] == 206
    assert fetch(url, {"If-Match": '"nope"'})[0] == 412
    assert fetch(url, {"If-None-Match": etag})[0] == 304
    # If-Range with a stale validator -> whole object
    assert fetch(url, {"If-Range": '"old"', "Range": "bytes=0-0"})[0] == 200

    http_store.set_object("k.mp4", DATA[::-1])  # changed mid-run
    st, hdrs, body = fetch(url, {"If-Match": etag})
    assert st == 412
    st, hdrs, body = fetch(url)
    assert hdrs["ETag"] != etag and body == DATA[::-1]

    assert fetch(http_store.url_for("missing"))[0] == 404
    http_store.put("empty.mp4", b"")
    assert fetch(http_store.url_for("empty.mp4"))[0:1] == (200,)
    assert fetch(http_store.url_for("empty.mp4"), {"Range": "bytes=0-10"})[0] == 416

    f = tmp_path / "file.bin"
    f.write_bytes(DATA)
    http_store.put_file("from/file.bin", f)
    st, hdrs, body = fetch(http_store.url_for("from/file.bin"), {"Range": "bytes=-4"})
    assert (st, body) == (206, DATA[-4:])
    assert hdrs["ETag"] == http_store.etag("from/file.bin")


def test_tricky_keys_and_add_tree(http_store: HttpStore, tmp_path: Path) -> None:
    for key in TRICKY:
        p = tmp_path / "tree" / key
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(key.encode())
    keys = http_store.add_tree(tmp_path / "tree", prefix="pre/")
    assert sorted(keys) == sorted("pre/" + k for k in TRICKY)
    for key in TRICKY:
        st, _, body = fetch(http_store.url_for("pre/" + key))
        assert (st, body) == (200, key.encode()), key


def test_fault_injection_and_counters(http_store: HttpStore) -> None:
    http_store.put("a", DATA)
    http_store.put("b", DATA)

    http_store.forced_status["a"] = 403
    assert fetch(http_store.url_for("a"))[0] == 403
    http_store.forced_status.clear()

    http_store.fail_ratio, http_store.retry_after = 1.0, "2"
    st, hdrs, _ = fetch(http_store.url_for("a"))
    assert (st, hdrs["Retry-After"]) == (503, "2")
    http_store.fail_status = 429
    assert fetch(http_store.url_for("a"))[0] == 429
    http_store.fail_ratio = 0.0

    http_store.reset_ratio = 1.0
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError, urllib.error.URLError)):
        urllib.request.urlopen(http_store.url_for("b"), timeout=5).read()
    assert fetch(http_store.url_for("b"), {"Range": "bytes=0-99"})[0] == 206  # 2nd attempt ok
    http_store.reset_ratio = 0.0

    sa, sb = http_store.stats("a"), http_store.stats("b")
    assert (sa.requests, sa.failures, sa.bytes_sent) == (3, 3, 0)
    assert sa.statuses == {403: 1, 503: 1, 429: 1}
    assert (sb.requests, sb.resets, sb.bytes_sent) == (2, 1, 100)
    tot = http_store.totals()
    assert (tot.requests, tot.bytes_sent) == (5, 100)
    assert [r.range for r in http_store.request_log][-1] == "bytes=0-99"
    http_store.reset_counters()
    assert http_store.totals().requests == 0 and http_store.stats("a").requests == 0


def test_fail_ratio_is_repeatable() -> None:
    def pattern(seed: int) -> list[int]:
        with HttpStore(fail_ratio=0.5, seed=seed) as s:
            s.put("x", b"1")
            s.put("y", b"2")
            return [fetch(s.url_for(k))[0] for k in ("x", "y") * 10]

    p = pattern(7)
    assert p == pattern(7)
    assert set(p) == {200, 503}


async def test_async_concurrency_and_latency(http_store: HttpStore) -> None:
    loop = asyncio.get_running_loop()
    assert type(loop).__module__.startswith("uvloop")
    http_store.put("obj", DATA)
    http_store.latency = 0.2
    url = http_store.url_for("obj")
    t0 = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=300)) as session:

        async def one(i: int) -> bytes:
            async with session.get(url, headers={"Range": f"bytes={i}-{i + 9}"}) as r:
                assert r.status == 206
                return await r.read()

        bodies = await asyncio.gather(*(one(i) for i in range(300)))
    elapsed = time.perf_counter() - t0
    assert bodies[5] == DATA[5:15]
    assert 0.2 <= elapsed < 2.0, elapsed  # latency does not serialise requests
    st = http_store.stats("obj")
    assert (st.requests, st.bytes_sent) == (300, 3000)


def test_merged_env() -> None:
    base = {"AWS_PROFILE": "prod", "HOME": "/h", "X": "1"}
    env = merged_env({"AWS_ENDPOINT_URL": "http://e", "X": None}, base=base)
    assert env == {"HOME": "/h", "AWS_ENDPOINT_URL": "http://e"}


# ------------------------------------------------------------------------------ emulators
def test_moto(moto_server: MotoServer, unique_name: Callable[[str], str]) -> None:
    env = moto_server.env()
    assert env["AWS_ENDPOINT_URL"] == moto_server.endpoint
    assert env["AWS_ACCESS_KEY_ID"] == "test" and env["AWS_REGION"] == "us-east-1"
    bucket = unique_name("s3")
    moto_server.create_bucket(bucket)
    for key in TRICKY:
        moto_server.put(bucket, key, DATA)
    assert sorted(moto_server.list_keys(bucket)) == sorted(TRICKY)
    for key in TRICKY:
        got = moto_server.client.get_object(Bucket=bucket, Key=key, Range="bytes=10-19")
        assert got["ContentRange"] == "bytes 10-19/2048"
        assert got["Body"].read() == DATA[10:20]
    eu = unique_name("s3eu")
    moto_server.create_bucket(eu, region="eu-west-2")
    loc = moto_server.client.get_bucket_location(Bucket=eu)["LocationConstraint"]
    assert loc == "eu-west-2"


def test_gcs(gcs_server: FakeGcsServer, unique_name: Callable[[str], str]) -> None:
    assert gcs_server.env() == {"STORAGE_EMULATOR_HOST": gcs_server.endpoint}
    bucket = unique_name("gcs")
    gcs_server.create_bucket(bucket)
    for key in TRICKY:
        gcs_server.put(bucket, key, DATA)
    objs = gcs_server.list_objects(bucket)
    assert sorted(o["name"] for o in objs) == sorted(TRICKY)
    assert {o["size"] for o in objs} == {"2048"}  # a string in the JSON API
    for key in TRICKY:
        st, hdrs, body = fetch(gcs_server.media_url(bucket, key), {"Range": "bytes=10-19"})
        assert st == 206, key
        assert body == DATA[10:20]
        assert hdrs["Content-Range"] == "bytes 10-19/2048"


def test_azurite(azurite: Azurite, unique_name: Callable[[str], str]) -> None:
    assert "BlobEndpoint=http://127.0.0.1:" in azurite.env()["AZURE_STORAGE_CONNECTION_STRING"]
    container = unique_name("az")
    azurite.create_container(container)
    for key in TRICKY:
        azurite.put(container, key, DATA)
    assert sorted(azurite.list_keys(container)) == sorted(TRICKY)
    for key in TRICKY:
        blob = azurite.service.get_blob_client(container, key)
        assert blob.download_blob(offset=10, length=10).readall() == DATA[10:20]


def test_upload_tree(
    moto_server: MotoServer,
    gcs_server: FakeGcsServer,
    sample_media: tuple[Path, dict[str, dict[str, Any]]],
    unique_name: Callable[[str], str],
) -> None:
    root, manifest = sample_media
    bucket = unique_name("tree")
    moto_server.create_bucket(bucket)
    assert sorted(moto_server.upload_tree(bucket, root, "m/")) == sorted("m/" + k for k in manifest)
    assert len(moto_server.list_keys(bucket, "m/")) == len(manifest)
    gcs_server.create_bucket(bucket)
    gcs_server.upload_tree(bucket, root)
    assert sorted(gcs_server.list_keys(bucket)) == sorted(manifest)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_emulator_dies_with_parent(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
        from tests.servers import FakeGcsServer
        s = FakeGcsServer().start()
        print(s.proc.pid, flush=True)
        time.sleep(60)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    os.kill(child, 0)  # alive
    parent.send_signal(signal.SIGKILL)  # no atexit, no cleanup: only PDEATHSIG can help
    parent.wait(10)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:  # dead = gone, or a zombie waiting for init to reap it
            state = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.02)
    pytest.fail(f"emulator pid {child} survived its parent")


# ------------------------------------------------------------------------------ media
@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe not installed")
def test_sample_media_matches_ffprobe(sample_media: tuple[Path, dict[str, dict[str, Any]]]) -> None:
    root, manifest = sample_media
    assert {"video", "image", "dicom", "bad", "skip"} <= {i["expect"] for i in manifest.values()}
    for rel, info in manifest.items():
        size = (root / rel).stat().st_size
        assert size == info["file_size"] and size < 300_000, rel
        if info["expect"] != "video":
            continue
        truth = ffprobe_truth(root / rel, rel)
        assert truth["fps"] == pytest.approx(info["fps"], abs=1e-3), rel
        assert truth["duration"] == pytest.approx(info["duration"], abs=0.1), rel
        for k in ("width", "height", "display_width", "display_height"):
            assert truth[k] == info[k], (rel, k)
        assert truth["mime_type_by_content"] == info["mime_type"], rel
    for rel in ("bad/zero_bytes.mp4", "bad/random_bytes.mp4", "bad/truncated_moov_end.mp4"):
        assert "fps" not in ffprobe_truth(root / rel, rel)
    assert json.loads(json.dumps(manifest)) == manifest  # JSON-serialisable
