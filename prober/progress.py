"""Progress on stderr: a live line on a TTY, periodic plain lines otherwise, a summary at the end."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import TYPE_CHECKING, Any

from prober.pipeline import Counters

if TYPE_CHECKING:
    from rich.console import RenderableType

log = logging.getLogger("prober")


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def status_line(c: Counters) -> str:
    rate = c.done / c.elapsed if c.elapsed > 0 else 0.0
    return (
        f"listed {c.listed:,} · probed {c.probed:,} · failed {c.failed:,} · "
        f"images {c.images:,} · skipped {c.skipped:,} · {rate:,.0f} obj/s · "
        f"{human_bytes(c.bytes_fetched)} fetched"
    )


def summary_line(c: Counters, interrupted: bool = False) -> str:
    rate = c.done / c.elapsed if c.elapsed > 0 else 0.0
    per = f", {c.requests / c.done:.2f} requests/video" if c.done else ""
    parts = [
        f"{c.listed:,} objects: {c.probed:,} videos probed",
        f"{c.failed:,} failed",
        f"{c.images:,} images",
    ]
    if c.dicom:
        parts.append(f"{c.dicom:,} DICOM")
    parts.append(f"{c.skipped:,} skipped")
    if c.cached:
        parts.append(f"{c.cached:,} unchanged (from state)")
    if c.retries:
        parts.append(f"{c.retries:,} retries")
    head = "PARTIAL (interrupted): " if interrupted else ""
    return (
        f"{head}{', '.join(parts)} in {c.elapsed:.1f} s "
        f"({rate:,.0f} obj/s, {human_bytes(c.bytes_fetched)} fetched{per})"
    )


def live_view(c: Counters) -> RenderableType:
    """A bar (pulsing while the listing runs, then against the listed total) and the counts."""
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    total = max(c.listed, 1) if c.listing_done else None
    grid = Table.grid(padding=(0, 1))
    grid.add_row(
        ProgressBar(total=total, completed=c.handled, width=30),
        Text(f"{c.handled:,}/{c.listed:,}{'' if c.listing_done else '+'}"),
    )
    rate = c.done / c.elapsed if c.elapsed > 0 else 0.0
    counts = (
        f"probed {c.probed:,} · failed {c.failed:,} · images {c.images:,} · "
        f"skipped {c.skipped:,} · {rate:,.0f} obj/s · {human_bytes(c.bytes_fetched)}"
    )
    return Group(grid, Text(counts))


class Progress:
    def __init__(self, counters: Counters, mode: str = "auto", interval: float = 10.0) -> None:
        self.counters = counters
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "log"
        self.mode = mode
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._live: Any = None

    def start(self) -> None:
        if self.mode == "none":
            return
        if self.mode == "bar":
            from rich.console import Console
            from rich.live import Live

            console = Console(stderr=True)
            self._live = Live(
                live_view(self.counters),
                console=console,
                refresh_per_second=4,
                transient=True,
            )
            self._live.start()
        self._task = asyncio.create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            if self._live is not None:
                await asyncio.sleep(0.25)
                self._live.update(live_view(self.counters))
            else:
                await asyncio.sleep(self.interval)
                log.info(status_line(self.counters))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._live is not None:
            self._live.stop()
