"""The pure-Python MP4/MOV fast path (prober/probe/fastmp4.py) against PyAV, field by field.

For every ISO-BMFF file of the corpus (or of the generated sample media when the corpus
is absent), the fast path either declines (None: PyAV decides) or returns exactly the
Metadata PyAV gives when it opens the whole file. Bad files must never get an answer.
"""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path
from typing import Any

import pytest

from prober.probe import HEAD, PLANS, ProbeStats, _Fetcher, _inspect
from prober.probe.containers import looks_like_bmff
from prober.probe.fastmp4 import _parse_sps, fast_metadata
from prober.probe.sparse import SparseFile

parse_mod = importlib.import_module("prober.probe.parse")


def _media(corpus_dir: Path | None, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    if corpus_dir is not None:
        import json

        return corpus_dir, json.loads((corpus_dir / "expected.json").read_text())
    from tests.media import make_sample_media

    dest = Path(__file__).resolve().parent.parent / ".cache" / "media"
    return dest, make_sample_media(dest)


@pytest.fixture(scope="module")
def bmff_files(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    corpus = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
    root, manifest = _media(corpus if (corpus / "expected.json").is_file() else None,
                            tmp_path_factory)  # fmt: skip
    out = []
    for rel, info in sorted(manifest.items()):
        path = root / rel
        if not path.is_file():
            continue
        with path.open("rb") as fh:
            if looks_like_bmff(fh.read(16)):
                out.append((rel, info, path))
    assert out
    return out


def _hints(data: bytes, ext: str) -> Any:
    async def read(a: int, b: int) -> bytes:
        return data[a:b]

    async def go() -> Any:
        f = _Fetcher(read, len(data), ProbeStats())
        await f.fetch([(0, PLANS.get(ext, (HEAD, 0))[0])])
        return await _inspect(f, ext)

    return asyncio.run(go())


def test_fast_path_matches_pyav(bmff_files: list) -> None:
    hits, problems = 0, []
    for rel, info, path in bmff_files:
        data = path.read_bytes()
        name = rel.rsplit("/", 1)[-1]
        ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        try:
            hints = _hints(data, ext)
        except Exception:  # rejected before any parsing (truncated, no moov ...)
            continue
        if hints.moov is None:
            continue
        fast = fast_metadata(
            hints.moov, len(data), ext, hints.mime, hints.duration, hints.rotation or 0
        )
        if fast is None:
            continue
        hits += 1
        expect = info.get("sniff") or info.get("expect")  # by content, not by extension
        if expect != "video":
            problems.append(f"{rel}: fast path answered for a {expect} file")
            continue
        whole = SparseFile(len(data))
        whole.add(0, data)
        hints.moov = None
        try:
            ref = parse_mod.parse(whole, hints)
        except Exception as exc:  # pragma: no cover - a failure here is a finding
            problems.append(f"{rel}: PyAV failed ({exc}) but the fast path answered")
            continue
        if fast != ref:
            diff = {
                k: (getattr(fast, k), getattr(ref, k))
                for k in fast.__slots__
                if getattr(fast, k) != getattr(ref, k)
            }
            problems.append(f"{rel}: fast != PyAV {diff}")
    assert problems == []
    assert hits >= 5, "the fast path should answer for the plain H.264 MP4s"


def test_sps_reader_high_profile_cropping() -> None:
    # x264 High profile 1920x1080 (1088 coded, cropped by 8), VUI with full range
    # built bit by bit to keep the test independent of an encoder
    bits = ""

    def ue(v: int) -> str:
        b = bin(v + 1)[2:]
        return "0" * (len(b) - 1) + b

    bits += format(100, "08b") + "0" * 8 + format(40, "08b") + ue(0)
    bits += ue(1) + ue(0) + ue(0) + "0" + "0"  # 4:2:0, 8-bit, no bypass, no scaling
    bits += ue(0) + ue(0) + ue(2)  # log2_max_frame_num, poc type 0, its lsb
    bits += ue(4) + "0" + ue(119) + ue(67) + "1" + "1"  # refs, gaps, 120x68 MBs
    bits += "1" + ue(0) + ue(0) + ue(0) + ue(4)  # crop bottom 4 (x2 = 8 lines)
    bits += "1" + "0" + "0" + "1" + "101" + "1" + "0"  # VUI: signal type, full range
    bits += "1" + "0" * ((8 - (len(bits) + 1) % 8) % 8)
    payload = int(bits, 2).to_bytes(len(bits) // 8, "big")
    sps = _parse_sps(b"\x67" + payload)
    assert (sps.width, sps.height, sps.chroma, sps.bit_depth, sps.full_range) == (
        1920, 1080, 1, 8, True,
    )  # fmt: skip
