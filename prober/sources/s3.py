"""Amazon S3 (and S3-compatible stores) through aiobotocore.

Listing: paginated ``list_objects_v2``, streamed. Reads: a ranged GetObject, signed
with SigV4 and sent through the run's shared aiohttp session
(:mod:`prober.sources.s3_sign`: aiobotocore's per-request machinery costs more CPU than
the rest of a probe), or ``get_object`` through aiobotocore when that fast path does not
apply (bucket region unknown, anonymous access, SigV4A, a redirect or wrong-region
answer; ``PROBER_S3_FASTPATH=0`` turns it off). Endpoint and credentials follow
botocore's own chain (``AWS_ENDPOINT_URL``/``AWS_ENDPOINT_URL_S3``, ``AWS_PROFILE``,
``AWS_REGION`` …); ``--endpoint-url`` overrides the endpoint. When the environment
alone decides them (static keys, no config file: :mod:`prober.sources.s3_env`), the
fast path reads them from there and botocore is loaded only if a client is needed.

Two variants share the client code:

* :class:`ObsSource` -- Open Telekom Cloud OBS (``obs://bucket[/prefix]``) through its
  S3-compatible API on ``https://obs.REGION.otc.t-systems.com``.
* :class:`MrapSource` -- an S3 Multi-Region Access Point given by its ARN
  (``arn:aws:s3::ACCOUNT:accesspoint/ALIAS.mrap[/prefix]``).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import os
import re
from collections.abc import AsyncIterator
from operator import itemgetter
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from prober.errors import FatalError, ObjectError, UsageError
from prober.model import Entry
from prober.retry import with_retries
from prober.sources import listing, s3_env, s3_sign
from prober.sources.context import SourceContext
from prober.sources.s3_sign import FastRangedGet, WrongEndpoint
from prober.urls import encode_key

if TYPE_CHECKING:
    from aiobotocore.config import AioConfig
    from botocore.exceptions import ClientError

# botocore is imported where a client or session is used: a run whose settings come
# from the environment alone (s3_env) never loads it

log = logging.getLogger("prober")

URL_STYLES = ("virtual", "path", "s3")
_KEY = itemgetter(0)


def split_bucket(spec: str, scheme: str) -> tuple[str, str]:
    rest = spec[len(scheme) :]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise UsageError(f"{spec}: no bucket name")
    return bucket, prefix


def prefix_matches(key: str, prefix: str) -> bool:
    """Directory semantics like rclone/gsutil: ``clips`` means ``clips/…`` or the object ``clips``."""
    if not prefix or prefix.endswith("/"):
        return True
    return key == prefix or key.startswith(prefix + "/")


class S3Source:
    scheme = "s3://"
    unique_urls = True  # a listing: no objectUrl comes twice (see sources/base.py)
    label = "S3"  # for messages
    url_styles: tuple[str, ...] = URL_STYLES  # the first is the default
    credentials_hint = "no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID)"

    def __init__(self, spec: str, ctx: SourceContext) -> None:
        self.name = spec
        self.ctx = ctx
        self.bucket, self.prefix = self.parse(spec)
        style = ctx.options.url_style or self.url_styles[0]
        if style not in self.url_styles:
            raise UsageError(
                f"--url-style {style!r} is not one of {', '.join(self.url_styles)} for {self.label}"
            )
        self.url_style = style
        self._stack = contextlib.AsyncExitStack()
        self._session: Any = None
        self._client: Any = None
        self.region: str | None = None
        # the signed-aiohttp read path: None = not decided yet, False = use aiobotocore
        self._fast: FastRangedGet | bool | None = None
        # settings from the environment alone, when it decides them (see s3_env)
        self._plain = s3_env.plain() if self.session_fast_path and s3_sign.enabled() else None
        if self._plain is None:
            # botocore's session machinery: loaded with the rest of start-up (cli.run)
            import aiobotocore.session  # noqa: F401

    def parse(self, spec: str) -> tuple[str, str]:
        """(bucket, prefix) of a SOURCE argument."""
        return split_bucket(spec, self.scheme)

    # -- client -------------------------------------------------------------------
    def endpoint(self) -> str | None:
        return self.ctx.options.endpoint_url

    def client_config(self) -> AioConfig:
        from aiobotocore.config import AioConfig

        # botocore's own retries are off: prober's shared policy retries every backend
        # alike (Retry-After, jitter) and lets the adaptive limiter see throttling
        return AioConfig(
            retries={"max_attempts": 1, "mode": "standard"},
            connect_timeout=self.ctx.options.timeout,
            read_timeout=self.ctx.options.timeout,
            max_pool_connections=max(self.ctx.options.concurrency, 10),
        )

    def client_kwargs(self) -> dict[str, Any]:
        return {
            "endpoint_url": self.endpoint(),
            "region_name": self.ctx.options.region or _env_region(),
            "config": self.client_config(),
        }

    def session(self) -> Any:
        """The aiobotocore session: credentials and configuration, without a client."""
        if self._session is None:
            from aiobotocore.session import get_session

            self._session = get_session()
            # listings' LastModified is never used: keep botocore from parsing 1,000
            # timestamps per page with dateutil (the AWS CLI does the same)
            self._session.get_component("response_parser_factory").set_parser_defaults(
                timestamp_parser=str
            )
        return self._session

    async def client(self) -> Any:
        if self._client is None:
            self._client = await self._stack.enter_async_context(
                self.session().create_client("s3", **self.client_kwargs())
            )
        return self._client

    async def detect_region(self) -> str:
        """--region, else the bucket's own location, else the configured region."""
        if self.region is None:
            region = self.ctx.options.region or await self._region_from_head()
            if region is None:
                from botocore.exceptions import BotoCoreError, ClientError

                client = await self.client()
                try:
                    resp = await client.get_bucket_location(Bucket=self.bucket)
                    loc = resp.get("LocationConstraint")
                    region = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(loc, loc)
                except ClientError as exc:
                    if _code(exc) in ("NoSuchBucket", "404"):
                        raise self._fatal(exc) from None
                    region = _env_region() or client.meta.region_name
                except BotoCoreError as exc:
                    raise self._fatal(exc) from None
            self.region = region or "us-east-1"
        return self.region

    # -- URLs ---------------------------------------------------------------------
    def object_url(self, key: str) -> str:
        k = encode_key(key)
        if self.url_style == "s3":
            return f"s3://{self.bucket}/{k}"
        region = self.region or "us-east-1"
        if self.url_style == "path":
            return f"https://s3.{region}.amazonaws.com/{self.bucket}/{k}"
        return f"https://{self.bucket}.s3.{region}.amazonaws.com/{k}"

    def handle_for(self, key: str) -> str:
        return key

    # -- Source protocol ------------------------------------------------------------
    async def entries(self) -> AsyncIterator[Entry]:
        await self.detect_region()
        # the state's query for split keys runs on its thread while the session loads
        splits = asyncio.ensure_future(
            listing.split_keys(self.ctx.hints, self.object_url, self.prefix)
        )
        await asyncio.sleep(0)  # let it reach its thread before the session work starts
        try:
            fast = self._fast if self._fast is not None else await self._fast_path()
        except BaseException:
            splits.cancel()
            raise

        async def fetch(token: str | None, after: str | None) -> tuple[list, str | None]:
            return await self._page(fast, token, after)

        concurrency = self.ctx.options.concurrency
        base = self.object_url("")  # + the encoded key: every URL style
        async for objects in listing.ranged_pages(fetch, await splits, _KEY, concurrency):
            for key, size, etag in objects:
                if key.endswith("/") or not prefix_matches(key, self.prefix):
                    continue  # folder markers
                yield Entry(base + encode_key(key), key, size, etag, key)

    async def _page(
        self, fast: FastRangedGet | bool, token: str | None, after: str | None = None
    ) -> tuple[list[tuple[str, int, str | None]], str | None]:
        """One listing page: directly when reads go direct (no botocore parsing of
        1,000 keys), else through aiobotocore; retried like any read."""
        if fast and self._fast is fast:
            try:
                return await with_retries(
                    lambda: s3_sign.list_page(fast, self.prefix, token, after),
                    self.ctx.options.retries,
                )
            except s3_sign.WrongEndpoint as exc:
                log.debug("%s: %s on a direct listing: listing through botocore", self.name, exc)
                self._fast = False
            except s3_sign.ListingError as exc:
                raise self._fatal_code(exc.code) from None
            except ObjectError as exc:
                raise FatalError(f"{self.name}: listing failed: {exc}") from None
        params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix, "MaxKeys": 1000}
        if token:
            params["ContinuationToken"] = token
        elif after:
            params["StartAfter"] = after
        page = await self._list_page(await self.client(), params)
        objects = [
            (obj["Key"], int(obj["Size"]), (obj.get("ETag") or "").strip('"') or None)
            for obj in page.get("Contents", ())
        ]
        next_token = page.get("NextContinuationToken") if page.get("IsTruncated") else None
        return objects, next_token

    async def _list_page(self, client: Any, params: dict[str, Any]) -> dict[str, Any]:
        """One listing page, retried like any read; a final failure ends the run."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            EndpointConnectionError,
            HTTPClientError,
        )
        from botocore.exceptions import ConnectionError as BotoConnectionError

        async def call() -> dict[str, Any]:
            try:
                page: dict[str, Any] = await client.list_objects_v2(**params)
                return page
            except ClientError as exc:
                error = _object_error(exc)
                if error.retryable:
                    raise error from None
                raise self._fatal(exc) from None
            except EndpointConnectionError as exc:
                where = exc.kwargs.get("endpoint_url", "")
                raise ObjectError("network", f"cannot reach the endpoint {where}") from None
            except (BotoConnectionError, HTTPClientError) as exc:
                raise ObjectError("network", f"network: {type(exc).__name__}") from None
            except BotoCoreError as exc:  # credentials, missing dependencies …
                raise self._fatal(exc) from None

        try:
            return await with_retries(call, self.ctx.options.retries)
        except ObjectError as exc:
            raise FatalError(f"{self.name}: listing failed: {exc}") from None

    async def read(self, entry: Entry, start: int, end: int) -> bytes:
        fast = self._fast
        if fast is None:
            fast = await self._fast_path()
        if fast:
            try:
                return await fast.get(entry, entry.handle, start, end)
            except WrongEndpoint as exc:
                if self._fast is fast:
                    log.debug("%s: %s on a direct read: reading through botocore", self.name, exc)
                    self._fast = False
        return await self._botocore_read(entry, start, end)

    async def _botocore_read(self, entry: Entry, start: int, end: int) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

        client = await self.client()
        extra = {"IfMatch": f'"{entry.etag}"'} if entry.etag else {}
        try:
            resp = await client.get_object(
                Bucket=self.bucket, Key=entry.handle, Range=f"bytes={start}-{end - 1}", **extra
            )
            if entry.size is None:  # a bare URL (--enrich): learn the size
                total = str(resp.get("ContentRange") or "").rpartition("/")[2]
                if total.isdigit():
                    entry.size = int(total)
            if entry.etag is None and resp.get("ETag"):
                entry.etag = str(resp["ETag"]).strip('"')  # later reads must see the same object
            async with resp["Body"] as body:
                return await body.read()
        except ClientError as exc:
            raise _object_error(exc) from None
        except EndpointConnectionError:
            raise ObjectError("network", "network: cannot reach the endpoint") from None
        except BotoCoreError as exc:
            raise ObjectError("network", f"network: {type(exc).__name__}") from None

    def fast_path_allowed(self) -> bool:
        """Whether this source's requests are plain SigV4 to a bucket (not SigV4A …)."""
        return True

    async def _fast_path(self) -> FastRangedGet | bool:
        """Decide once whether reads may skip aiobotocore (see prober/sources/s3_sign.py):
        from the session alone when its configuration is the plain kind, else from a
        client."""
        if self._fast is None:
            fast = await self._fast_from_session()
            if fast is None:
                fast = await self._make_fast(await self.client())
            self._fast = fast or False
            if not self._fast:
                log.debug("%s: reads go through aiobotocore", self.name)
        return self._fast

    def _fast_possible(self) -> bool:
        """Switched on, the bucket's region known (not for --enrich: botocore finds it
        out) and plain SigV4 to a bucket."""
        return s3_sign.enabled() and self.region is not None and self.fast_path_allowed()

    #: whether the fast path may be decided without a client (OBS brings its own keys)
    session_fast_path = True

    async def _fast_from_session(self) -> FastRangedGet | None:
        """The fast path without building a client (~0.1 s of botocore models and
        endpoint rules, which a --state rerun over an unchanged bucket notices)."""
        if not self._fast_possible():
            return None
        assert self.region is not None
        return await self._direct(self.region)

    async def _region_from_head(self) -> str | None:
        """The bucket's region from one HEAD of the bucket, signed as the fast path signs
        (for the configured region, else us-east-1), without building a client: S3
        names the region in every answer. None when the configuration is not the plain
        kind or the store does not say; then GetBucketLocation, through botocore,
        decides (and reports a missing bucket)."""
        if not (s3_sign.enabled() and self.fast_path_allowed()):
            return None
        configured = _env_region()
        if configured is None and self._plain is None:
            configured = self.session().get_config_variable("region")
        probe = await self._direct(configured or "us-east-1")
        region = await probe.bucket_region() if probe is not None else None
        if region:
            log.debug("%s: the bucket is in %s", self.name, region)
        return region

    async def _direct(self, region: str) -> FastRangedGet | None:
        """Signed aiohttp requests to this bucket as if it were in ``region``, decided
        without a client, for the plain configuration only (see _session_settings)."""
        if not self.session_fast_path:
            return None
        settings = self._plain or await self._session_settings(region)
        return await self._fast_get(settings, region) if settings is not None else None

    async def _session_settings(self, region: str) -> s3_sign.Settings | None:
        """The fast path's settings from botocore's session alone, for the plain
        configuration: credentials from the chain, SigV4, no FIPS, dual-stack,
        accelerate or signature settings. Anything else returns None and a client
        decides, as botocore itself would resolve it."""
        from botocore.configprovider import ConfiguredEndpointProvider
        from botocore.exceptions import BotoCoreError

        session = self.session()
        store = copy.copy(session.get_component("config_store"))
        store.set_config_provider(  # what a client reads its endpoint from
            "endpoint_url",
            ConfiguredEndpointProvider(
                full_config=session.full_config,
                scoped_config=session.get_scoped_config(),
                client_name="s3",
            ),
        )
        s3_config = dict(store.get_config_variable("s3") or {})
        addressing = s3_config.pop("addressing_style", None)
        regional = s3_config.pop("us_east_1_regional_endpoint", None)
        if (
            any(s3_config.values())  # accelerate, dual-stack, signature_version …
            or store.get_config_variable("use_fips_endpoint")
            or store.get_config_variable("use_dualstack_endpoint")
            or (session.get_scoped_config().get("s3") or {}).get("signature_version")
        ):
            return None
        endpoint = self.endpoint()
        if endpoint is None and not store.get_config_variable("ignore_configured_endpoint_urls"):
            endpoint = store.get_config_variable("endpoint_url")
        if endpoint is None and region == "us-east-1" and regional == "regional":
            endpoint = "https://s3.us-east-1.amazonaws.com"
        try:
            credentials = await session.get_credentials()
        except BotoCoreError:
            return None  # the client will say what is wrong
        if credentials is None:
            return None  # anonymous access
        return s3_sign.Settings(
            credentials,
            endpoint,
            addressing=addressing,
            checksums=store.get_config_variable("response_checksum_validation"),
            ca_bundle=store.get_config_variable("ca_bundle"),
        )

    async def _make_fast(self, client: Any) -> FastRangedGet | None:
        if not self._fast_possible():  # asked again: an MRAP knows only once its client is built
            return None
        signer = getattr(client, "_request_signer", None)
        credentials = getattr(signer, "_credentials", None)
        config = client.meta.config
        if credentials is None or not hasattr(credentials, "get_frozen_credentials"):
            return None  # anonymous access
        if getattr(signer, "_signature_version", None) not in ("s3v4", "v4"):
            return None  # unsigned, SigV2 …
        s3_config = config.s3 or {}
        if (
            config.use_fips_endpoint
            or config.use_dualstack_endpoint
            or s3_config.get("use_accelerate_endpoint")
            or s3_config.get("use_dualstack_endpoint")
        ):
            return None
        assert self.region is not None
        settings = s3_sign.Settings(
            credentials,
            client.meta.endpoint_url,
            addressing=s3_config.get("addressing_style"),
            checksums=config.response_checksum_validation,
            ca_bundle=self.session().get_config_variable("ca_bundle"),
        )
        return await self._fast_get(settings, self.region)

    async def _fast_get(self, settings: s3_sign.Settings, region: str) -> FastRangedGet | None:
        """The fast path for this bucket, or None when its URL is botocore's business
        (or its CA bundle cannot be loaded: botocore will say why)."""
        endpoint = self.endpoint() or settings.endpoint_url
        custom = _is_custom_endpoint(endpoint) if endpoint else False
        base = s3_sign.object_base_url(
            self.bucket, region, endpoint, custom=custom, addressing=settings.addressing
        )
        if base is None:
            return None
        try:
            tls = await s3_sign.tls_context(settings.ca_bundle, base)
        except (OSError, ValueError):
            return None
        return FastRangedGet(
            self.ctx.http,
            settings.credentials,
            region,
            base,
            checksum_mode=settings.checksums == "when_supported",
            tls=tls,
        )

    async def close(self) -> None:
        await self._stack.aclose()

    # -- errors ---------------------------------------------------------------------
    def what(self) -> str:
        """The listed container, for messages."""
        return f"bucket {self.bucket!r}"

    def _fatal(self, exc: Exception) -> FatalError:
        """The one line for a botocore error that ends the run."""
        from botocore.exceptions import (
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
            PartialCredentialsError,
        )

        where = self.name
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return FatalError(f"{where}: {self.credentials_hint}")
        if isinstance(exc, EndpointConnectionError):
            return FatalError(
                f"{where}: cannot reach the endpoint {exc.kwargs.get('endpoint_url', '')}"
            )
        if isinstance(exc, ClientError):
            return self._fatal_code(_code(exc))
        return FatalError(f"{where}: {type(exc).__name__}: {exc}")

    def _fatal_code(self, code: str) -> FatalError:
        """The one line for a listing that the store refused with this error code."""
        where = self.name
        if code in ("NoSuchBucket", "404"):
            return FatalError(f"{where}: {self.what()} does not exist")
        if code in ("AccessDenied", "403", "AllAccessDisabled"):
            return FatalError(f"{where}: access denied listing {self.what()}")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"):
            return FatalError(f"{where}: credentials rejected ({code})")
        return FatalError(f"{where}: listing failed ({code})")


