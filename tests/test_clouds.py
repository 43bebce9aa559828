"""GCS, Azure Blob, OBS and S3 Multi-Region Access Points, end to end against emulators.

* GCS: fake-gcs-server (``gcs_server``), found through ``STORAGE_EMULATOR_HOST``.
* Azure: Azurite (``azurite``), through ``AZURE_STORAGE_CONNECTION_STRING``, or
  ``AZURE_STORAGE_ACCOUNT`` + key/SAS with ``--endpoint-url`` as the account URL.
* OBS: moto stands in for the OBS endpoint (``--endpoint-url``); objectUrls still take
  the ``obs.REGION.otc.t-systems.com`` form.
* MRAP: moto implements no access points. Under an endpoint override prober addresses the
  bucket named by the ARN's resource (``ALIAS.mrap``), so the tests create a moto bucket
  with that name; what they check is the ARN parsing, the objectUrl (the ARN + the key)
  and that listing and reads reach that bucket. Real MRAP routing (SigV4A through
  ``ALIAS.accesspoint.s3-global.amazonaws.com``) is botocore's and is not exercised here.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from prober.model import Entry
from prober.sources import SourceContext, SourceOptions, open_source
from tests.corpus_check import read_report
from tests.test_cli import _check_against_ffprobe

TRICKY = [
    "tricky names/Café clip+1 (copy).mp4",
    "tricky names/hash#tag 100% done?.mp4",
    "tricky names/a b/c d.mp4",
    "tricky names/a&b=c;d'e\"f.mp4",
    "tricky names/%2F literal percent.mp4",
]
TRICKY_ENCODED = sorted(
    [
        "tricky%20names/Caf%C3%A9%20clip%2B1%20%28copy%29.mp4",
        "tricky%20names/hash%23tag%20100%25%20done%3F.mp4",
        "tricky%20names/a%20b/c%20d.mp4",
        "tricky%20names/a%26b%3Dc%3Bd%27e%22f.mp4",
        "tricky%20names/%252F%20literal%20percent.mp4",
    ]
)
MRAP_ALIAS = "mfzwi23gnjvgw.mrap"
MRAP_ARN = f"arn:aws:s3::123456789012:accesspoint/{MRAP_ALIAS}"


def _one_line(proc: Any) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def _failures(path: Path) -> dict[str, str]:
    with path.open(newline="", encoding="utf-8") as fh:
        return {r["objectUrl"]: r["error"] for r in csv.DictReader(fh)}


def _mixed_bucket(store: Any, container: str, source: str, base: str, sample_media: Any,
                  run_prober: Any, tmp_path: Path) -> dict:  # fmt: skip
    """Upload the sample media to a new bucket (container) of an emulator, run prober
    over ``source`` and make the same checks as test_cli's S3 mixed bucket, with
    ``base`` as the objectUrl base. Returns the report."""
    root, manifest = sample_media
    store.create_bucket(container)
    store.upload_tree(container, root)
    out, fail, rep = tmp_path / "spec.json", tmp_path / "f.csv", tmp_path / "r.jsonl"
    proc = run_prober(source, "-o", out, "--failures", fail, "--report", rep,
                      env=store.env())  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    report = read_report(rep)
    _check_against_ffprobe(report, root, manifest)
    spec = json.loads(out.read_text())
    want_videos = {rel for rel, i in manifest.items() if i["expect"] == "video"}
    assert len(spec["videos"]) == len(want_videos)
    assert all(v["objectUrl"].startswith(base) for v in spec["videos"])
    assert {i["objectUrl"] for i in spec["images"]} == {
        base + rel for rel, i in manifest.items() if i["expect"] == "image"
    }
    rows = _failures(fail)
    assert set(rows) == {
        base + rel.replace(" ", "%20") for rel, i in manifest.items() if i["expect"] == "bad"
    }
    reasons = {url.rsplit("/", 1)[1]: err for url, err in rows.items()}
    assert reasons["zero_bytes.mp4"].startswith("empty")
    assert reasons["truncated_moov_end.mp4"].startswith("truncated")
    assert reasons["text.mov"].startswith("not a media file")
    return report


def _put_tricky(store: Any, container: str, data: bytes) -> None:
    for key in TRICKY:
        store.put(container, key, data)
    store.put(container, "tricky names2/not-in-the-folder.mp4", data)


# =============================================================================== GCS
def test_gcs_mixed_bucket(sample_media, gcs_server, run_prober, tmp_path, unique_name):
    bucket = unique_name("gmixed")
    report = _mixed_bucket(gcs_server, bucket, f"gs://{bucket}/", f"gs://{bucket}/",
                           sample_media, run_prober, tmp_path)  # fmt: skip
    # the generation is kept as the entry's version, for incremental runs
    generations = {o["name"]: o["generation"] for o in gcs_server.list_objects(bucket)}
    assert all(line["etag"] == str(generations[key]) for key, line in report.items())


def test_gcs_tricky_keys_and_https_style(sample_media, gcs_server, run_prober, tmp_path,
                                         unique_name):  # fmt: skip
    root, _ = sample_media
    bucket = unique_name("gtricky")
    gcs_server.create_bucket(bucket)
    _put_tricky(gcs_server, bucket, (root / "mp4/h264_aac_faststart.mp4").read_bytes())
    for style, base in [
        (None, f"gs://{bucket}/"),
        ("https", f"https://storage.cloud.google.com/{bucket}/"),
    ]:
        out = tmp_path / "spec.json"
        args = ["--url-style", style] if style else []
        # "tricky names" (no slash) is a folder: "tricky names2/" is not in it
        proc = run_prober(f"gs://{bucket}/tricky names", "-o", out, *args, env=gcs_server.env())
        assert proc.returncode == 0, proc.stderr
        spec = json.loads(out.read_text())
        assert sorted(v["objectUrl"] for v in spec["videos"]) == [base + k for k in TRICKY_ENCODED]
        assert all(v["videoMetadata"]["duration"] == pytest.approx(2.0) for v in spec["videos"])


async def test_gcs_listing_is_paginated(sample_media, gcs_server, unique_name, monkeypatch):
    import prober.sources.gcs as gcs

    bucket = unique_name("gpages")
    gcs_server.create_bucket(bucket)
    for i in range(11):
        gcs_server.put(bucket, f"p/{i:02d}.mp4", b"x" * i)
    gcs_server.put(bucket, "p/", b"")  # a folder placeholder is not an object
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.endpoint)
    monkeypatch.setattr(gcs, "PAGE_SIZE", "4")
    ctx = SourceContext(SourceOptions())
    source = open_source(f"gs://{bucket}/p/", ctx)
    calls = _spy_on_listing(source, monkeypatch)
    try:
        entries = [e async for e in source.entries()]
        assert [e.key for e in entries] == [f"p/{i:02d}.mp4" for i in range(11)]
        assert [e.size for e in entries] == list(range(11))
        assert len(calls) == 3 and all(c["maxResults"] == "4" for c in calls)
        assert "pageToken" not in calls[0] and calls[1]["pageToken"] and calls[2]["pageToken"]
        # ranged reads: explicit start-end, clamped to the size
        assert await source.read(entries[10], 2, 5) == b"xxx"
        assert await source.read(entries[3], 1, 100) == b"xx"
        assert await source.read(entries[0], 0, 10) == b""
    finally:
        await source.close()
        await ctx.close()


async def test_gcs_listing_in_key_ranges(gcs_server, unique_name, monkeypatch):
    """With --state's split keys, GCS is listed in ranges from startOffset, side by
    side: the same entries in the same order, whatever the split keys are."""
    import prober.sources.gcs as gcs

    bucket = unique_name("granges")
    gcs_server.create_bucket(bucket)
    keys = [f"r/{i:02d}.mp4" for i in range(23)] + ["r/a b+c.mp4", "r/é.mp4", "other/x.mp4"]
    for key in keys:
        gcs_server.put(bucket, key, key.encode())
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.endpoint)
    monkeypatch.setattr(gcs, "PAGE_SIZE", "4")

    async def listed(splits: list[str] | None) -> tuple[list[str], list[dict[str, str]]]:
        ctx = SourceContext(SourceOptions())
        source = open_source(f"gs://{bucket}/r/", ctx)
        if splits is not None:
            ctx.hints = _Hints([source.object_url(k) for k in splits])
        calls = _spy_on_listing(source, monkeypatch)
        try:
            return [e.key async for e in source.entries()], calls
        finally:
            await source.close()
            await ctx.close()

    whole, _ = await listed(None)
    assert whole == sorted(k for k in keys if k.startswith("r/"))
    for splits in (["r/03.mp4", "r/11.mp4", "r/19.mp4"], ["r/a b+c.mp4", "a", "zzz"],
                   ["r/05.mp4", "r/05.mp4", "r/07.mp4", "r/0"]):  # fmt: skip
        got, calls = await listed(splits)
        assert got == whole, splits
        assert any("startOffset" in c for c in calls)


def _spy_on_listing(source: Any, monkeypatch: Any) -> list[dict[str, str]]:
    """The query parameters of every listing call the GCS source makes from now on."""
    calls: list[dict[str, str]] = []
    original = source.storage().list_objects

    async def spy(bucket: str, **kwargs: Any) -> Any:
        calls.append(dict(kwargs["params"]))
        return await original(bucket, **kwargs)

    monkeypatch.setattr(source.storage(), "list_objects", spy)
    return calls


class _Hints:
    def __init__(self, urls: list[str]) -> None:
        self.urls = urls

    async def split_urls(self, url_prefix: str, every: int) -> list[str]:
        return sorted(u for u in self.urls if u.startswith(url_prefix))


async def test_gcs_listing_retries_transient_errors_and_reads_map_statuses(
    gcs_server, unique_name, monkeypatch
):
    import aiohttp

    from prober.errors import HttpStatusError

    bucket = unique_name("gretry")
    gcs_server.create_bucket(bucket)
    gcs_server.put(bucket, "a.mp4", b"0123456789")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.endpoint)
    ctx = SourceContext(SourceOptions(retries=3))
    source = open_source(f"gs://{bucket}", ctx)
    original = source.storage().list_objects
    failures = [503, 429]

    async def flaky(bucket: str, **kwargs: Any) -> Any:
        if failures:
            raise aiohttp.ClientResponseError(
                None,  # type: ignore[arg-type]
                (),
                status=failures.pop(0),
                message="Service Unavailable: {}",
                headers={"Retry-After": "0"},  # type: ignore[arg-type]
            )
        return await original(bucket, **kwargs)

    monkeypatch.setattr(source.storage(), "list_objects", flaky)
    try:
        [entry] = [e async for e in source.entries()]
        assert failures == [] and entry.key == "a.mp4" and entry.size == 10
        assert await source.read(entry, 3, 6) == b"345"
        # an entry without a listed size (--enrich) learns it from the first read
        bare = Entry(url="gs://x/a.mp4", key="a.mp4", handle=source.handle_for("a.mp4"))
        assert await source.read(bare, 0, 4) == b"0123" and bare.size == 10
        gcs_server._request("DELETE", f"/storage/v1/b/{bucket}/o/a.mp4")
        with pytest.raises(HttpStatusError) as info:
            await source.read(entry, 0, 4)
        assert info.value.status == 404 and not info.value.retryable
    finally:
        await source.close()
        await ctx.close()


def test_gcs_missing_bucket_and_unreachable_endpoint(gcs_server, run_prober, tmp_path):
    out = tmp_path / "spec.json"
    out.write_text("OLD")
    proc = run_prober("gs://no-such-bucket-here/", "-o", out, env=gcs_server.env())
    assert proc.returncode == 1
    assert "gs://no-such-bucket-here/" in _one_line(proc)
    assert "does not exist" in proc.stderr
    proc = run_prober("gs://b/", "-o", out, "--retries", "0", "--timeout", "2",
                      env={"STORAGE_EMULATOR_HOST": "http://127.0.0.1:9"})  # fmt: skip
    assert proc.returncode == 1
    assert "cannot reach" in _one_line(proc)
    assert out.read_text() == "OLD"


def test_gcs_credentials_errors_are_one_line(http_store, run_prober, tmp_path):
    no_emulator = {"STORAGE_EMULATOR_HOST": None, "HOME": str(tmp_path),
                   "CLOUDSDK_CONFIG": str(tmp_path / "gcloud")}  # fmt: skip
    # nothing configured and no metadata server
    proc = run_prober("gs://b/", env={**no_emulator, "GOOGLE_APPLICATION_CREDENTIALS": None,
                                      "GCE_METADATA_HOST": "127.0.0.1:9"})  # fmt: skip
    assert proc.returncode == 1
    assert "no Google credentials found" in _one_line(proc)
    # a key file that does not exist
    proc = run_prober("gs://b/", env={**no_emulator,
                                      "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "nope.json")})  # fmt: skip
    assert proc.returncode == 1
    assert "GOOGLE_APPLICATION_CREDENTIALS" in _one_line(proc)
    # a key file that is not JSON
    garbage = tmp_path / "garbage.json"
    garbage.write_text("PRIVATEKEYMATERIAL not json")
    proc = run_prober("gs://b/", env={**no_emulator, "GOOGLE_APPLICATION_CREDENTIALS": str(garbage),
                                      "GCE_METADATA_HOST": "127.0.0.1:9"})  # fmt: skip
    assert proc.returncode == 1
    assert "is not a usable key file" in _one_line(proc)
    assert "PRIVATEKEYMATERIAL" not in proc.stderr
    # a key the token endpoint refuses: one line, no secret
    key = tmp_path / "user.json"
    key.write_text(json.dumps({
        "type": "authorized_user", "client_id": "id", "client_secret": "CLIENTSECRET123",
        "refresh_token": "REFRESHSECRET456", "token_uri": http_store.url + "/token",
    }))  # fmt: skip
    proc = run_prober("gs://b/", env={**no_emulator, "GOOGLE_APPLICATION_CREDENTIALS": str(key)})
    assert proc.returncode == 1
    assert "credentials rejected" in _one_line(proc)
    assert "SECRET" not in proc.stderr + proc.stdout


# =============================================================================== Azure
def test_azure_mixed_container(sample_media, azurite, run_prober, tmp_path, unique_name):
    container = unique_name("amixed")
    # under an emulator the objectUrl is the emulator's own account URL
    report = _mixed_bucket(azurite, container, f"az://{container}/",
                           f"{azurite.blob_endpoint}/{container}/", sample_media, run_prober,
                           tmp_path)  # fmt: skip
    etags = {
        b.name: b.etag.strip('"')
        for b in azurite.service.get_container_client(container).list_blobs()
    }
    assert all(line["etag"] == etags[key] for key, line in report.items())


def test_azure_tricky_keys(sample_media, azurite, run_prober, tmp_path, unique_name):
    root, _ = sample_media
    container = unique_name("atricky")
    azurite.create_container(container)
    _put_tricky(azurite, container, (root / "mp4/h264_aac_moov_end.mp4").read_bytes())
    out = tmp_path / "spec.json"
    proc = run_prober(f"az://{container}/tricky names", "-o", out, env=azurite.env())
    assert proc.returncode == 0, proc.stderr
    spec = json.loads(out.read_text())
    base = f"{azurite.blob_endpoint}/{container}/"
    assert sorted(v["objectUrl"] for v in spec["videos"]) == [base + k for k in TRICKY_ENCODED]
    assert all(v["videoMetadata"]["duration"] == pytest.approx(2.0) for v in spec["videos"])


def test_azure_wrong_key_is_one_line_without_the_key(azurite, run_prober, unique_name):
    container = unique_name("akey")
    azurite.create_container(container)
    wrong = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXlXcm9uZ0tleQ=="
    conn = azurite.connection_string.replace(azurite.key, wrong)
    proc = run_prober(f"az://{container}/", env={"AZURE_STORAGE_CONNECTION_STRING": conn})
    assert proc.returncode == 1
    line = _one_line(proc)
    assert line.startswith(f"prober: az://{container}/: ")
    assert "AZURE_STORAGE_CONNECTION_STRING" in line
    assert wrong not in proc.stderr + proc.stdout
    assert azurite.key not in proc.stderr + proc.stdout
    # the same with the key in AZURE_STORAGE_KEY and the account URL from --endpoint-url
    env = {"AZURE_STORAGE_CONNECTION_STRING": None, "AZURE_STORAGE_ACCOUNT": azurite.account,
           "AZURE_STORAGE_KEY": wrong}  # fmt: skip
    proc = run_prober(f"az://{container}/", "--endpoint-url", azurite.blob_endpoint, env=env)
    assert proc.returncode == 1
    assert "AZURE_STORAGE_KEY" in _one_line(proc)
    assert wrong not in proc.stderr + proc.stdout


def test_azure_missing_container_and_bad_configuration(azurite, run_prober, tmp_path):
    out = tmp_path / "spec.json"
    out.write_text("OLD")
    cases = [
        (["az://no-such-container/"], azurite.env(), "container 'no-such-container' does not exist"),
        (["az://c0ntainer/"], {"AZURE_STORAGE_CONNECTION_STRING": "not a connection string"},
         "not a valid connection string"),
        (["az://c0ntainer/"], {"AZURE_STORAGE_CONNECTION_STRING": None, "AZURE_STORAGE_ACCOUNT": None},
         "AZURE_STORAGE_CONNECTION_STRING"),
        (["az://c0ntainer/", "--retries", "0", "--timeout", "2"],
         {"AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string.replace(
             f":{azurite.port}/", ":9/")}, "cannot reach the endpoint http://127.0.0.1:9/"),
    ]  # fmt: skip
    for args, env, needle in cases:
        proc = run_prober(*args, "-o", out, env=env)
        assert proc.returncode == 1, (args, proc.stderr)
        assert needle in _one_line(proc)
        assert azurite.key not in proc.stderr
        assert out.read_text() == "OLD"


def _container_sas(azurite: Any, container: str, expiry: datetime) -> str:
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    return generate_container_sas(
        azurite.account,
        container,
        account_key=azurite.key,
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=expiry,
        start=datetime.now(UTC) - timedelta(hours=2),
    )


def test_azure_account_key_and_sas_from_the_environment(sample_media, azurite, run_prober,
                                                        tmp_path, unique_name):  # fmt: skip
    root, _ = sample_media
    container = unique_name("asas")
    azurite.create_container(container)
    azurite.put(container, "clips/a.mp4", (root / "mp4/h264_aac_faststart.mp4").read_bytes())
    base_env = {"AZURE_STORAGE_CONNECTION_STRING": None, "AZURE_STORAGE_ACCOUNT": azurite.account}
    endpoint = ["--endpoint-url", azurite.blob_endpoint]
    want = [f"{azurite.blob_endpoint}/{container}/clips/a.mp4"]

    proc = run_prober(f"az://{container}/", *endpoint, "-q",
                      env={**base_env, "AZURE_STORAGE_KEY": azurite.key})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert [v["objectUrl"] for v in json.loads(proc.stdout)["videos"]] == want

    sas = _container_sas(azurite, container, datetime.now(UTC) + timedelta(hours=1))
    proc = run_prober(f"az://{container}/", *endpoint, "-q",
                      env={**base_env, "AZURE_STORAGE_SAS_TOKEN": sas})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert [v["objectUrl"] for v in json.loads(proc.stdout)["videos"]] == want  # no SAS in it

    expired = _container_sas(azurite, container, datetime.now(UTC) - timedelta(hours=1))
    proc = run_prober(f"az://{container}/", *endpoint,
                      env={**base_env, "AZURE_STORAGE_SAS_TOKEN": expired})  # fmt: skip
    assert proc.returncode == 1
    assert "SAS token expired" in _one_line(proc)
    signature = next(p for p in expired.split("&") if p.startswith("sig="))
    assert signature not in proc.stderr and signature.split("=", 1)[1] not in proc.stderr


async def test_azure_https_sources_pick_credentials_in_order(monkeypatch):
    """https://ACCOUNT.blob.core.windows.net sources: parsing, credential order, redaction
    (no request is sent: the real endpoint is not reachable from tests)."""
    for var in ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY",
                "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_SAS_TOKEN"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    ctx = SourceContext(SourceOptions())

    async def pick(spec: str) -> Any:
        source = open_source(spec, ctx)
        try:
            source.client()
            return source
        finally:
            await source.close()

    sas = "sv=2024-05-04&sr=c&sp=rl&se=2099-01-01T00:00:00Z&sig=SECRETSIGNATURE"
    s = await pick(f"https://myacct.blob.core.windows.net/videos/clips?{sas}")
    assert (s.account, s.container, s.prefix, s.how) == ("myacct", "videos", "clips",
                                                          "the SAS in the URL")  # fmt: skip
    assert s.name == "https://myacct.blob.core.windows.net/videos/clips?REDACTED"
    assert s.object_url("clips/a b+c#.mp4") == (
        "https://myacct.blob.core.windows.net/videos/clips/a%20b%2Bc%23.mp4"
    )
    assert not s.single_blob
    s = await pick("https://myacct.blob.core.windows.net/videos/a.mp4?sr=b&sig=X")
    assert s.single_blob and s.prefix == "a.mp4"

    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING",
                       "DefaultEndpointsProtocol=https;AccountName=other;AccountKey=a2V5;"
                       "EndpointSuffix=core.windows.net")  # fmt: skip
    monkeypatch.setenv("AZURE_STORAGE_KEY", "a2V5")
    assert (await pick("https://myacct.blob.core.windows.net/videos")).how == "AZURE_STORAGE_KEY"
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING",
                       "DefaultEndpointsProtocol=https;AccountName=myacct;AccountKey=a2V5;"
                       "EndpointSuffix=core.windows.net")  # fmt: skip
    s = await pick("https://myacct.blob.core.windows.net/videos")
    assert s.how == "AZURE_STORAGE_CONNECTION_STRING"
    assert s.object_url("k.mp4") == "https://myacct.blob.core.windows.net/videos/k.mp4"
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    monkeypatch.delenv("AZURE_STORAGE_KEY")
    monkeypatch.setenv("AZURE_STORAGE_SAS_TOKEN", "?" + sas)
    assert (await pick("https://myacct.blob.core.windows.net/v")).how == "AZURE_STORAGE_SAS_TOKEN"
    monkeypatch.delenv("AZURE_STORAGE_SAS_TOKEN")
    assert (await pick("https://myacct.blob.core.windows.net/v")).how == "DefaultAzureCredential"
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT", "myacct")
    s = await pick("az://v/x")
    assert s.how == "DefaultAzureCredential"
    assert s.object_url("x/k.mp4") == "https://myacct.blob.core.windows.net/v/x/k.mp4"
    await ctx.close()


async def test_azure_listing_pages_and_read_errors(azurite, unique_name, monkeypatch):
    import prober.sources.azure as az
    from prober.errors import HttpStatusError, ObjectError

    container = unique_name("apages")
    azurite.create_container(container)
    for i in range(11):
        azurite.put(container, f"p/{i:02d}.mp4", b"x" * i)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    monkeypatch.setattr(az, "PAGE_SIZE", 4)
    ctx = SourceContext(SourceOptions())
    source = open_source(f"az://{container}/p", ctx)
    tokens: list[str | None] = []
    original = source._page

    async def spy(cc: Any, token: str | None) -> Any:
        tokens.append(token)
        return await original(cc, token)

    monkeypatch.setattr(source, "_page", spy)
    try:
        entries = [e async for e in source.entries()]
        assert [e.key for e in entries] == [f"p/{i:02d}.mp4" for i in range(11)]
        assert [e.size for e in entries] == list(range(11))
        assert len(tokens) == 3 and tokens[0] is None and all(tokens[1:])
        assert all(e.etag and not e.etag.startswith('"') for e in entries)
        # explicit start-end ranges, clamped to the listed size
        assert await source.read(entries[10], 2, 5) == b"xxx"
        assert await source.read(entries[3], 1, 100) == b"xx"
        bare = Entry(url="x", key="p/07.mp4", handle=source.handle_for("p/07.mp4"))
        assert await source.read(bare, 0, 4) == b"xxxx" and bare.size == 7
        # rewritten since the listing: the ETag no longer matches
        azurite.put(container, "p/05.mp4", b"y" * 5)
        with pytest.raises(ObjectError) as changed:
            await source.read(entries[5], 0, 5)
        assert changed.value.reason == "changed"
        azurite.service.get_blob_client(container, "p/06.mp4").delete_blob()
        with pytest.raises(ObjectError) as gone:  # Azurite: 412 for If-Match on a deleted blob
            await source.read(entries[6], 0, 5)
        assert gone.value.status in (404, 412) and not gone.value.retryable
        entries[6].etag = None
        with pytest.raises(HttpStatusError) as gone:
            await source.read(entries[6], 0, 5)
        assert gone.value.status == 404 and "BlobNotFound" in str(gone.value)
    finally:
        await source.close()
        await ctx.close()


async def test_azure_url_with_a_blob_sas_reads_that_blob(sample_media, azurite, unique_name,
                                                         monkeypatch):  # fmt: skip
    """The https form with a SAS in the URL (pointed at Azurite instead of
    ACCOUNT.blob.core.windows.net); a blob-scoped SAS cannot list, so that blob is read alone."""
    from azure.storage.blob import BlobSasPermissions, generate_blob_sas

    root, _ = sample_media
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    container = unique_name("ablob")
    azurite.create_container(container)
    data = (root / "mp4/h264_aac_faststart.mp4").read_bytes()
    azurite.put(container, "clips/a b.mp4", data)
    sas = generate_blob_sas(azurite.account, container, "clips/a b.mp4",
                            account_key=azurite.key, permission=BlobSasPermissions(read=True),
                            expiry=datetime.now(UTC) + timedelta(hours=1))  # fmt: skip
    ctx = SourceContext(SourceOptions())
    spec = f"https://{azurite.account}.blob.core.windows.net/{container}/clips/a%20b.mp4?{sas}"
    source = open_source(spec, ctx)
    assert source.single_blob and source.prefix == "clips/a b.mp4"
    assert source.name.endswith("?REDACTED") and "sig=" not in source.name
    source.account_url = azurite.blob_endpoint  # the emulator stands in for the account host
    try:
        [entry] = [e async for e in source.entries()]
        assert entry.key == "clips/a b.mp4" and entry.size == len(data)
        assert entry.url == f"{azurite.blob_endpoint}/{container}/clips/a%20b.mp4"
        assert "sig=" not in entry.url
        assert await source.read(entry, 0, 8) == data[:8]
    finally:
        await source.close()
        await ctx.close()


def test_azure_no_credentials_and_sas_never_printed(run_prober, tmp_path):
    env = {
        "AZURE_STORAGE_CONNECTION_STRING": None, "AZURE_STORAGE_ACCOUNT": None,
        "AZURE_STORAGE_KEY": None, "AZURE_STORAGE_SAS_TOKEN": None, "AZURE_CLIENT_ID": None,
        "AZURE_CLIENT_SECRET": None, "AZURE_TENANT_ID": None, "AZURE_FEDERATED_TOKEN_FILE": None,
        "IDENTITY_ENDPOINT": None, "MSI_ENDPOINT": None, "HOME": str(tmp_path),
        "AZURE_CONFIG_DIR": str(tmp_path / "az"),
        "AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://127.0.0.1:9",  # no managed identity
    }  # fmt: skip
    proc = run_prober("https://nosuchacct.blob.core.windows.net/videos/", "--timeout", "5",
                      env=env)  # fmt: skip
    assert proc.returncode == 1
    line = _one_line(proc)
    assert "https://nosuchacct.blob.core.windows.net/videos/:" in line
    assert "no usable Azure credentials" in line
    # a SAS in the source never reaches the output, whatever happens
    proc = run_prober("https://nosuchacct.blob.core.windows.net/videos/?sv=1&sig=TOPSECRETSIG",
                      "--retries", "0", "--timeout", "2",
                      env={**env, "HTTPS_PROXY": "http://127.0.0.1:9"})  # fmt: skip
    assert proc.returncode == 1
    assert "?REDACTED" in _one_line(proc)
    assert "TOPSECRETSIG" not in proc.stderr + proc.stdout


# =============================================================================== OBS
def test_obs_through_an_s3_compatible_endpoint(sample_media, moto_server, run_prober, tmp_path,
                                               unique_name):  # fmt: skip
    root, _ = sample_media
    bucket = unique_name("obs")
    moto_server.create_bucket(bucket)
    moto_server.put(bucket, "clips/a+b.mp4", (root / "mp4/h264_aac_faststart.mp4").read_bytes())
    moto_server.put(bucket, "clips/x#y.mp4", (root / "mp4/h264_aac_moov_end.mp4").read_bytes())
    moto_server.put(bucket, "clipsother/skip.mp4", b"")
    # OBS keys from OBS_* variables; AWS_ENDPOINT_URL is not OBS's endpoint (--endpoint-url is)
    env = {**moto_server.env(), "OBS_ACCESS_KEY_ID": "obs-ak", "OBS_SECRET_ACCESS_KEY": "obs-sk"}
    for extra, base in [
        ([], f"https://{bucket}.obs.eu-de.otc.t-systems.com/"),
        (["--region", "eu-nl"], f"https://{bucket}.obs.eu-nl.otc.t-systems.com/"),
        (["--url-style", "path"], f"https://obs.eu-de.otc.t-systems.com/{bucket}/"),
    ]:
        out = tmp_path / "spec.json"
        proc = run_prober(f"obs://{bucket}/clips", "--endpoint-url", moto_server.endpoint,
                          "-o", out, *extra, env=env)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        spec = json.loads(out.read_text())
        assert sorted(v["objectUrl"] for v in spec["videos"]) == [
            base + "clips/a%2Bb.mp4",
            base + "clips/x%23y.mp4",
        ]
    proc = run_prober("obs://no-such-obs-bucket/", "--endpoint-url", moto_server.endpoint,
                      env=env)  # fmt: skip
    assert proc.returncode == 1
    assert "obs://no-such-obs-bucket/: bucket 'no-such-obs-bucket' does not exist" in _one_line(
        proc
    )
    proc = run_prober("obs://b/", "--url-style", "s3", env=env)
    assert proc.returncode == 2 and "--url-style" in _one_line(proc)


async def test_obs_endpoint_and_region_selection(monkeypatch):
    from prober.sources.s3 import ObsSource

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # meant for AWS: ignored
    monkeypatch.setenv("OBS_ACCESS_KEY_ID", "ak")
    monkeypatch.setenv("OBS_SECRET_ACCESS_KEY", "sk")

    def obs(**options: Any) -> ObsSource:
        source = open_source("obs://bkt/p", SourceContext(SourceOptions(**options)))
        assert isinstance(source, ObsSource)
        return source

    s = obs()
    assert (s.bucket, s.prefix) == ("bkt", "p")
    assert s.endpoint() == "https://obs.eu-de.otc.t-systems.com"
    assert await s.detect_region() == "eu-de"
    assert s.object_url("p/a+b c.mp4") == "https://bkt.obs.eu-de.otc.t-systems.com/p/a%2Bb%20c.mp4"
    kwargs = s.client_kwargs()
    assert kwargs["region_name"] == "eu-de"
    assert (kwargs["aws_access_key_id"], kwargs["aws_secret_access_key"]) == ("ak", "sk")
    config = kwargs["config"]
    assert config.request_checksum_calculation == "when_required"
    assert config.response_checksum_validation == "when_required"
    assert config.s3 == {"addressing_style": "virtual"}

    s = obs(region="eu-ch2")
    assert s.endpoint() == "https://obs.eu-ch2.otc.t-systems.com"
    s = obs(endpoint_url="https://obs.eu-nl.otc.t-systems.com")
    assert await s.detect_region() == "eu-nl"
    assert s.object_url("k") == "https://bkt.obs.eu-nl.otc.t-systems.com/k"
    s = obs(endpoint_url="http://127.0.0.1:5000")
    assert s.endpoint() == "http://127.0.0.1:5000"
    assert s.client_config().s3 is None  # path style on an IP, botocore's choice
    assert s.object_url("k") == "https://bkt.obs.eu-de.otc.t-systems.com/k"


# =============================================================================== MRAP
def test_mrap_lists_through_the_endpoint_and_writes_arn_urls(sample_media, moto_server,
                                                             run_prober, tmp_path):  # fmt: skip
    root, _ = sample_media
    moto_server.create_bucket(MRAP_ALIAS)  # stands in for the access point
    data = (root / "mp4/h264_aac_faststart.mp4").read_bytes()
    for key in ("clips/a+b.mp4", "clips/sub dir/c#d.mp4", "clips2/other.mp4"):
        moto_server.put(MRAP_ALIAS, key, data)
    out, rep = tmp_path / "spec.json", tmp_path / "r.jsonl"
    for args in ([], ["--endpoint-url", moto_server.endpoint]):
        proc = run_prober(f"{MRAP_ARN}/clips", "-o", out, "--report", rep, *args,
                          env=moto_server.env())  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        spec = json.loads(out.read_text())
        assert sorted(v["objectUrl"] for v in spec["videos"]) == [
            f"{MRAP_ARN}/clips/a%2Bb.mp4",
            f"{MRAP_ARN}/clips/sub%20dir/c%23d.mp4",
        ]
        assert all(v["videoMetadata"]["duration"] == pytest.approx(2.0) for v in spec["videos"])
        assert all(line["bytes_fetched"] > 0 for line in read_report(rep).values())


@pytest.mark.parametrize(
    ("spec", "prefix"),
    [
        (MRAP_ARN, ""),
        (MRAP_ARN + "/", ""),
        (MRAP_ARN + "/clips/2024", "clips/2024"),
    ],
)
def test_mrap_arn_parsing(spec, prefix):
    from prober.sources.s3 import MrapSource

    source = open_source(spec, SourceContext(SourceOptions()))
    assert isinstance(source, MrapSource)
    assert (source.arn, source.account, source.alias) == (MRAP_ARN, "123456789012", MRAP_ALIAS)
    assert source.prefix == prefix
    assert source.object_url("a b/ü+1.mp4") == f"{MRAP_ARN}/a%20b/%C3%BC%2B1.mp4"


def test_mrap_usage_and_dependency_errors(moto_server, run_prober):
    for args, needle in [
        (["arn:aws:s3:us-east-1:123456789012:accesspoint/plain"], "Multi-Region Access Point ARN"),
        (["arn:aws:s3::123456789012:accesspoint/"], "Multi-Region Access Point ARN"),
        ([MRAP_ARN, "--url-style", "virtual"], "--url-style"),
    ]:
        proc = run_prober(*args, env=moto_server.env())
        assert proc.returncode == 2, proc.stderr
        assert needle in _one_line(proc)
    try:
        import awscrt  # noqa: F401
    except ImportError:
        # the real access point needs SigV4A (botocore[crt]): say so in one line
        env = {"AWS_ENDPOINT_URL": None, "AWS_ENDPOINT_URL_S3": None, "AWS_ACCESS_KEY_ID": "x",
               "AWS_SECRET_ACCESS_KEY": "y"}  # fmt: skip
        proc = run_prober(MRAP_ARN, env=env)
        assert proc.returncode == 1
        assert "botocore[crt]" in _one_line(proc)


# =============================================================================== --enrich
def test_backends_map_their_object_urls_back():
    from prober.sources import azure, gcs, s3

    assert s3.parse_object_url("https://b.s3.eu-west-2.amazonaws.com/c/a%2Bb.mp4") == (
        "s3://b",
        "c/a+b.mp4",
    )
    assert s3.parse_object_url("https://obs.eu-nl.otc.t-systems.com/b/k%23.mp4") == (
        "obs://b",
        "k#.mp4",
    )
    assert s3.parse_object_url(f"{MRAP_ARN}/x%20y.mp4") == (MRAP_ARN, "x y.mp4")
    assert gcs.parse_object_url("gs://b/a%20b.mp4") == ("gs://b", "a b.mp4")
    assert gcs.parse_object_url("https://storage.cloud.google.com/b/k%3F.mp4") == (
        "gs://b",
        "k?.mp4",
    )
    assert azure.parse_object_url("https://acct.blob.core.windows.net/c/d/e%20f.mp4") == (
        "https://acct.blob.core.windows.net/c",
        "d/e f.mp4",
    )
    assert s3.parse_object_url("https://example.com/x.mp4") is None
    assert gcs.parse_object_url("https://example.com/x.mp4") is None
    assert azure.parse_object_url("https://example.com/x.mp4") is None


def test_enrich_reads_gcs_and_azure_urls_with_their_credentials(sample_media, gcs_server,
                                                                azurite, run_prober, tmp_path,
                                                                unique_name):  # fmt: skip
    """--enrich maps objectUrls back to these backends (parse_object_url): private objects
    are read with the cloud's credentials, and sizes are learnt from the ranged reads."""
    root, _ = sample_media
    data = (root / "mp4/h264_aac_moov_end.mp4").read_bytes()
    bucket, container = unique_name("genrich"), unique_name("aenrich")
    gcs_server.create_bucket(bucket)
    gcs_server.put(bucket, "a b+c#.mp4", data)
    azurite.create_container(container)
    azurite.put(container, "x y.mp4", data)
    for url, env in [
        (f"gs://{bucket}/a%20b%2Bc%23.mp4", gcs_server.env()),
        (f"{azurite.blob_endpoint}/{container}/x%20y.mp4", azurite.env()),
    ]:
        spec = tmp_path / "in.json"
        spec.write_text(json.dumps({"videos": [{"objectUrl": url, "title": "t"}]}))
        proc = run_prober("--enrich", spec, "-q", env=env)
        assert proc.returncode == 0, proc.stderr
        [video] = json.loads(proc.stdout)["videos"]
        assert video["objectUrl"] == url and video["title"] == "t"
        assert video["videoMetadata"]["file_size"] == len(data)
        assert video["videoMetadata"]["duration"] == pytest.approx(2.0)


async def test_s3_family_reads_learn_the_size(moto_server, unique_name, monkeypatch):
    bucket = unique_name("osize")
    moto_server.create_bucket(bucket)
    moto_server.put(bucket, "k.mp4", b"0123456789")
    for name, value in moto_server.env().items():
        monkeypatch.setenv(name, value)
    ctx = SourceContext(SourceOptions(endpoint_url=moto_server.endpoint))
    source = open_source(f"obs://{bucket}", ctx)
    try:
        bare = Entry(url="x", key="k.mp4", handle=source.handle_for("k.mp4"))
        assert await source.read(bare, 2, 5) == b"234" and bare.size == 10
    finally:
        await source.close()
        await ctx.close()
