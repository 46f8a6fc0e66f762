"""The clock the client measures deadlines and sleeps on: real unless a test swaps it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any, Protocol


class Clock(Protocol):
    """What the client needs of time; `zomro_async.testing.VirtualClock` is the test double."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for deadlines."""
        ...

    def time(self) -> float:
        """Wall-clock seconds since the epoch, for dates and event timestamps."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Suspend the calling task for `seconds`."""
        ...


class SystemClock:
    """The real clock: `time.monotonic`, `time.time` and `asyncio.sleep`."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> Coroutine[Any, Any, None]:
        # asyncio.sleep's own coroutine, not one more around it: a sleeping
        # watch is one object fewer for the collector.
        return asyncio.sleep(max(0.0, seconds))
