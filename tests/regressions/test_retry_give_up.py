"""RetryPolicy promises: attempts start only within `give_up_after` seconds."""

import contextlib

from aioresponses import CallbackResult, aioresponses

import zomro_async as z
from zomro_async.testing import VirtualClock

URL = "https://api.zomro.com/"


async def test_no_attempt_starts_after_give_up_after_when_first_attempt_was_slow():
    clock = VirtualClock()
    starts: list[float] = []

    def slow_503(url, **kwargs):
        starts.append(clock.monotonic())
        clock.advance(29.9)  # the attempt lasts (almost) the whole request timeout
        return CallbackResult(status=503, body="<html>503</html>")

    with aioresponses() as m:
        m.post(URL, callback=slow_503, repeat=True)
        async with z.ZomroClient(token="tok-123456", clock=clock) as client:
            with contextlib.suppress(z.TransportError):
                await client.snapshots.list(5203773)
    policy = z.RetryPolicy()
    late = [s for s in starts if s > policy.give_up_after]
    assert late == [], f"attempts started at {starts}, past give_up_after={policy.give_up_after}"
