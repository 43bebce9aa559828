"""Options and shared clients every backend may use (one HTTP session per run)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp


@dataclass(slots=True)
class SourceOptions:
    endpoint_url: str | None = None  # S3/OBS endpoint override (--endpoint-url)
    url_style: str | None = None  # s3: virtual|path|s3 ; gcs: gs|https
    url_prefix: str | None = None  # local: map the folder root onto this URL
    region: str | None = None
    timeout: float = 30.0  # seconds per request
    retries: int = 5
    concurrency: int = 64


def switched_on(name: str) -> bool:
    """An on-by-default switch in the environment (``NAME=0|false|no|off`` turns it off)."""
    return os.environ.get(name, "1").strip().lower() not in ("0", "false", "no", "off")


class ListingHints(Protocol):
    """What an earlier run saw (``--state``), for listing in parallel ranges."""

    async def split_urls(self, url_prefix: str, every: int) -> list[str]:
        """Every ``every``-th known object URL starting with ``url_prefix``, sorted."""
        ...


@dataclass(slots=True)
class SourceContext:
    options: SourceOptions = field(default_factory=SourceOptions)
    hints: ListingHints | None = None
    _http: aiohttp.ClientSession | None = None

    def http(self) -> aiohttp.ClientSession:
        """The run's one aiohttp session (connection pool sized to the concurrency)."""
        if self._http is None or self._http.closed:
            connector = aiohttp.TCPConnector(
                limit=max(self.options.concurrency * 2, 100), ttl_dns_cache=300
            )
            self._http = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=self.options.timeout, sock_read=self.options.timeout
                ),
                auto_decompress=False,
                headers={"User-Agent": "prober/0.1"},
            )
        return self._http

    async def close(self) -> None:
        if self._http is not None and not self._http.closed:
            await self._http.close()
