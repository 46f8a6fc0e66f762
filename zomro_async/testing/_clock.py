"""A virtual clock shared by the emulator and the client, so tests wait without sleeping.

With `auto_advance`, time jumps to the earliest sleeper's wake-up only once the
event loop has nothing left to do. That is read off the loop, not guessed from
a count of turns: a loopback HTTP exchange between the client and the emulator
takes as many turns as it takes (more on a loaded machine), and a jump taken
mid-exchange misjudges request timeouts and deadlines. Looked at from the
clock's driver (a callback the loop runs each turn while anyone sleeps), the
loop is idle when:

(a) `loop._ready` holds no work. Not work: other clocks' drivers, and a task
    parked in `asyncio.sleep(0)` (unless it is being cancelled): that task
    yields so that others run, and when nothing else runs it waits for time
    like a sleeper; if it held time, a poll such as `while not done: await
    asyncio.sleep(0)` would wait forever. Work: any other callback, i.e. a task
    resumed by a future, I/O callbacks, a chain of `call_soon`, timers the loop
    has moved here;
(b) no timer in `loop._scheduled` is due (the loop would queue it next turn).
    A real timer due within `_NEAR_TIMER` real seconds is a short real wait
    in flight (the emulator's `slow` fault, a client's short request
    timeout): meanwhile time moves only by steps of at most `_NEAR_TIMER`
    virtual seconds, so that a far deadline is not reached during a wait of
    a fraction of a real second, while a short grace can still run out. A
    later timer does not hold time: it stands for a timeout that guards a
    wait on the virtual clock (aiohttp's request timeout and keep-alive).
    The clocks' own drivers do not count;
(c) a zero-timeout `select()` on `loop._selector` reports no file descriptor
    ready: no bytes wait in a socket, no buffered write can go out. The stdlib
    selectors are level-triggered (epoll without EPOLLET, kqueue without
    EV_CLEAR, poll, select), so the look consumes nothing and the loop's own
    next select sees the same events; another selector is not looked at;
(d) the default executor (getaddrinfo, `asyncio.to_thread`) has no job queued
    or running: its queue is empty and each live worker thread's innermost
    frame is the pool's `_worker` loop, not a job.

Time moves after two idle looks a whole turn apart (the loop's own select in
between), for what the process cannot see at one instant and that lasts
microseconds: a segment the kernel has yet to deliver on loopback, a worker
between taking a job off the queue and starting it. Jobs of other executors
and threads are not seen; their results come back by `call_soon_threadsafe`,
i.e. through (a). While only a worker thread is busy, the driver looks every
`_THREAD_POLL` seconds instead of each turn, to leave the thread the GIL.

These are CPython internals (`_ready`, `_scheduled`, `_selector`,
`_clock_resolution`, `_default_executor`, `ThreadPoolExecutor._work_queue` and
`_threads`, `concurrent.futures.thread._worker`, `asyncio.tasks.__sleep0`), the
same in 3.11 to 3.14, and acceptable only because this is a test double. Each
is looked up defensively: a loop without them (uvloop, the Windows proactor, an
unknown selector) falls back to the old rule of moving time after
`_SETTLE_TURNS` turns; so does a default executor other than a plain
`ThreadPoolExecutor` (time moves after that many idle looks in a row).

Waiting is bounded: when the loop has not gone idle for `_IDLE_TIMEOUT` real
seconds (a callback that queues itself for ever, a thread job that never ends),
each sleeper gets a RuntimeError that says what kept the loop busy, rather than
the test hanging in silence. The fallback cannot hang: it counts turns.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import heapq
import itertools
import selectors
import sys
from concurrent.futures import thread as _thread_pool
from typing import Any

# Looks at an idle loop, a turn apart, before time moves (see the docstring).
_IDLE_CHECKS = 2
# Turns the driver lets pass when it cannot see into the loop (uvloop, proactor)
# or into its default executor: the old, tuned rule, kept only as the fallback.
_SETTLE_TURNS = 50
# Real seconds the driver waits for the loop to go idle before it gives up.
_IDLE_TIMEOUT = 60.0
# Real seconds between looks while only a worker thread is busy: spinning on
# call_soon would hold the GIL the thread needs to finish.
_THREAD_POLL = 0.0005

_READY = "callbacks ready to run"
_TIMER = "a timer due"
_NEAR = "a real timer due within a second"
# Real seconds within which a pending timer counts as work in flight (see (b)).
_NEAR_TIMER = 1.0
_IO = "a file descriptor ready for I/O"
_THREAD = "a job in the default executor"

# The stdlib selectors, all level-triggered: a look with select(0) takes nothing.
_LEVEL_TRIGGERED: tuple[type[selectors.BaseSelector], ...] = tuple(
    cls
    for name in (
        "EpollSelector",
        "KqueueSelector",
        "DevpollSelector",
        "PollSelector",
        "SelectSelector",
    )
    if isinstance(cls := getattr(selectors, name, None), type)
)
_POOL: Any = getattr(_thread_pool, "ThreadPoolExecutor", None)
_WORKER_CODE: Any = getattr(getattr(_thread_pool, "_worker", None), "__code__", None)
# What `await asyncio.sleep(0)` parks a task in: a bare yield.
_SLEEP0_CODE: Any = getattr(getattr(asyncio.tasks, "__sleep0", None), "__code__", None)
# The driver's callbacks need no context; one shared saves a copy per call_soon.
_NO_CONTEXT = contextvars.Context()


class _LoopView:
    """What the driver reads of a CPython selector loop to tell if it is idle."""

    __slots__ = ("_loop", "_ready", "_resolution", "_selector")

    def __init__(self, loop: Any, ready: Any, selector: Any, resolution: float) -> None:
        self._loop = loop
        self._ready = ready
        self._selector = selector
        self._resolution = resolution

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> _LoopView | None:
        """The view of `loop`, or None when it lacks the internals relied on."""
        ready = getattr(loop, "_ready", None)
        selector = getattr(loop, "_selector", None)
        resolution = getattr(loop, "_clock_resolution", None)
        if (
            not isinstance(ready, collections.deque)
            or not isinstance(getattr(loop, "_scheduled", None), list)
            or not isinstance(selector, _LEVEL_TRIGGERED)
            or not isinstance(resolution, float)
            or not hasattr(loop, "_default_executor")
        ):
            return None
        return cls(loop, ready, selector, resolution)

    def busy(self) -> str | None:
        """What the loop has to do now, or None if it is idle."""
        ready = self._ready
        # The head alone settles the common, busy case. Other threads append
        # (call_soon_threadsafe), so the rest is read from a copy made in one C call.
        if ready and (_is_work(ready[0]) or any(map(_is_work, tuple(ready)))):
            return _READY
        loop = self._loop
        # Read each time: the loop replaces the list when it purges cancelled timers.
        scheduled = loop._scheduled
        near = False
        if scheduled:
            now = loop.time()
            if scheduled[0]._when < now + self._resolution:
                return _TIMER
            soon = now + _NEAR_TIMER
            near = scheduled[0]._when < soon and any(
                h._when < soon and not h._cancelled and not _is_driver(h) for h in scheduled
            )
        if self._selector.select(0):
            return _IO
        executor = loop._default_executor
        if executor is not None and self.sees(executor):
            # No live worker, no job can run: the pool is shut down (its queue
            # keeps the None that told the workers to stop) or not yet used.
            workers = [t for t in tuple(executor._threads) if t.is_alive()]
            if workers:
                if executor._work_queue.qsize():
                    return _THREAD
                frames = sys._current_frames()
                for worker in workers:
                    frame = frames.get(worker.ident)
                    if frame is None or frame.f_code is not _WORKER_CODE:
                        return _THREAD
        return _NEAR if near else None

    def checks_needed(self) -> int:
        """Idle looks in a row that let time move: more if the executor is opaque."""
        executor = self._loop._default_executor
        if executor is None or self.sees(executor):
            return _IDLE_CHECKS
        return _SETTLE_TURNS

    @staticmethod
    def sees(executor: object) -> bool:
        return _WORKER_CODE is not None and type(executor) is _POOL


def _is_driver(handle: Any) -> bool:
    return getattr(handle._callback, "__func__", None) is VirtualClock._tick


class VirtualClock:
    """Time that moves only when told to (`advance`) or, with `auto_advance`,
    once the event loop has nothing else to do (no task or callback ready, no
    socket ready, no default-executor job; a task polling with
    `asyncio.sleep(0)` does not count): then it jumps to the earliest wake-up.
    Same API as the client's clock: `monotonic()`, `time()`, `sleep()`.
    """

    def __init__(self, *, start: float = 1_767_225_600.0, auto_advance: bool = True) -> None:
        self._epoch = start
        self._now = 0.0
        self.auto_advance = auto_advance
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        # The driver: a callback the loop runs each turn while someone sleeps.
        self._driver: asyncio.Handle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._view: _LoopView | None = None
        self._idle_looks = 0
        self._busy_since: float | None = None

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
        # A driver left on another loop (a clock reused after its loop closed) is dead.
        if self.auto_advance and (self._driver is None or self._loop is not loop):
            self._start(loop)
        await future

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is not loop:
            self._loop = loop
            self._view = _LoopView.of(loop)
        self._idle_looks = 0
        self._busy_since = None
        self._driver = loop.call_soon(self._tick, context=_NO_CONTEXT)

    def _tick(self) -> None:
        loop = self._loop
        assert loop is not None
        self._driver = None
        self._drop_cancelled()
        if not self._sleepers or not self.auto_advance:
            return
        view = self._view
        busy = None if view is None else view.busy()
        if busy is _NEAR and self._sleepers[0][0] - self._now <= _NEAR_TIMER:
            busy = None  # a short step does not outrun the real wait in flight
        if busy is None:
            self._idle_looks += 1
            if self._idle_looks >= (_SETTLE_TURNS if view is None else view.checks_needed()):
                self._idle_looks = 0
                self._busy_since = None
                self._now = max(self._now, self._sleepers[0][0])
                self._wake_due()
            self._driver = loop.call_soon(self._tick, context=_NO_CONTEXT)
            return
        self._idle_looks = 0
        now = loop.time()
        if self._busy_since is None:
            self._busy_since = now
        elif now - self._busy_since > _IDLE_TIMEOUT:
            self._give_up(busy)
            return
        if busy is _THREAD or busy is _NEAR:
            # Nothing to do but wait for the thread or the timer: do not spin.
            self._driver = loop.call_later(_THREAD_POLL, self._tick, context=_NO_CONTEXT)
        else:
            self._driver = loop.call_soon(self._tick, context=_NO_CONTEXT)

    def _give_up(self, busy: str) -> None:
        sleepers, self._sleepers = self._sleepers, []
        self._busy_since = None
        for _, _, future in sleepers:
            if not future.done():
                future.set_exception(
                    RuntimeError(
                        f"VirtualClock: the event loop did not go idle in {_IDLE_TIMEOUT:g} s "
                        f"of real time (last seen: {busy}), so virtual time could not move: "
                        "it moves only once every task waits (a callback that queues itself "
                        "for ever? a thread job that never ends?)"
                    )
                )

    def _wake_due(self) -> None:
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    def _drop_cancelled(self) -> None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)


_TICK = VirtualClock._tick


def _is_work(handle: Any) -> bool:
    """Whether a handle in `loop._ready` is work: not a clock's driver, not the
    next step of a task that is polling. (A cancelled one counts: the loop drops
    it this turn, so it holds time one look at most.)"""
    callback = handle._callback
    if getattr(callback, "__func__", None) is _TICK:
        return False
    task = getattr(callback, "__self__", None)
    return not (isinstance(task, asyncio.Task) and _polls(task))


def _polls(task: asyncio.Task[Any]) -> bool:
    """Whether `task` is parked in `asyncio.sleep(0)` (and not being cancelled)."""
    if _SLEEP0_CODE is None or getattr(task, "_must_cancel", True):
        return False
    awaited: Any = task.get_coro()
    while True:
        inner = getattr(awaited, "cr_await", None)
        if inner is None:
            inner = getattr(awaited, "gi_yieldfrom", None)
        if inner is None:
            return getattr(awaited, "gi_code", None) is _SLEEP0_CODE
        awaited = inner
