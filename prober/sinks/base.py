"""The sink interface: results arrive one by one; ``close(commit)`` finishes the file."""

from __future__ import annotations

from typing import Protocol

from prober.model import Result


class Sink(Protocol):
    def write(self, result: Result) -> None: ...

    def close(self, commit: bool) -> None:
        """commit=True: make the output visible atomically; False: leave the old file."""
        ...
