"""Azure Blob Storage through azure-storage-blob's aio client.

Sources: ``az://container[/prefix]`` (the account comes from the environment) or
``https://ACCOUNT.blob.core.windows.net/container[/prefix][?SAS]``.

Credentials, first match wins:

* ``https://`` form: a SAS in the URL's query; else ``AZURE_STORAGE_CONNECTION_STRING``
  when it is for that account; else an account key (``AZURE_STORAGE_KEY`` or
  ``AZURE_STORAGE_ACCOUNT_KEY``); else ``AZURE_STORAGE_SAS_TOKEN``; else azure-identity's
  ``DefaultAzureCredential`` (environment service principal, workload/managed identity,
  ``az login`` …).
* ``az://`` form: ``AZURE_STORAGE_CONNECTION_STRING``; else ``AZURE_STORAGE_ACCOUNT``
  with a key, ``AZURE_STORAGE_SAS_TOKEN`` or ``DefaultAzureCredential`` as above, on
  ``https://ACCOUNT.blob.core.windows.net`` or the account URL given by ``--endpoint-url``
  (Azure Stack, a private endpoint, Azurite).

Listing: ``list_blobs`` a page at a time (5000 names), streamed, each page retried
with the shared policy (prober.retry). Reads: ``download_blob(offset, length)``, i.e.
an explicit ``x-ms-range: bytes=a-b`` (Azurite breaks suffix ranges), ``If-Match`` the
listed ETag, retried by the pipeline. The SDK's own retry policy is switched off
(``retry_total=0``): it neither retries 429 nor honours ``Retry-After``.

objectUrl: ``https://ACCOUNT.blob.core.windows.net/container/blob`` (the account URL
of the connection string under an emulator: ``http://127.0.0.1:PORT/devstoreaccount1/…``),
the blob name percent-encoded, never a SAS. Secrets never reach a message: the
source's name is what the user typed with any query replaced by ``REDACTED``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote, unquote, urlsplit, urlunsplit

import aiohttp
from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.core.pipeline.transport import AioHttpTransport
from azure.storage.blob.aio import BlobServiceClient, ContainerClient

from prober.errors import FatalError, HttpStatusError, ListingFailed, ObjectError, UsageError
from prober.model import Entry
from prober.retry import with_retries
from prober.sources.context import SourceContext
from prober.sources.s3 import prefix_matches
from prober.sources.wire import content_range_total, retry_after
from prober.urls import encode_key, redact

T = TypeVar("T")

URL_STYLES = ("https",)
PAGE_SIZE = 5000
KEY_VARS = ("AZURE_STORAGE_KEY", "AZURE_STORAGE_ACCOUNT_KEY")
CREDENTIALS_HINT = (
    "set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY or "
    "AZURE_STORAGE_SAS_TOKEN, or sign in for DefaultAzureCredential (az login, managed "
    "identity, AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET)"
)


class AzureSource:
    unique_urls = True  # a listing: no objectUrl comes twice (see sources/base.py)

    def __init__(self, spec: str, ctx: SourceContext) -> None:
        self.name = redact(spec)  # never the SAS
        self.ctx = ctx
        style = ctx.options.url_style or URL_STYLES[0]
        if style not in URL_STYLES:
            raise UsageError(
                f"--url-style {style!r} is not one of {', '.join(URL_STYLES)} for Azure Blob"
            )
        self.sas: str | None = None
        self.account_url: str | None = None  # https form: scheme://host
        self.account: str | None = None
        if spec.lower().startswith("az://"):
            container, _, prefix = spec[5:].partition("/")
        else:
            parts = urlsplit(spec)
            host = (parts.hostname or "").lower()
            self.account = host.split(".", 1)[0]
            self.account_url = f"https://{host}" + (f":{parts.port}" if parts.port else "")
            self.sas = parts.query or None
            container, _, prefix = unquote(parts.path).lstrip("/").partition("/")
        if not container:
            raise UsageError(f"{self.name}: no container name")
        self.container, self.prefix = container, prefix
        # a SAS scoped to one blob cannot list: read that blob alone
        scope = parse_qs(self.sas or "").get("sr", [""])[0]
        self.single_blob = bool(prefix) and scope in ("b", "bs", "bv")
        self.how = ""  # which credential was used, for messages
        self._service: BlobServiceClient | None = None
        self._container: ContainerClient | None = None
        self._credential: Any = None  # a DefaultAzureCredential to close
        self._transport: AioHttpTransport | None = None
        self._conn_sas: str | None = None  # a connection string's SAS, for the expiry hint
        self._base = ""  # objectUrl prefix: account URL + container, no query

    # -- client -------------------------------------------------------------------
    def _client_kwargs(self) -> dict[str, Any]:
        opts = self.ctx.options
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max(opts.concurrency * 2, 100)),
            trust_env=True,  # proxies, as the SDK's own session does
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
        )
        transport = AioHttpTransport(
            session=session,
            session_owner=True,
            connection_timeout=opts.timeout,
            read_timeout=opts.timeout,
        )
        self._transport = transport
        return {"transport": transport, "retry_total": 0, "logging_enable": False}

    def _connect(self) -> BlobServiceClient:
        conn = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
        if self.account_url is None:  # az://container
            if conn:
                return self._from_connection_string(conn)
            account = os.environ.get("AZURE_STORAGE_ACCOUNT")
            if not account:
                raise FatalError(
                    f"{self.name}: no Azure storage account configured: {CREDENTIALS_HINT}"
                )
            self.account = account
            # --endpoint-url: another account URL (Azurite, Azure Stack, a private endpoint)
            account_url = (
                self.ctx.options.endpoint_url or f"https://{account}.blob.core.windows.net"
            ).rstrip("/")
            return self._with_credential(account_url, self._env_credential())
        if self.sas:
            self.how = "the SAS in the URL"
            return BlobServiceClient(self.account_url, credential=self.sas, **self._client_kwargs())
        if conn and _connection_account(conn) == self.account:
            return self._from_connection_string(conn)
        other = os.environ.get("AZURE_STORAGE_ACCOUNT")
        credential = self._env_credential() if other in (None, "", self.account) else None
        if credential is None:
            credential = self._default_credential()
        return self._with_credential(self.account_url, credential)

    def _from_connection_string(self, conn: str) -> BlobServiceClient:
        self.how = "AZURE_STORAGE_CONNECTION_STRING"
        self._conn_sas = _connection_fields(conn).get("sharedaccesssignature")
        try:
            return BlobServiceClient.from_connection_string(conn, **self._client_kwargs())
        except (ValueError, TypeError, KeyError):
            # the message could quote the string: never show it
            raise FatalError(
                f"{self.name}: AZURE_STORAGE_CONNECTION_STRING is not a valid connection string"
            ) from None

    def _env_credential(self) -> Any:
        for var in KEY_VARS:
            key = os.environ.get(var)
            if key:
                self.how = var
                return {"account_name": self.account, "account_key": key}
        sas = os.environ.get("AZURE_STORAGE_SAS_TOKEN")
        if sas:
            self.how = "AZURE_STORAGE_SAS_TOKEN"
            self.sas = sas.lstrip("?")
            return self.sas
        return self._default_credential()

    def _default_credential(self) -> Any:
        from azure.identity.aio import DefaultAzureCredential

        self.how = "DefaultAzureCredential"
        self._credential = DefaultAzureCredential()
        return self._credential

    def _with_credential(self, account_url: str, credential: Any) -> BlobServiceClient:
        if self._credential is not None and not account_url.lower().startswith("https://"):
            raise FatalError(
                f"{self.name}: DefaultAzureCredential needs an https account URL, not "
                f"{redact(account_url)}: {CREDENTIALS_HINT}"
            )
        return BlobServiceClient(account_url, credential=credential, **self._client_kwargs())

    def client(self) -> ContainerClient:
        if self._container is None:
            self._service = self._connect()
            self._container = self._service.get_container_client(self.container)
            parts = urlsplit(self._container.url)
            self._base = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
        return self._container

    # -- URLs ---------------------------------------------------------------------
    def object_url(self, blob: str) -> str:
        return f"{self._base}/{encode_key(blob)}"

    def handle_for(self, key: str) -> str:
        return key

    # -- Source protocol ------------------------------------------------------------
    async def entries(self) -> AsyncIterator[Entry]:
        cc = self.client()
        if self.single_blob:
            props = await self._listing_call(
                functools.partial(cc.get_blob_client(self.prefix).get_blob_properties)
            )
            yield self._entry(props.name or self.prefix, props.size, props.etag)
            return
        token: str | None = None
        while True:
            items, token = await self._listing_call(functools.partial(self._page, cc, token))
            for blob in items:
                name = blob.name
                if name.endswith("/") or not prefix_matches(name, self.prefix):
                    continue  # folder markers
                yield self._entry(name, blob.size, blob.etag)
            if not token:
                return

    def _entry(self, name: str, size: int | None, etag: str | None) -> Entry:
        return Entry(
            url=self.object_url(name),
            key=name,
            size=int(size or 0),
            etag=(etag or "").strip('"') or None,
            handle=name,
        )

    async def _page(self, cc: ContainerClient, token: str | None) -> tuple[list[Any], str | None]:
        """One page of the listing (a fresh pager per attempt, so a retry resumes at ``token``)."""
        pages = cc.list_blobs(
            name_starts_with=self.prefix or None, results_per_page=PAGE_SIZE
        ).by_page(continuation_token=token)
        page = await pages.__anext__()
        items = [blob async for blob in page]
        return items, pages.continuation_token or None  # type: ignore[attr-defined]

    async def read(self, entry: Entry, start: int, end: int) -> bytes:
        if entry.size is not None:
            end = min(end, entry.size)
            if start >= end:
                return b""
        blob = self.client().get_blob_client(entry.handle)
        conditions: dict[str, Any] = {}
        if entry.etag:
            conditions = {
                "etag": f'"{entry.etag}"',
                "match_condition": MatchConditions.IfNotModified,
            }
        try:
            downloader = await blob.download_blob(
                offset=start, length=end - start, max_concurrency=1, retry_total=0, **conditions
            )
            if entry.size is None:  # a bare URL (--enrich): "bytes a-b/TOTAL"
                entry.size = content_range_total(downloader.properties.content_range)
            return bytes(await downloader.readall())
        except (ServiceRequestTimeoutError, ServiceResponseTimeoutError):
            raise ObjectError("timeout", "timeout: no answer in time") from None
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise ObjectError(
                "network", f"network: connection failed ({type(exc).__name__})"
            ) from None
        except HttpResponseError as exc:
            status = exc.status_code
            if status is None:
                if isinstance(exc, ClientAuthenticationError):
                    raise ObjectError("auth", "auth: could not get an Azure token") from None
                raise ObjectError("network", f"network: {type(exc).__name__}") from None
            if status == 416:  # past the end
                if entry.size is None and exc.response is not None:
                    entry.size = content_range_total(exc.response.headers.get("Content-Range")) or 0
                return b""
            if status == 412:
                raise ObjectError(
                    "changed", "changed: the object changed while being probed (ETag)", status=412
                ) from None
            raise HttpStatusError(status, _code(exc), retry_after=_retry_after(exc)) from None

    async def close(self) -> None:
        service, self._service, self._container = self._service, None, None
        transport, self._transport = self._transport, None
        if service is not None:
            await service.close()
        elif transport is not None and transport.session is not None:
            await transport.session.close()  # the client was never built
        credential, self._credential = self._credential, None
        if credential is not None:
            await credential.close()

    # -- errors ---------------------------------------------------------------------
    async def _listing_call(self, call: Callable[[], Awaitable[T]]) -> T:
        """One listing request, retried like reads; a final failure ends the run."""

        async def attempt() -> T:
            try:
                return await call()
            except (ServiceRequestTimeoutError, ServiceResponseTimeoutError) as exc:
                raise ListingFailed(exc, reason="timeout") from None
            except (ServiceRequestError, ServiceResponseError) as exc:
                raise ListingFailed(exc, reason="network") from None
            except HttpResponseError as exc:
                # no status: a credential that could not get a token; not retried
                raise ListingFailed(
                    exc, status=exc.status_code or 400, retry_after=_retry_after(exc)
                ) from None
            except AzureError as exc:
                raise ListingFailed(exc, status=400) from None

        try:
            return await with_retries(attempt, self.ctx.options.retries)
        except ListingFailed as failed:
            raise self._fatal(failed.cause) from None

    def _fatal(self, exc: BaseException) -> FatalError:
        where, container = self.name, self.container
        if isinstance(exc, ClientAuthenticationError) and exc.status_code is None:
            if type(exc).__name__ == "AzureSigningError":
                return FatalError(f"{where}: the account key from {self.how} is not a valid key")
            return FatalError(
                f"{where}: no usable Azure credentials ({self.how} could not sign in): {CREDENTIALS_HINT}"
            )
        if isinstance(exc, ResourceNotFoundError) or getattr(exc, "status_code", None) == 404:
            code = _code(exc)
            if self.single_blob and code == "BlobNotFound":
                return FatalError(f"{where}: blob {self.prefix!r} does not exist")
            if code in ("ContainerNotFound", "", "ResourceNotFound"):
                return FatalError(f"{where}: container {container!r} does not exist")
            return FatalError(f"{where}: not found ({code})")
        if isinstance(exc, HttpResponseError) and exc.status_code in (401, 403):
            code = _code(exc) or f"HTTP {exc.status_code}"
            expired = self._sas_expiry()
            if expired:
                return FatalError(f"{where}: the SAS token expired at {expired}")
            if code == "AuthenticationFailed":
                return FatalError(f"{where}: credentials rejected ({code}; check {self.how})")
            return FatalError(
                f"{where}: access denied listing container {container!r} ({code}; "
                f"credentials from {self.how})"
            )
        if isinstance(exc, ServiceRequestTimeoutError | ServiceResponseTimeoutError):
            return FatalError(
                f"{where}: no answer from {self._endpoint()} within {self.ctx.options.timeout:g}s"
            )
        if isinstance(exc, ServiceRequestError | ServiceResponseError):
            return FatalError(f"{where}: cannot reach the endpoint {self._endpoint()}")
        if isinstance(exc, HttpResponseError) and exc.status_code:
            detail = f"HTTP {exc.status_code} {_code(exc)}".strip()
            return FatalError(f"{where}: listing failed ({detail})")
        return FatalError(f"{where}: listing failed ({type(exc).__name__})")

    def _endpoint(self) -> str:
        base = self._base.rsplit("/", 1)[0] if self._base else (self.account_url or "")
        return redact(base)

    def _sas_expiry(self) -> str | None:
        """The SAS's ``se`` (expiry) when it is in the past: not a secret, a useful hint."""
        sas = self.sas or self._conn_sas
        if not sas:
            return None
        value = parse_qs(sas).get("se", [""])[0]
        try:
            expiry = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if expiry.tzinfo is None:
            expiry = expiry.replace(tzinfo=UTC)
        return value if expiry < datetime.now(UTC) else None


