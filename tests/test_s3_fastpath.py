"""The S3 fast read path (prober/sources/s3_sign.py).

* What it sends is what aiobotocore sends: for tricky keys, ranges, If-Match, session
  tokens, AWS (virtual, path, us-east-1, China), custom endpoints and OBS, the URL, the
  signed headers and — at the same instant, same credentials — the Authorization header
  equal those of the request aiobotocore itself builds (captured at its ``before-send``).
* It reads the right objects (moto), maps S3 errors exactly as the aiobotocore path does
  (a scripted S3 error server), and gives the same spec and report with
  ``PROBER_S3_FASTPATH=0`` and without (moto, sample media and the corpus).
* A store that answers a read with a wrong-region 400 or a 301 (bench/store.py's S3 face
  with ``--region``; moto checks no signing region) switches the source to aiobotocore,
  whose region redirector then gets every object right. Without ``--region``, one HEAD
  of the bucket learns its region from ``x-amz-bucket-region`` (moto and that store),
  with no botocore client built.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.auth
import pytest
from aiohttp import web

from prober.errors import ObjectError
from prober.model import Entry
from prober.sources import SourceContext, SourceOptions, open_source, s3_env, s3_sign
from prober.sources.s3_sign import FastRangedGet, object_base_url, status_error
from tests.corpus_check import read_report
from tests.servers.emulators import merged_env
from tests.servers.http_store import HttpStore

REPO = Path(__file__).resolve().parents[1]
FROZEN = dt.datetime(2026, 3, 4, 5, 6, 7)

TRICKY_KEYS = [
    "clips/a b.mp4",
    "clips/Café ü/日本語 клип.mkv",
    "a+b=c&d.mp4",
    "hash#tag.mp4",
    "what?.mp4",
    "100% done.mp4",
    "%2F literal percent.mp4",
    "sp ace+plus%25#?.mp4",
    "~tilde-_.dot.mp4",
    "dir//double/./x/../y.mp4",
    "quote'\"()*!$,;:@[]{}^`|\\.mp4",
    "trailing space .mp4",
]
# a moto bucket reads these back exactly (werkzeug folds '//', './' and '../' itself)
E2E_KEYS = [k for k in TRICKY_KEYS if "//" not in k and "\\" not in k]


# --------------------------------------------------------------------------- helpers
@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """Static keys from the environment, nothing from files or instance metadata, and
    both signers' clocks frozen at the same instant."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                 "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_DEFAULT_REGION",
                 "AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT",
                 "AWS_S3_US_EAST_1_REGIONAL_ENDPOINT",
                 "OBS_ACCESS_KEY_ID", "OBS_SECRET_ACCESS_KEY", "OBS_SECURITY_TOKEN",
                 "PROBER_S3_FASTPATH"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_REGION", "eu-west-2")
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: FROZEN)
    monkeypatch.setattr(s3_sign, "amz_date", lambda: FROZEN.strftime("%Y%m%dT%H%M%SZ"))
    return monkeypatch


class _Captured(Exception):
    pass


async def botocore_request(client: Any, bucket: str, key: str, rng: str, etag: str | None) -> Any:
    """The request aiobotocore sends for get_object (stopped at before-send)."""
    seen: list[Any] = []

    def before_send(request: Any, **_: Any) -> None:
        seen.append(request)
        raise _Captured

    client.meta.events.register("before-send.s3.GetObject", before_send, unique_id="capture")
    try:
        kwargs = {"IfMatch": f'"{etag}"'} if etag else {}
        with pytest.raises(_Captured):
            await client.get_object(Bucket=bucket, Key=key, Range=rng, **kwargs)
    finally:
        client.meta.events.unregister("before-send.s3.GetObject", unique_id="capture")
    return seen[0]


def _signed_names(authorization: str) -> list[str]:
    return authorization.split("SignedHeaders=", 1)[1].split(",", 1)[0].split(";")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def _fast_for(source: Any, region: str) -> FastRangedGet:
    source.region = region  # as entries() would have found it (GetBucketLocation)
    fast = await source._fast_path()
    assert isinstance(fast, FastRangedGet), "the fast path should apply"
    # plain S3 is decided from the session alone; OBS (its own keys) through a client
    assert (source._client is None) == source.session_fast_path
    return fast


