"""Error types shared by every layer.

`FatalError` ends the run (exit 1): a bucket that does not exist, a listing that is
denied, an endpoint that does not answer. `ObjectError` is a per-object failure: the
object goes to the failures file and the run goes on.
"""

from __future__ import annotations


class ProberError(Exception):
    """Base class; `str(err)` is always a one-line, secret-free message."""


class UsageError(ProberError):
    """The user asked for something impossible (exit 2)."""


class FatalError(ProberError):
    """The run cannot go on (exit 1)."""


class ObjectError(ProberError):
    """One object could not be probed.

    `reason` is a short machine-friendly class (``http``, ``truncated``, ``not_media``,
    ``no_video``, ``corrupt``, ``timeout``); the message is what a person reads.
    """

    def __init__(self, reason: str, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status

    def __str__(self) -> str:  # "truncated: moov atom not found"
        msg = self.args[0] if self.args else ""
        return msg if msg.startswith(self.reason) else f"{self.reason}: {msg}"


class HttpStatusError(ObjectError):
    """The store answered a read with an error status."""

    def __init__(self, status: int, detail: str = "") -> None:
        text = f"HTTP {status}" + (f" {detail}" if detail else "")
        super().__init__("http", text, status=status)

    def __str__(self) -> str:
        return str(self.args[0])
