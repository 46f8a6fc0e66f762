"""Constants and helpers shared by the integration tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import zomro_async as z
from zomro_async.testing import VirtualClock, ZomroEmulator

VM = 5203773
OTHER_VM = 5203774
UNKNOWN_VM = 9999999

# Retry and poll waits are virtual; jitter off so deadlines are easy to reason about.
POLL = z.PollPolicy(initial=2.0, multiplier=1.5, maximum=30.0, jitter=0.0)
RETRY = z.RetryPolicy(attempts=6, initial_wait=0.5, max_wait=4.0, jitter=0.1)

StartEmulator = Callable[..., Awaitable[ZomroEmulator]]
Connect = Callable[..., z.ZomroClient]


def ids_of(emulator: ZomroEmulator, instance_id: int) -> list[int]:
    """The snapshot ids the emulator lists for an instance right now."""
    return [int(row["id"]) for row in emulator.snapshots_of(instance_id)]


def total_calls(emulator: ZomroEmulator) -> int:
    """How many requests the emulator has received, of any function."""
    return sum(emulator.calls.values())


async def until(
    condition: Callable[[], bool], clock: VirtualClock, *, step: float = 0.5, limit: int = 400
) -> None:
    """Let virtual time pass in `step`s until `condition()` holds (fails after `limit` steps)."""
    for _ in range(limit):
        if condition():
            return
        await clock.sleep(step)
    raise AssertionError("the condition never held")
