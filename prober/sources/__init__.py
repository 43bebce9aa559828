"""Storage backends behind one small interface (see base.py), chosen by URL scheme."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from prober.errors import UsageError
from prober.sources.base import Source
from prober.sources.context import SourceContext, SourceOptions

__all__ = ["Source", "SourceContext", "SourceOptions", "open_source", "open_url_list"]


# https://ACCOUNT.blob.core.windows.net/container[/prefix] (and the sovereign clouds)
AZURE_BLOB_HOST = re.compile(
    r"^[a-z0-9]{3,24}\.blob\.core\.(?:windows\.net|chinacloudapi\.cn|usgovcloudapi\.net)$"
)


def is_azure_blob_url(spec: str) -> bool:
    try:
        parts = urlsplit(spec)
    except ValueError:
        return False
    return parts.scheme.lower() == "https" and bool(
        AZURE_BLOB_HOST.match((parts.hostname or "").lower())
    )


def open_source(spec: str, ctx: SourceContext) -> Source:
    """Pick the backend for a SOURCE argument by its scheme."""
    lower = spec.lower()
    if lower.startswith("s3://"):
        from prober.sources.s3 import S3Source

        return S3Source(spec, ctx)
    if lower.startswith("obs://"):
        from prober.sources.s3 import ObsSource

        return ObsSource(spec, ctx)
    if lower.startswith("arn:"):
        from prober.sources.s3 import MrapSource

        return MrapSource(spec, ctx)
    if lower.startswith("gs://"):
        from prober.sources.gcs import GcsSource

        return GcsSource(spec, ctx)
    if lower.startswith("az://") or is_azure_blob_url(spec):
        from prober.sources.azure import AzureSource

        return AzureSource(spec, ctx)
    if lower.startswith(("http://", "https://")):
        from prober.sources.http import HttpSource

        return HttpSource(spec, ctx)
    if "://" in spec and not lower.startswith("file://"):
        from prober.urls import redact

        scheme = spec.split("://", 1)[0]
        raise UsageError(f"{redact(spec)}: unsupported source scheme {scheme}://")
    from prober.sources.local import LocalSource

    return LocalSource(spec, ctx)


def open_url_list(path: str, ctx: SourceContext) -> Source:
    from prober.sources.http import UrlListSource

    return UrlListSource(path, ctx)