# ----------------------------------------------------- (a) what is signed = botocore's
CASES = [
    # (source spec, region, options, extra env, expected URL prefix)
    ("s3://my-bucket", "eu-west-2", {}, {}, "https://my-bucket.s3.eu-west-2.amazonaws.com/"),
    ("s3://my.dotted.bucket", "eu-west-2", {}, {},
     "https://s3.eu-west-2.amazonaws.com/my.dotted.bucket/"),
    ("s3://Legacy_Bucket", "eu-west-2", {}, {},
     "https://s3.eu-west-2.amazonaws.com/Legacy_Bucket/"),
    ("s3://east-bucket", "us-east-1", {}, {}, "https://east-bucket.s3.amazonaws.com/"),
    ("s3://east-bucket", "us-east-1", {}, {"AWS_S3_US_EAST_1_REGIONAL_ENDPOINT": "regional"},
     "https://east-bucket.s3.us-east-1.amazonaws.com/"),
    ("s3://cn-bucket", "cn-north-1", {}, {}, "https://cn-bucket.s3.cn-north-1.amazonaws.com.cn/"),
    ("s3://my-bucket", "eu-west-2", {}, {"AWS_SESSION_TOKEN": "FwoGZXIvYXdzEXAMPLE//token+="},
     "https://my-bucket.s3.eu-west-2.amazonaws.com/"),
    ("s3://minio-bucket", "us-east-1", {"endpoint_url": "http://127.0.0.1:9000"}, {},
     "http://127.0.0.1:9000/minio-bucket/"),
    ("s3://env-bucket", "eu-west-2", {}, {"AWS_ENDPOINT_URL": "https://storage.example.com:8443"},
     "https://storage.example.com:8443/env-bucket/"),
    ("obs://obs-bucket", "eu-de", {},
     {"OBS_ACCESS_KEY_ID": "obs-ak", "OBS_SECRET_ACCESS_KEY": "obs-sk",
      "OBS_SECURITY_TOKEN": "obs-token"},
     "https://obs-bucket.obs.eu-de.otc.t-systems.com/"),
    ("obs://obs-bucket", "eu-nl", {"endpoint_url": "http://127.0.0.1:9000", "region": "eu-nl"},
     {"OBS_ACCESS_KEY_ID": "obs-ak", "OBS_SECRET_ACCESS_KEY": "obs-sk"},
     "http://127.0.0.1:9000/obs-bucket/"),
]  # fmt: skip


@pytest.mark.parametrize("settings", ["environment", "botocore"])
@pytest.mark.parametrize(("spec", "region", "options", "env", "prefix"), CASES)
async def test_signed_request_equals_botocores(
    aws_env, tmp_path, settings, spec, region, options, env, prefix
):
    """Settings read from the environment alone (s3_env) and through botocore's session
    (an AWS config file exists, if empty) sign the same request as aiobotocore."""
    aws_env.setenv("AWS_REGION", region)  # the client's region is the bucket's
    for name, value in env.items():
        aws_env.setenv(name, value)
    if settings == "botocore":
        (tmp_path / "aws-config").write_text("")
        aws_env.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    ctx = SourceContext(SourceOptions(**options))
    source = open_source(spec, ctx)
    try:
        from_environment = getattr(source, "_plain", None) is not None
        assert from_environment == (settings == "environment" and set(env) <= s3_env.UNDERSTOOD
                                    and spec.startswith("s3:")), env  # fmt: skip
        fast = await _fast_for(source, region)
        client = await source.client()
        for key in TRICKY_KEYS:
            for start, end, etag in [(0, 65536, "9b2cf535f27731c974343645a3985328"),
                                     (1000, 1001, None)]:  # fmt: skip
                url, headers = await fast.signed(key, start, end, etag)
                sent = await botocore_request(
                    client, source.bucket, key, f"bytes={start}-{end - 1}", etag
                )
                assert url == sent.url and url.startswith(prefix), key
                ours = {k.lower(): _text(v) for k, v in headers.items()}
                theirs = {k.lower(): _text(v) for k, v in sent.headers.items()}
                names = _signed_names(theirs["authorization"])
                assert _signed_names(ours["authorization"]) == names, key
                assert ours["authorization"] == theirs["authorization"], key
                for name in names:  # the values sent are the values signed
                    if name != "host":
                        assert ours[name] == theirs[name], (key, name)
                assert ours["host"] == botocore.auth._host_from_url(sent.url)
                token = env.get("AWS_SESSION_TOKEN") or env.get("OBS_SECURITY_TOKEN")
                assert ours.get("x-amz-security-token") == token
                assert ("if-match" in names) == bool(etag)
    finally:
        await source.close()
        await ctx.close()