def _object_error(exc: ClientError) -> ObjectError:
    """A per-object error from a ClientError: throttling → 503, timeouts → 408."""
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    return s3_sign.status_error(status, _code(exc), headers.get("retry-after"))


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "")) or str(
        exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
    )


def _env_region() -> str | None:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None


# ---------------------------------------------------------------------------- OBS
OBS_DEFAULT_REGION = "eu-de"
_OBS_HOST = re.compile(r"(?:^|\.)obs\.([a-z0-9-]+)\.otc\.t-systems\.com$")


class ObsSource(S3Source):
    """Open Telekom Cloud OBS through its S3-compatible API.

    Endpoint: ``--endpoint-url``, else ``https://obs.REGION.otc.t-systems.com``. Region:
    ``--region``, else the one in an ``obs.REGION.otc.t-systems.com`` endpoint, else
    ``eu-de``. Credentials: ``OBS_ACCESS_KEY_ID``/``OBS_SECRET_ACCESS_KEY``
    (``OBS_SECURITY_TOKEN``) when set, else botocore's chain. objectUrl:
    ``https://bucket.obs.REGION.otc.t-systems.com/key`` (``--url-style path``:
    ``https://obs.REGION.otc.t-systems.com/bucket/key``), whatever endpoint is read from.
    """

    scheme = "obs://"
    label = "OBS"
    url_styles = ("virtual", "path")
    credentials_hint = (
        "no OBS credentials found (set OBS_ACCESS_KEY_ID and OBS_SECRET_ACCESS_KEY, "
        "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
    )
    session_fast_path = False  # its own keys and settings live in client_kwargs()

    def obs_region(self) -> str:
        if self.ctx.options.region:
            return self.ctx.options.region
        endpoint = self.ctx.options.endpoint_url
        if endpoint:
            match = _OBS_HOST.search((urlsplit(endpoint).hostname or "").lower())
            if match:
                return match.group(1)
        return OBS_DEFAULT_REGION

    def endpoint(self) -> str:
        # always explicit: AWS_ENDPOINT_URL is meant for AWS, not for OBS
        return self.ctx.options.endpoint_url or f"https://obs.{self.obs_region()}.otc.t-systems.com"

    def client_config(self) -> AioConfig:
        from aiobotocore.config import AioConfig

        opts = self.ctx.options
        host = (urlsplit(self.endpoint()).hostname or "").lower()
        return AioConfig(
            retries={"max_attempts": 1, "mode": "standard"},  # prober retries (see S3Source)
            connect_timeout=opts.timeout,
            read_timeout=opts.timeout,
            max_pool_connections=max(opts.concurrency, 10),
            # S3-compatible stores reject the flexible checksums newer botocore sends
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            # OBS's own endpoints serve buckets as virtual hosts; others (gateways,
            # emulators on an IP) keep botocore's choice
            s3={"addressing_style": "virtual"} if host.endswith(".otc.t-systems.com") else None,
        )

    def client_kwargs(self) -> dict[str, Any]:
        kwargs = super().client_kwargs()
        kwargs["region_name"] = self.obs_region()
        key, secret = os.environ.get("OBS_ACCESS_KEY_ID"), os.environ.get("OBS_SECRET_ACCESS_KEY")
        if key and secret:
            kwargs["aws_access_key_id"] = key
            kwargs["aws_secret_access_key"] = secret
            kwargs["aws_session_token"] = os.environ.get("OBS_SECURITY_TOKEN") or None
        return kwargs

    async def detect_region(self) -> str:
        # no GetBucketLocation: the region is configured (or OBS's default)
        if self.region is None:
            self.region = self.obs_region()
        return self.region

    def object_url(self, key: str) -> str:
        region = self.region or self.obs_region()
        k = encode_key(key)
        if self.url_style == "path":
            return f"https://obs.{region}.otc.t-systems.com/{self.bucket}/{k}"
        return f"https://{self.bucket}.obs.{region}.otc.t-systems.com/{k}"


