"""Retries: which errors repeat, how long between attempts, and what the caller finally sees."""

from __future__ import annotations

import asyncio
import random
import time
import types
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import pytest
import tenacity

import zomro_async
from tests.conftest import SteppingClock
from zomro_async._core._retry import NO_RETRY, RetryPolicy, call_with_retries, is_retryable
from zomro_async._exceptions import (
    ApiError,
    AuthError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    ResponseError,
    TransportError,
)

FakeClock = partial(SteppingClock, start=100.0)


def _flaky(
    errors: list[BaseException], result: object = "done", *, clock: FakeClock | None = None
) -> tuple[Callable[[], Awaitable[object]], list[float]]:
    """A call that raises `errors` one by one, then returns `result`; records start times."""
    pending = list(errors)
    starts: list[float] = []

    async def call() -> object:
        starts.append(clock.now if clock else 0.0)
        if pending:
            raise pending.pop(0)
        return result

    return call, starts


# --------------------------------------------------------------------------- is_retryable


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        pytest.param(TransportError("connection reset"), True, id="no-status"),
        pytest.param(TransportError("timeout", status=None), True, id="timeout"),
        pytest.param(TransportError("html", status=200), True, id="200-malformed-body"),
        pytest.param(TransportError("odd", status=204), True, id="204-malformed-body"),
        pytest.param(TransportError("t", status=408), True, id="408"),
        pytest.param(TransportError("t", status=425), True, id="425"),
        pytest.param(TransportError("t", status=429), True, id="429"),
        pytest.param(TransportError("t", status=500), True, id="500"),
        pytest.param(TransportError("t", status=502), True, id="502"),
        pytest.param(TransportError("t", status=503), True, id="503"),
        pytest.param(TransportError("t", status=504), True, id="504"),
        pytest.param(TransportError("t", status=599), True, id="599"),
        pytest.param(TransportError("t", status=302), False, id="302"),
        pytest.param(TransportError("t", status=400), False, id="400"),
        pytest.param(TransportError("t", status=401), False, id="401"),
        pytest.param(TransportError("t", status=403), False, id="403"),
        pytest.param(TransportError("t", status=404), False, id="404"),
        pytest.param(TransportError("t", status=409), False, id="409"),
        pytest.param(TransportError("t", status=600), False, id="600"),
        pytest.param(ApiError("refused"), False, id="ApiError"),
        pytest.param(AuthError("access", type="access"), False, id="AuthError"),
        pytest.param(NotFoundError("gone"), False, id="NotFoundError"),
        pytest.param(ConflictError("busy", object="runningoperation"), False, id="ConflictError"),
        pytest.param(InvalidRequestError("bad"), False, id="InvalidRequestError"),
        pytest.param(ResponseError("bad row"), False, id="ResponseError"),
        pytest.param(ValueError("x"), False, id="ValueError"),
        pytest.param(OSError("x"), False, id="OSError-not-wrapped"),
        pytest.param(TimeoutError(), False, id="TimeoutError-not-wrapped"),
        pytest.param(asyncio.CancelledError(), False, id="CancelledError"),
        pytest.param(KeyboardInterrupt(), False, id="KeyboardInterrupt"),
    ],
)
def test_is_retryable(error: BaseException, expected: bool) -> None:
    assert is_retryable(error) is expected


# --------------------------------------------------------------------------- wait_before


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        pytest.param(
            RetryPolicy(initial_wait=0.5, max_wait=8.0, jitter=0),
            [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0],
            id="defaults-no-jitter",
        ),
        pytest.param(
            RetryPolicy(initial_wait=1.0, max_wait=5.0, jitter=0),
            [1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0],
            id="capped-between-powers",
        ),
        pytest.param(
            RetryPolicy(initial_wait=0.0, max_wait=5.0, jitter=0),
            [0.0] * 7,
            id="no-wait",
        ),
        pytest.param(
            RetryPolicy(initial_wait=3.0, max_wait=1.0, jitter=0),
            [1.0] * 7,
            id="max-below-initial",
        ),
    ],
)
def test_wait_before_grows_exponentially_and_is_capped(
    policy: RetryPolicy, expected: list[float]
) -> None:
    assert [policy.wait_before(n, None) for n in range(1, 8)] == expected


def test_wait_before_is_capped_even_for_huge_attempt_numbers() -> None:
    policy = RetryPolicy(initial_wait=0.5, max_wait=8.0, jitter=0)
    assert policy.wait_before(1000, None) == 8.0