@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEXAMPLE//token+="])
def test_listing_and_head_signatures_equal_botocores(aws_env, token):
    """Requests with a query (ListObjectsV2, as list_page builds them) and HEADs: the
    headers sign_v4 adds equal those of botocore's S3SigV4Auth at the same instant."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    creds = s3_sign.StaticCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                      token)  # fmt: skip
    queries = ["", "list-type=2", "encoding-type=url&list-type=2&max-keys=1000&prefix=",
               "continuation-token=1%2Fab%2Bc%3D%3D&encoding-type=url&list-type=2&max-keys=1000"
               "&prefix=clips%2FCaf%C3%A9%20%C3%BC%2F",
               "encoding-type=url&list-type=2&max-keys=1000&prefix=a%2Bb&start-after=a%2Bb%2Fz~",
               "b=2&a=&a=1&c"]  # fmt: skip
    for base in ("https://my-bucket.s3.eu-west-2.amazonaws.com/",
                 "http://127.0.0.1:9000/minio-bucket", "https://[::1]:8443/b"):  # fmt: skip
        for method in ("GET", "HEAD"):
            for query in queries:
                url = f"{base}?{query}" if query else base
                host = s3_sign.host_from_url(url)
                ours = s3_sign.sign_v4(method, url, {"host": host}, creds, "eu-west-2")
                request = AWSRequest(method=method, url=url, headers={"host": host})
                S3SigV4Auth(Credentials(creds.access_key, creds.secret_key, token), "s3",
                            "eu-west-2").add_auth(request)  # fmt: skip
                assert ours == dict(request.headers.items()), url
                assert host == botocore.auth._host_from_url(url)


async def test_refreshable_credentials_are_fetched_per_request(aws_env):
    from aiobotocore.credentials import AioRefreshableCredentials

    calls: list[int] = []

    async def refresh() -> dict[str, str]:
        calls.append(1)
        soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)  # always due for refresh
        return {"access_key": f"AK{len(calls)}", "secret_key": f"SK{len(calls)}",
                "token": f"TOKEN{len(calls)}", "expiry_time": soon.isoformat()}  # fmt: skip

    ctx = SourceContext(SourceOptions())
    source = open_source("s3://my-bucket", ctx)
    try:
        fast = await _fast_for(source, "eu-west-2")
        fast._credentials = AioRefreshableCredentials.create_from_metadata(
            await refresh(), refresh, "test"
        )
        _, first = await fast.signed("k.mp4", 0, 10, None)
        _, second = await fast.signed("k.mp4", 0, 10, None)
        assert "Credential=AK2/" in first["Authorization"]
        assert first["X-Amz-Security-Token"] == "TOKEN2"
        assert "Credential=AK3/" in second["Authorization"]
        assert second["X-Amz-Security-Token"] == "TOKEN3"
    finally:
        await source.close()
        await ctx.close()


async def test_when_the_fast_path_does_not_apply(aws_env, tmp_path):
    ctx = SourceContext(SourceOptions())
    try:
        source = open_source("s3://my-bucket", ctx)  # region never detected (--enrich)
        assert await source._fast_path() is False
        await source.close()
        source = open_source("s3://my-bucket", ctx)
        aws_env.setenv("PROBER_S3_FASTPATH", "0")
        await source.client()
        source.region = "eu-west-2"
        assert await source._fast_path() is False
        await source.close()
        aws_env.delenv("PROBER_S3_FASTPATH")
        source = open_source("arn:aws:s3::123456789012:accesspoint/mfzwi23gnjvgw.mrap", ctx)
        await source.client()
        source.region = "us-east-1"
        assert await source._fast_path() is False  # SigV4A through the access point
        await source.close()
        # settings the session-only decision leaves to a client, which then says no
        config = tmp_path / "aws-config"
        aws_env.setenv("AWS_CONFIG_FILE", str(config))
        for setting in ("use_accelerate_endpoint = true", "signature_version = s3",
                        "use_dualstack_endpoint = true"):  # fmt: skip
            config.write_text(f"[default]\ns3 =\n    {setting}\n")
            source = open_source("s3://my-bucket", ctx)
            source.region = "eu-west-2"
            assert await source._fast_from_session() is None, setting
            assert await source._fast_path() is False, setting
            await source.close()
        config.write_text("[default]\ns3 =\n    addressing_style = path\n")
        source = open_source("s3://my-bucket", ctx)
        source.region = "eu-west-2"
        fast = await source._fast_from_session()
        assert fast is not None and fast.base_url == "https://s3.eu-west-2.amazonaws.com/my-bucket/"
        await source.close()
        aws_env.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
        for env in ("AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT"):
            aws_env.setenv(env, "true")
            source = open_source("s3://my-bucket", ctx)
            await source.client()
            source.region = "eu-west-2"
            assert await source._fast_path() is False, env
            await source.close()
            aws_env.delenv(env)
    finally:
        await ctx.close()
    assert object_base_url("b--x-s3", "us-east-1", None, custom=False, addressing=None) is None
    assert object_base_url("b", "us-east-1", None, custom=True, addressing=None) is None
    assert object_base_url("b", "us-east-1", "https://s3-external-1.amazonaws.com",
                           custom=False, addressing=None) is None  # fmt: skip
    assert (
        object_base_url("bkt", "eu-de", "https://obs.eu-de.otc.t-systems.com", custom=True,
                        addressing="virtual")
        == "https://bkt.obs.eu-de.otc.t-systems.com/"
    )  # fmt: skip
    assert (
        object_base_url("bkt", "eu-west-1", None, custom=False, addressing="path")
        == "https://s3.eu-west-1.amazonaws.com/bkt/"
    )


# --------------------------------------------------------------- reads against moto
def _on_moto(moto_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """This process's clients pointed at moto, with the fast path on."""
    for name, value in moto_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PROBER_S3_FASTPATH", raising=False)


