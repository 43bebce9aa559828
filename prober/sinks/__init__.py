"""Writers of what the pipeline produces: the spec, the report, the failures file."""

from __future__ import annotations

from prober.model import Result
from prober.sinks.base import Sink

__all__ = ["Sink", "SinkSet"]


class SinkSet:
    """Fans each result out to every sink; closes them all, committing or not."""

    def __init__(self, sinks: list[Sink]) -> None:
        self.sinks = sinks

    def write(self, result: Result) -> None:
        for sink in self.sinks:
            sink.write(result)

    def close(self, commit: bool) -> None:
        error: BaseException | None = None
        for sink in self.sinks:
            try:
                sink.close(commit)
            except BaseException as exc:  # close the others, then re-raise
                error = error or exc
                commit = False
        if error is not None:
            raise error