@pytest.mark.parametrize(
    ("attempt", "backoff"),
    [pytest.param(n, b, id=f"attempt-{n}") for n, b in [(1, 0.5), (2, 1.0), (4, 4.0), (9, 8.0)]],
)
def test_wait_before_jitter_stays_within_bounds(attempt: int, backoff: float) -> None:
    policy = RetryPolicy(initial_wait=0.5, max_wait=8.0, jitter=0.5)
    random.seed(1234)
    waits = [policy.wait_before(attempt, None) for _ in range(2000)]
    assert all(backoff <= w <= backoff + 0.5 for w in waits)
    # It is jitter: the waits spread over the range rather than sitting on one value.
    assert max(waits) - min(waits) > 0.4


@pytest.mark.parametrize(
    ("uniform_picks", "expected"),
    [pytest.param("low", 2.0, id="lowest"), pytest.param("high", 2.75, id="highest")],
)
def test_wait_before_jitter_is_added_to_the_backoff(
    monkeypatch: pytest.MonkeyPatch, uniform_picks: str, expected: float
) -> None:
    seen: list[tuple[float, float]] = []

    def uniform(a: float, b: float) -> float:
        seen.append((a, b))
        return a if uniform_picks == "low" else b

    monkeypatch.setattr(random, "uniform", uniform)
    policy = RetryPolicy(initial_wait=0.5, max_wait=8.0, jitter=0.75)
    assert policy.wait_before(3, None) == expected
    assert seen == [(0, 0.75)]


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        pytest.param(None, 1.0, id="none"),
        pytest.param(0.0, 1.0, id="zero-keeps-backoff"),
        pytest.param(0.5, 1.0, id="shorter-than-backoff"),
        pytest.param(5.0, 5.0, id="longer-than-backoff"),
        pytest.param(30.0, 30.0, id="exactly-the-cap"),
        pytest.param(120.0, 30.0, id="capped"),
        pytest.param(float("inf"), 30.0, id="infinite-capped"),
    ],
)
def test_wait_before_honours_retry_after_up_to_the_cap(
    retry_after: float | None, expected: float
) -> None:
    policy = RetryPolicy(initial_wait=0.5, max_wait=8.0, jitter=0, max_retry_after=30.0)
    error = TransportError("slow down", status=429, retry_after=retry_after)
    assert policy.wait_before(2, error) == expected


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(ValueError("x"), id="no-attribute"),
        pytest.param(types.SimpleNamespace(retry_after="60"), id="string-attribute"),
        pytest.param(ApiError("refused"), id="api-error"),
    ],
)
def test_wait_before_ignores_errors_without_a_numeric_retry_after(error: Any) -> None:
    policy = RetryPolicy(initial_wait=0.5, max_wait=8.0, jitter=0)
    assert policy.wait_before(2, error) == 1.0


def test_retry_after_never_shortens_the_backoff() -> None:
    policy = RetryPolicy(initial_wait=8.0, max_wait=8.0, jitter=0, max_retry_after=5.0)
    plain = policy.wait_before(1, None)
    asked = policy.wait_before(1, TransportError("slow down", status=429, retry_after=100.0))
    assert asked >= plain


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"attempts": 0}, id="zero-attempts"),
        pytest.param({"initial_wait": -1}, id="negative-initial"),
        pytest.param({"max_wait": -1}, id="negative-max"),
        pytest.param({"jitter": -0.1}, id="negative-jitter"),
        pytest.param({"max_retry_after": -1}, id="negative-retry-after-cap"),
        pytest.param({"give_up_after": -1}, id="negative-give-up"),
    ],
)
def test_retry_policy_rejects_bad_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):  # attrs' validator message is not ours
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- call_with_retries

QUICK = RetryPolicy(attempts=4, initial_wait=0.5, max_wait=8.0, jitter=0, give_up_after=1000)


