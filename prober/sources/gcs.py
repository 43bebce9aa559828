"""Google Cloud Storage through gcloud-aio-storage.

Listing: ``objects.list`` a page at a time (``maxResults`` 1000, ``pageToken``),
streamed; each page is retried on throttling and transient faults with the shared
policy (prober.retry). Reads: ``alt=media`` with an explicit ``Range: bytes=a-b``,
retried by the pipeline. The library percent-encodes object names itself
(``quote(name, safe="")``), so ``#``, ``?``, ``%``, ``+`` and unicode reach the
right object.

Endpoint and credentials follow Google's conventions, as the library implements
them: ``STORAGE_EMULATOR_HOST`` (an emulator, no auth), else
``GOOGLE_APPLICATION_CREDENTIALS`` (service account, authorized user or external
account JSON), else gcloud's application-default credentials
(``~/.config/gcloud/application_default_credentials.json``), else the GCE/GKE metadata
server.

objectUrl: ``gs://bucket/key`` (``--url-style gs``, default) or
``https://storage.cloud.google.com/bucket/key`` (``--url-style https``), the key
percent-encoded, whatever endpoint is read from. ``Entry.etag`` holds the object's
generation, which changes whenever the object is rewritten.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from operator import itemgetter
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import aiohttp
from gcloud.aio.auth.token import Type as TokenType
from gcloud.aio.storage import Storage

from prober.errors import FatalError, HttpStatusError, ListingFailed, UsageError
from prober.model import Entry
from prober.retry import with_retries
from prober.sources import listing
from prober.sources.context import SourceContext
from prober.sources.s3 import prefix_matches, split_bucket
from prober.sources.wire import (
    content_range_total,
    network_errors,
    read_ignoring_range,
    retry_after,
)
from prober.urls import encode_key, redact

T = TypeVar("T")

URL_STYLES = ("gs", "https")
HTTPS_BASE = "https://storage.cloud.google.com"
PAGE_SIZE = "1000"
LIST_FIELDS = "items(name,size,generation,etag),nextPageToken"
_NAME = itemgetter("name")
DEFAULT_API_ROOT = "https://www.googleapis.com"  # the library's


class GcsSource:
    scheme = "gs://"
    unique_urls = True  # a listing: no objectUrl comes twice (see sources/base.py)

    def __init__(self, spec: str, ctx: SourceContext) -> None:
        self.name = spec
        self.ctx = ctx
        self.bucket, self.prefix = split_bucket(spec, self.scheme)
        style = ctx.options.url_style or URL_STYLES[0]
        if style not in URL_STYLES:
            raise UsageError(
                f"--url-style {style!r} is not one of {', '.join(URL_STYLES)} for Google Cloud "
                "Storage"
            )
        self.url_style = style
        self._storage: Storage | None = None
        self._checked = False
        self.emulator = os.environ.get("STORAGE_EMULATOR_HOST") or None

    # -- client -------------------------------------------------------------------
    def storage(self) -> Storage:
        if self._storage is None:
            token: Any = None
            if self.emulator:
                # the library sends no auth to an emulator: do not even read credentials
                token = _NoToken()
            try:
                self._storage = Storage(session=self.ctx.http(), token=token)
            except (OSError, ValueError, KeyError) as exc:
                path = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS", "")
                what = f"GOOGLE_APPLICATION_CREDENTIALS={path}" if path else "Google credentials"
                raise FatalError(
                    f"{self.name}: cannot load {what} ({type(exc).__name__})"
                ) from None
        return self._storage

    def endpoint(self) -> str:
        if self.emulator:
            host = self.emulator
            return redact(host if host.startswith("http") else f"http://{host}")
        return DEFAULT_API_ROOT

    async def _check_credentials(self, storage: Storage) -> None:
        """Fail fast, in one line, when there is no usable Google identity.

        One token request without the library's backoff (five tries, up to a minute):
        a rejected key or a missing metadata server is reported at once; anything that
        looks transient falls back to the library's own retrying acquisition.
        """
        if self._checked or self.emulator:
            return
        self._checked = True
        token = storage.token
        timeout = max(1, int(min(self.ctx.options.timeout, 10)))
        try:
            await token.refresh(timeout=timeout)
            return
        except aiohttp.ClientResponseError as exc:
            if 400 <= exc.status < 500:
                raise FatalError(
                    f"{self.name}: Google credentials rejected (HTTP {exc.status} from the "
                    "token endpoint)"
                ) from None
        except (aiohttp.ClientConnectionError, TimeoutError):
            if getattr(token, "token_type", None) is TokenType.GCE_METADATA:
                path = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
                if path:  # the library falls back silently on a file it cannot parse
                    raise FatalError(
                        f"{self.name}: GOOGLE_APPLICATION_CREDENTIALS={path} is not a usable "
                        "key file"
                    ) from None
                # no key file anywhere, and no metadata server either
                raise FatalError(
                    f"{self.name}: no Google credentials found (set "
                    "GOOGLE_APPLICATION_CREDENTIALS to a key file, run `gcloud auth "
                    "application-default login`, or run on GCP with a service account)"
                ) from None
        except Exception as exc:  # a malformed key file, a missing crypto backend …
            raise FatalError(
                f"{self.name}: cannot use the Google credentials ({type(exc).__name__})"
            ) from None
        try:
            await asyncio.wait_for(token.get(), timeout=timeout * 6)
        except Exception as exc:
            raise FatalError(
                f"{self.name}: cannot get a Google access token ({type(exc).__name__})"
            ) from None

    # -- URLs ---------------------------------------------------------------------
    def object_url(self, key: str) -> str:
        k = encode_key(key)
        if self.url_style == "https":
            return f"{HTTPS_BASE}/{self.bucket}/{k}"
        return f"gs://{self.bucket}/{k}"

    def handle_for(self, key: str) -> str:
        return key

    # -- Source protocol ------------------------------------------------------------
    async def entries(self) -> AsyncIterator[Entry]:
        storage = self.storage()
        await self._check_credentials(storage)
        splits = await listing.split_keys(self.ctx.hints, self.object_url, self.prefix)
        concurrency = self.ctx.options.concurrency
        async for items in listing.ranged_pages(self._page, splits, _NAME, concurrency):
            for item in items:
                name = item["name"]
                if name.endswith("/") or not prefix_matches(name, self.prefix):
                    continue  # folder placeholders
                generation = item.get("generation")
                etag = str(generation) if generation else (item.get("etag") or "").strip('"')
                yield Entry(
                    url=self.object_url(name),
                    key=name,
                    size=int(item.get("size") or 0),  # a string in the JSON API
                    etag=etag or None,
                    handle=name,
                )

    async def _page(
        self, token: str | None, after: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One listing page; ``after`` starts a key range (``startOffset`` is inclusive:
        prober.sources.listing drops the key itself)."""
        params: dict[str, str] = {"maxResults": PAGE_SIZE, "fields": LIST_FIELDS}
        if self.prefix:
            params["prefix"] = self.prefix
        if token:
            params["pageToken"] = token
        elif after:
            params["startOffset"] = after
        page = await self._listing_call(
            functools.partial(
                self.storage().list_objects,
                self.bucket,
                params=params,
                timeout=self.ctx.options.timeout,  # type: ignore[arg-type]
            )
        )
        return list(page.get("items") or ()), page.get("nextPageToken") or None

    async def read(self, entry: Entry, start: int, end: int) -> bytes:
        if entry.size is not None:
            end = min(end, entry.size)
            if start >= end:
                return b""
        storage = self.storage()
        headers = {"Range": f"bytes={start}-{end - 1}"}
        try:
            with network_errors():
                stream = await storage.download_stream(
                    self.bucket, entry.handle, headers=headers, timeout=self.ctx.options.timeout
                )
                async with stream as resp:
                    if resp.status == 206:
                        total = content_range_total(resp.headers.get("Content-Range", ""))
                        if total is not None and entry.size is None:
                            entry.size = total
                        return bytes(await resp.read())
                    # 200: the range was ignored (e.g. a whole small object); take what we need
                    length = resp.content_length
                    if entry.size is None and length is not None:
                        entry.size = length
                    return await read_ignoring_range(resp, start, end)
        except aiohttp.ClientResponseError as exc:
            if exc.status == 416:  # past the end
                if entry.size is None:
                    header = exc.headers.get("Content-Range", "") if exc.headers else ""
                    entry.size = content_range_total(header) or 0
                return b""
            raise HttpStatusError(
                exc.status,
                _reason(exc),
                retry_after=retry_after(exc.headers.get("Retry-After") if exc.headers else None),
            ) from None

    async def close(self) -> None:
        if self._storage is not None:
            await self._storage.close()  # the shared aiohttp session stays open
            self._storage = None

    # -- errors ---------------------------------------------------------------------
    async def _listing_call(self, call: Callable[[], Awaitable[T]]) -> T:
        """One listing request, retried like reads; a final failure ends the run."""

        async def attempt() -> T:
            try:
                return await call()
            except aiohttp.ClientResponseError as exc:
                wait = retry_after(exc.headers.get("Retry-After") if exc.headers else None)
                raise ListingFailed(exc, status=exc.status, retry_after=wait) from None
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
                raise ListingFailed(exc, reason="network") from None
            except TimeoutError as exc:
                raise ListingFailed(exc, reason="timeout") from None

        try:
            return await with_retries(attempt, self.ctx.options.retries)
        except ListingFailed as failed:
            raise self._fatal(failed.cause) from None

    def _fatal(self, exc: BaseException) -> FatalError:
        where = self.name
        if isinstance(exc, aiohttp.ClientResponseError):
            status = exc.status
            if status == 404:
                return FatalError(f"{where}: bucket {self.bucket!r} does not exist")
            if status == 401:
                return FatalError(f"{where}: credentials rejected (HTTP 401)")
            if status == 403:
                return FatalError(f"{where}: access denied listing bucket {self.bucket!r}")
            return FatalError(f"{where}: listing failed (HTTP {status} {_reason(exc)})".rstrip())
        if isinstance(exc, aiohttp.ClientConnectionError):
            return FatalError(f"{where}: cannot reach the endpoint {self.endpoint()}")
        if isinstance(exc, TimeoutError):
            return FatalError(
                f"{where}: no answer from {self.endpoint()} within {self.ctx.options.timeout:g}s"
            )
        return FatalError(f"{where}: listing failed ({type(exc).__name__})")


class _NoToken:
    """Stands in for gcloud-aio-auth's Token under an emulator (never asked for a token)."""

    async def get(self) -> None:
        return None

    async def close(self) -> None:
        return None


def _reason(exc: aiohttp.ClientResponseError) -> str:
    # the library puts "Reason: <response body>" in the message: keep the reason only
    return (exc.message or "").split(":", 1)[0].strip()[:60]


# -- objectUrl → source, for --enrich ---------------------------------------------------
def parse_object_url(url: str) -> tuple[str, str] | None:
    """``(source spec, key)`` for a URL this backend wrote (gs:// or storage.cloud.google.com)."""
    if url.lower().startswith("gs://"):
        bucket, _, key = url[5:].partition("/")
        return (f"gs://{bucket}", unquote(key)) if bucket and key else None
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname in (
        "storage.cloud.google.com",
        "storage.googleapis.com",
    ):
        bucket, _, key = parts.path.lstrip("/").partition("/")
        return (f"gs://{bucket}", unquote(key)) if bucket and key else None
    return None
