"""S3 ranged GetObject without botocore's per-request machinery.

aiobotocore spends ~0.9 ms of CPU on every ``get_object`` (event-hook emitter, request
serialization, endpoint rules, response parsing) — more than the rest of a probe. A
ranged read needs none of that: :class:`FastRangedGet` builds the URL once per bucket,
signs each request with SigV4 (:func:`sign_v4`, the algorithm of botocore's
``S3SigV4Auth`` for a request without a body; frozen credentials fetched per request from
the credential chain, so refreshable credentials keep refreshing) and sends it through
the run's shared aiohttp session with exactly the URL string that was signed. The
signer is written out here rather than borrowed from botocore because importing
``botocore.auth`` (urllib3, botocore.compat …) costs ~30 ms, and a ``--state`` rerun
whose environment names static keys (:mod:`prober.sources.s3_env`) loads no botocore.

What the request carries — the same as botocore's: ``Range``, ``If-Match``, the
``x-amz-checksum-mode`` header when the client's ``response_checksum_validation`` is
``when_supported``, ``X-Amz-Date``, ``X-Amz-Content-SHA256``, ``X-Amz-Security-Token``
(session credentials) and ``Authorization``; tests/test_s3_fastpath.py checks the URL,
the signed headers and the signature against what aiobotocore itself sends. TLS: the
configured CA bundle (``AWS_CA_BUNDLE``, ``ca_bundle``) when there is one, as botocore.

URLs: a custom endpoint (``AWS_ENDPOINT_URL``, ``--endpoint-url``, OBS, anything not
``*.amazonaws.com``) is addressed path-style, ``{endpoint}/{bucket}/{key}`` — unless the
client is configured for virtual addressing (OBS's own endpoints), then
``{scheme}://{bucket}.{host}/{key}``. On AWS: ``https://{bucket}.s3.{region}.amazonaws.com/{key}``
for DNS-compatible bucket names without dots (``{bucket}.s3.amazonaws.com`` in us-east-1
unless the client uses the regional endpoint, as botocore does), else ``https://s3.{region}.amazonaws.com/{bucket}/{key}``. Keys are
percent-encoded like botocore's (everything but unreserved characters and ``/``).

:meth:`prober.sources.s3.S3Source.read` uses this path only when it knows the bucket's
region and the client signs with plain SigV4 (not anonymous, not SigV4A/MRAP, not S3
Express, not FIPS/dual-stack/accelerate endpoints); otherwise, and for good after a
redirect or a wrong-region answer (:class:`WrongEndpoint`), it reads through aiobotocore.
``PROBER_S3_FASTPATH=0`` turns the fast path off.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import html
import inspect
import re
import ssl
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import quote, unquote_plus, urlsplit

import aiohttp
from yarl import URL

from prober.errors import HttpStatusError, ObjectError
from prober.model import Entry
from prober.sources.context import switched_on
from prober.sources.wire import (
    content_range_total,
    learn_etag,
    network_errors,
    read_ignoring_range,
    read_upto,
)
from prober.sources.wire import (
    retry_after as parse_retry_after,  # the argument of status_error() has its name
)
from prober.urls import encode_key

ENV_SWITCH = "PROBER_S3_FASTPATH"

# error codes S3 (and S3-compatible stores) use for throttling and transient faults
THROTTLE_CODES = frozenset({"SlowDown", "Throttling", "ThrottlingException",
                            "RequestLimitExceeded", "TooManyRequestsException"})  # fmt: skip
TIMEOUT_CODES = frozenset({"RequestTimeout", "RequestTimeoutException"})
# answers meaning "this bucket is not where / not signed how the fast path thinks"
WRONG_ENDPOINT_CODES = frozenset(
    {"AuthorizationHeaderMalformed", "PermanentRedirect", "IllegalLocationConstraintException"}
)
REDIRECT_STATUSES = frozenset({301, 302, 307, 308})

_CODE = re.compile(rb"<Code>\s*([^<\s]{1,200})\s*</Code>")
_BUCKET_CHARS = re.compile(r"^[a-zA-Z0-9.\-_]{1,255}$")
_AWS_S3_HOST = re.compile(r"^s3(?:\.[a-z]{2}(?:-[a-z]+)+-\d+)?\.amazonaws\.com(?:\.cn)?$")
_DNS_BUCKET = re.compile(r"[a-z0-9][a-z0-9\-]{1,61}[a-z0-9]")  # botocore's check_dns_name


def host_from_url(url: str) -> str:
    """The Host value SigV4 signs: lowercase, no userinfo, no default port (botocore's)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != {"http": 80, "https": 443}.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


# --- SigV4 -----------------------------------------------------------------------------
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# headers SigV4 leaves unsigned (botocore's SIGNED_HEADERS_BLACKLIST)
_UNSIGNED = frozenset({"baggage", "connection", "expect", "keep-alive", "proxy-authenticate",
                       "proxy-authorization", "te", "traceparent", "tracestate", "trailer",
                       "transfer-encoding", "upgrade", "user-agent", "x-amzn-trace-id"})  # fmt: skip


class StaticCredentials(NamedTuple):
    """Keys that never change (from the environment): their own frozen form."""

    access_key: str
    secret_key: str
    token: str | None = None

    def get_frozen_credentials(self) -> StaticCredentials:
        return self

    def __repr__(self) -> str:  # never the secret, should one ever be logged
        token = "'***'" if self.token else "None"
        return f"StaticCredentials({self.access_key!r}, '***', {token})"


@dataclass(frozen=True, slots=True)
class Settings:
    """What the fast path takes from a client's configuration."""

    credentials: Any  # StaticCredentials, or botocore's (maybe refreshable)
    endpoint_url: str | None  # None: AWS's own endpoints
    addressing: str | None = None  # the s3 ``addressing_style``
    checksums: str | None = "when_supported"  # ``response_checksum_validation`` (default)
    ca_bundle: str | None = None  # trusted instead of the system's CAs


def amz_date() -> str:
    """Now, as SigV4 writes it (``20260304T050607Z``)."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


@functools.lru_cache(maxsize=8)
def _signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    key = f"AWS4{secret}".encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.digest(key, part.encode(), "sha256")
    return key


def sign_v4(
    method: str, url: str, headers: Mapping[str, str], credentials: Any, region: str
) -> dict[str, str]:
    """``headers`` plus SigV4's own for a request without a body, signed for S3 as
    botocore's ``S3SigV4Auth`` signs it: the path exactly as sent (S3's is not
    normalised), the query's ``key=value`` pairs sorted as they stand in the URL, every
    header but the hop-by-hop ones, the payload hash of an empty body."""
    stamp = amz_date()
    signed = dict(headers)
    signed["X-Amz-Date"] = stamp
    if credentials.token:
        signed["X-Amz-Security-Token"] = credentials.token
    signed["X-Amz-Content-SHA256"] = EMPTY_SHA256
    canonical_headers = {
        name.lower(): " ".join(value.split())
        for name, value in signed.items()
        if name.lower() not in _UNSIGNED
    }
    canonical_headers.setdefault("host", host_from_url(url))
    names = sorted(canonical_headers)
    parts = urlsplit(url)
    query = "&".join(
        f"{k}={v}" for k, _, v in sorted(p.partition("=") for p in parts.query.split("&") if p)
    )
    canonical = "\n".join((
        method.upper(),
        parts.path,
        query,
        "".join(f"{name}:{canonical_headers[name]}\n" for name in names),
        ";".join(names),
        EMPTY_SHA256,
    ))  # fmt: skip
    scope = f"{stamp[:8]}/{region}/s3/aws4_request"
    to_sign = (
        f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    )
    key = _signing_key(credentials.secret_key, stamp[:8], region, "s3")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    signed["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return signed


def _botocore_error(exc: BaseException) -> bool:
    """Whether ``exc`` is botocore's (which is loaded only when something used it)."""
    errors = sys.modules.get("botocore.exceptions")
    return errors is not None and isinstance(exc, errors.BotoCoreError)


