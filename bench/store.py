"""A lean object store for the benchmark: HTTP range reads plus a minimal S3 API.

Run as its own process so its CPU is measured apart from the client's::

    python bench/store.py MANIFEST.json --latency 0.02

MANIFEST.json is ``{"bucket": "bench", "objects": [[key, local_path], ...]}``; many keys
may share one file (its bytes are held once). Served on 127.0.0.1:

* ``GET|HEAD /BUCKET/KEY`` with ``Range: bytes=a-b | a- | -n`` -> 206 (+ Content-Range,
  ETag), 200 without Range, 416 when unsatisfiable, 404 for an unknown key. This is the
  plain HTTP URL (for ``--urls``) and the S3 path-style GetObject at the same time.
* ``GET /BUCKET?list-type=2`` -> ListObjectsV2 XML (prefix, max-keys,
  continuation-token, start-after, encoding-type=url); ``GET /BUCKET?location`` ->
  GetBucketLocation; ``HEAD /BUCKET`` -> HeadBucket. Bucket answers carry
  ``x-amz-bucket-region``, as S3's do. Signatures are not checked (the client still
  computes them, so the client's own per-request signing cost is what gets measured).
* ``--region R``: the bucket lives in region R. A request signed (SigV4
  ``Authorization`` header) for another region is answered as S3 answers it —
  400 ``AuthorizationHeaderMalformed`` naming R, or with ``--wrong-region-status 301``
  a 301 ``PermanentRedirect`` — both with ``x-amz-bucket-region: R``. Unsigned requests
  (plain HTTP URLs) are served as usual.
* ``GET /__stats`` -> JSON ``{"keys": {key: [requests, bytes_sent]}, "requests": n,
  "bytes": n, "methods": {"GET": n, "HEAD": n}, "rejected": n}`` (object requests by
  method; listing pages count under the key ``""``; ``rejected`` = wrong-region answers);
  ``POST /__reset`` zeroes the counters. Not delayed, not counted.

Every counted request is answered ``--latency`` seconds after it arrived (a timer, not
a sleep in a thread: thousands can be in flight). It is a hand-rolled asyncio protocol
on uvloop, not aiohttp.web, because it shares the machine's two cores with the client
being measured and should take as little of them as possible.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import socket
import sys
from email.utils import formatdate
from urllib.parse import parse_qs, quote, unquote
from xml.sax.saxutils import escape

LAST_MODIFIED = formatdate(1_700_000_000, usegmt=True)
LM_ISO = "2023-11-14T22:13:20.000Z"
_SCOPE_REGION = re.compile(r"Credential=[^/,]+/\d{8}/([^/,]+)/s3/aws4_request")


class Store:
    def __init__(
        self, bucket: str, objects: list[tuple[str, str]], latency: float,
        region: str | None = None, wrong_region_status: int = 400,
    ) -> None:  # fmt: skip
        self.bucket = bucket
        self.latency = latency
        self.region = region
        self.wrong_region_status = wrong_region_status
        blobs: dict[str, tuple[bytes, str]] = {}
        self.objects: dict[str, tuple[bytes, str]] = {}
        for key, path in objects:
            if path not in blobs:
                with open(path, "rb") as fh:
                    data = fh.read()
                blobs[path] = (data, '"' + hashlib.md5(data).hexdigest() + '"')
            self.objects[key] = blobs[path]
        self.sorted_keys = sorted(self.objects)
        self.reset()

    def reset(self) -> None:
        self.counts: dict[str, list[int]] = {}
        self.methods: dict[str, int] = {}
        self.requests = 0
        self.bytes = 0
        self.rejected = 0

    def count(self, key: str, sent: int, method: str = "GET") -> None:
        c = self.counts.get(key)
        if c is None:
            c = self.counts[key] = [0, 0]
        c[0] += 1
        c[1] += sent
        self.requests += 1
        self.bytes += sent
        if key:
            self.methods[method] = self.methods.get(method, 0) + 1

    def wrong_region(self, authorization: str | None) -> tuple[int, list[str], bytes] | None:
        """S3's answer to a request signed for another region than the bucket's."""
        if self.region is None or not authorization:
            return None
        m = _SCOPE_REGION.search(authorization)
        if m is None or m.group(1) == self.region:
            return None
        self.rejected += 1
        headers = ["Content-Type: application/xml", f"x-amz-bucket-region: {self.region}"]
        if self.wrong_region_status == 301:
            return (
                301,
                headers,
                _s3_error(
                    "PermanentRedirect",
                    "<Message>The bucket you are attempting to access must be addressed using "
                    f"the specified endpoint.</Message><Bucket>{escape(self.bucket)}</Bucket>",
                ),
            )
        return (
            400,
            headers,
            _s3_error(
                "AuthorizationHeaderMalformed",
                f"<Message>the region '{escape(m.group(1))}' is wrong; expecting "
                f"'{escape(self.region)}'</Message><Region>{escape(self.region)}</Region>",
            ),
        )

    # -- answers: (status, headers, body, counted_key) -----------------------------
    def answer(
        self, method: str, target: str, rng: str | None, authorization: str | None = None
    ) -> tuple[int, list[str], bytes]:
        path, _, query = target.partition("?")
        if path == "/__stats":
            body = json.dumps(
                {"keys": self.counts, "requests": self.requests, "bytes": self.bytes,
                 "methods": self.methods, "rejected": self.rejected}
            ).encode()  # fmt: skip
            return 200, ["Content-Type: application/json"], body
        if path == "/__reset":
            self.reset()
            return 200, [], b""
        rejected = self.wrong_region(authorization)
        if rejected is not None:
            return rejected
        raw = path[1:]
        bucket, _, rawkey = raw.partition("/")
        if unquote(bucket) != self.bucket:
            return 404, [], b"NoSuchBucket"
        if not rawkey:
            self.count("", 0)
            return self.bucket_op(query)
        key = unquote(rawkey)
        obj = self.objects.get(key)
        if obj is None:
            self.count(key, 0, method)
            return 404, ["Content-Type: application/xml"], _s3_error("NoSuchKey")
        data, etag = obj
        size = len(data)
        headers = [f"ETag: {etag}", f"Last-Modified: {LAST_MODIFIED}", "Accept-Ranges: bytes",
                   "Content-Type: application/octet-stream"]  # fmt: skip
        status, start, end = 200, 0, size
        if rng:
            parsed = _parse_range(rng, size)
            if parsed is False:
                self.count(key, 0, method)
                return 416, [*headers, f"Content-Range: bytes */{size}"], b""
            if parsed:
                status, (start, end) = 206, parsed
                headers.append(f"Content-Range: bytes {start}-{end - 1}/{size}")
        body = data[start:end] if (start, end) != (0, size) else data
        self.count(key, 0 if method == "HEAD" else len(body), method)
        return status, headers, body

    def bucket_op(self, query: str) -> tuple[int, list[str], bytes]:
        q = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        region = self.region or "us-east-1"
        xml = ["Content-Type: application/xml", f"x-amz-bucket-region: {region}"]
        if "location" in q:
            where = "" if region == "us-east-1" else escape(region)  # S3: empty for us-east-1
            return (
                200,
                xml,
                (
                    b'<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint '
                    b'xmlns="http://s3.amazonaws.com/doc/2006-03-01/">%s</LocationConstraint>'
                    % where.encode()
                ),
            )
        prefix = q.get("prefix", "")
        max_keys = min(int(q.get("max-keys", "1000") or 1000), 1000)
        enc = q.get("encoding-type") == "url"
        keys = self.sorted_keys
        import bisect

        token = q.get("continuation-token") or q.get("start-after") or ""
        i = bisect.bisect_right(keys, token) if token else bisect.bisect_left(keys, prefix)
        out = []
        while i < len(keys) and len(out) < max_keys:
            k = keys[i]
            if not k.startswith(prefix):
                if k > prefix:
                    break
                i += 1
                continue
            out.append(k)
            i += 1
        truncated = i < len(keys) and keys[i].startswith(prefix)
        parts = ['<?xml version="1.0" encoding="UTF-8"?>\n'
                 '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
                 f"<Name>{escape(self.bucket)}</Name><Prefix>{escape(prefix)}</Prefix>",
                 f"<KeyCount>{len(out)}</KeyCount><MaxKeys>{max_keys}</MaxKeys>",
                 f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"]  # fmt: skip
        if enc:
            parts.append("<EncodingType>url</EncodingType>")
        if truncated:
            parts.append(f"<NextContinuationToken>{escape(out[-1])}</NextContinuationToken>")
        for k in out:
            data, etag = self.objects[k]
            name = quote(k, safe="/") if enc else escape(k)
            parts.append(
                f"<Contents><Key>{name}</Key><LastModified>{LM_ISO}</LastModified>"
                f"<ETag>{escape(etag)}</ETag><Size>{len(data)}</Size>"
                "<StorageClass>STANDARD</StorageClass></Contents>"
            )
        parts.append("</ListBucketResult>")
        return 200, xml, "".join(parts).encode()


def _s3_error(code: str, extra: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>{extra}</Error>'
    ).encode()


def _parse_range(header: str, size: int) -> tuple[int, int] | bool | None:
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if not first:
            n = int(last)
            return False if n == 0 or size == 0 else (max(0, size - n), size)
        start = int(first)
        end = int(last) + 1 if last else size
    except ValueError:
        return None
    if end <= start:
        return None
    if start >= size:
        return False
    return start, min(end, size)


REASONS = {200: "OK", 206: "Partial Content", 404: "Not Found", 416: "Range Not Satisfiable",
           400: "Bad Request", 301: "Moved Permanently"}  # fmt: skip


class Conn(asyncio.Protocol):
    def __init__(self, store: Store, loop: asyncio.AbstractEventLoop) -> None:
        self.store = store
        self.loop = loop
        self.buf = b""
        self.busy = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.busy:
            self.next_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def next_request(self) -> None:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buf[:end].decode("latin-1")
        lines = head.split("\r\n")
        try:
            method, target, _ = lines[0].split(" ", 2)
        except ValueError:
            self.respond(400, [], b"", "GET", close=True)
            return
        rng = None
        auth = None
        length = 0
        close = False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "range":
                rng = value.strip()
            elif name == "authorization":
                auth = value
            elif name == "content-length":
                length = int(value.strip() or 0)
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        if len(self.buf) < end + 4 + length:
            return  # wait for the (ignored) body
        self.buf = self.buf[end + 4 + length :]
        status, headers, body = self.store.answer(method, target, rng, auth)
        if target.startswith("/__"):
            self.respond(status, headers, body, method, close)
            return
        self.busy = True
        self.loop.call_later(self.store.latency, self.respond, status, headers, body, method,
                             close)  # fmt: skip

    def respond(
        self, status: int, headers: list[str], body: bytes, method: str, close: bool = False
    ) -> None:
        self.busy = False
        t = self.transport
        if t is None:
            return
        head = "\r\n".join(
            [f"HTTP/1.1 {status} {REASONS.get(status, 'X')}", *headers,
             f"Content-Length: {len(body)}", "Connection: close" if close else "", "", ""]
        )  # fmt: skip
        t.write(head.replace("\r\n\r\n\r\n", "\r\n\r\n").encode("latin-1"))
        if method != "HEAD" and body:
            t.write(body)
        if close:
            t.close()
        elif self.buf:
            self.next_request()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("manifest")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--latency", type=float, default=0.02)
    ap.add_argument("--region", help="the bucket's region: requests signed for another one "
                    "are refused as S3 refuses them")  # fmt: skip
    ap.add_argument("--wrong-region-status", type=int, choices=(400, 301), default=400)
    args = ap.parse_args(argv)
    with open(args.manifest, encoding="utf-8") as fh:
        m = json.load(fh)
    store = Store(m["bucket"], [tuple(o) for o in m["objects"]], args.latency,
                  args.region, args.wrong_region_status)  # fmt: skip
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(4096)
    server = loop.run_until_complete(
        loop.create_server(lambda: Conn(store, loop), sock=sock, backlog=4096)
    )
    print(f"http://127.0.0.1:{sock.getsockname()[1]} {len(store.objects)} objects", flush=True)
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        sys.stdout.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
