"""``prober merge PART... -o spec.json``: join shard parts into one spec.

Streaming: parts written by prober (one entry per line) are read line by line, any
other JSON spec is loaded whole; entries go through the same on-disk spool as a run,
so URLs are written once and groups come out whole, and the result is written
atomically. Parts made with ``--shard`` carry a ``_prober`` header naming their
sources and shard; parts from different source sets, or an incomplete set of shards,
are refused (``--partial`` accepts missing shards).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import orjson

from prober.errors import UsageError
from prober.sinks.spec import (
    GROUP_SECTIONS,
    HEADER_KEY,
    SECTIONS,
    JsonSpecWriter,
    SpecOptions,
    natural_key,
)
from prober.sources.enrich import parse_json_spec

Item = tuple[str, Any]  # (section or "_prober" / "skip_duplicate_urls", value)


def read_part(path: Path) -> Iterator[Item]:
    """(section, entry) pairs, plus the header and flags, from one spec part.

    prober's own layout (one entry per line) is streamed; anything else is loaded
    whole. Entries already yielded before a fallback are harmless: the spool keeps
    the first copy of each URL.
    """
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise UsageError(f"merge: {path}: {exc.strerror}") from None
    with fh:
        if fh.readline().strip() == b"{":
            try:
                yield from _stream(fh)
                return
            except ValueError:
                pass
        fh.seek(0)
        yield from _items(parse_json_spec(fh.read(), f"merge: {path}"))


def _stream(fh: Any) -> Iterator[Item]:
    section: str | None = None
    for raw in fh:
        line = raw.strip().rstrip(b",")
        if not line or line == b"}":
            continue
        if line == b"]":
            section = None
        elif line.startswith(b"{") and section is not None:
            yield section, orjson.loads(line)
        elif line.startswith(b'"'):
            key, _, value = line.partition(b":")
            name = orjson.loads(key)
            value = value.strip()
            if value == b"[":
                section = name
            elif value == b"[]":
                section = None
            else:
                yield name, orjson.loads(value)
        else:
            raise ValueError("not prober's layout")


def _items(spec: dict[str, Any]) -> Iterator[Item]:
    for key, value in spec.items():
        if key in SECTIONS and isinstance(value, list):
            for entry in value:
                yield key, entry
        else:
            yield key, value


def merge(parts: Sequence[str], output: str | None, partial: bool = False) -> int:
    writer = JsonSpecWriter(output, SpecOptions())
    headers: dict[str, dict[str, Any] | None] = {}
    seq = 0
    ok = False
    try:
        for part in parts:
            path = Path(part)
            header = None
            for section, value in read_part(path):
                if section == HEADER_KEY:
                    header = value
                elif section == "skip_duplicate_urls":
                    writer.options.skip_duplicate_urls |= bool(value)
                elif section in GROUP_SECTIONS:
                    _add_group(writer, section, value)
                elif section in ("videos", "images") and isinstance(value, dict):
                    seq += 1
                    writer.spool.add_single(section, seq, value)
            headers[part] = header
        _check_headers(headers, partial)
        writer.close(commit=True)
        ok = True
    finally:
        if not ok:
            writer.close(commit=False)
    return 0


def _add_group(writer: JsonSpecWriter, section: str, entry: dict[str, Any]) -> None:
    title = str(entry.get("title", ""))
    i = 0
    while (url := entry.get(f"objectUrl_{i}")) is not None:
        folder, _, name = url.rpartition("/")
        writer.spool.add((section, f"{title}\0{folder}", title, natural_key(unquote(name)), url))
        i += 1


def _check_headers(headers: dict[str, dict[str, Any] | None], partial: bool) -> None:
    present = {p: h for p, h in headers.items() if h is not None}
    if not present:
        return  # plain specs: nothing recorded to compare
    if len(present) != len(headers):
        missing = next(p for p, h in headers.items() if h is None)
        raise UsageError(f"merge: {missing} is not a prober shard part (no {HEADER_KEY} header)")
    (first_part, first), *rest = present.items()
    identity = ("sources", "images")
    for part, header in rest:
        for field in identity:
            if header.get(field) != first.get(field):
                raise UsageError(
                    f"merge: {part} was made from {field} {header.get(field)} but {first_part} "
                    f"from {first.get(field)}: parts of different runs cannot be merged"
                )
        if (header.get("shard") or [0, 1])[1] != (first.get("shard") or [0, 1])[1]:
            raise UsageError(
                f"merge: {part} and {first_part} were split into different shard counts"
            )
    count = (first.get("shard") or [0, 1])[1]
    have = {(h.get("shard") or [0, 1])[0] for h in present.values()}
    missing_shards = sorted(set(range(count)) - have)
    if missing_shards and not partial:
        raise UsageError(
            f"merge: shards {', '.join(f'{i}/{count}' for i in missing_shards)} missing "
            "(pass --partial to merge what is there)"
        )


def main(argv: Sequence[str]) -> int:
    from prober.cli import EXIT_USAGE, Parser

    parser = Parser(
        prog="prober merge", description="Join spec parts (from --shard) into one spec."
    )
    parser.add_argument("parts", nargs="+", metavar="PART")
    parser.add_argument("-o", "--output", default="-", metavar="PATH",
                        help="merged spec (default: stdout), written atomically")  # fmt: skip
    parser.add_argument("--partial", action="store_true", help="allow missing shards")
    args = parser.parse_args(argv)
    try:
        return merge(args.parts, args.output, args.partial)
    except UsageError as exc:
        sys.stderr.write(f"prober: error: {exc}\n")
        return EXIT_USAGE
