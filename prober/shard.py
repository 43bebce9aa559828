"""``--shard I/N``: a stable share of the objects, so N processes split one bucket.

The hash is of the object key (blake2b, not Python's salted ``hash``), so every
process, on any machine, puts each object in the same shard: none in two, none lost.
Objects that end up in folder groups (DICOM series, images with ``--images
groups|sequences``) are hashed by their folder instead, so each group is whole in
one shard and every part is a valid spec on its own.
"""

from __future__ import annotations

import hashlib

from prober.errors import UsageError


def parse_shard(text: str) -> tuple[int, int]:
    try:
        index_s, count_s = text.split("/")
        index, count = int(index_s), int(count_s)
    except ValueError:
        raise UsageError(f"--shard {text!r}: expected I/N, e.g. 0/4") from None
    if count < 1 or not 0 <= index < count:
        raise UsageError(
            f"--shard {text}: I counts from 0 and must be below N (0/{count} … {count - 1}/{count})"
        )
    return index, count


def shard_of(key: str, count: int) -> int:
    digest = hashlib.blake2b(key.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


def folder_key(key: str) -> str:
    return key.rsplit("/", 1)[0] if "/" in key else ""