# ---------------------------------------------------------------------------- MRAP
MRAP_ARN = re.compile(
    r"^(arn:(aws|aws-cn|aws-us-gov):s3::(\d{12}):accesspoint/([a-z0-9][a-z0-9-]*\.mrap))"
    r"(?:/(.*))?$"
)


def is_mrap_arn(spec: str) -> bool:
    return MRAP_ARN.match(spec) is not None


class MrapSource(S3Source):
    """An S3 Multi-Region Access Point, given by its ARN.

    Listing and reads pass the ARN as the ``Bucket`` (botocore routes it to
    ``ALIAS.accesspoint.s3-global.amazonaws.com`` and signs with SigV4A, which needs
    ``botocore[crt]``). objectUrl: the ARN, ``/``, the percent-encoded key, as Encord
    documents for Multi-Region Access Points.

    Under an endpoint override (``--endpoint-url``, ``AWS_ENDPOINT_URL``…; an emulator
    or an S3-compatible gateway standing in for the access point) requests go to the
    bucket named by the ARN's resource (``ALIAS.mrap``) on that endpoint with plain
    SigV4: emulators such as moto do not implement access points.
    """

    scheme = "arn:"
    label = "a Multi-Region Access Point"
    url_styles = ("arn",)

    def parse(self, spec: str) -> tuple[str, str]:
        match = MRAP_ARN.match(spec)
        if match is None:
            raise UsageError(
                f"{spec}: not an S3 Multi-Region Access Point ARN "
                "(arn:aws:s3::ACCOUNT:accesspoint/ALIAS.mrap[/prefix])"
            )
        self.arn, _partition, self.account, self.alias, prefix = match.groups()
        return self.arn, prefix or ""

    async def client(self) -> Any:
        if self._client is None:
            client = await super().client()
            if _is_custom_endpoint(client.meta.endpoint_url):
                self.bucket = self.alias
        return self._client

    async def detect_region(self) -> str:
        # an access point spans regions; GetBucketLocation does not apply
        if self.region is None:
            self.region = self.ctx.options.region or _env_region() or "us-east-1"
        return self.region

    def object_url(self, key: str) -> str:
        return f"{self.arn}/{encode_key(key)}"

    def fast_path_allowed(self) -> bool:
        # the access point itself needs SigV4A and botocore's routing; a bucket standing
        # in for it on an endpoint override is plain S3
        return self.bucket == self.alias

    def what(self) -> str:
        if self.bucket == self.alias:
            return f"bucket {self.bucket!r} (standing in for {self.arn})"
        return f"access point {self.arn}"

    def _fatal(self, exc: Exception) -> FatalError:
        from botocore.exceptions import MissingDependencyException

        if isinstance(exc, MissingDependencyException):
            return FatalError(
                f"{self.name}: Multi-Region Access Points need SigV4A signing: "
                "pip install 'botocore[crt]'"
            )
        return super()._fatal(exc)


