"""``--engine ray``: the same pipeline, fanned out over a Ray cluster.

The driver starts (or joins, with ``--ray-address``) Ray and launches one task per
shard — as many as the cluster has CPUs unless ``--ray-tasks`` says otherwise. Each
task runs the ordinary asyncio pipeline over the same sources restricted to its
``shard_of(key) == i`` share (see prober/shard.py), and streams its results back in
batches through a Ray streaming generator; the driver's writer feeds them to the
usual sinks, so the output is the same as the local engine's.

Every task lists the whole source and keeps its share (a listing page holds 1,000
keys, so listing costs a fraction of probing); for very large buckets give the
tasks separate prefixes — docs/scale.md has the recipes. Workers read credentials
from their own environment (instance roles, the nodes' AWS_*/GOOGLE_*/AZURE_*
variables): nothing secret travels through Ray.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import queue
import threading
from collections.abc import Iterator
from typing import Any

from prober.errors import FatalError, ProberError, UsageError
from prober.model import Result
from prober.pipeline import Counters, Pipeline, PipelineConfig, deliver
from prober.sinks import SinkSet

BATCH = 256


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError("--engine ray needs Ray: pip install 'prober[ray]'") from None
    return ray


class _BatchSink:
    """Collects results into batches for the driver; blocks when the driver lags."""

    def __init__(self, out: queue.Queue[Any]) -> None:
        self.out = out
        self.batch: list[Result] = []

    def write(self, result: Result) -> None:
        result.entry.extra = result.entry.handle = None  # source-private, stay on the worker
        self.batch.append(result)
        if len(self.batch) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if self.batch:
            self.out.put(self.batch)
            self.batch = []

    def close(self, commit: bool) -> None:
        self.flush()


async def _shard_pipeline(
    args: argparse.Namespace, index: int, count: int, out: queue.Queue[Any]
) -> None:
    from prober.cli import _open_sources, pipeline_config, source_options
    from prober.sources import SourceContext
    from prober.state import StateStore

    ctx = SourceContext(source_options(args))
    sources = _open_sources(args, ctx, None)
    state = None
    if args.state and await asyncio.to_thread(os.path.exists, args.state):  # look up only
        state = StateStore(args.state)
        await state.open()
        state.record = _no_record  # type: ignore[method-assign]
    sink = _BatchSink(out)
    pipeline = Pipeline(sources, SinkSet([sink]), pipeline_config(args, state, (index, count)))
    try:
        await pipeline.run()
        sink.flush()
    finally:
        for source in sources:
            await source.close()
        await ctx.close()
        if state is not None:
            await state.close()


async def _no_record(_result: Result) -> None:
    return None


def probe_shard(args: argparse.Namespace, index: int, count: int) -> Iterator[list[Result]]:
    """Body of one Ray task: run the pipeline in a thread, yield its result batches."""
    out: queue.Queue[Any] = queue.Queue(maxsize=64)
    done = object()

    def target() -> None:
        try:
            import uvloop

            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(_shard_pipeline(args, index, count, out))
        except BaseException as exc:
            out.put(exc)
        finally:
            out.put(done)

    threading.Thread(target=target, name=f"shard-{index}", daemon=True).start()
    while (item := out.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item


class RayPipeline:
    """Drop-in for Pipeline in the CLI: ``run()`` → Counters, ``stop()``."""

    def __init__(self, args: argparse.Namespace, sinks: SinkSet, config: PipelineConfig) -> None:
        if args.shard:
            raise UsageError("--shard and --engine ray do not mix: Ray shards the work itself")
        if args.enrich:
            raise UsageError("--enrich runs on the local engine only")
        if any(u == "-" for u in args.urls):
            raise UsageError("--urls - (stdin) cannot be shared with Ray tasks; use a file")
        self.ray = _import_ray()
        self.args = args
        self.sinks = sinks
        self.config = config
        self.counters = Counters()
        self.interrupted = False
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self.interrupted = True
        self._stop.set()

    async def run(self) -> Counters:
        ray = self.ray
        started = not ray.is_initialized()
        if started:
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "configure_logging": False}  # fmt: skip
            if self.args.ray_address:
                kwargs["address"] = self.args.ray_address
            else:
                kwargs["num_cpus"] = os.cpu_count() or 1
            try:
                await asyncio.to_thread(ray.init, **kwargs)
            except Exception as exc:  # connection refused, version mismatch …
                raise FatalError(
                    f"--engine ray: cannot start or join Ray ({type(exc).__name__}: {exc})"
                ) from None
        count = self.args.ray_tasks or max(1, int(ray.cluster_resources().get("CPU", 1)))
        task = ray.remote(num_returns="streaming", num_cpus=1, max_retries=0)(probe_shard)
        gens = [task.remote(self.args, i, count) for i in range(count)]
        drains = [asyncio.create_task(self._drain(gen)) for gen in gens]
        stop = asyncio.create_task(self._stop.wait())
        try:
            pending = set(drains)
            while pending:
                done, pending = await asyncio.wait(
                    pending | {stop}, return_when=asyncio.FIRST_COMPLETED
                )
                if stop in done:
                    break
                pending.discard(stop)
                for task_done in done:
                    task_done.result()
        finally:
            stop.cancel()
            for d in drains:
                d.cancel()
            await asyncio.gather(*drains, return_exceptions=True)
            for gen in gens:
                with contextlib.suppress(Exception):
                    ray.cancel(gen, force=True)
            if started:
                await asyncio.to_thread(ray.shutdown)
        return self.counters

    async def _drain(self, gen: Any) -> None:
        try:
            async for ref in gen:
                batch: list[Result] = await ref
                for result in batch:
                    remember = deliver(result, self.counters, self.sinks, self.config.state)
                    if remember is not None:
                        await remember
        except self.ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, ProberError):
                raise cause from None
            raise FatalError(
                f"--engine ray: a task failed ({type(cause or exc).__name__})"
            ) from None