def _code(exc: BaseException) -> str:
    code = getattr(exc, "error_code", None)
    if code:
        return str(getattr(code, "value", code))  # a StorageErrorCode enum or a string
    response = getattr(exc, "response", None)
    return str(getattr(response, "reason", "") or "") if response is not None else ""


def _retry_after(exc: HttpResponseError) -> float | None:
    response = exc.response
    return retry_after(response.headers.get("Retry-After") if response is not None else None)


def _connection_fields(conn: str) -> dict[str, str]:
    """``Name=value;…`` → {lowercased name: value} (values may contain '=')."""
    fields: dict[str, str] = {}
    for part in conn.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            fields[name.strip().lower()] = value.strip()
    return fields


def _connection_account(conn: str) -> str | None:
    """The account a connection string is for: AccountName, else the BlobEndpoint's host."""
    fields = _connection_fields(conn)
    if fields.get("accountname"):
        return fields["accountname"].lower()
    endpoint = fields.get("blobendpoint")
    if endpoint:
        return (urlsplit(endpoint).hostname or "").split(".", 1)[0].lower() or None
    return None


# -- objectUrl → source, for --enrich ---------------------------------------------------
def parse_object_url(url: str) -> tuple[str, str] | None:
    """``(source spec, blob name)`` for an ``https://ACCOUNT.blob.core.windows.net/c/blob`` URL."""
    from prober.sources import is_azure_blob_url

    if not is_azure_blob_url(url):
        return _parse_emulator_url(url)
    parts = urlsplit(url)
    container, _, blob = parts.path.lstrip("/").partition("/")
    if not container or not blob:
        return None
    spec = f"https://{parts.netloc}/{quote(unquote(container))}"
    return spec, unquote(blob)


def _parse_emulator_url(url: str) -> tuple[str, str] | None:
    """An objectUrl under the connection string's own BlobEndpoint (an emulator's)."""
    conn = os.environ.get("AZURE_STORAGE_CONNECTION_STRING") or ""
    endpoint = _connection_fields(conn).get("blobendpoint", "").rstrip("/")
    if not endpoint or not url.startswith(endpoint + "/"):
        return None
    container, _, blob = url[len(endpoint) + 1 :].partition("/")
    if not container or not blob:
        return None
    return f"az://{unquote(container)}", unquote(blob)