# ---------------------------------------------------------------------------- --enrich
_S3_VIRTUAL_HOST = re.compile(r"^(.+)\.s3(?:[.-]([a-z0-9-]+))?\.amazonaws\.com(?:\.cn)?$")
_S3_PATH_HOST = re.compile(r"^s3(?:[.-]([a-z0-9-]+))?\.amazonaws\.com(?:\.cn)?$")
_OBS_VIRTUAL_HOST = re.compile(r"^(.+)\.obs\.([a-z0-9-]+)\.otc\.t-systems\.com$")


def parse_object_url(url: str) -> tuple[str, str] | None:
    """``(source spec, key)`` for an objectUrl this module writes: ``s3://``, the
    amazonaws.com virtual-host and path forms, OBS's forms, a Multi-Region Access Point ARN."""
    from urllib.parse import unquote

    lower = url.lower()
    if lower.startswith(("s3://", "obs://")):
        scheme, _, rest = url.partition("://")
        bucket, _, key = rest.partition("/")
        return (f"{scheme.lower()}://{bucket}", unquote(key)) if bucket and key else None
    match = MRAP_ARN.match(url)
    if match is not None:
        arn, key = match.group(1), match.group(5)
        return (arn, unquote(key)) if key else None
    if not lower.startswith("https://"):
        return None
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    path = parts.path.lstrip("/")
    if m := _S3_VIRTUAL_HOST.match(host):
        return (f"s3://{m.group(1)}", unquote(path)) if path else None
    if m := _OBS_VIRTUAL_HOST.match(host):
        return (f"obs://{m.group(1)}", unquote(path)) if path else None
    if _S3_PATH_HOST.match(host) or _OBS_HOST.search(host):
        bucket, _, key = path.partition("/")
        scheme = "obs" if host.endswith(".otc.t-systems.com") else "s3"
        return (f"{scheme}://{bucket}", unquote(key)) if bucket and key else None
    return None


def _is_custom_endpoint(url: str | None) -> bool:
    host = (urlsplit(url or "").hostname or "").lower()
    return not (host.endswith(".amazonaws.com") or host.endswith(".amazonaws.com.cn"))