def _spy(monkeypatch: pytest.MonkeyPatch, client: Any, method: str) -> tuple[list[Any], Any]:
    """(the calls made from now on, the real method) of an aiobotocore client method."""
    calls: list[Any] = []
    real = getattr(client, method)

    async def spy(**kwargs: Any) -> Any:
        calls.append(kwargs)
        return await real(**kwargs)

    monkeypatch.setattr(client, method, spy)
    return calls, real


async def test_fast_reads_against_moto(moto_server, unique_name, monkeypatch):
    bucket = unique_name("fast")
    moto_server.create_bucket(bucket, region="eu-west-2")
    blobs = {key: f"{i:04d}:{key}".encode() * 50 for i, key in enumerate(E2E_KEYS)}
    for key, data in blobs.items():
        moto_server.put(bucket, key, data)
    _on_moto(moto_server, monkeypatch)
    ctx = SourceContext(SourceOptions())
    source = open_source(f"s3://{bucket}/", ctx)
    try:
        entries = {e.key: e async for e in source.entries()}
        assert source.region == "eu-west-2" and set(entries) == set(blobs)
        assert source._client is None  # the region came from one HEAD, not a client
        client = await source.client()
        calls, _ = _spy(monkeypatch, client, "get_object")
        for key, data in blobs.items():
            entry = entries[key]
            assert await source.read(entry, 3, 40) == data[3:40], key
            # a bare entry (--enrich) learns size and ETag from the answer
            bare = Entry(url="x", key=key, handle=key)
            assert await source.read(bare, 0, 10) == data[:10]
            assert bare.size == len(data) and bare.etag == entry.etag
        assert isinstance(source._fast, FastRangedGet) and calls == []
        # errors: a missing key, an ETag that no longer matches
        with pytest.raises(ObjectError) as missing:
            await source.read(Entry(url="x", key="gone.mp4", handle="gone.mp4"), 0, 10)
        assert str(missing.value) == "HTTP 404 NoSuchKey" and missing.value.status == 404
        stale = Entry(url="x", key=E2E_KEYS[0], handle=E2E_KEYS[0], etag="0" * 32)
        with pytest.raises(ObjectError) as changed:
            await source.read(stale, 0, 10)
        assert changed.value.reason == "changed" and changed.value.status == 412
        assert calls == []
    finally:
        await source.close()
        await ctx.close()


async def test_direct_listing_equals_botocores(moto_server, unique_name, monkeypatch):
    """Listing pages come straight from the store (no botocore parsing), with the same
    keys, sizes and ETags as aiobotocore's list_objects_v2, across page boundaries."""
    bucket = unique_name("flist")
    moto_server.create_bucket(bucket, region="eu-west-2")
    keys = [*E2E_KEYS, *(f"many/{i:04d} +%&<'\".mp4" for i in range(1005))]
    for key in keys:
        moto_server.put(bucket, key, key.encode())
    _on_moto(moto_server, monkeypatch)
    ctx = SourceContext(SourceOptions())
    source = open_source(f"s3://{bucket}/", ctx)
    try:
        client = await source.client()
        calls, real = _spy(monkeypatch, client, "list_objects_v2")
        direct = [(e.key, e.size, e.etag) async for e in source.entries()]
        assert calls == [] and isinstance(source._fast, FastRangedGet)
        expected = []
        params: dict[str, Any] = {"Bucket": bucket, "MaxKeys": 1000}
        while True:
            page = await real(**params)
            expected += [(o["Key"], o["Size"], o["ETag"].strip('"')) for o in page["Contents"]]
            if not page.get("IsTruncated"):
                break
            params["ContinuationToken"] = page["NextContinuationToken"]
        assert direct == [e for e in expected if not e[0].endswith("/")]
        assert len(direct) == len(keys)

        # listed in key ranges side by side (--state's split points), through either
        # path: the same entries in the same order, whatever the split keys are
        ordered = sorted(keys)
        splits = {
            "sampled": ordered[5::7],
            "one range over 1,000 keys": [ordered[2]],
            "missing and stale keys": ["a", "clips/zzz", "many/0500 x", "zzzz", "many/"],
            "tricky, unsorted, repeated": [*reversed(E2E_KEYS), *E2E_KEYS, ordered[-1]],
        }
        for fast in ("1", "0"):
            monkeypatch.setenv("PROBER_S3_FASTPATH", fast)
            for label, split in splits.items():
                ranged_ctx = SourceContext(SourceOptions(), hints=_Hints(split, source))
                ranged = open_source(f"s3://{bucket}/", ranged_ctx)
                try:
                    got = [(e.key, e.size, e.etag) async for e in ranged.entries()]
                finally:
                    await ranged.close()
                    await ranged_ctx.close()
                assert got == direct, (fast, label)
    finally:
        await source.close()
        await ctx.close()