_TLS: dict[str, ssl.SSLContext] = {}  # CA bundle path → its context, loaded once


async def tls_context(ca_bundle: str | None, base_url: str) -> ssl.SSLContext | bool:
    """The TLS trust for requests under ``base_url``: the configured CA bundle, loaded on a
    thread (it reads and parses the file) once per process, else aiohttp's default
    verification."""
    if not ca_bundle or not base_url.startswith("https:"):
        return True
    context = _TLS.get(ca_bundle)
    if context is None:
        context = await asyncio.to_thread(ssl.create_default_context, cafile=ca_bundle)
        _TLS[ca_bundle] = context
    return context


class WrongEndpoint(Exception):
    """The store redirected or named the wrong region: read this bucket through botocore."""


def enabled() -> bool:
    return switched_on(ENV_SWITCH)


def status_error(status: int, code: str, retry_after: str | None) -> ObjectError:
    """A per-object error from an S3 error answer: throttling → 503, timeouts → 408,
    a failed If-Match → ``changed``; ``code`` is the XML ``<Code>`` (or the status)."""
    if code in THROTTLE_CODES:
        status = 503
    elif code in TIMEOUT_CODES:
        status = 408
    elif code == "PreconditionFailed" or status == 412:
        return ObjectError(
            "changed", "changed: the object changed while being probed (ETag)", status=412
        )
    return HttpStatusError(status, code, retry_after=parse_retry_after(retry_after))


