"""A local HTTP object store with range requests and runtime fault injection.

aiohttp.web runs in a dedicated daemon thread with its own event loop (uvloop when
installed), so the store serves hundreds of concurrent keep-alive connections while the
caller's code -- sync or async, pytest or a benchmark -- runs undisturbed in its own thread.

    with HttpStore() as store:
        store.put("clips/a b+c.mp4", data)
        url = store.url_for("clips/a b+c.mp4")   # http://127.0.0.1:PORT/clips/a%20b%2Bc.mp4
        store.latency = 0.02                      # every request now takes >= 20 ms
        store.fail_ratio = 0.1                    # 10 % of requests -> 503 + Retry-After
        ...
        store.stats("clips/a b+c.mp4").requests

Semantics
---------
* ``GET``/``HEAD``; ``Range: bytes=a-b``, ``bytes=a-`` and ``bytes=-n`` -> 206 with
  ``Content-Range: bytes a-b/total``; an unsatisfiable range -> 416 with
  ``Content-Range: bytes */total``; a malformed or multi-range header is ignored (200, as
  RFC 9110 allows). Unknown key -> 404.
* Strong ETag (quoted md5 hex of the content), ``Last-Modified``, ``Accept-Ranges: bytes``.
  ``If-Match`` mismatch -> 412; ``If-None-Match`` match -> 304; ``If-Range`` mismatch ->
  the range is ignored and the full object is sent with 200.
* Fault injection, read on every request (change it at any time from any thread):
  ``latency`` seconds (asyncio.sleep: other requests are not blocked);
  ``fail_ratio``/``fail_status``/``retry_after``; ``reset_ratio`` (the connection is
  aborted on the FIRST request the server sees for a key, for that fraction of keys);
  ``forced_status`` {key: status} (always answered with that status).
  Decisions come from ``random.Random`` seeded with ``(seed, key, attempt number)``, so a
  run is repeatable whatever the order in which concurrent requests arrive.
* Counters per key and in total (thread-safe): requests, bytes_sent, failures (injected or
  forced statuses), resets, statuses seen. ``request_log`` keeps the last
  ``log_size`` requests with their Range header.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import mimetypes
import os
import random
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import quote, unquote

from aiohttp import web

__all__ = ["HttpStore", "KeyStats", "RequestRecord", "parse_range"]

_STREAM_THRESHOLD = 1 << 20  # bodies above this are streamed in chunks
_CHUNK = 256 << 10


@dataclass
class KeyStats:
    """Counters for one key (or the totals)."""

    requests: int = 0
    bytes_sent: int = 0
    gets: int = 0
    heads: int = 0
    failures: int = 0  # injected fail_status + forced_status answers
    resets: int = 0  # connections aborted by reset_ratio
    statuses: dict[int, int] = field(default_factory=dict)

    def copy(self) -> KeyStats:
        return replace(self, statuses=dict(self.statuses))


@dataclass(frozen=True)
class RequestRecord:
    """One served request (see :attr:`HttpStore.request_log`)."""

    method: str
    key: str
    range: str | None
    status: int  # 0 = connection aborted
    bytes_sent: int
    time: float


@dataclass
class _Object:
    data: bytes | None
    path: Path | None
    size: int
    mtime: float
    content_type: str
    etag: str | None = None  # quoted; computed lazily for files

    def read(self, start: int, length: int) -> bytes:
        if self.data is not None:
            return self.data[start : start + length]
        assert self.path is not None
        with open(self.path, "rb") as f:
            f.seek(start)
            return f.read(length)


def parse_range(header: str, size: int) -> tuple[int, int] | bool | None:
    """Parse a single ``bytes=`` range against ``size``.

    Returns ``(start, end_inclusive)``; ``None`` when the header must be ignored
    (malformed, other unit, several ranges); ``False`` when it is unsatisfiable.
    """
    header = header.strip()
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    first, last = first.strip(), last.strip()
    try:
        if first == "":
            if not last.isdigit():
                return None
            n = int(last)
            if n == 0 or size == 0:
                return False
            return (max(0, size - n), size - 1)
        if not first.isdigit() or (last and not last.isdigit()):
            return None
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if last and end < start:
        return None  # syntactically invalid -> ignore (RFC 9110 14.1.1)
    if start >= size:
        return False
    return (start, min(end, size - 1))


def _draw(seed: int, *parts: object) -> float:
    return random.Random(":".join([str(seed), *map(str, parts)])).random()


class HttpStore:
    """Threaded local HTTP object store. See the module docstring."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency: float = 0.0,
        fail_ratio: float = 0.0,
        fail_status: int = 503,
        retry_after: str | None = "1",
        reset_ratio: float = 0.0,
        forced_status: Mapping[str, int] | None = None,
        seed: int = 0,
        log_size: int = 10_000,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self._port = port
        self.ssl_context = ssl_context  # serve https with this certificate
        # fault injection knobs: plain attributes, read on every request
        self.latency = latency
        self.fail_ratio = fail_ratio
        self.fail_status = fail_status
        self.retry_after = retry_after
        self.reset_ratio = reset_ratio
        self.forced_status: dict[str, int] = dict(forced_status or {})
        self._seed = seed

        self._lock = threading.Lock()
        self._objects: dict[str, _Object] = {}
        self._stats: dict[str, KeyStats] = {}
        self._total = KeyStats()
        self._attempts: dict[str, int] = {}  # requests seen per key since the last reset
        self.request_log: deque[RequestRecord] = deque(maxlen=log_size)

        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("HttpStore is not started")
        return self._port

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:PORT`` (no trailing slash)."""
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 10.0) -> Self:
        if self.running:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._port))
        sock.listen(2048)
        sock.setblocking(False)
        self._port = sock.getsockname()[1]
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(
            target=self._serve, args=(sock,), name=f"HttpStore:{self._port}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("HttpStore did not start in time")
        if self._error is not None:
            raise RuntimeError("HttpStore failed to start") from self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if thread.is_alive() and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        self._thread = None
        self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    def _serve(self, sock: socket.socket) -> None:
        try:
            import uvloop

            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        except ImportError:  # pragma: no cover - uvloop is a project dependency
            loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            app = web.Application(client_max_size=1 << 20)
            app.router.add_route("*", "/{tail:.*}", self._handle)
            runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
            loop.run_until_complete(runner.setup())
            site = web.SockSite(runner, sock, backlog=2048, ssl_context=self.ssl_context)
            loop.run_until_complete(site.start())
            self._runner = runner
        except BaseException as e:  # report to start()
            self._error = e
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(asyncio.wait_for(runner.cleanup(), 5))
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            sock.close()

    # ------------------------------------------------------------------ content
    def url_for(self, key: str) -> str:
        """URL of ``key``: percent-encoded, ``/`` kept (``+`` -> %2B, ``#`` -> %23 ...)."""
        return f"{self.url}/{quote(key, safe='/')}"

    def put(self, key: str, data: bytes, content_type: str | None = None) -> str:
        """Store ``data`` under ``key`` (replacing any object); returns the quoted ETag."""
        obj = _Object(
            data=bytes(data),
            path=None,
            size=len(data),
            mtime=time.time(),
            content_type=content_type or _guess_type(key),
            etag='"' + hashlib.md5(data).hexdigest() + '"',
        )
        with self._lock:
            self._objects[key] = obj
        return obj.etag or ""

    set_object = put  # replacing an object mid-run gives it a new ETag and Last-Modified

    def put_file(
        self, key: str, path: str | os.PathLike[str], content_type: str | None = None
    ) -> None:
        """Serve the local file ``path`` under ``key`` (read on each request, ETag lazily)."""
        p = Path(path)
        st = p.stat()
        obj = _Object(
            data=None,
            path=p,
            size=st.st_size,
            mtime=st.st_mtime,
            content_type=content_type or _guess_type(key),
        )
        with self._lock:
            self._objects[key] = obj

    def add_tree(self, root: str | os.PathLike[str], prefix: str = "") -> list[str]:
        """Map every file under ``root`` to ``prefix + relative/posix/path``; returns the keys."""
        base = Path(root)
        keys: list[str] = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for name in sorted(filenames):
                full = Path(dirpath) / name
                key = prefix + full.relative_to(base).as_posix()
                self.put_file(key, full)
                keys.append(key)
        return keys

    def put_many(self, items: Mapping[str, bytes] | Iterable[tuple[str, bytes]]) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        for k, v in pairs:
            self.put(k, v)

    def delete(self, key: str) -> None:
        with self._lock:
            self._objects.pop(key, None)

    def clear(self) -> None:
        """Drop all objects, counters, fault settings' per-key history and the request log."""
        with self._lock:
            self._objects.clear()
        self.reset_counters()

    def keys(self) -> list[str]:
        with self._lock:
            return sorted(self._objects)

    def __contains__(self, key: object) -> bool:
        return key in self._objects

    def size(self, key: str) -> int:
        return self._objects[key].size

    def etag(self, key: str) -> str:
        """Quoted ETag of ``key`` as sent in responses."""
        return self._etag(self._objects[key])

    # ------------------------------------------------------------------ faults & counters
    def seed(self, seed: int) -> None:
        """Change the fault-injection seed and forget which keys were already attempted."""
        self._seed = seed
        with self._lock:
            self._attempts.clear()

    def reset_faults(self) -> None:
        self.latency = 0.0
        self.fail_ratio = 0.0
        self.reset_ratio = 0.0
        self.forced_status.clear()
        with self._lock:
            self._attempts.clear()

    def reset_counters(self) -> None:
        """Zero all counters, clear the request log and the per-key attempt history
        (so ``reset_ratio`` applies again to each key's next request)."""
        with self._lock:
            self._stats.clear()
            self._total = KeyStats()
            self._attempts.clear()
            self.request_log.clear()

    def stats(self, key: str) -> KeyStats:
        with self._lock:
            st = self._stats.get(key)
            return st.copy() if st else KeyStats()

    def totals(self) -> KeyStats:
        with self._lock:
            return self._total.copy()

    @property
    def total_requests(self) -> int:
        return self._total.requests

    @property
    def total_bytes_sent(self) -> int:
        return self._total.bytes_sent

    def all_stats(self) -> dict[str, KeyStats]:
        with self._lock:
            return {k: v.copy() for k, v in self._stats.items()}

    # ------------------------------------------------------------------ serving
    def _etag(self, obj: _Object) -> str:
        if obj.etag is None:
            h = hashlib.md5()
            assert obj.path is not None
            with open(obj.path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            obj.etag = '"' + h.hexdigest() + '"'
        return obj.etag

    def _record(
        self,
        key: str,
        method: str,
        rng: str | None,
        status: int,
        sent: int,
        *,
        failure: bool = False,
        reset: bool = False,
    ) -> None:
        with self._lock:
            for st in (self._stats.setdefault(key, KeyStats()), self._total):
                st.bytes_sent += sent
                st.statuses[status] = st.statuses.get(status, 0) + 1
                st.failures += failure
                st.resets += reset
            self.request_log.append(RequestRecord(method, key, rng, status, sent, time.time()))

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = request.raw_path.split("?", 1)[0]
        key = unquote(raw[1:] if raw.startswith("/") else raw)
        method = request.method
        rng_header = request.headers.get("Range")
        with self._lock:
            attempt = self._attempts.get(key, 0)
            self._attempts[key] = attempt + 1
            for st in (self._stats.setdefault(key, KeyStats()), self._total):
                st.requests += 1
                st.gets += method == "GET"
                st.heads += method == "HEAD"

        if self.latency > 0:
            await asyncio.sleep(self.latency)

        if method not in ("GET", "HEAD"):
            self._record(key, method, rng_header, 405, 0)
            return web.Response(status=405, headers={"Allow": "GET, HEAD"})

        forced = self.forced_status.get(key)
        if forced is not None:
            self._record(key, method, rng_header, forced, 0, failure=True)
            return _error_response(forced, f"forced status {forced}")

        if (
            attempt == 0
            and self.reset_ratio > 0
            and _draw(self._seed, "reset", key) < self.reset_ratio
        ):
            self._record(key, method, rng_header, 0, 0, reset=True)
            transport = request.transport
            if transport is not None:
                transport.abort()
            raise asyncio.CancelledError  # aiohttp drops the request silently

        if self.fail_ratio > 0 and _draw(self._seed, "fail", key, attempt) < self.fail_ratio:
            status = self.fail_status
            headers = {"Retry-After": self.retry_after} if self.retry_after is not None else {}
            self._record(key, method, rng_header, status, 0, failure=True)
            return _error_response(status, "injected failure", headers)

        obj = self._objects.get(key)
        if obj is None:
            self._record(key, method, rng_header, 404, 0)
            return _error_response(404, "no such key")

        etag = self._etag(obj)
        size = obj.size
        headers = {
            "ETag": etag,
            "Last-Modified": email.utils.formatdate(obj.mtime, usegmt=True),
            "Accept-Ranges": "bytes",
            "Content-Type": obj.content_type,
        }
        if_match = request.headers.get("If-Match")
        if if_match is not None and not _etag_matches(if_match, etag):
            self._record(key, method, rng_header, 412, 0)
            return _error_response(412, "precondition failed", {"ETag": etag})
        if_none = request.headers.get("If-None-Match")
        if if_none is not None and _etag_matches(if_none, etag):
            self._record(key, method, rng_header, 304, 0)
            return web.Response(status=304, headers=headers)

        status, start, length = 200, 0, size
        if rng_header is not None:
            if_range = request.headers.get("If-Range")
            parsed = (
                parse_range(rng_header, size)
                if if_range is None or if_range.strip() == etag
                else None
            )
            if parsed is False:
                self._record(key, method, rng_header, 416, 0)
                return _error_response(
                    416, "range not satisfiable", {**headers, "Content-Range": f"bytes */{size}"}
                )
            if isinstance(parsed, tuple):
                start, end = parsed
                status, length = 206, end - start + 1
                headers["Content-Range"] = f"bytes {start}-{end}/{size}"

        headers["Content-Length"] = str(length)
        if method == "HEAD":
            self._record(key, method, rng_header, status, 0)
            resp = web.StreamResponse(status=status, headers=headers)
            await resp.prepare(request)
            await resp.write_eof()
            return resp

        if length <= _STREAM_THRESHOLD:
            body = obj.read(start, length)
            self._record(key, method, rng_header, status, len(body))
            return web.Response(status=status, body=body, headers=headers)

        resp = web.StreamResponse(status=status, headers=headers)
        await resp.prepare(request)
        sent = 0
        try:
            while sent < length:
                chunk = obj.read(start + sent, min(_CHUNK, length - sent))
                if not chunk:
                    break
                await resp.write(chunk)
                sent += len(chunk)
            await resp.write_eof()
        finally:
            self._record(key, method, rng_header, status, sent)
        return resp


def _guess_type(key: str) -> str:
    return mimetypes.guess_type(key, strict=False)[0] or "application/octet-stream"


def _etag_matches(header: str, etag: str) -> bool:
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or etag in tags or etag in [t.removeprefix("W/") for t in tags]


def _error_response(
    status: int, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    hdrs = {k: v for k, v in (headers or {}).items() if k.lower() != "content-type"}
    return web.Response(status=status, text=message + "\n", headers=hdrs, content_type="text/plain")


def main(argv: list[str] | None = None) -> None:
    """``python -m tests.servers.http_store DIR [--port N] [--latency S] ...``: serve a folder
    from its own process (keeps the store's CPU use out of a benchmarked process)."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("root", help="folder to serve; keys are paths relative to it")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--prefix", default="")
    ap.add_argument("--latency", type=float, default=0.0)
    ap.add_argument("--fail-ratio", type=float, default=0.0)
    ap.add_argument("--fail-status", type=int, default=503)
    ap.add_argument("--reset-ratio", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    store = HttpStore(
        args.host,
        args.port,
        latency=args.latency,
        fail_ratio=args.fail_ratio,
        fail_status=args.fail_status,
        reset_ratio=args.reset_ratio,
        seed=args.seed,
    )
    with store:
        n = len(store.add_tree(args.root, args.prefix))
        print(f"serving {n} objects from {args.root} at {store.url}/", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
