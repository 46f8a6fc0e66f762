"""Retries over tenacity: bounded attempts, jittered backoff, the last real error re-raised."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import attrs
import tenacity

from .._clock import Clock
from .._exceptions import TransportError

T = TypeVar("T")

# 408 timeout, 425 too early, 429 slow down, and the server-side 5xx family.
_RETRYABLE_STATUSES = frozenset({408, 425, 429})


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How hard the client retries a call that failed transiently.

    With the defaults a 10% rate of transient faults reaches the caller about
    once in a million calls (six attempts), and a dead API surfaces as a
    `TransportError` within about a minute and a half: attempts start only
    within `give_up_after` seconds of the first, and each lasts at most the
    request timeout. Every call honours it, creates included (whose watch of
    the listing after an ambiguous failure counts as part of the attempt).
    """

    attempts: int = attrs.field(default=6, validator=attrs.validators.ge(1))
    initial_wait: float = attrs.field(default=0.5, validator=attrs.validators.ge(0))
    max_wait: float = attrs.field(default=8.0, validator=attrs.validators.ge(0))
    jitter: float = attrs.field(default=0.5, validator=attrs.validators.ge(0))
    max_retry_after: float = attrs.field(default=30.0, validator=attrs.validators.ge(0))
    give_up_after: float = attrs.field(default=60.0, validator=attrs.validators.ge(0))

    def wait_before(self, attempt: int, error: BaseException | None) -> float:
        """Seconds to wait after a failed attempt.

        Args:
            attempt: the number of the attempt that failed (1-based).
            error: what it failed with; its `retry_after` is honoured up to the cap.

        Returns:
            Exponential backoff plus jitter, or the server's longer wait.
        """
        backoff = min(self.max_wait, self.initial_wait * 2 ** (attempt - 1))
        wait = backoff + random.uniform(0, self.jitter)
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, (int, float)) and retry_after > wait:
            # Honour the server's longer wait up to the cap, never wait less than backoff.
            wait = max(wait, min(float(retry_after), self.max_retry_after))
        return float(wait)


NO_RETRY = RetryPolicy(attempts=1)


def is_retryable(error: BaseException) -> bool:
    """Whether repeating the same call may succeed: network failures and timeouts
    (no status), malformed bodies (a 2xx), 408/425/429 and 5xx. API refusals,
    other 4xx statuses and anything not a `TransportError` are never retried here.
    """
    if not isinstance(error, TransportError):
        return False
    status = error.status
    return (
        status is None
        or 200 <= status < 300
        or status in _RETRYABLE_STATUSES
        or 500 <= status < 600
    )


# Statuses with which a server says it did not take the request on at all.
_REFUSED_UNSEEN = frozenset({408, 425, 429})


def may_have_acted(error: BaseException) -> bool:
    """Whether the request that failed with `error` may still have been carried out.

    False for what certainly had no effect: a connection never opened, and a
    server's "too early", "timed out waiting for the request" or "slow down";
    True for every other transport failure (no answer, a proxy's 502 or 504, a
    5xx, a body that could not be read).
    """
    if not isinstance(error, TransportError):
        return False
    return error.reached_server and error.status not in _REFUSED_UNSEEN


async def call_with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    clock: Clock,
    retryable: Callable[[BaseException], bool] = is_retryable,
    on_retry: Callable[[BaseException, float], None] | None = None,
) -> T:
    """`await call()`, repeated under `policy` while it fails with a retryable error.

    The last real error is re-raised as it was; tenacity never shows through.
    """
    started = clock.monotonic()
    try:
        # Most calls succeed at once: they never pay for building a retry machine.
        return await call()
    except Exception as exc:
        if not retryable(exc) or policy.attempts <= 1:
            raise
        first_wait = policy.wait_before(1, exc)
        if clock.monotonic() - started + first_wait > policy.give_up_after:
            raise
        if on_retry is not None:
            on_retry(exc, first_wait)
    await clock.sleep(first_wait)

    # From here tenacity's attempt 1 is the call's attempt 2.
    def stop(state: tenacity.RetryCallState) -> bool:
        # tenacity computes the wait first, so no attempt starts past give_up_after.
        next_start = clock.monotonic() - started + state.upcoming_sleep
        return state.attempt_number + 1 >= policy.attempts or next_start > policy.give_up_after

    def failure(state: tenacity.RetryCallState) -> BaseException | None:
        return state.outcome.exception() if state.outcome else None

    def wait(state: tenacity.RetryCallState) -> float:
        return policy.wait_before(state.attempt_number + 1, failure(state))

    def before_sleep(state: tenacity.RetryCallState) -> None:
        error = failure(state)
        if on_retry is not None and error is not None and state.next_action is not None:
            on_retry(error, state.next_action.sleep)

    retrying = tenacity.AsyncRetrying(
        stop=stop,
        wait=wait,
        retry=tenacity.retry_if_exception(retryable),
        sleep=clock.sleep,
        before_sleep=before_sleep,
        reraise=True,
    )

    async def attempt() -> T:
        # tenacity awaits only what it recognises as a coroutine function.
        return await call()

    return await retrying(attempt)
