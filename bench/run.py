"""prober vs ffprobe on one machine: throughput, requests, bytes, CPU and memory.

    .venv/bin/python bench/run.py            # `make bench`: everything, ~2 minutes
    .venv/bin/python bench/run.py --quick    # without the 100k-object memory run

What runs (every process is a child of this one, so its CPU and peak RSS come from
``wait4``; the store's CPU is read from /proc and reported apart):

1. ``bench/store.py`` in its own process: N distinct keys mapped round-robin over the
   corpus videos, Range reads, a fixed latency per request (default 20 ms), counters of
   requests and bytes per key, and an S3-compatible face (ListObjectsV2, path-style
   GetObject) on the same port.
2. prober ``--urls`` over HTTP, and prober ``s3://bench/`` (``AWS_ENDPOINT_URL`` at the
   store, static keys in the environment: ListObjectsV2 pages and ranged GETs signed with
   SigV4 by prober and sent over aiohttp, no botocore loaded), ``--concurrency 256``.
3. ``ffprobe -show_format -show_streams URL`` under ``xargs -P`` for a few -P values,
   on a subset of the same objects (same file mix).
4. Over-fetch against the minimum bytes FFmpeg itself reads (bench/minbytes.py), round
   trips per file from prober's report, and the memory runs (1k/10k/100k hardlinks,
   local backend).
5. ``--state`` reruns: a second store with 10,000 distinct keys; ``prober s3://bench/
   --state S`` once and then three times unchanged (the listing carries ETags: a rerun
   should fetch nothing), and the same with ``prober --urls FILE --state S`` (no
   listing: one HEAD per object); wall time of the first run against the median rerun,
   and the GETs/HEADs the store counted during that rerun. Then three S3 reruns over
   the same state without ``--region`` (the bucket's region from one HEAD), and three
   with an (empty) AWS config file, which has botocore's session resolve the settings.
   The S3 runs see the store's endpoint and keys and none of this machine's own AWS
   settings (see s3_env()).

Results: a table on stdout, JSON in bench/results/latest.json and a dated copy.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from minbytes import min_bytes_cached  # noqa: E402

from prober.classify import classify, extension  # noqa: E402
from prober.model import Kind  # noqa: E402
from prober.probe import containers as ct  # noqa: E402

PY = sys.executable
RESULTS = ROOT / "bench" / "results"
CACHE = ROOT / ".cache" / "bench"
CLK = os.sysconf("SC_CLK_TCK")
KiB = 1024


# --------------------------------------------------------------------------- media
def find_corpus(arg: str | None) -> tuple[Path, dict[str, dict[str, Any]], str]:
    """(root, {rel: truth}, label): the shared corpus if present, else generated media."""
    candidates = [Path(arg)] if arg else [ROOT.parent / "shared" / "corpus"]
    for c in candidates:
        if (c / "expected.json").is_file():
            return c, json.loads((c / "expected.json").read_text()), f"corpus {c}"
    sys.path.insert(0, str(ROOT))
    from tests.media import make_sample_media

    dest = ROOT / ".cache" / "media"
    manifest = make_sample_media(dest)
    return dest, manifest, "generated media (tests/media.py make_sample_media)"


def video_files(root: Path, truth: dict[str, dict[str, Any]]) -> list[str]:
    out = []
    for rel, t in sorted(truth.items()):
        if t.get("expect") == "video" and classify(rel) is Kind.VIDEO:
            out.append(rel)
    return out


def layout_class(path: Path) -> str:
    """faststart-mp4 | moov-end-mp4 | mkv/webm | ts/ps | other (for the round-trip targets)."""
    ext = extension(path.name).lower()
    with path.open("rb") as fh:
        head = fh.read(16)
    if ct.looks_like_bmff(head):
        data = path.read_bytes()
        size = len(data)
        try:
            layout = ct.walk_bmff(lambda o, n: data[o : o + n], size)
        except Exception:
            return "other"
        kinds = [b.type for b in layout.boxes]
        if b"moov" in kinds and (
            b"mdat" not in kinds or kinds.index(b"moov") < kinds.index(b"mdat")
        ):
            return "faststart-mp4"
        return "moov-end-mp4"
    if head[:4] == ct.EBML_MAGIC:
        return "mkv/webm"
    if ext in ("ts", "m2ts", "mts", "mpg", "mpeg", "vob"):
        return "ts/ps"
    return "other"


# --------------------------------------------------------------------------- processes
def proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def run_measured(
    cmd: list[str], env: dict[str, str] | None = None, stdin: Path | None = None,
    stdout: Path | None = None, timeout: float = 600,
) -> dict[str, Any]:  # fmt: skip
    """Run a child; wall time, CPU (user+sys, its waited-for children included), max RSS."""
    err = tempfile.NamedTemporaryFile(prefix="bench-err-", delete=False)
    fin = open(stdin, "rb") if stdin else subprocess.DEVNULL
    fout = open(stdout, "wb") if stdout else subprocess.DEVNULL
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdin=fin, stdout=fout, stderr=err, cwd=ROOT)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    for f in (fin, fout):
        if f is not subprocess.DEVNULL:
            f.close()
    err.close()
    stderr = Path(err.name).read_text(errors="replace")
    os.unlink(err.name)
    return {
        "rc": p.returncode,
        "wall_s": wall,
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "user_s": ru.ru_utime,
        "sys_s": ru.ru_stime,
        "maxrss_mb": ru.ru_maxrss / 1024,
        "stderr": stderr[-2000:],
    }


class StoreProc:
    def __init__(self, manifest: Path, latency: float) -> None:
        self.p = subprocess.Popen(
            [PY, str(ROOT / "bench" / "store.py"), str(manifest), "--latency", str(latency)],
            stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        line = self.p.stdout.readline() if self.p.stdout else ""
        if not line.startswith("http://"):
            raise SystemExit(f"store did not start: {line!r}")
        self.url = line.split()[0]

    def cpu(self) -> float:
        return proc_cpu(self.p.pid)

    def _get(self, path: str, method: str = "GET") -> bytes:
        req = urllib.request.Request(self.url + path, method=method)
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.read()

    def reset(self) -> None:
        self._get("/__reset", "POST")

    def stats(self) -> dict[str, Any]:
        return json.loads(self._get("/__stats"))

    def close(self) -> None:
        self.p.terminate()
        self.p.wait(10)


def measured_against_store(store: StoreProc, cmd: list[str], **kw: Any) -> dict[str, Any]:
    store.reset()
    c0 = store.cpu()
    r = run_measured(cmd, **kw)
    r["store_cpu_s"] = store.cpu() - c0
    st = store.stats()
    r["store"] = st
    return r


# --------------------------------------------------------------------------- analysis
def read_report(path: Path, run: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """{store key: report line}; a URL's key carries the bucket as its first segment."""
    if not path.exists():
        raise SystemExit(f"no report at {path}: " + (run or {}).get("stderr", "")[-2000:])
    out = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            key = d["key"]
            out[key.removeprefix("bench/") if key.startswith("bench/v/") else key] = d
    return out