@pytest.mark.parametrize(
    ("errors", "sleeps"),
    [
        pytest.param([], [], id="first-time"),
        pytest.param([TransportError("reset")], [0.5], id="after-one-network-error"),
        pytest.param(
            [TransportError("t", status=503), TransportError("t", status=200)],
            [0.5, 1.0],
            id="after-503-and-bad-body",
        ),
        pytest.param(
            [TransportError("t", status=s) for s in (429, 502, 408)],
            [0.5, 1.0, 2.0],
            id="on-the-last-attempt",
        ),
    ],
)
async def test_succeeds_after_transient_failures(
    errors: list[BaseException], sleeps: list[float]
) -> None:
    clock = FakeClock()
    call, starts = _flaky(errors, clock=clock)
    retried: list[tuple[BaseException, float]] = []
    result = await call_with_retries(
        call, policy=QUICK, clock=clock, on_retry=lambda e, s: retried.append((e, s))
    )
    assert result == "done"
    assert len(starts) == len(errors) + 1
    assert clock.sleeps == sleeps
    assert [e for e, _ in retried] == errors
    assert [s for _, s in retried] == sleeps


@pytest.mark.parametrize("attempts", [1, 2, 3, 6])
async def test_gives_up_after_attempts_reraising_the_last_error_itself(attempts: int) -> None:
    clock = FakeClock()
    errors = [TransportError(f"failure {n}", status=503) for n in range(10)]
    call, starts = _flaky(errors, clock=clock)
    retried: list[BaseException] = []
    policy = RetryPolicy(attempts=attempts, jitter=0, give_up_after=1e9)
    with pytest.raises(TransportError) as info:
        await call_with_retries(
            call, policy=policy, clock=clock, on_retry=lambda e, s: retried.append(e)
        )
    assert info.value is errors[attempts - 1]
    assert not isinstance(info.value, tenacity.RetryError)
    assert len(starts) == attempts
    assert len(clock.sleeps) == attempts - 1
    assert retried == errors[: attempts - 1]


async def test_no_retry_policy_calls_once() -> None:
    clock = FakeClock()
    error = TransportError("reset")
    call, starts = _flaky([error], clock=clock)
    with pytest.raises(TransportError) as info:
        await call_with_retries(call, policy=NO_RETRY, clock=clock)
    assert info.value is error
    assert len(starts) == 1
    assert clock.sleeps == []


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(AuthError("access", type="access"), id="AuthError"),
        pytest.param(NotFoundError("gone"), id="NotFoundError"),
        pytest.param(ConflictError("busy"), id="ConflictError"),
        pytest.param(InvalidRequestError("bad"), id="InvalidRequestError"),
        pytest.param(ApiError("refused"), id="ApiError"),
        pytest.param(ResponseError("bad row"), id="ResponseError"),
        pytest.param(TransportError("forbidden", status=403), id="403"),
        pytest.param(TransportError("not found", status=404), id="404"),
        pytest.param(ValueError("bug"), id="ValueError"),
        pytest.param(asyncio.CancelledError(), id="CancelledError"),
    ],
)
async def test_does_not_retry_a_non_retryable_error(error: BaseException) -> None:
    clock = FakeClock()
    call, starts = _flaky([error, error], clock=clock)
    retried: list[BaseException] = []
    with pytest.raises(type(error)) as info:
        await call_with_retries(
            call, policy=QUICK, clock=clock, on_retry=lambda e, s: retried.append(e)
        )
    assert info.value is error
    assert len(starts) == 1
    assert clock.sleeps == []
    assert retried == []


async def test_non_retryable_error_after_transient_ones_stops_at_once() -> None:
    clock = FakeClock()
    refusal = AuthError("access", type="access")
    call, starts = _flaky([TransportError("reset"), refusal, TransportError("reset")], clock=clock)
    with pytest.raises(AuthError) as info:
        await call_with_retries(call, policy=QUICK, clock=clock)
    assert info.value is refusal
    assert len(starts) == 2
    assert clock.sleeps == [0.5]


async def test_custom_retryable_predicate() -> None:
    clock = FakeClock()
    conflict = ConflictError("busy", object="runningoperation")
    call, starts = _flaky([conflict], clock=clock)
    result = await call_with_retries(
        call,
        policy=QUICK,
        clock=clock,
        retryable=lambda e: isinstance(e, ConflictError),
    )
    assert result == "done"
    assert len(starts) == 2


async def test_retry_waits_honour_retry_after() -> None:
    clock = FakeClock()
    call, _ = _flaky([TransportError("slow down", status=429, retry_after=7.0)], clock=clock)
    await call_with_retries(call, policy=QUICK, clock=clock)
    assert clock.sleeps == [7.0]


