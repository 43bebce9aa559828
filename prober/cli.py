"""Command line: flags → sources, pipeline, sinks; exit codes; one-line errors.

Exit codes: 0 every object probed; 3 finished but some objects failed; 2 usage
error; 1 fatal error (bucket missing, access denied, endpoint unreachable);
130/143 interrupted by SIGINT/SIGTERM (the spec of what was done is written).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from prober import __version__
from prober.config import config_tokens, find_config
from prober.errors import ProberError, UsageError
from prober.pipeline import Filters, Pipeline, PipelineConfig
from prober.progress import Progress, summary_line
from prober.shard import parse_shard
from prober.sinks import Sink, SinkSet
from prober.sinks.atomic import check_writable
from prober.sinks.client_metadata import ClientMetadata
from prober.sinks.enrich import EnrichWriter
from prober.sinks.report import FailuresWriter, ReportWriter
from prober.sinks.spec import CsvSpecWriter, JsonlSpecWriter, JsonSpecWriter, SpecOptions
from prober.sources import SourceContext, SourceOptions, open_source, open_url_list
from prober.sources.base import Source
from prober.sources.enrich import EnrichSource, load_spec
from prober.state import StateStore

if TYPE_CHECKING:
    from prober.ray_engine import RayPipeline

EXIT_OK, EXIT_FATAL, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3
EXIT_SIGINT, EXIT_SIGTERM = 130, 143

log = logging.getLogger("prober")

EXAMPLE = "example: prober s3://my-bucket/clips/ -o spec.json"


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"prober: error: {message} (see prober --help)\n")
        raise SystemExit(EXIT_USAGE)


def build_parser() -> Parser:
    p = Parser(
        prog="prober",
        description="Write an Encord upload spec with videoMetadata for the videos in "
        "buckets, folders and URL lists, reading only their headers.",
        epilog=f"{EXAMPLE}\nexit codes: 0 ok, 3 some objects failed, 2 usage error, "
        "1 fatal error, 130/143 interrupted",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "sources",
        nargs="*",
        metavar="SOURCE",
        help="s3://bucket[/prefix], a local folder, an http(s) URL",
    )
    p.add_argument(
        "--urls",
        metavar="FILE",
        action="append",
        default=[],
        help="file with one URL per line ('-' for stdin)",
    )
    p.add_argument(
        "--inventory",
        metavar="PATH",
        action="append",
        default=[],
        help="S3 Inventory report instead of a listing: s3://…/manifest.json or local CSV(.gz)",
    )
    out = p.add_argument_group("output")
    out.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        default="-",
        help="spec path (default: stdout); written atomically",
    )
    out.add_argument(
        "--format",
        choices=("json", "csv", "jsonl"),
        default=None,
        help="spec format (default: from the -o extension, else json)",
    )
    out.add_argument(
        "--images",
        choices=("single", "groups", "sequences"),
        default="single",
        help="images: one images[] entry each (default), or one image_groups / "
        "image_sequences entry per folder",
    )
    out.add_argument("--failures", metavar="PATH", help="CSV objectUrl,error of failed objects")
    out.add_argument("--report", metavar="PATH", help="JSONL line per object with full metadata")
    out.add_argument(
        "--title",
        choices=("name", "key", "none"),
        default="name",
        help="entry titles: file name (default), full key, or none",
    )
    out.add_argument(
        "--skip-duplicate-urls",
        action="store_true",
        help='set the spec\'s top-level "skip_duplicate_urls": true',
    )
    out.add_argument(
        "--client-metadata",
        metavar="FILE",
        help='JSONL of {"objectUrl" or "key": ..., "clientMetadata": {...}} to merge',
    )
    out.add_argument(
        "--enrich",
        metavar="SPEC",
        help="add/refresh videoMetadata in an existing spec (.json or .csv); "
        "everything else is kept",
    )
    out.add_argument(
        "--drop-failed",
        action="store_true",
        help="with --enrich: drop entries whose video failed (default: keep them "
        "without videoMetadata)",
    )
    src = p.add_argument_group("sources")
    src.add_argument(
        "--url-style", metavar="STYLE", help="S3 objectUrl: virtual (default), path, s3"
    )
    src.add_argument(
        "--endpoint-url", metavar="URL", help="S3 endpoint (overrides AWS_ENDPOINT_URL)"
    )
    src.add_argument("--region", help="region for objectUrls (default: the bucket's location)")
    src.add_argument(
        "--url-prefix",
        metavar="URL",
        help="local folders: objectUrl = URL + path relative to the folder",
    )
    src.add_argument(
        "--include",
        metavar="GLOB",
        action="append",
        default=[],
        help="only keys matching GLOB (repeatable; '*.mp4' matches at any depth)",
    )
    src.add_argument(
        "--exclude",
        metavar="GLOB",
        action="append",
        default=[],
        help="skip keys matching GLOB (repeatable)",
    )
    src.add_argument(
        "--sniff", action="store_true", help="probe objects without a known extension by content"
    )
    run = p.add_argument_group("run")
    run.add_argument(
        "-c",
        "--concurrency",
        type=_positive_int,
        default=64,
        metavar="N",
        help="objects probed at once (default 64)",
    )
    run.add_argument(
        "--retries",
        type=_nonneg_int,
        default=5,
        metavar="N",
        help="retries per request on throttling/transient errors (default 5)",
    )
    run.add_argument(
        "--timeout",
        type=_positive_float,
        default=30.0,
        metavar="S",
        help="seconds per request (default 30)",
    )
    run.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr")
    run.add_argument(
        "--progress",
        choices=("auto", "bar", "log", "none"),
        default="auto",
        help="progress display (default: bar on a TTY, log lines otherwise)",
    )
    run.add_argument("--debug", action="store_true", help="tracebacks and debug logs")
    run.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: this process (default); ray: fan out over a Ray cluster "
        "(pip install 'prober[ray]')",
    )
    run.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="Ray cluster to join (default: start a local Ray)",
    )
    run.add_argument(
        "--ray-tasks",
        type=_positive_int,
        metavar="N",
        help="Ray tasks, each probing a hash shard (default: the cluster's CPUs)",
    )
    run.add_argument(
        "--shard",
        metavar="I/N",
        help="take shard I of N (0-based) by a stable hash of the key; join parts with "
        "'prober merge'",
    )
    run.add_argument(
        "--state",
        metavar="PATH",
        help="SQLite file of results: reruns skip unchanged objects, interrupted runs resume",
    )
    run.add_argument(
        "--config",
        metavar="PATH",
        help="read options from this TOML file (default: ./prober.toml when no SOURCE is given)",
    )
    p.add_argument("--version", action="version", version=f"prober {__version__}")
    return p


def _positive_int(text: str) -> int:
    value = _nonneg_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text}")
    return value


def _nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def _setup_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.debug else logging.ERROR if args.quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("prober: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if not args.debug else logging.DEBUG)
    log.setLevel(level)
    for noisy in ("aiobotocore", "botocore", "aiohttp", "urllib3", "azure", "asyncio"):
        # never DEBUG: client libraries log request headers (signatures) at that level
        logging.getLogger(noisy).setLevel(logging.WARNING if args.debug else logging.CRITICAL)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Flags, with prober.toml (or --config) underneath them."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    path = find_config(
        args.config, bool(args.sources or args.urls or args.inventory or args.enrich)
    )
    if path is None:
        return args
    tokens = config_tokens(path, parser, argv)
    if args.sources and "--" in tokens:
        tokens = tokens[: tokens.index("--")]  # sources on the command line replace the file's
    if "--" in tokens:
        cut = tokens.index("--")
        return parser.parse_args(tokens[:cut] + argv + tokens[cut:])
    return parser.parse_args(tokens + argv)


def console() -> NoReturn:
    """The ``prober`` command: :func:`main`, then exit without tearing the interpreter
    down. Outputs are committed (fsynced and renamed) and the pools joined by then;
    freeing every module and object one by one would only add ~0.1 s to each run
    (botocore's loaded models), which a cron job over an unchanged bucket notices."""
    code = main()
    if "ray" in sys.modules:  # Ray's atexit hooks stop its local cluster
        sys.exit(code)
    logging.shutdown()
    try:
        sys.stdout.flush()
    except OSError:  # a closed pipe: what was printed did not all arrive
        code = code or EXIT_FATAL
    with contextlib.suppress(OSError):
        sys.stderr.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["merge"]:
        from prober.merge import main as merge_main

        gc.enable()  # off while the modules loaded (prober/__main__.py)
        return merge_main(argv[1:])
    try:
        args = parse_args(argv)
    except UsageError as exc:
        sys.stderr.write(f"prober: error: {exc}\n")
        return EXIT_USAGE
    _setup_logging(args)
    try:
        return _run_loop(args)
    except UsageError as exc:
        log.error("error: %s", exc)
        if args.debug:
            raise
        return EXIT_USAGE
    except ProberError as exc:
        log.error("%s", exc)
        if args.debug:
            raise
        return EXIT_FATAL
    except KeyboardInterrupt:
        return EXIT_SIGINT
    except OSError as exc:  # the machine said no: disk full, too many open files …
        if args.debug:
            raise
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        log.error("%s%s", exc.strerror or exc, where)
        return EXIT_FATAL
    except Exception as exc:  # an unexpected bug: still one line unless --debug
        if args.debug:
            raise
        log.error("internal error: %s: %s (run with --debug for details)", type(exc).__name__, exc)
        return EXIT_FATAL


def _run_loop(args: argparse.Namespace) -> int:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        return asyncio.run(run(args))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(run(args))


def _open_sources(
    args: argparse.Namespace, ctx: SourceContext, enrich_spec: dict[str, Any] | None
) -> list[Source]:
    if enrich_spec is not None:
        if args.sources or args.urls or args.inventory:
            raise UsageError(
                "--enrich takes its objects from the spec: give no SOURCE, --urls or --inventory"
            )
        return [EnrichSource(args.enrich, enrich_spec, ctx)]
    sources: list[Source] = [open_source(s, ctx) for s in args.sources]
    sources += [open_url_list(path, ctx) for path in args.urls]
    if args.inventory:
        from prober.sources.inventory import InventorySource  # botocore: only when needed

        sources += [InventorySource(path, ctx) for path in args.inventory]
    if not sources:
        raise UsageError(
            "no SOURCE given (on the command line or in prober.toml); "
            f'{EXAMPLE}, or a prober.toml with sources = ["s3://my-bucket/clips/"]'
        )
    if sum(1 for path in args.urls if path == "-") > 1:
        raise UsageError("--urls - (stdin) can be given once")
    return sources


def _open_sinks(
    args: argparse.Namespace,
    enrich_spec: dict[str, Any] | None,
    stack: contextlib.ExitStack,
    unique_urls: bool = False,
) -> list[Sink]:
    fmt = args.format or _format_from_path(args.output)
    for path, flag in ((args.output, "-o"), (args.failures, "--failures"),
                       (args.report, "--report"), (args.state, "--state")):  # fmt: skip
        check_writable(path, flag)
    sinks: list[Sink] = []
    if enrich_spec is not None:
        if fmt != "json":
            raise UsageError("--enrich writes a JSON spec (CSV cannot carry videoMetadata)")
        sinks.append(EnrichWriter(args.output, enrich_spec, drop_failed=args.drop_failed))
    else:
        cm = None
        if args.client_metadata:
            cm = ClientMetadata(args.client_metadata)
            stack.callback(cm.close)
        header = None
        if args.shard:
            index, count = parse_shard(args.shard)
            header = {
                "sources": [
                    *args.sources,
                    *(f"--urls {u}" for u in args.urls),
                    *(f"--inventory {i}" for i in args.inventory),
                ],
                "images": args.images,
                "shard": [index, count],
            }
        spec_opts = SpecOptions(
            images=args.images,
            title=args.title,
            skip_duplicate_urls=args.skip_duplicate_urls,
            client_metadata=cm,
            header=header,
            unique_urls=unique_urls,
        )
        if fmt == "csv":
            if args.skip_duplicate_urls:
                raise UsageError(
                    "--skip-duplicate-urls is a JSON spec flag; CSV has no place for it"
                )
            if args.client_metadata:
                raise UsageError("--client-metadata needs a JSON spec; CSV has no place for it")
            log.warning(
                "CSV specs carry no videoMetadata: Encord will download and pre-process these "
                "videos (use --format json to keep it)"
            )
            sinks.append(CsvSpecWriter(args.output, spec_opts))
        elif fmt == "jsonl":
            sinks.append(JsonlSpecWriter(args.output, spec_opts))
        else:
            sinks.append(JsonSpecWriter(args.output, spec_opts))
    if args.failures:
        sinks.append(FailuresWriter(args.failures))
    if args.report:
        sinks.append(ReportWriter(args.report))
    return sinks


def _format_from_path(path: str) -> str:
    lower = path.lower()
    if lower.endswith(".csv"):
        return "csv"
    if lower.endswith(".jsonl") or lower.endswith(".ndjson"):
        return "jsonl"
    return "json"


def source_options(args: argparse.Namespace) -> SourceOptions:
    return SourceOptions(
        endpoint_url=args.endpoint_url,
        url_style=args.url_style,
        url_prefix=args.url_prefix,
        region=args.region,
        timeout=args.timeout,
        retries=args.retries,
        concurrency=args.concurrency,
    )


def pipeline_config(
    args: argparse.Namespace, state: StateStore | None, shard: tuple[int, int] | None
) -> PipelineConfig:
    return PipelineConfig(
        state=state,
        concurrency=args.concurrency,
        sniff=args.sniff,
        retries=args.retries,
        filters=Filters(
            include=args.include,
            exclude=args.exclude,
            shard=shard,
            group_images=args.images != "single",
        ),
    )


async def run(args: argparse.Namespace) -> int:
    ctx = SourceContext(source_options(args))
    if args.drop_failed and not args.enrich:
        raise UsageError("--drop-failed goes with --enrich")
    enrich_spec = load_spec(args.enrich) if args.enrich else None
    sources = _open_sources(args, ctx, enrich_spec)
    stack = contextlib.ExitStack()
    unique_urls = len(sources) == 1 and getattr(sources[0], "unique_urls", False)
    sinks = SinkSet(_open_sinks(args, enrich_spec, stack, unique_urls))
    state = StateStore(args.state) if args.state else None
    if state is not None:
        await state.open()
        ctx.hints = state  # list in parallel ranges cut where the last run's keys were
    # what is loaded by now (the backends' libraries) lives as long as the run: out of
    # the collector's reach, or every full collection walks all of it again (~20 ms
    # each). The collector was off while it loaded (prober/__main__.py).
    gc.freeze()
    gc.enable()
    config = pipeline_config(args, state, parse_shard(args.shard) if args.shard else None)
    pipeline: Pipeline | RayPipeline
    if args.engine == "ray":
        from prober.ray_engine import RayPipeline

        pipeline = RayPipeline(args, sinks, config)
    else:
        pipeline = Pipeline(sources, sinks, config)
    progress = Progress(pipeline.counters, "none" if args.quiet else args.progress)
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    received: list[int] = []

    def on_signal(signum: int) -> None:
        received.append(signum)
        if len(received) == 1:
            log.warning("stopping: finishing in-flight probes (again to abort)")
            pipeline.stop()
        elif main_task is not None:
            main_task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal, sig)

    committed = False
    progress.start()
    try:
        counters = await pipeline.run()
        await progress.stop()
        sinks.close(commit=True)
        committed = True
    except asyncio.CancelledError:
        await progress.stop()
        sinks.close(commit=False)
        committed = True
        return EXIT_SIGTERM if received and received[0] == signal.SIGTERM else EXIT_SIGINT
    finally:
        if not committed:
            await progress.stop()
            with contextlib.suppress(Exception):
                sinks.close(commit=False)
        for source in sources:
            with contextlib.suppress(Exception):
                await source.close()
        await ctx.close()
        if state is not None:
            await state.close()
        stack.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)

    log.info("%s", summary_line(counters, pipeline.interrupted))
    for sink in sinks.sinks:
        refused = getattr(sink, "refused", None)
        if refused and any(refused.values()):
            log.warning(
                "CSV cannot carry single images or DICOM series: left out %d images and %d DICOM "
                "files (use --format json, or --images groups|sequences for images)",
                refused["images"],
                refused["dicom_series"],
            )
    if received:
        return EXIT_SIGTERM if received[0] == signal.SIGTERM else EXIT_SIGINT
    if counters.failed:
        return EXIT_PARTIAL
    return EXIT_OK
