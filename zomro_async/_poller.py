"""The shared poller: one list call per instance per tick serves every waiter on it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import attrs

from ._clock import Clock
from ._exceptions import WaitTimeout, ZomroError
from ._models import Snapshot

T = TypeVar("T")
logger = logging.getLogger("zomro_async")

ListCall = Callable[[int], Awaitable[list[Snapshot]]]
# Judges one observation of the awaited snapshot (None: not listed) given the
# last one seen: returns (True, value) when the wait is over, (False, None) to
# go on, or raises to fail the wait.
Judge = Callable[[Snapshot | None, Snapshot | None], tuple[bool, T]]
OnUpdate = Callable[[Snapshot], None]


@attrs.frozen(kw_only=True)
class PollPolicy:
    """How waits poll: at once, then `initial` seconds growing by `multiplier` up
    to `maximum`, each delay stretched by up to `jitter` (a fraction) at random.
    """

    initial: float = attrs.field(default=2.0, validator=attrs.validators.ge(0))
    multiplier: float = attrs.field(default=1.5, validator=attrs.validators.ge(1))
    maximum: float = attrs.field(default=30.0, validator=attrs.validators.ge(0))
    jitter: float = attrs.field(default=0.1, validator=attrs.validators.ge(0))

    def delay(self, step: int) -> float:
        """The pause before poll number `step + 2` (step 0: the pause after the first).

        Args:
            step: how many pauses came before this one.

        Returns:
            Seconds, jittered.
        """
        base = min(self.maximum, self.initial * self.multiplier ** min(step, 64))
        return base * (1 + random.uniform(0, self.jitter))


class _Waiter(Generic[T]):
    def __init__(
        self,
        snapshot_id: int,
        deadline: float,
        judge: Judge[T],
        goal: str,
        on_update: OnUpdate | None,
        future: asyncio.Future[T],
    ) -> None:
        self.snapshot_id = snapshot_id
        self.deadline = deadline
        self.judge = judge
        self.goal = goal
        self.on_update = on_update
        self.future = future
        self.last: Snapshot | None = None

    def offer(self, snapshots: list[Snapshot], now: float, fresh: bool) -> bool:
        """Judge one listing; True when the waiter needs a fresh listing at once.

        `fresh` is False for a listing that started before this waiter joined: it
        can prove presence, never absence.
        """
        if self.future.done():
            return False
        current = next((s for s in snapshots if s.id == self.snapshot_id), None)
        if current is None and not fresh:
            return True
        try:
            done, value = self.judge(current, self.last)
        except Exception as exc:
            self.future.set_exception(exc)
            return False
        if current is not None:
            self.last = current
        if done:
            self.future.set_result(value)
        elif now >= self.deadline:
            self.future.set_exception(self.timeout())
        elif current is not None and self.on_update is not None:
            try:
                self.on_update(current)
            except Exception:
                # The caller's hook must not break the loop that serves every waiter.
                logger.exception("on_update callback failed for snapshot %d", self.snapshot_id)
        return False

    def timeout(self) -> WaitTimeout:
        last = self.last
        state = (last.status_text or last.status.value) if last else "never seen"
        return WaitTimeout(
            f"snapshot {self.snapshot_id} was not {self.goal} by the deadline "
            f"(last status {state!r})",
            last=last,
        )


class _Watch:
    """The polling schedule of one instance and the waiters it serves."""

    def __init__(self) -> None:
        self.waiters: list[_Waiter[object]] = []
        self.task: asyncio.Task[None] | None = None
        self.round: asyncio.Future[list[Snapshot]] | None = None
        self.wake: asyncio.Future[None] | None = None
        self.step = 0


class Poller:
    """Every wait on a client joins this poller.

    Per instance, one loop lists the instance's snapshots and hands the listing
    to every waiter on it, whichever task awaits. A new waiter is checked at
    once (or rides on a listing already in flight), then follows the instance's
    backoff schedule. When the last waiter leaves, the loop ends.
    """

    def __init__(self, list_call: ListCall, *, clock: Clock, poll: PollPolicy) -> None:
        self._list = list_call
        self._clock = clock
        self._poll = poll
        self._watches: dict[int, _Watch] = {}
        self.list_calls = 0

    @property
    def watched_instances(self) -> int:
        return len(self._watches)

    async def wait(
        self,
        instance_id: int,
        snapshot_id: int,
        *,
        timeout: float,
        judge: Judge[T],
        goal: str,
        on_update: OnUpdate | None = None,
    ) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        waiter = _Waiter(
            snapshot_id, self._clock.monotonic() + timeout, judge, goal, on_update, future
        )
        watch = self._watches.get(instance_id)
        if watch is None:
            watch = self._watches[instance_id] = _Watch()
        watch.waiters.append(waiter)  # type: ignore[arg-type]
        if watch.round is not None:
            watch.round.add_done_callback(lambda r: self._ride(instance_id, watch, waiter, r))
        elif watch.wake is not None and not watch.wake.done():
            watch.wake.set_result(None)  # check the newcomer now, not at the next tick
        if watch.task is None:
            watch.task = loop.create_task(self._run(instance_id, watch))
        try:
            return await future
        finally:
            self._leave(instance_id, watch, waiter)

    def _ride(
        self,
        instance_id: int,
        watch: _Watch,
        waiter: _Waiter[T],
        round_: asyncio.Future[list[Snapshot]],
    ) -> None:
        if round_.cancelled() or waiter.future.done():
            return
        error = round_.exception()
        if error is not None:
            waiter.future.set_exception(error)
        elif (
            waiter.offer(round_.result(), self._clock.monotonic(), fresh=False)
            and watch.wake is not None
            and not watch.wake.done()
        ):
            watch.wake.set_result(None)  # absent from an older listing: look again now

    def _leave(self, instance_id: int, watch: _Watch, waiter: _Waiter[T]) -> None:
        with contextlib.suppress(ValueError):
            watch.waiters.remove(waiter)  # type: ignore[arg-type]
        if not watch.waiters:
            if watch.task is not None and watch.task is not asyncio.current_task():
                watch.task.cancel()
            if self._watches.get(instance_id) is watch:
                del self._watches[instance_id]

    async def close(self) -> None:
        """Stop every loop and wait for it to end; waiters still waiting fail
        with a `ZomroError`.
        """
        loops = []
        for watch in list(self._watches.values()):
            if watch.task is not None:
                watch.task.cancel()
                loops.append(watch.task)
            for waiter in watch.waiters:
                if not waiter.future.done():
                    waiter.future.set_exception(ZomroError("the client was closed"))
        self._watches.clear()
        await asyncio.gather(*loops, return_exceptions=True)

    async def _run(self, instance_id: int, watch: _Watch) -> None:
        loop = asyncio.get_running_loop()
        while True:
            served = [w for w in watch.waiters if not w.future.done()]
            if not served:
                break
            watch.round = loop.create_future()
            try:
                self.list_calls += 1
                snapshots = await self._list(instance_id)
            except asyncio.CancelledError:
                watch.round.cancel()
                raise
            except BaseException as exc:
                watch.round.set_exception(exc)
                watch.round.exception()  # riders read it; nobody else must
                watch.round = None
                for waiter in served:
                    if not waiter.future.done():
                        waiter.future.set_exception(exc)
                continue
            round_, watch.round = watch.round, None
            round_.set_result(snapshots)
            now = self._clock.monotonic()
            recheck = False
            for waiter in served:
                recheck |= waiter.offer(snapshots, now, fresh=True)
            pending = [w for w in watch.waiters if not w.future.done()]
            if not pending:
                break
            delay = 0.0 if recheck else self._poll.delay(watch.step)
            watch.step += 1
            earliest = min(w.deadline for w in pending)
            await self._pause(watch, max(0.0, min(delay, earliest - now)))
        watch.task = None

    async def _pause(self, watch: _Watch, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        watch.wake = loop.create_future()
        sleeper = loop.create_task(self._clock.sleep(seconds))
        try:
            await asyncio.wait({sleeper, watch.wake}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watch.wake = None
            if not sleeper.done():
                sleeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sleeper