class _Hints:
    """What --state would offer: these keys' URLs, as the source itself names objects."""

    def __init__(self, keys: list[str], source: Any) -> None:
        self.urls = [source.object_url(k) for k in keys]

    async def split_urls(self, url_prefix: str, every: int) -> list[str]:
        return [u for u in self.urls if u.startswith(url_prefix)]


LAYOUTS = {  # one <Contents> per entry, as stores lay them out
    "S3": b"<Contents><Key>%s</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified>"
    b"<ETag>%s</ETag><Size>%s</Size><StorageClass>STANDARD</StorageClass></Contents>",
    "size first": b"<Contents><Key>%s</Key><Size>%s</Size><ETag>%s</ETag></Contents>",
}


@pytest.mark.parametrize(
    "layout", ["S3", "raw quotes", "&#34;", "size first", "one without ETag", "odd ETag"]
)
def test_list_page_parser_unescapes_and_decodes(layout):
    from prober.sources.s3_sign import _parse_ordered, parse_list_page

    items = [
        (b"a+b%2Bc%26d/%C3%A9.mp4", b"&quot;abc-2&quot;", b"10"),
        (b"x%3C%3E.mp4", b"&quot;e&quot;", b"0"),
        (b"z.mp4", b"&quot;f&quot;", b"7"),
    ]

    def contents(key: bytes, etag: bytes, size: bytes) -> bytes:
        if layout == "size first":
            return LAYOUTS["size first"] % (key, size, etag)
        if layout in ("raw quotes", "&#34;"):
            etag = etag.replace(b"&quot;", b'"' if layout == "raw quotes" else b"&#34;")
        return LAYOUTS["S3"] % (key, etag, size)

    listed = b"".join(contents(*item) for item in items)
    expected = [("a b+c&d/é.mp4", 10, "abc-2"), ("x<>.mp4", 0, "e"), ("z.mp4", 7, "f")]
    if layout == "one without ETag":
        listed = listed.replace(b"<ETag>&quot;e&quot;</ETag>", b"")
        expected[1] = ("x<>.mp4", 0, None)
    if layout == "odd ETag":
        listed = listed.replace(b"&quot;e&quot;", b"&quot;e&amp;1&quot;")
        expected[1] = ("x<>.mp4", 0, "e&1")
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>b</Name>'
        b"<IsTruncated>true</IsTruncated><EncodingType>url</EncodingType>"
        + listed
        + b"<NextContinuationToken>1/aG9+&amp;=</NextContinuationToken></ListBucketResult>"
    )
    objects, token = parse_list_page(body)
    assert objects == expected
    assert token == "1/aG9+&="
    # S3's own layout takes the one-findall path; the others the field-by-field one
    usual = layout in ("S3", "raw quotes", "&#34;")
    assert (_parse_ordered(body, True) is not None) == usual
    raw = body.replace(b"<EncodingType>url</EncodingType>", b"").replace(b"true", b"false")
    objects, token = parse_list_page(raw)
    assert objects[0][0] == "a+b%2Bc%26d/%C3%A9.mp4" and token is None  # not encoded: as is


# --------------------------------------------- error mapping = the aiobotocore path's
ERRORS: dict[str, tuple[int, str | None, dict[str, str]]] = {
    "slow.mp4": (503, "SlowDown", {"Retry-After": "3"}),
    "throttled.mp4": (400, "Throttling", {}),
    "timeout.mp4": (400, "RequestTimeout", {}),
    "changed.mp4": (412, "PreconditionFailed", {}),
    "missing.mp4": (404, "NoSuchKey", {}),
    "denied.mp4": (403, "AccessDenied", {}),
    "expired.mp4": (400, "ExpiredToken", {}),
    "internal.mp4": (500, "InternalError", {}),
    "bare503.mp4": (503, None, {}),
    "bare429.mp4": (429, None, {"Retry-After": "2"}),
}