def summarize_run(
    name: str, r: dict[str, Any], n: int, ok: int, key_file: dict[str, str],
    mins: dict[str, int], sizes: dict[str, int],
) -> dict[str, Any]:  # fmt: skip
    st = r.pop("store")
    keys = st["keys"]
    obj_req = sum(v[0] for k, v in keys.items() if k)
    obj_bytes = sum(v[1] for k, v in keys.items() if k)
    over = {"violations": [], "full_downloads_over_1mb": []}
    total_min = 0
    for key, rel in key_file.items():
        _req, sent = keys.get(key, (0, 0))
        total_min += mins[rel]
        if sent > 2 * mins[rel] + 64 * KiB:
            over["violations"].append(rel)
        if sizes[rel] > 1_000_000 and sent >= sizes[rel]:
            over["full_downloads_over_1mb"].append(rel)
    over["violations"] = sorted(set(over["violations"]))
    over["full_downloads_over_1mb"] = sorted(set(over["full_downloads_over_1mb"]))
    return {
        "name": name,
        "objects": n,
        "ok": ok,
        "rc": r["rc"],
        "wall_s": round(r["wall_s"], 3),
        "objects_per_s": round(n / r["wall_s"], 1),
        "cpu_ms_per_object": round(1000 * r["cpu_s"] / n, 3),
        "user_s": round(r["user_s"], 2),
        "sys_s": round(r["sys_s"], 2),
        "store_cpu_ms_per_object": round(1000 * r["store_cpu_s"] / n, 3),
        "peak_rss_mb": round(r["maxrss_mb"], 1),
        "requests_per_object": round(obj_req / n, 3),
        "other_requests": sum(v[0] for k, v in keys.items() if not k),
        "bytes_per_object": round(obj_bytes / n),
        "overfetch_ratio": round(obj_bytes / max(1, total_min), 3),
        "overfetch": over,
        "stderr_tail": r["stderr"][-500:] if r["rc"] not in (0,) else "",
    }


