"""Percent-encoding of keys and redaction of secrets in URLs."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

# '/' stays the separator; everything else that is not unreserved is encoded, so a
# '+' becomes %2B (S3 reads a raw '+' in a path as a space) and '#', '?', '%' survive.
SAFE = "/-_.~"
_PLAIN = re.compile(r"[A-Za-z0-9/_.~-]*")  # nothing to encode (most keys)


def encode_key(key: str) -> str:
    return key if _PLAIN.fullmatch(key) else quote(key, safe=SAFE)


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


# query parameters that make a URL a credential: S3/GCS presigned URLs, Azure SAS
SIGNATURE_PARAMS = frozenset(
    {"x-amz-signature", "x-amz-credential", "x-amz-security-token", "x-goog-signature",
     "x-goog-credential", "signature", "sig", "googleaccessid", "awsaccesskeyid"}
)  # fmt: skip


def is_signed(url: str) -> bool:
    query = urlsplit(url).query
    return bool(query) and any(k.lower() in SIGNATURE_PARAMS for k, _ in parse_qsl(query))


def object_url(url: str) -> str:
    """The URL to write in a spec: signed queries dropped, stray spaces encoded."""
    if is_signed(url):
        parts = urlsplit(url)
        url = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return url.replace(" ", "%20")