def object_base_url(
    bucket: str, region: str, endpoint_url: str | None, *, custom: bool, addressing: str | None
) -> str | None:
    """The URL an object's encoded key is appended to, or None when the fast path cannot
    address this bucket the way botocore would."""
    if not _BUCKET_CHARS.match(bucket) or bucket.endswith(("--x-s3", "--ol-s3")):
        return None  # not a plain bucket name (S3 Express, Object Lambda …): botocore's job
    virtual_ok = _DNS_BUCKET.fullmatch(bucket) is not None
    if custom:
        if not endpoint_url:
            return None
        parts = urlsplit(endpoint_url)
        if not parts.scheme or not parts.netloc:
            return None
        if addressing == "virtual" and virtual_ok:
            return f"{parts.scheme}://{bucket}.{parts.netloc}{parts.path.rstrip('/')}/"
        return f"{endpoint_url.rstrip('/')}/{bucket}/"
    endpoint_host = (urlsplit(endpoint_url or "").hostname or "").lower()
    if endpoint_host and not _AWS_S3_HOST.match(endpoint_host):
        return None  # FIPS, dual-stack, legacy s3-external-1 …: botocore's job
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    host = f"s3.{region}.{suffix}"
    if region == "us-east-1" and endpoint_host != host:
        host = f"s3.{suffix}"  # botocore's default for us-east-1: the global endpoint
    if virtual_ok and addressing != "path":
        return f"https://{bucket}.{host}/"
    return f"https://{host}/{bucket}/"