def round_trip_check(
    report: dict[str, dict[str, Any]], key_file: dict[str, str], classes: dict[str, str]
) -> dict[str, Any]:
    worst: dict[str, int] = {}
    for key, rel in key_file.items():
        line = report.get(key)
        if line is None:
            continue
        worst[rel] = max(worst.get(rel, 0), int(line.get("round_trips", 0)))
    by_class: dict[str, int] = {}
    for rel, rt in worst.items():
        c = classes[rel]
        by_class[c] = max(by_class.get(c, 0), rt)
    limit = {"faststart-mp4": 1, "mkv/webm": 1}
    bad = sorted(
        f"{rel} ({worst[rel]})" for rel in worst if worst[rel] > limit.get(classes[rel], 2)
    )
    return {"max_round_trips_by_layout": by_class, "over_limit": bad}


# --------------------------------------------------------------------------- memory
def link_tree(root: Path, files: list[Path], n: int) -> Path:
    dest = CACHE / f"links-{n}"
    stamp = dest / ".complete"
    if stamp.exists():
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for i in range(n):
        src = files[i % len(files)]
        sub = dest / f"d{i // 1000:04d}"
        if i % 1000 == 0:
            sub.mkdir()
        target = sub / f"{i:06d}{src.suffix}"
        try:
            os.link(src, target)
        except OSError:
            os.symlink(src, target)
    stamp.touch()
    return dest


def memory_runs(root: Path, videos: list[str], counts: list[int], conc: int) -> list[dict]:
    files = [root / v for v in videos]
    out = []
    for n in counts:
        tree = link_tree(root, files, n)
        with tempfile.TemporaryDirectory(prefix="bench-mem-") as tmp:
            r = run_measured(
                [PY, "-m", "prober", str(tree), "-o", f"{tmp}/spec.json", "-q",
                 "--concurrency", str(conc)]
            )  # fmt: skip
        out.append({
            "objects": n, "rc": r["rc"], "wall_s": round(r["wall_s"], 2),
            "objects_per_s": round(n / r["wall_s"], 1),
            "cpu_ms_per_object": round(1000 * r["cpu_s"] / n, 3),
            "peak_rss_mb": round(r["maxrss_mb"], 1),
        })  # fmt: skip
        print(f"  memory {n:>7} objects: {out[-1]}", flush=True)
    return out


# --------------------------------------------------------------------------- state
RERUNS = 3  # unchanged reruns after the first run; the median one is reported
REGIONLESS = "s3 without --region"
CONFIGURED = "s3 with an AWS config file"


