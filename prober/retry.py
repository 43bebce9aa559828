"""One retry policy for every backend: exponential backoff with full jitter,
honouring ``Retry-After``; no retry on 4xx (but 408/429)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from prober.errors import ObjectError

if TYPE_CHECKING:  # tenacity is imported by the first retry, not by every run
    from tenacity import RetryCallState

T = TypeVar("T")


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, ObjectError) and exc.retryable


def _wait(state: RetryCallState) -> float:
    from tenacity.wait import wait_random_exponential

    exc = state.outcome.exception() if state.outcome else None
    backoff = wait_random_exponential(multiplier=0.2, max=20)(state)
    if isinstance(exc, ObjectError) and exc.retry_after is not None:
        return max(min(exc.retry_after, 60.0), backoff * 0.1)
    return backoff


async def with_retries(
    call: Callable[[], Awaitable[T]],
    retries: int,
    on_retry: Callable[[BaseException], None] | None = None,
) -> T:
    # the first attempt is a plain call: nearly every request succeeds at once, and
    # building a tenacity retrier per request costs more than the request's parsing
    try:
        return await call()
    except ObjectError as exc:
        if retries <= 0 or not exc.retryable:
            raise
        if on_retry is not None:
            on_retry(exc)
        await asyncio.sleep(_first_wait(exc))
    return await _retrying(call, retries - 1, on_retry)


def _first_wait(exc: ObjectError) -> float:
    if exc.retry_after is not None:
        return min(exc.retry_after, 60.0)
    return random.uniform(0, 0.2)


async def _retrying(
    call: Callable[[], Awaitable[T]],
    retries: int,
    on_retry: Callable[[BaseException], None] | None,
) -> T:
    from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

    def before_sleep(state: RetryCallState) -> None:
        if on_retry and state.outcome is not None:
            exc = state.outcome.exception()
            if exc is not None:
                on_retry(exc)

    async for attempt in AsyncRetrying(
        stop=stop_after_attempt(retries + 1),
        wait=_wait,
        retry=retry_if_exception(_is_retryable),
        reraise=True,
        before_sleep=before_sleep,
    ):
        with attempt:
            return await call()
    raise AssertionError("unreachable")
