"""`make run`: prober against a local S3 emulator seeded with sample videos.

Starts moto's S3 server on a free 127.0.0.1 port, generates a few small videos,
images and broken files with PyAV, uploads them to s3://demo/, and runs

    prober s3://demo/ --concurrency 256

printing the spec on stdout (the summary and failures go to stderr).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prober.cli import main  # noqa: E402
from tests.media import make_sample_media  # noqa: E402
from tests.servers.emulators import MotoServer  # noqa: E402


def demo() -> int:
    media = ROOT / ".cache" / "demo-media"
    manifest = make_sample_media(media)
    with MotoServer() as s3, tempfile.TemporaryDirectory() as tmp:
        s3.create_bucket("demo")
        s3.upload_tree("demo", media)
        os.environ.update(s3.env())
        print(
            f"prober demo: {len(manifest)} sample objects in s3://demo/ on {s3.endpoint} "
            "(moto); running: prober s3://demo/ --concurrency 256",
            file=sys.stderr,
        )
        failures = Path(tmp) / "failures.csv"
        code = main(["s3://demo/", "--concurrency", "256", "--failures", str(failures)])
        rows = failures.read_text(encoding="utf-8").splitlines()[1:]
        if rows:
            print("prober demo: failures (as expected for the broken samples):", file=sys.stderr)
            for row in rows:
                print("  " + row, file=sys.stderr)
        print(f"prober demo: exit code {code} (3 = some objects failed)", file=sys.stderr)
    return 0 if code in (0, 3) else code


if __name__ == "__main__":
    raise SystemExit(demo())
