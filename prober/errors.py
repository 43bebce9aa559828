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

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        """Throttling and transient faults; never 4xx other than 408/429."""
        if self.status is not None:
            return self.status in (408, 429, 500, 502, 503, 504)
        return self.reason in ("network", "timeout")

    def __str__(self) -> str:  # "truncated: moov atom not found"
        return str(self.args[0]) if self.args else self.reason


class HttpStatusError(ObjectError):
    """The store answered a read with an error status."""

    def __init__(self, status: int, detail: str = "", retry_after: float | None = None) -> None:
        text = f"HTTP {status}" + (f" {detail}" if detail else "")
        super().__init__("http", text, status=status, retry_after=retry_after)


class WrongKind(ObjectError):
    """The content is not a video but something prober knows (an image, a DICOM file)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__("not_video", message)
        self.kind = kind


class ListingFailed(ObjectError):
    """A failed listing request (retried like a read), carrying the client library's
    exception so the final one-line message can say what it was."""

    def __init__(
        self,
        cause: BaseException,
        *,
        status: int | None = None,
        reason: str = "http",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason, type(cause).__name__, status=status, retry_after=retry_after)
        self.cause = cause