class FastRangedGet:
    """Signed ranged GETs of one bucket's objects over a shared aiohttp session."""

    def __init__(
        self,
        http: Callable[[], aiohttp.ClientSession],
        credentials: Any,
        region: str,
        base_url: str,
        *,
        checksum_mode: bool = False,
        tls: ssl.SSLContext | bool = True,
    ) -> None:
        self._http = http
        # StaticCredentials, or botocore/aiobotocore Credentials (maybe refreshable)
        self._credentials = credentials
        self.region = region
        self.base_url = base_url
        self._checksum_mode = checksum_mode
        self.tls = tls  # aiohttp's ``ssl=``: see tls_context()
        # the Host botocore would sign (no default port); given explicitly, the signer
        # need not parse every URL twice to find it
        self.host = host_from_url(base_url)

    def url(self, key: str) -> str:
        return self.base_url + encode_key(key)

    async def signed(
        self, key: str, start: int, end: int, etag: str | None
    ) -> tuple[str, dict[str, str]]:
        """(url, signed headers) of a ranged GetObject of ``key``."""
        url = self.url(key)
        headers = {"host": self.host, "Range": f"bytes={start}-{end - 1}"}
        if etag:
            headers["If-Match"] = f'"{etag}"'
        if self._checksum_mode:
            headers["x-amz-checksum-mode"] = "ENABLED"
        return url, await self.sign("GET", url, headers)

    async def sign(self, method: str, url: str, headers: dict[str, str]) -> dict[str, str]:
        """SigV4 headers for this request, with fresh frozen credentials; credentials
        botocore cannot refresh are a (retryable) network error of this request."""
        try:
            frozen = self._credentials.get_frozen_credentials()
            if inspect.isawaitable(frozen):  # aiobotocore's (refreshable) credentials
                frozen = await frozen
        except Exception as exc:
            if _botocore_error(exc):
                raise ObjectError("network", f"network: {type(exc).__name__}") from None
            raise
        return sign_v4(method, url, headers, frozen, self.region)

    def bucket_url(self) -> str:
        """The bucket itself (listing, HeadBucket): ``https://bucket.host/`` or ``…/bucket``."""
        base = self.base_url
        return base if base.endswith(f"//{self.host}/") else base.rstrip("/")

    async def bucket_region(self) -> str | None:
        """The region the store names in ``x-amz-bucket-region`` answering a HEAD of the
        bucket (S3 names it on every answer, redirects and 403s included, as botocore's
        region redirector relies on); None when it does not say or cannot be reached."""
        url = self.bucket_url()
        try:
            headers = await self.sign("HEAD", url, {"host": self.host})
            async with self._http().head(
                URL(url, encoded=True), headers=headers, allow_redirects=False, ssl=self.tls
            ) as resp:
                return resp.headers.get("x-amz-bucket-region") or None
        except (ObjectError, aiohttp.ClientError, TimeoutError):
            return None

    async def get(self, entry: Entry, key: str, start: int, end: int) -> bytes:
        url, headers = await self.signed(key, start, end, entry.etag)
        headers["Accept-Encoding"] = "identity"
        with network_errors():
            async with self._http().get(
                URL(url, encoded=True), headers=headers, allow_redirects=False, ssl=self.tls
            ) as resp:
                status = resp.status
                if status == 206:
                    if entry.size is None:  # a bare URL (--enrich): learn the size
                        entry.size = content_range_total(resp.headers.get("Content-Range"))
                    learn_etag(entry, resp.headers)
                    return await resp.read()
                if status == 200:  # a store that ignores Range: take what is needed
                    length = resp.content_length
                    if entry.size is None and length is not None:
                        entry.size = length
                    learn_etag(entry, resp.headers)
                    return await read_ignoring_range(resp, start, end)
                if status in REDIRECT_STATUSES:
                    raise WrongEndpoint(f"HTTP {status}")
                body = await read_upto(resp, 1 << 16)  # an XML error document
                match = _CODE.search(body)
                code = match.group(1).decode("utf-8", "replace") if match else ""
                if code in WRONG_ENDPOINT_CODES:
                    raise WrongEndpoint(code)
                raise status_error(status, code or str(status), resp.headers.get("Retry-After"))


# --- ListObjectsV2 ---------------------------------------------------------------------
# the three fields of <Contents> an entry needs, and the end of each <Contents>; values
# are XML-escaped, so they hold no '<'
_CONTENTS_FIELD = re.compile(rb"<(Key|Size|ETag)>([^<]*)</\1>|</Contents>")
# S3 escapes the ETag's quotes (&quot;), others send them raw or as &#34;: the usual
# hex ETag is taken without them (an unusual one sends its page to the general parser)
_QUOTE = rb'(?:&quot;|&#34;|")?'
_ORDERED = re.compile(
    rb"<Key>([^<]*)</Key>.*?<ETag>" + _QUOTE + rb'([^<&"]*)' + _QUOTE + rb"</ETag>"
    rb".*?<Size>([0-9]+)</Size>",
    re.S,
)
_TRUNCATED = re.compile(rb"<IsTruncated>\s*true\s*</IsTruncated>")
_TOKEN = re.compile(rb"<NextContinuationToken>(.*?)</NextContinuationToken>", re.S)
_URL_ENCODED = re.compile(rb"<EncodingType>\s*url\s*</EncodingType>")