def s3_env(store_url: str, work: Path, *, config_file: bool = False) -> dict[str, str]:
    """The S3 runs' environment: the store's endpoint and the bench's keys, and none of
    this machine's own AWS settings (a profile, a config file …): they are about real
    AWS and would only make the figures depend on the machine. ``config_file``: an
    empty AWS config file exists, as on a machine set up for the AWS CLI, so botocore's
    session resolves the settings (prober/sources/s3_env.py)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    config = work / ("aws-config" if config_file else "no-aws-config")
    if config_file:
        config.write_text("[default]\n")
    env.update(AWS_ENDPOINT_URL=store_url, AWS_ACCESS_KEY_ID="bench",
               AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1",
               AWS_CONFIG_FILE=str(config),
               AWS_SHARED_CREDENTIALS_FILE=str(work / "no-aws-credentials"))  # fmt: skip
    return env


def state_runs(root: Path, videos: list[str], n: int, latency: float, conc: str) -> dict:
    """First run and unchanged rerun with --state, over S3 (listing) and --urls (HEADs)."""
    nv = len(videos)
    work = Path(tempfile.mkdtemp(prefix="bench-state-"))
    keys = [f"s/{i:06d}/{Path(videos[i % nv]).name}" for i in range(n)]
    manifest = work / "manifest.json"
    manifest.write_text(json.dumps(
        {"bucket": "bench", "objects": [[k, str(root / videos[i % nv])] for i, k in enumerate(keys)]}
    ))  # fmt: skip
    store = StoreProc(manifest, latency)
    urls = work / "urls.txt"
    urls.write_text("".join(f"{store.url}/bench/{quote(k, safe='/')}\n" for k in keys))
    env = s3_env(store.url, work)
    out: dict[str, Any] = {"objects": n, "latency_ms": latency * 1000, "concurrency": int(conc)}
    sources = {
        "s3": ["s3://bench/", "--region", "us-east-1"],
        "urls": ["--urls", str(urls)],
        # reruns over the s3 state without --region: the bucket's region from one HEAD
        REGIONLESS: ["s3://bench/"],
        # and with an AWS config file: botocore's session loaded for the settings
        CONFIGURED: ["s3://bench/", "--region", "us-east-1"],
    }
    envs = {CONFIGURED: s3_env(store.url, work, config_file=True)}
    try:
        for name, source in sources.items():
            base = "s3" if name in (REGIONLESS, CONFIGURED) else name  # whose first run
            state = work / f"{base}.sqlite"
            runs = [out["s3"]["first"]] if base != name else []
            for i in range(1 + len(runs), 2 + RERUNS):
                print(f"--state {name} run {i}: {n} objects ...", flush=True)
                spec = work / f"{name}-{i}.json"
                r = measured_against_store(store, [
                    PY, "-m", "prober", *source, "--state", str(state), "-o", str(spec), "-q",
                    "--concurrency", conc,
                ], env=envs.get(name, env))  # fmt: skip
                st = r.pop("store")
                runs.append({
                    "rc": r["rc"], "wall_s": round(r["wall_s"], 3),
                    "cpu_s": round(r["cpu_s"], 3), "peak_rss_mb": round(r["maxrss_mb"], 1),
                    "gets": st["methods"].get("GET", 0), "heads": st["methods"].get("HEAD", 0),
                    "list_requests": st["keys"].get("", [0, 0])[0],
                    "stderr_tail": r["stderr"][-500:] if r["rc"] else "",
                })  # fmt: skip
                print(f"  {runs[-1]}", flush=True)
            first, reruns = runs[0], runs[1:]
            # the median rerun: one run of a few hundred ms is at the mercy of the machine
            second = sorted(reruns, key=lambda run: run["wall_s"])[len(reruns) // 2]
            first_spec = json.loads((work / f"{base}-1.json").read_text())
            same = all(
                json.loads((work / f"{name}-{i}.json").read_text()) == first_spec
                for i in range(2, 2 + RERUNS)
            )
            out[name] = {
                "first": first, "second": second, "same_spec": same,
                "reruns_wall_s": [run["wall_s"] for run in reruns],
                "speedup": round(first["wall_s"] / second["wall_s"], 1),
            }  # fmt: skip
    finally:
        store.close()
        shutil.rmtree(work, ignore_errors=True)
    return out


# --------------------------------------------------------------------------- main
def machine() -> dict[str, Any]:
    import av

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ffv = subprocess.run(["ffprobe", "-version"], capture_output=True, text=True).stdout
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "pyav": av.__version__,
        "ffmpeg_in_pyav": av.library_versions.get("libavformat"),
        "ffprobe": ffv.split("\n", 1)[0],
        "platform": platform.platform(),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", help="folder with expected.json (default ../shared/corpus)")
    ap.add_argument("--objects", type=int, default=4000, help="distinct keys (rounded up "
                    "to a whole number of passes over the corpus videos)")  # fmt: skip
    ap.add_argument("--ffprobe-objects", type=int, default=200)
    ap.add_argument("--ffprobe-p", default="16,64,128", help="xargs -P values to try")
    ap.add_argument("--latency", type=float, default=0.02)
    ap.add_argument("--concurrency", type=int, default=256)
    ap.add_argument("--memory", default="1000,10000,100000", help="object counts, memory runs")
    ap.add_argument("--quick", action="store_true", help="memory runs at 1k and 10k only")
    ap.add_argument("--state-objects", type=int, default=10_000,
                    help="distinct keys for the --state rerun runs")  # fmt: skip
    ap.add_argument("--skip", default="", help="comma list of: http,s3,ffprobe,state,memory")
    ap.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    started = time.perf_counter()

    root, truth, label = find_corpus(args.corpus)
    videos = video_files(root, truth)
    if not videos:
        raise SystemExit(f"no videos in {root}")
    nv = len(videos)
    n = math.ceil(args.objects / nv) * nv
    print(f"media: {label}: {nv} videos (bad/, images, DICOM, audio-only excluded)", flush=True)
    sizes = {v: (root / v).stat().st_size for v in videos}
    mins_by_path = min_bytes_cached([str(root / v) for v in videos], CACHE / "minbytes.json")
    mins = {v: mins_by_path[str(root / v)] for v in videos}
    classes = {v: layout_class(root / v) for v in videos}

    work = Path(tempfile.mkdtemp(prefix="bench-"))
    key_file = {f"v/{i:06d}/{Path(videos[i % nv]).name}": videos[i % nv] for i in range(n)}
    manifest = work / "manifest.json"
    manifest.write_text(json.dumps(
        {"bucket": "bench", "objects": [[k, str(root / rel)] for k, rel in key_file.items()]}
    ))  # fmt: skip
    store = StoreProc(manifest, args.latency)
    urls = work / "urls.txt"
    url_of = {k: f"{store.url}/bench/{quote(k, safe='/')}" for k in key_file}
    urls.write_text("".join(url_of[k] + "\n" for k in key_file))
    results: dict[str, Any] = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "media": label,
        "videos": nv,
        "latency_ms": args.latency * 1000,
        "concurrency": args.concurrency,
        "min_bytes_per_object": round(sum(mins[r] for r in key_file.values()) / n),
        "size_per_object": round(sum(sizes[r] for r in key_file.values()) / n),
        "runs": {},
    }
    runs = results["runs"]
    conc = str(args.concurrency)
    try:
        if "http" not in skip:
            print(f"prober --urls over HTTP: {n} objects ...", flush=True)
            rep = work / "http.jsonl"
            r = measured_against_store(store, [
                PY, "-m", "prober", "--urls", str(urls), "-o", str(work / "http.json"),
                "--report", str(rep), "-q", "--concurrency", conc,
            ])  # fmt: skip
            report = read_report(rep, r)
            ok = sum(1 for d in report.values() if d["status"] == "ok")
            runs["prober_http"] = summarize_run("prober HTTP", r, n, ok, key_file, mins, sizes)
            runs["prober_http"]["round_trips"] = round_trip_check(report, key_file, classes)
            runs["prober_http"]["round_trips_per_object"] = round(
                sum(d.get("round_trips", 0) for d in report.values()) / n, 3
            )
            print(f"  {_brief(runs['prober_http'])}", flush=True)
        if "s3" not in skip:
            print(f"prober s3:// (signed listing and GETs over aiohttp): {n} objects ...",
                  flush=True)  # fmt: skip
            env = s3_env(store.url, work)
            rep = work / "s3.jsonl"
            r = measured_against_store(store, [
                PY, "-m", "prober", "s3://bench/", "-o", str(work / "s3.json"),
                "--report", str(rep), "-q", "--concurrency", conc, "--region", "us-east-1",
            ], env=env)  # fmt: skip
            report = read_report(rep, r)
            ok = sum(1 for d in report.values() if d["status"] == "ok")
            runs["prober_s3"] = summarize_run("prober S3", r, n, ok, key_file, mins, sizes)
            runs["prober_s3"]["round_trips"] = round_trip_check(report, key_file, classes)
            print(f"  {_brief(runs['prober_s3'])}", flush=True)
        if "ffprobe" not in skip and shutil.which("ffprobe"):
            m = min(n, math.ceil(args.ffprobe_objects / nv) * nv)
            sub = dict(list(key_file.items())[:m])
            furls = work / "ffprobe-urls.txt"
            furls.write_text("".join(url_of[k] + "\n" for k in sub))
            for p in [int(x) for x in args.ffprobe_p.split(",") if x]:
                print(f"ffprobe via xargs -P {p}: {m} objects ...", flush=True)
                out = work / f"ffprobe-{p}.txt"
                r = measured_against_store(store, [
                    "xargs", "-P", str(p), "-n", "1", "ffprobe", "-v", "error",
                    "-show_format", "-show_streams",
                ], stdin=furls, stdout=out)  # fmt: skip
                ok = out.read_text(errors="replace").count("[/FORMAT]")
                runs[f"ffprobe_P{p}"] = summarize_run(f"ffprobe -P {p}", r, m, ok, sub, mins, sizes)
                print(f"  {_brief(runs[f'ffprobe_P{p}'])}", flush=True)
    finally:
        store.close()
        shutil.rmtree(work, ignore_errors=True)

    if "state" not in skip:
        results["state"] = state_runs(root, videos, args.state_objects, args.latency, conc)

    if "memory" not in skip:
        counts = [int(x) for x in args.memory.split(",") if x]
        if args.quick:
            counts = [c for c in counts if c <= 10_000]
        print(f"memory: local folder of hardlinks, --concurrency {conc}, {counts}", flush=True)
        results["memory"] = memory_runs(root, videos, counts, args.concurrency)

    results["targets"] = targets(results)
    results["bench_seconds"] = round(time.perf_counter() - started, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2)
    args.out.write_text(text)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    (RESULTS / f"run-{stamp}.json").write_text(text)
    print()
    print(table(results))
    print(f"\nresults: {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}"
          f"  ({results['bench_seconds']} s)")  # fmt: skip
    return 0


def _brief(s: dict[str, Any]) -> str:
    return (
        f"{s['objects_per_s']} obj/s, {s['cpu_ms_per_object']} ms CPU/obj, "
        f"{s['requests_per_object']} req/obj, {s['bytes_per_object'] / KiB:.0f} KiB/obj, "
        f"RSS {s['peak_rss_mb']} MB, ok {s['ok']}/{s['objects']} rc={s['rc']}"
    )


def best_ffprobe(runs: dict[str, Any]) -> dict[str, Any] | None:
    ff = [v for k, v in runs.items() if k.startswith("ffprobe_")]
    return max(ff, key=lambda v: v["objects_per_s"]) if ff else None


def targets(res: dict[str, Any]) -> list[dict[str, Any]]:
    runs = res["runs"]
    h, s3, ff64, best = (
        runs.get("prober_http"), runs.get("prober_s3"), runs.get("ffprobe_P64"),
        best_ffprobe(runs),
    )  # fmt: skip
    out: list[dict[str, Any]] = []

    def add(name: str, value: Any, goal: str, met: bool | None) -> None:
        out.append({"target": name, "value": value, "goal": goal, "met": met})

    if h and best:
        ratio = h["objects_per_s"] / best["objects_per_s"]
        add("throughput vs best ffprobe (HTTP)", f"{ratio:.1f}x (vs {best['name']})", ">= 25x",
            ratio >= 25)  # fmt: skip
    if h and ff64:
        ratio = h["objects_per_s"] / ff64["objects_per_s"]
        add("throughput vs ffprobe -P 64 (HTTP)", f"{ratio:.1f}x", ">= 25x", ratio >= 25)
    if h and s3:
        ratio = h["objects_per_s"] / s3["objects_per_s"]
        add("S3 path vs HTTP path", f"HTTP/S3 = {ratio:.2f}", "<= 1.5", ratio <= 1.5)
    if h:
        add("CPU per object (HTTP)", f"{h['cpu_ms_per_object']} ms", "<= 2 ms",
            h["cpu_ms_per_object"] <= 2)  # fmt: skip
        add("requests per object (HTTP)", h["requests_per_object"], "<= 2",
            h["requests_per_object"] <= 2)  # fmt: skip
        rt = h["round_trips"]
        add("round trips (faststart MP4, MKV/WebM 1; others 2)",
            rt["max_round_trips_by_layout"], "no file over", not rt["over_limit"])  # fmt: skip
        o = h["overfetch"]
        add("bytes <= 2 x minimum + 64 KiB (per file)",
            f"{len(o['violations'])} files over; total ratio {h['overfetch_ratio']}",
            "0 files over", not o["violations"])  # fmt: skip
        add("no full download of a video > 1 MB", len(o["full_downloads_over_1mb"]), "0",
            not o["full_downloads_over_1mb"])  # fmt: skip
        add("peak RSS at --concurrency 256 (HTTP)", f"{h['peak_rss_mb']} MB", "<= 250 MB",
            h["peak_rss_mb"] <= 250)  # fmt: skip
    if s3:
        add("S3 requests per object", s3["requests_per_object"], "<= 2",
            s3["requests_per_object"] <= 2)  # fmt: skip
    st = res.get("state")
    if st and "s3" in st:
        s, n = st["s3"], st["objects"]
        add(f"--state rerun of {n} unchanged objects (S3): no GET, >= 20x faster",
            f"{s['speedup']}x ({s['first']['wall_s']} s -> {s['second']['wall_s']} s), "
            f"{s['second']['gets']} GETs, {s['second']['heads']} HEADs", "0 GETs, >= 20x",
            s["second"]["gets"] == 0 and s["speedup"] >= 20)  # fmt: skip
    if st and "urls" in st:
        u, n = st["urls"], st["objects"]
        add(f"--state rerun of {n} unchanged objects (--urls): 1 HEAD/object, no GET",
            f"{u['speedup']}x ({u['first']['wall_s']} s -> {u['second']['wall_s']} s), "
            f"{u['second']['gets']} GETs, {u['second']['heads']} HEADs",
            f"0 GETs, {n} HEADs", u["second"]["gets"] == 0 and u["second"]["heads"] == n)  # fmt: skip
    mem = res.get("memory") or []
    if len(mem) >= 2:
        lo, hi = mem[0], mem[-1]
        ratio = hi["peak_rss_mb"] / lo["peak_rss_mb"]
        add(f"RSS flat: {hi['objects']} vs {lo['objects']} objects", f"{ratio:.2f}x",
            "<= 1.3x", ratio <= 1.3)  # fmt: skip
    return out


def table(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = [
        f"{m['cores']} cores ({m['cpu']}); the store runs on the same cores. "
        f"Latency {res['latency_ms']:.0f} ms/request, {res['videos']} corpus videos, "
        f"mean object {res['size_per_object'] / KiB:.0f} KiB, "
        f"mean FFmpeg minimum {res['min_bytes_per_object'] / KiB:.1f} KiB.",
        "",
        "| run | objects | obj/s | CPU ms/obj | store CPU ms/obj | req/obj | KiB/obj "
        "| bytes / minimum | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for v in res["runs"].values():
        lines.append(
            f"| {v['name']} | {v['objects']} | {v['objects_per_s']} | {v['cpu_ms_per_object']} "
            f"| {v['store_cpu_ms_per_object']} | {v['requests_per_object']} "
            f"| {v['bytes_per_object'] / KiB:.1f} | {v['overfetch_ratio']} | {v['peak_rss_mb']} |"
        )
    if res.get("memory"):
        lines += ["", "| memory run (local, hardlinks) | obj/s | CPU ms/obj | peak RSS MB |",
                  "|---:|---:|---:|---:|"]  # fmt: skip
        for v in res["memory"]:
            lines.append(
                f"| {v['objects']} | {v['objects_per_s']} | {v['cpu_ms_per_object']} "
                f"| {v['peak_rss_mb']} |"
            )
    st = res.get("state")
    if st:
        lines += ["", f"| --state, {st['objects']} unchanged objects | first run s | rerun s "
                  "| speed-up | rerun GETs | rerun HEADs | rerun list requests | same spec |",
                  "|---|---:|---:|---:|---:|---:|---:|---|"]  # fmt: skip
        for name, label in (
            ("s3", "s3://bench/ (listing)"),
            ("urls", "--urls (HEAD)"),
            (REGIONLESS, "s3://bench/ without --region (first run: the above)"),
            (CONFIGURED, "s3://bench/ with an AWS config file (botocore session; the above)"),
        ):
            if name in st:
                v = st[name]
                lines.append(
                    f"| {label} | {v['first']['wall_s']} | {v['second']['wall_s']} "
                    f"| {v['speedup']}x | {v['second']['gets']} | {v['second']['heads']} "
                    f"| {v['second']['list_requests']} | {'yes' if v['same_spec'] else 'NO'} |"
                )
    lines += ["", "| target | value | goal | met |", "|---|---|---|---|"]
    for t in res["targets"]:
        met = {True: "yes", False: "**no**", None: "?"}[t["met"]]
        lines.append(f"| {t['target']} | {t['value']} | {t['goal']} | {met} |")
    ffprobe_note = [v for k, v in res["runs"].items() if k.startswith("ffprobe_")]
    if ffprobe_note:
        lines.append(
            "\nffprobe: CPU includes every ffprobe process; peak RSS is the largest single "
            "ffprobe process (the -P processes together use about P times that)."
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