@pytest.fixture
async def s3_error_server() -> Any:
    async def handle(request: web.Request) -> web.Response:
        key = request.match_info["key"]
        status, code, headers = ERRORS[key]
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>scripted</Message><RequestId>R</RequestId></Error>"
            if code
            else ""
        )
        return web.Response(status=status, body=body.encode(), headers=headers,
                            content_type="application/xml" if code else None)  # fmt: skip

    app = web.Application()
    app.router.add_route("GET", "/{bucket}/{key:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_errors_map_like_the_botocore_path(aws_env, s3_error_server):
    ctx = SourceContext(SourceOptions(endpoint_url=s3_error_server, region="us-east-1"))
    source = open_source("s3://scripted", ctx)
    try:
        await _fast_for(source, "us-east-1")
        for key in ERRORS:
            entry = Entry(url="x", key=key, handle=key, etag="abc")
            with pytest.raises(ObjectError) as fast:
                await source.read(entry, 0, 10)
            with pytest.raises(ObjectError) as slow:
                await source._botocore_read(entry, 0, 10)
            got = [(type(e.value), e.value.reason, e.value.status, e.value.retry_after, str(e.value))
                   for e in (fast, slow)]  # fmt: skip
            assert got[0] == got[1], key
        assert isinstance(source._fast, FastRangedGet)
    finally:
        await source.close()
        await ctx.close()
    assert status_error(503, "SlowDown", "3").retry_after == 3.0
    assert status_error(400, "RequestTimeout", None).retryable
    assert not status_error(403, "AccessDenied", None).retryable


def test_plain_environment_is_read_only_when_it_decides_everything(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # for ~/.aws/config
    none = str(tmp_path / "none")
    env = {"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK", "AWS_CONFIG_FILE": none,
           "AWS_SHARED_CREDENTIALS_FILE": none, "PATH": "/bin"}  # fmt: skip
    plain = s3_env.plain(env)
    assert plain == s3_sign.Settings(s3_sign.StaticCredentials("AK", "SK"), None)
    plain = s3_env.plain({**env, "AWS_SESSION_TOKEN": "T", "AWS_ENDPOINT_URL": "http://a",
                          "AWS_ENDPOINT_URL_S3": "http://s3", "AWS_CA_BUNDLE": "/ca.pem"})  # fmt: skip
    assert plain == s3_sign.Settings(
        s3_sign.StaticCredentials("AK", "SK", "T"), "http://s3", ca_bundle="/ca.pem"
    )
    assert "SK" not in repr(plain) and "'T'" not in repr(plain)  # secrets stay out of logs
    (tmp_path / "exists").write_text("")
    for change in ({"AWS_PROFILE": "dev"}, {"AWS_SECURITY_TOKEN": "T"},
                   {"AWS_S3_US_EAST_1_REGIONAL_ENDPOINT": "regional"},
                   {"AWS_USE_FIPS_ENDPOINT": "true"}, {"AWS_CREDENTIAL_EXPIRATION": "2030"},
                   {"AWS_SESSION_TOKEN": ""}, {"AWS_SECRET_ACCESS_KEY": None},
                   {"AWS_CONFIG_FILE": str(tmp_path / "exists")},
                   {"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "exists")}):  # fmt: skip
        changed = {k: v for k, v in {**env, **change}.items() if v is not None}
        assert s3_env.plain(changed) is None, change  # botocore's chain decides
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "config").write_text("[default]\n")
    home = {k: v for k, v in env.items() if k != "AWS_CONFIG_FILE"}
    assert s3_env.plain(home) is None  # ~/.aws/config


@pytest.fixture(scope="module")
def tls_store(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """(https endpoint, CA bundle): the local object store behind a certificate of a
    private CA, holding ``tls-bucket/k.mp4`` (a path-style S3 read of it)."""
    import ssl

    import trustme

    ca = trustme.CA()
    bundle = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_tls)
    with HttpStore(ssl_context=server_tls) as store:
        store.put("tls-bucket/k.mp4", b"0123456789" * 10)
        yield store.url, bundle


@pytest.mark.parametrize("settings", ["environment", "botocore"])
async def test_ca_bundle_is_trusted(aws_env, tls_store, tmp_path, settings):
    """AWS_CA_BUNDLE (or a profile's ca_bundle) is what the fast path trusts, as botocore:
    with it the private CA's store is read, without it the certificate is refused."""
    endpoint, bundle = tls_store
    if settings == "botocore":
        config = tmp_path / "config"
        config.write_text(f"[default]\nca_bundle = {bundle}\n")
        aws_env.setenv("AWS_CONFIG_FILE", str(config))
        aws_env.delenv("AWS_CA_BUNDLE", raising=False)
    else:
        aws_env.setenv("AWS_CA_BUNDLE", str(bundle))
    ctx = SourceContext(SourceOptions(endpoint_url=endpoint, timeout=5))
    try:
        source = open_source("s3://tls-bucket", ctx)
        await _fast_for(source, "us-east-1")
        entry = Entry(url="x", key="k.mp4", handle="k.mp4")
        assert await source.read(entry, 10, 15) == b"01234"
        await source.close()
        aws_env.delenv("AWS_CA_BUNDLE", raising=False)
        aws_env.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
        source = open_source("s3://tls-bucket", ctx)
        await _fast_for(source, "us-east-1")
        with pytest.raises(ObjectError) as exc:
            await source.read(entry, 10, 15)
        assert exc.value.reason == "network"  # certificate verify failed
        await source.close()
    finally:
        await ctx.close()


async def test_network_errors_are_retryable(aws_env):
    from prober.sources.context import SourceContext as Ctx

    ctx = Ctx(SourceOptions(endpoint_url="http://127.0.0.1:9", timeout=2))
    source = open_source("s3://nowhere", ctx)
    try:
        await _fast_for(source, "us-east-1")
        with pytest.raises(ObjectError) as exc:
            await source.read(Entry(url="x", key="k.mp4", handle="k.mp4"), 0, 10)
        assert exc.value.reason == "network" and exc.value.retryable
    finally:
        await source.close()
        await ctx.close()


# ------------------------------------------------------ (b) same results on and off
def _runs_agree(run_prober: Any, tmp_path: Path, spec: str, env: dict[str, str]) -> dict:
    """Three runs: the fast path with settings from the environment alone (no botocore
    loaded at all, as ``-X importtime`` shows), the fast path with botocore's session
    (an AWS config file exists), and aiobotocore throughout. They agree."""
    config = tmp_path / "aws-config"
    config.write_text("[default]\n")
    base = {k: None for k in os.environ if k.startswith("AWS_")}  # only what the test sets
    base.update(env, AWS_CONFIG_FILE=str(tmp_path / "none"),
                AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"))  # fmt: skip
    modes = {"environment": {"PROBER_S3_FASTPATH": "1"},
             "botocore": {"PROBER_S3_FASTPATH": "1", "AWS_CONFIG_FILE": str(config)},
             "off": {"PROBER_S3_FASTPATH": "0"}}  # fmt: skip
    outs = {}
    for mode, extra in modes.items():
        out, rep, fail = (tmp_path / f"{n}-{mode}" for n in ("spec.json", "r.jsonl", "f.csv"))
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "prober", spec, "-o", str(out),
             "--report", str(rep), "--failures", str(fail), "--concurrency", "64"],
            env=merged_env({**base, **extra}), cwd=tmp_path, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        assert proc.returncode in (0, 3), proc.stderr[-3000:]
        loaded = re.search(r"^import time:.*\| +botocore\b", proc.stderr, re.M) is not None
        assert loaded == (mode != "environment"), mode
        report = read_report(rep)
        for line in report.values():
            line.pop("latency_ms", None)
        failures = sorted(fail.read_text().splitlines())  # in order of completion
        outs[mode] = (proc.returncode, json.loads(out.read_text()), report, failures)
    for mode in ("botocore", "off"):
        assert outs[mode][0] == outs["environment"][0]
        assert outs[mode][1] == outs["environment"][1]  # the spec
        assert outs[mode][2] == outs["environment"][2]  # every report line
        assert outs[mode][3] == outs["environment"][3]  # failures
    return outs["environment"][2]


def test_fast_path_on_and_off_give_the_same_results(sample_media, moto_server, run_prober,
                                                    tmp_path, unique_name):  # fmt: skip
    root, manifest = sample_media
    bucket = unique_name("onoff")
    moto_server.create_bucket(bucket, region="eu-west-2")
    moto_server.upload_tree(bucket, root)
    report = _runs_agree(run_prober, tmp_path, f"s3://{bucket}/", moto_server.env())
    videos = [k for k, t in manifest.items() if t["expect"] == "video"]
    assert all(report[k]["status"] == "ok" for k in videos)
    assert any(report[k]["status"] == "failed" for k in manifest if k.startswith("bad/"))


@pytest.mark.corpus
def test_corpus_fast_path_on_and_off(corpus_dir, moto_server, run_prober, tmp_path,
                                     unique_name):  # fmt: skip
    bucket = unique_name("corpusonoff")
    moto_server.create_bucket(bucket)
    moto_server.upload_tree(bucket, corpus_dir)
    _runs_agree(run_prober, tmp_path, f"s3://{bucket}/", moto_server.env())


# ---------------------------------------------- (c) wrong region: back to aiobotocore
FILES = ["mp4/h264_aac_faststart.mp4", "mp4/h264_aac_moov_end.mp4", "mkv/h264_aac.mkv",
         "webm/vp9_opus.webm", "ts/h264_aac.ts"]  # fmt: skip


class BenchStore:
    """bench/store.py (the benchmark's S3 face) in a child process."""

    def __init__(self, objects: list[tuple[str, Path]], tmp: Path, *args: str) -> None:
        manifest = tmp / "manifest.json"
        manifest.write_text(json.dumps({"bucket": "bench",
                                        "objects": [[k, str(p)] for k, p in objects]}))  # fmt: skip
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "bench" / "store.py"), str(manifest), "--latency", "0",
             *args],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().split()[0]

    def stats(self) -> dict[str, Any]:
        import urllib.request

        with urllib.request.urlopen(self.url + "/__stats", timeout=10) as resp:
            data: dict[str, Any] = json.loads(resp.read())
            return data

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def region_store(request, sample_media, tmp_path) -> Iterator[tuple[BenchStore, dict]]:
    root, _ = sample_media
    objects = [(f"v/{i} {Path(rel).name}", root / rel) for i, rel in enumerate(FILES)]
    store = BenchStore(objects, tmp_path, "--region", "eu-west-2",
                       "--wrong-region-status", str(request.param))  # fmt: skip
    try:
        yield store, dict(objects)
    finally:
        store.close()


@pytest.mark.parametrize("given", ["us-west-1", None])
@pytest.mark.parametrize("region_store", [400, 301], indirect=True)
async def test_bucket_in_another_region(aws_env, region_store, given):
    """The bucket is in eu-west-2; the store answers a request signed for another region
    as S3 does (400 naming the region, or a 301).

    ``--region us-west-1`` (wrong): listing and reads still succeed, through botocore's
    redirector. No ``--region`` (AWS_REGION us-west-1): one HEAD of the bucket learns
    eu-west-2 from the refusal, no botocore client is built, nothing else is refused."""
    store, objects = region_store
    aws_env.setenv("AWS_REGION", "us-west-1")
    ctx = SourceContext(SourceOptions(endpoint_url=store.url, region=given))
    source = open_source("s3://bench/", ctx)
    try:
        entries = [e async for e in source.entries()]
        assert source.region == (given or "eu-west-2") and len(entries) == len(objects)
        for entry in entries:
            data = objects[entry.key].read_bytes()
            assert await source.read(entry, 5, 1000) == data[5:1000]
            if given:
                assert source._fast is False  # switched for good on the first answer
        stats = store.stats()
        assert stats["methods"] == {"GET": len(objects)}
        if given:
            assert stats["rejected"] == 2  # one listing page (redirected), one direct read
        else:
            assert isinstance(source._fast, FastRangedGet) and source._client is None
            assert stats["rejected"] == 1  # the HEAD, answered with the region
    finally:
        await source.close()
        await ctx.close()


@pytest.mark.parametrize("region_store", [400], indirect=True)
async def test_region_head_is_signed_for_the_profiles_region(aws_env, region_store, tmp_path):
    """The HEAD is signed for the configured region, the config file's included: when
    that is the bucket's, nothing is refused at all."""
    store, _ = region_store
    aws_env.delenv("AWS_REGION")
    config = tmp_path / "config"
    config.write_text("[default]\nregion = eu-west-2\n")
    aws_env.setenv("AWS_CONFIG_FILE", str(config))
    ctx = SourceContext(SourceOptions(endpoint_url=store.url))
    source = open_source("s3://bench/", ctx)
    try:
        assert await source.detect_region() == "eu-west-2"
        assert store.stats()["rejected"] == 0 and source._client is None
    finally:
        await source.close()
        await ctx.close()


@pytest.mark.parametrize("region_store", [400], indirect=True)
def test_wrong_region_end_to_end(region_store, run_prober, tmp_path):
    store, objects = region_store
    env = {"AWS_ENDPOINT_URL": store.url, "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s",
           "AWS_REGION": "eu-west-2"}  # fmt: skip
    reports, rejected = {}, {}
    for region in ("eu-west-2", "us-west-1"):
        before = store.stats()["rejected"]
        rep = tmp_path / f"{region}.jsonl"
        proc = run_prober("s3://bench/", "--region", region, "--report", rep, "-o",
                          tmp_path / "spec.json", "--url-style", "s3", env=env)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        reports[region] = {
            k: (v["status"], v["videoMetadata"], v["bytes_fetched"], v["requests"])
            for k, v in read_report(rep).items()
        }
        rejected[region] = store.stats()["rejected"] - before
    assert reports["us-west-1"] == reports["eu-west-2"]
    assert len(reports["eu-west-2"]) == len(objects)
    assert all(status == "ok" for status, *_ in reports["eu-west-2"].values())
    # the right region costs no rejected request; the wrong one the listing's first page
    # and at most one direct read per object in flight when the first answer came back
    assert rejected["eu-west-2"] == 0
    assert 2 <= rejected["us-west-1"] <= 1 + len(objects)