class ListingError(Exception):
    """A listing answer that is not a page: ``code`` (e.g. NoSuchBucket) and status."""

    def __init__(self, status: int, code: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code


def parse_list_page(body: bytes) -> tuple[list[tuple[str, int, str | None]], str | None]:
    """([(key, size, etag)], next continuation token or None) of a ListObjectsV2 answer.

    Keys are XML-unescaped, then URL-decoded when the store says it URL-encoded them
    (``EncodingType=url`` asked for, echoed back) — as botocore does."""
    url_encoded = bool(_URL_ENCODED.search(body))
    objects = _parse_ordered(body, url_encoded)
    if objects is None:
        objects = _parse_any_order(body, url_encoded)
    token = None
    if _TRUNCATED.search(body):
        tm = _TOKEN.search(body)
        token = _xml_text(tm.group(1)) if tm else None
    return objects, token


def _parse_ordered(body: bytes, url_encoded: bool) -> list[tuple[str, int, str | None]] | None:
    """The usual layout, Key before ETag before Size in every <Contents> (S3, MinIO,
    Ceph …), in one findall (a third of the general parser's time); None when a page
    is laid out otherwise. Each match takes the first Key, ETag and Size after the
    last: as many matches as <Contents> means none ran into the next entry. (A page
    without an ETag per entry never gets here: every match would scan to its end.)"""
    entries = body.count(b"<Contents>")
    if body.count(b"<ETag>") != entries or body.count(b"<Size>") != entries:
        return None
    rows = _ORDERED.findall(body)
    if len(rows) != entries:
        return None
    objects: list[tuple[str, int, str | None]] = []
    append = objects.append
    for raw_key, raw_etag, size in rows:
        key = raw_key.decode("utf-8")
        if "&" in key:
            key = html.unescape(key)
        if url_encoded and ("%" in key or "+" in key):
            key = unquote_plus(key)
        append((key, int(size), raw_etag.decode("utf-8") or None))
    return objects


def _parse_any_order(body: bytes, url_encoded: bool) -> list[tuple[str, int, str | None]]:
    """Field by field, in whatever order and with whatever missing."""
    objects: list[tuple[str, int, str | None]] = []
    key: str | None = None
    size: int | None = None
    etag: str | None = None
    for m in _CONTENTS_FIELD.finditer(body, max(body.find(b"<Contents>"), 0)):
        field = m.group(1)
        if field is None:  # </Contents>
            if key is not None and size is not None:
                objects.append((key, size, etag))
            key = size = etag = None
        elif field == b"Key":
            key = _xml_text(m.group(2))
            if url_encoded and ("%" in key or "+" in key):
                key = unquote_plus(key)
        elif field == b"Size":
            size = int(m.group(2))
        else:
            etag = _xml_text(m.group(2)).strip('"') or None
    return objects


def _xml_text(raw: bytes) -> str:
    text = raw.decode("utf-8")
    return html.unescape(text) if "&" in text else text


async def list_page(
    getter: FastRangedGet, prefix: str, token: str | None, after: str | None = None
) -> tuple[list[tuple[str, int, str | None]], str | None]:
    """One signed ListObjectsV2 request through the shared session, parsed."""
    params = {"list-type": "2", "max-keys": "1000", "prefix": prefix, "encoding-type": "url"}
    if token:
        params["continuation-token"] = token
    elif after:
        params["start-after"] = after
    query = "&".join(f"{k}={quote(v, safe='-_.~')}" for k, v in sorted(params.items()))
    url = getter.bucket_url() + "?" + query
    signed = await getter.sign("GET", url, {"host": getter.host})
    with network_errors():
        async with getter._http().get(
            URL(url, encoded=True), headers=signed, allow_redirects=False, ssl=getter.tls
        ) as resp:
            body = await resp.read()
            if resp.status == 200:
                return parse_list_page(body)
            if resp.status in REDIRECT_STATUSES:
                raise WrongEndpoint(f"HTTP {resp.status}")
            match = _CODE.search(body)
            code = match.group(1).decode("utf-8", "replace") if match else str(resp.status)
            if code in WRONG_ENDPOINT_CODES:
                raise WrongEndpoint(code)
            error = status_error(resp.status, code, resp.headers.get("Retry-After"))
            if error.retryable:
                raise error
            raise ListingError(resp.status, code)
