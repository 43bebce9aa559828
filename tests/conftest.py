"""Shared fixtures: local object store, cloud emulators, sample media, corpus, CLI runner.

Fixtures
--------
``http_store``        fresh :class:`HttpStore` per test (function scope), already started.
``http_store_session`` one store for the whole session (call ``.clear()`` / ``.reset_faults()``).
``moto_server``       session :class:`MotoServer` (S3). ``moto_server.env()`` for the CLI.
``gcs_server``        session :class:`FakeGcsServer`. ``gcs_server.env()``.
``azurite``           session :class:`Azurite`; skipped only when node/npm are absent.
``sample_media``      ``(root: Path, manifest: dict)`` generated once per session.
``sample_media_dir``  just the root Path.
``corpus_dir``        ``$PROBER_CORPUS`` or ``<repo>/../shared/corpus``; skips when absent.
``corpus_expected``   the parsed ``expected.json`` of ``corpus_dir``.
``run_prober``        ``run_prober(*args, env=None, cwd=None, input=None, timeout=300)`` ->
                      ``CompletedProcess[str]`` of ``python -m prober ARGS``. ``env`` is
                      merged over ``os.environ`` (a ``None`` value unsets a variable; setting
                      ``AWS_ENDPOINT_URL`` also unsets ``AWS_PROFILE`` & co).
``unique_name``       ``unique_name("bkt")`` -> a fresh lowercase bucket/container name.

Async tests run on uvloop (pytest-asyncio's ``pytest_asyncio_loop_factories`` hook) and,
like async fixtures, on ONE session-scoped loop, so session fixtures holding aiohttp
sessions or clients can be shared with tests.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `pytest` (not `python -m pytest`) does not add it
    sys.path.insert(0, str(REPO_ROOT))

from tests.media import make_sample_media  # noqa: E402
from tests.servers import (  # noqa: E402
    Azurite,
    EmulatorError,
    FakeGcsServer,
    HttpStore,
    MotoServer,
    merged_env,
    node_available,
)

# --------------------------------------------------------------------------- event loop
try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency on Linux/macOS
    uvloop = None  # type: ignore[assignment]


def pytest_configure(config: pytest.Config) -> None:
    # One loop for tests and fixtures: the project sets the fixture loop scope to "session"
    # in pyproject.toml; do the same for tests unless the user chose otherwise (-o / ini).
    if not _ini_is_set(config, "asyncio_default_test_loop_scope"):
        config._inicache["asyncio_default_test_loop_scope"] = "session"


def _ini_is_set(config: pytest.Config, name: str) -> bool:
    if any(o.split("=", 1)[0].strip() == name for o in (config.option.override_ini or [])):
        return True
    # pytest >= 9 keeps the parsed ini in _inicfg (config.inicfg is deprecated there)
    cfg = getattr(config, "_inicfg", None)
    if cfg is None:
        cfg = getattr(config, "inicfg", {})
    return name in cfg


if uvloop is not None:

    def pytest_asyncio_loop_factories(
        config: pytest.Config, item: pytest.Item
    ) -> Mapping[str, Callable[[], Any]]:
        return {"uvloop": uvloop.new_event_loop}


# --------------------------------------------------------------------------- servers
@pytest.fixture
def http_store() -> Iterator[HttpStore]:
    with HttpStore() as store:
        yield store


@pytest.fixture(scope="session")
def http_store_session() -> Iterator[HttpStore]:
    with HttpStore() as store:
        yield store


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[FakeGcsServer]:
    with FakeGcsServer() as server:
        yield server


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    if not node_available():
        pytest.skip("Azurite needs Node.js: node/npm not found on PATH")
    try:
        server = Azurite().start()
    except EmulatorError as e:
        pytest.fail(f"Azurite did not start: {e}")
    try:
        yield server
    finally:
        server.stop()


_counter = itertools.count(1)


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Fresh bucket/container names (3-63 chars, lowercase, digits, dashes)."""

    def make(prefix: str = "bkt") -> str:
        return f"{prefix}-{os.getpid()}-{next(_counter)}".lower()[:63]

    return make


# --------------------------------------------------------------------------- media
@pytest.fixture(scope="session")
def sample_media(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, dict[str, dict[str, Any]]]:
    """(root, manifest): see tests/media.py for the files and manifest fields."""
    root = tmp_path_factory.mktemp("sample") / "media"
    return root, make_sample_media(root)


@pytest.fixture(scope="session")
def sample_media_dir(sample_media: tuple[Path, dict[str, dict[str, Any]]]) -> Path:
    return sample_media[0]


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    env = os.environ.get("PROBER_CORPUS")
    path = Path(env) if env else REPO_ROOT.parent / "shared" / "corpus"
    if not (path / "expected.json").is_file():
        pytest.skip(f"media corpus not found at {path} (set PROBER_CORPUS)")
    return path


@pytest.fixture(scope="session")
def corpus_expected(corpus_dir: Path) -> dict[str, dict[str, Any]]:
    import json

    data: dict[str, dict[str, Any]] = json.loads((corpus_dir / "expected.json").read_text())
    return data


# --------------------------------------------------------------------------- CLI
RunProber = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def run_prober(tmp_path: Path) -> RunProber:
    """Run ``python -m prober *args`` in a subprocess (cwd defaults to tmp_path)."""

    def run(
        *args: str | os.PathLike[str],
        env: Mapping[str, str | None] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        input: str | None = None,
        timeout: float = 300,
        check: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "prober", *map(os.fspath, args)]
        return subprocess.run(
            cmd,
            env=merged_env(env),
            cwd=os.fspath(cwd) if cwd is not None else tmp_path,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )

    return run
