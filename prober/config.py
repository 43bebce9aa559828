"""``prober.toml``: the flags of a cron job, kept in a file.

Keys are the long flag names (``url-style`` or ``url_style``), plus ``sources`` (a
list). The file is turned into command-line tokens placed before the real ones, so
argparse validates it the same way and flags given on the command line win:

    sources = ["s3://my-bucket/clips/"]
    output = "spec.json"
    failures = "failed.csv"
    state = "prober.sqlite"
    concurrency = 256
    url-style = "virtual"
    images = "groups"
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prober.errors import UsageError

DEFAULT_NAME = "prober.toml"
NOT_IN_FILE = {"help", "version", "config"}


def _long_options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    out: dict[str, argparse.Action] = {}
    for action in parser._actions:
        for opt in action.option_strings:
            if opt.startswith("--"):
                out[opt[2:]] = action
    return out


def config_tokens(path: Path, parser: argparse.ArgumentParser, argv: Sequence[str]) -> list[str]:
    """The file's settings as argv tokens, minus those the command line sets itself."""
    import tomllib  # only when there is a file to read

    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: invalid TOML ({exc})") from None
    options = _long_options(parser)
    given = {a.split("=", 1)[0] for a in argv if a.startswith("--")}
    tokens: list[str] = []
    sources: list[str] = []
    for raw_key, value in data.items():
        key = raw_key.replace("_", "-")
        if key == "sources":
            items = value if isinstance(value, list) else [value]
            sources = [str(v) for v in items]
            continue
        action = options.get(key)
        if action is None or key in NOT_IN_FILE:
            raise UsageError(f"{path}: unknown setting {raw_key!r}")
        flag = f"--{key}"
        if any(opt in given for opt in action.option_strings):
            continue  # the command line wins
        if action.nargs == 0:  # store_true
            if not isinstance(value, bool):
                raise UsageError(f"{path}: {raw_key} must be true or false")
            if value:
                tokens.append(flag)
        elif isinstance(value, list):
            for item in value:
                tokens += [flag, str(item)]
        else:
            tokens += [flag, str(value)]
    return [*tokens, "--", *sources] if sources else tokens


def find_config(explicit: str | None, have_sources: bool) -> Path | None:
    if explicit:
        return Path(explicit)
    default = Path(DEFAULT_NAME)
    if not have_sources and default.is_file():
        return default
    return None
