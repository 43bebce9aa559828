"""Percent-encoding of keys and redaction of secrets in URLs."""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit, urlunsplit

# '/' stays the separator; everything else that is not unreserved is encoded, so a
# '+' becomes %2B (S3 reads a raw '+' in a path as a space) and '#', '?', '%' survive.
SAFE = "/-_.~"


def encode_key(key: str) -> str:
    return quote(key, safe=SAFE)


def key_from_url_path(path: str) -> str:
    return unquote(path.lstrip("/"))


def redact(url: str) -> str:
    """Drop the query string (signatures, SAS tokens) and any user:password from a URL."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.split("?", 1)[0]
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = "REDACTED" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
