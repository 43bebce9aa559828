"""Storage backends behind one small interface (see base.py), chosen by URL scheme."""

from __future__ import annotations

from prober.errors import UsageError
from prober.sources.base import Source
from prober.sources.context import SourceContext, SourceOptions

__all__ = ["Source", "SourceContext", "SourceOptions", "open_source", "open_url_list"]


def open_source(spec: str, ctx: SourceContext) -> Source:
    """Pick the backend for a SOURCE argument by its scheme."""
    lower = spec.lower()
    if lower.startswith("s3://"):
        from prober.sources.s3 import S3Source

        return S3Source(spec, ctx)
    if lower.startswith(("http://", "https://")):
        from prober.sources.http import HttpSource

        return HttpSource(spec, ctx)
    if "://" in spec and not lower.startswith("file://"):
        scheme = spec.split("://", 1)[0]
        raise UsageError(f"{spec}: unsupported source scheme {scheme}://")
    from prober.sources.local import LocalSource

    return LocalSource(spec, ctx)


def open_url_list(path: str, ctx: SourceContext) -> Source:
    from prober.sources.http import UrlListSource

    return UrlListSource(path, ctx)
