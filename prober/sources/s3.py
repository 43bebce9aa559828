"""Amazon S3 (and S3-compatible stores) through aiobotocore.

Listing: paginated ``list_objects_v2``, streamed. Reads: ``get_object`` with a
``Range`` header. Endpoint and credentials follow botocore's own chain
(``AWS_ENDPOINT_URL``/``AWS_ENDPOINT_URL_S3``, ``AWS_PROFILE``, ``AWS_REGION`` …);
``--endpoint-url`` overrides the endpoint.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
)

from prober.errors import FatalError, HttpStatusError, ObjectError, UsageError
from prober.model import Entry
from prober.sources.context import SourceContext
from prober.urls import encode_key

URL_STYLES = ("virtual", "path", "s3")


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

    def __init__(self, spec: str, ctx: SourceContext) -> None:
        self.name = spec
        self.ctx = ctx
        self.bucket, self.prefix = split_bucket(spec, self.scheme)
        style = ctx.options.url_style or "virtual"
        if style not in URL_STYLES:
            raise UsageError(f"--url-style {style!r} is not one of {', '.join(URL_STYLES)} for S3")
        self.url_style = style
        self._stack = contextlib.AsyncExitStack()
        self._client: Any = None
        self.region: str | None = None

    # -- client -------------------------------------------------------------------
    def endpoint(self) -> str | None:
        return self.ctx.options.endpoint_url

    def client_config(self) -> AioConfig:
        return AioConfig(
            retries={"max_attempts": self.ctx.options.retries + 1, "mode": "standard"},
            connect_timeout=self.ctx.options.timeout,
            read_timeout=self.ctx.options.timeout,
            max_pool_connections=max(self.ctx.options.concurrency, 10),
        )

    async def client(self) -> Any:
        if self._client is None:
            session = get_session()
            region = self.ctx.options.region or _env_region()
            self._client = await self._stack.enter_async_context(
                session.create_client(
                    "s3",
                    endpoint_url=self.endpoint(),
                    region_name=region,
                    config=self.client_config(),
                )
            )
        return self._client

    async def detect_region(self) -> str:
        """--region, else the bucket's own location, else the configured region."""
        if self.region is None:
            region = self.ctx.options.region
            if region is None:
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

    # -- Source protocol ------------------------------------------------------------
    async def entries(self) -> AsyncIterator[Entry]:
        await self.detect_region()
        client = await self.client()
        paginator = client.get_paginator("list_objects_v2")
        try:
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for obj in page.get("Contents", ()):
                    key = obj["Key"]
                    if key.endswith("/") or not prefix_matches(key, self.prefix):
                        continue  # folder markers
                    yield Entry(
                        url=self.object_url(key),
                        key=key,
                        size=int(obj["Size"]),
                        etag=(obj.get("ETag") or "").strip('"') or None,
                        handle=key,
                    )
        except (ClientError, BotoCoreError) as exc:
            raise self._fatal(exc) from None

    async def read(self, entry: Entry, start: int, end: int) -> bytes:
        client = await self.client()
        try:
            resp = await client.get_object(
                Bucket=self.bucket, Key=entry.handle, Range=f"bytes={start}-{end - 1}"
            )
            async with resp["Body"] as body:
                return await body.read()
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            raise HttpStatusError(int(status), _code(exc)) from None
        except EndpointConnectionError:
            raise ObjectError("network", "network: cannot reach the endpoint") from None
        except BotoCoreError as exc:
            raise ObjectError("network", f"network: {type(exc).__name__}") from None

    async def close(self) -> None:
        await self._stack.aclose()

    # -- errors ---------------------------------------------------------------------
    def _fatal(self, exc: Exception) -> FatalError:
        where = self.name
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return FatalError(
                f"{where}: no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID)"
            )
        if isinstance(exc, EndpointConnectionError):
            return FatalError(
                f"{where}: cannot reach the endpoint {exc.kwargs.get('endpoint_url', '')}"
            )
        if isinstance(exc, ClientError):
            code = _code(exc)
            if code in ("NoSuchBucket", "404"):
                return FatalError(f"{where}: bucket {self.bucket!r} does not exist")
            if code in ("AccessDenied", "403", "AllAccessDisabled"):
                return FatalError(f"{where}: access denied listing bucket {self.bucket!r}")
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"):
                return FatalError(f"{where}: credentials rejected ({code})")
            return FatalError(f"{where}: listing failed ({code})")
        return FatalError(f"{where}: {type(exc).__name__}: {exc}")


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "")) or str(
        exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
    )


def _env_region() -> str | None:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None


UrlBuilder = Callable[[str], str]
