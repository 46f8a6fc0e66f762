"""A virtual clock shared by the emulator and the client, so tests wait without sleeping."""

from __future__ import annotations

import asyncio
import heapq
import itertools

# Loop turns the driver lets pass before it moves time on: enough for loopback
# HTTP exchanges in flight to reach their next sleep, so time moves in order.
_SETTLE_TURNS = 50


class VirtualClock:
    """Time that moves only when told to (`advance`) or, with `auto_advance`,
    when every task that sleeps on it is asleep: then it jumps to the earliest
    wake-up. Same API as the client's clock: `monotonic()`, `time()`, `sleep()`.
    """

    def __init__(self, *, start: float = 1_767_225_600.0, auto_advance: bool = True) -> None:
        self._epoch = start
        self._now = 0.0
        self.auto_advance = auto_advance
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._driver: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"VirtualClock(now={self._now:.3f}, sleepers={len(self._sleepers)})"

    def monotonic(self) -> float:
        """Virtual seconds since the clock was made."""
        return self._now

    def time(self) -> float:
        """Virtual wall-clock seconds since the epoch (`start` plus `monotonic()`)."""
        return self._epoch + self._now

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper now due.

        Args:
            seconds: how far; zero or more.

        Raises:
            ValueError: `seconds` is negative.
        """
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self._now += seconds
        self._wake_due()

    async def sleep(self, seconds: float) -> None:
        """Suspend until the clock reaches now plus `seconds` (no real waiting)."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), future))
        if self.auto_advance and (self._driver is None or self._driver.done()):
            self._driver = loop.create_task(self._drive())
        await future

    def _wake_due(self) -> None:
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    def _drop_cancelled(self) -> None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)

    async def _drive(self) -> None:
        while True:
            for _ in range(_SETTLE_TURNS):
                await asyncio.sleep(0)
            self._drop_cancelled()
            if not self._sleepers or not self.auto_advance:
                return
            self._now = max(self._now, self._sleepers[0][0])
            self._wake_due()