async def test_stops_once_give_up_after_has_passed_on_the_clock() -> None:
    # Each attempt takes 6 s on the clock and no wait is needed between them:
    # at t=6 there is time left, at t=12 the 10 s budget is spent.
    clock = FakeClock()
    started = clock.now
    errors = [TransportError(f"timeout {n}") for n in range(10)]
    pending = list(errors)
    starts: list[float] = []

    async def slow_call() -> object:
        starts.append(clock.now - started)
        clock.now += 6.0
        raise pending.pop(0)

    policy = RetryPolicy(attempts=10, initial_wait=0, jitter=0, give_up_after=10.0)
    with pytest.raises(TransportError) as info:
        await call_with_retries(slow_call, policy=policy, clock=clock)
    assert starts == [0.0, 6.0]
    assert info.value is errors[1]


async def test_give_up_after_zero_means_one_attempt() -> None:
    clock = FakeClock()
    call, starts = _flaky([TransportError("reset")] * 5, clock=clock)
    policy = RetryPolicy(attempts=10, give_up_after=0)
    with pytest.raises(TransportError):
        await call_with_retries(call, policy=policy, clock=clock)
    assert len(starts) == 1


async def test_no_attempt_starts_after_give_up_after() -> None:
    clock = FakeClock()
    started = clock.now
    call, starts = _flaky([TransportError("t", status=503)] * 10, clock=clock)
    policy = RetryPolicy(attempts=10, initial_wait=4.0, max_wait=100.0, jitter=0, give_up_after=10)
    with pytest.raises(TransportError):
        await call_with_retries(call, policy=policy, clock=clock)
    assert all(t - started < 10.0 for t in starts), starts


async def test_on_retry_is_called_once_per_actual_retry_with_the_wait() -> None:
    clock = FakeClock()
    errors = [TransportError("reset"), TransportError("t", status=502, retry_after=3.0)]
    call, _ = _flaky([*errors, TransportError("t", status=500)], clock=clock)
    retried: list[tuple[BaseException, float]] = []
    policy = RetryPolicy(attempts=3, initial_wait=0.5, jitter=0, give_up_after=1e9)
    with pytest.raises(TransportError):
        await call_with_retries(
            call, policy=policy, clock=clock, on_retry=lambda e, s: retried.append((e, s))
        )
    # Three attempts, two retries: the failure of the last attempt is no retry.
    assert retried == [(errors[0], 0.5), (errors[1], 3.0)]
    assert clock.sleeps == [0.5, 3.0]


async def test_never_sleeps_for_real(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_real_sleep(*_: object, **__: object) -> None:
        raise AssertionError("asyncio.sleep must not be used")

    monkeypatch.setattr(asyncio, "sleep", no_real_sleep)
    clock = FakeClock()
    call, _ = _flaky([TransportError("t", status=503, retry_after=30.0)] * 3, clock=clock)
    began = time.monotonic()
    policy = RetryPolicy(attempts=4, give_up_after=1e9)
    assert await call_with_retries(call, policy=policy, clock=clock) == "done"
    assert clock.sleeps == [30.0, 30.0, 30.0]
    assert time.monotonic() - began < 5.0


async def test_returns_the_value_of_the_call() -> None:
    clock = FakeClock()
    sentinel = object()
    call, _ = _flaky([], result=sentinel, clock=clock)
    assert await call_with_retries(call, policy=QUICK, clock=clock) is sentinel


# --------------------------------------------------------------------------- no tenacity leaks


def _is_tenacity(value: object) -> bool:
    if isinstance(value, types.ModuleType):
        return value.__name__.split(".")[0] == "tenacity"
    module = getattr(value, "__module__", None) or getattr(type(value), "__module__", "")
    return isinstance(module, str) and module.split(".")[0] == "tenacity"


def test_no_tenacity_name_in_all() -> None:
    tenacity_names = set(dir(tenacity))
    leaked = [name for name in zomro_async.__all__ if name in tenacity_names]
    assert leaked == []
    assert not any("tenacity" in name.lower() for name in zomro_async.__all__)
    assert not any(_is_tenacity(getattr(zomro_async, name)) for name in zomro_async.__all__)


def test_no_tenacity_object_among_public_module_attributes() -> None:
    public = {n: getattr(zomro_async, n) for n in dir(zomro_async) if not n.startswith("_")}
    assert "tenacity" not in public
    assert "RetryError" not in public
    assert [n for n, v in public.items() if _is_tenacity(v)] == []
