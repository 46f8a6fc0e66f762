"""VirtualClock: time moves only once the event loop has nothing left to do, in wake-up order."""

from __future__ import annotations

import asyncio
import selectors
import socket
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from zomro_async.testing import _clock
from zomro_async.testing._clock import VirtualClock

# Comfortably past the 50 turns the clock used to wait before it moved time on.
MANY_TURNS = 300


async def test_sleepers_wake_in_order_each_at_its_own_time() -> None:
    clock = VirtualClock(start=1_000.0)
    woke: list[tuple[float, float]] = []

    async def nap(seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((seconds, clock.monotonic()))

    await asyncio.gather(*(nap(s) for s in (3.0, 1.0, 2.0, 1.5, 1.0)))
    assert woke == [(1.0, 1.0), (1.0, 1.0), (1.5, 1.5), (2.0, 2.0), (3.0, 3.0)]
    assert clock.time() == 1_003.0


async def test_a_zero_sleep_is_a_turn_of_the_loop_and_moves_nothing() -> None:
    clock = VirtualClock()
    await clock.sleep(0)
    await clock.sleep(-1)
    assert clock.monotonic() == 0.0


async def test_without_auto_advance_only_advance_moves_time() -> None:
    clock = VirtualClock(start=100.0, auto_advance=False)
    sleeper = asyncio.create_task(clock.sleep(5))
    for _ in range(MANY_TURNS):
        await asyncio.sleep(0)
    assert not sleeper.done()
    assert clock.monotonic() == 0.0
    clock.advance(4)
    await asyncio.sleep(0)
    assert not sleeper.done()
    clock.advance(1)
    await sleeper
    assert (clock.monotonic(), clock.time()) == (5.0, 105.0)
    with pytest.raises(ValueError, match="does not go back"):
        clock.advance(-1)


async def test_time_holds_while_a_chain_of_callbacks_runs() -> None:
    clock = VirtualClock()
    loop = asyncio.get_running_loop()
    seen: list[float] = []
    chain_done = loop.create_future()

    def link(left: int) -> None:
        seen.append(clock.monotonic())
        if left:
            loop.call_soon(link, left - 1)
        else:
            chain_done.set_result(None)

    sleeper = asyncio.create_task(clock.sleep(1))
    loop.call_soon(link, MANY_TURNS)
    await chain_done
    assert seen == [0.0] * (MANY_TURNS + 1)
    assert not sleeper.done()
    await sleeper
    assert clock.monotonic() == 1.0


async def test_a_task_polling_with_sleep_zero_does_not_hold_time() -> None:
    # A poll (`while not done: await asyncio.sleep(0)`) waits for time like a
    # sleeper does; if it held time, it would wait forever.
    clock = VirtualClock()
    sleepers = [asyncio.create_task(clock.sleep(s)) for s in (1, 2)]
    polls = 0
    while not all(s.done() for s in sleepers):
        await asyncio.sleep(0)
        polls += 1
    assert clock.monotonic() == 2.0
    assert polls < 50  # time moved as soon as the loop had nothing but the poll to run


async def test_a_poll_does_not_let_time_move_past_work_in_flight() -> None:
    clock = VirtualClock()
    loop = asyncio.get_running_loop()
    seen: list[float] = []

    def link(left: int) -> None:
        seen.append(clock.monotonic())
        if left:
            loop.call_soon(link, left - 1)

    sleeper = asyncio.create_task(clock.sleep(1))
    loop.call_soon(link, MANY_TURNS)
    while not sleeper.done():
        await asyncio.sleep(0)
    assert seen == [0.0] * (MANY_TURNS + 1)


async def test_time_holds_while_a_socket_has_bytes_the_loop_has_not_read() -> None:
    clock = VirtualClock()
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.setblocking(False)
        theirs.sendall(b"x" * MANY_TURNS)
        seen: list[float] = []
        drained = loop.create_future()

        def read_one_byte() -> None:  # one a turn: the fd stays ready for many turns
            ours.recv(1)
            seen.append(clock.monotonic())
            if len(seen) == MANY_TURNS:
                loop.remove_reader(ours)
                drained.set_result(None)

        loop.add_reader(ours, read_one_byte)
        sleeper = asyncio.create_task(clock.sleep(1))
        await drained
        assert set(seen) == {0.0}
        await sleeper
        assert clock.monotonic() == 1.0


def ahead_of_the_driver(loop: asyncio.AbstractEventLoop, action: Callable[[], object]) -> None:
    """Have `action` run just before the first look of a sleep started right after this.

    The sleep's task queues that look in the next turn; the callback queued here
    runs first in that turn and queues `action`, so both run in the turn after,
    past that turn's select: only the clock's own look can see what `action` did.
    """
    loop.call_soon(loop.call_soon, action)


async def test_the_clock_sees_bytes_that_arrived_since_the_loop_last_looked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One idle look only, so that nothing but the clock's own select can tell:
    # the bytes land after the loop's select of this turn, just before the driver.
    monkeypatch.setattr(_clock, "_IDLE_CHECKS", 1)
    clock = VirtualClock()
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.setblocking(False)
        heard = loop.create_future()

        def hear() -> None:
            loop.remove_reader(ours)
            heard.set_result((ours.recv(16), clock.monotonic()))

        loop.add_reader(ours, hear)
        ahead_of_the_driver(loop, lambda: theirs.send(b"ping"))
        sleeper = asyncio.create_task(clock.sleep(1))
        # The look took nothing: the loop still hears the bytes, before time moves.
        assert await heard == (b"ping", 0.0)
        await sleeper


async def test_a_timer_already_due_holds_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_clock, "_IDLE_CHECKS", 1)  # as above: only the clock's look can tell
    clock = VirtualClock()
    loop = asyncio.get_running_loop()
    fired = loop.create_future()

    def fire() -> None:
        fired.set_result(clock.monotonic())

    # Due at once, but set after this turn's select: the loop queues it only next turn.
    ahead_of_the_driver(loop, lambda: loop.call_later(0, fire))
    sleeper = asyncio.create_task(clock.sleep(1))
    assert await fired == 0.0
    await sleeper


async def test_a_poll_being_cancelled_is_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_clock, "_IDLE_CHECKS", 1)
    clock = VirtualClock()
    loop = asyncio.get_running_loop()
    cleaned_up = loop.create_future()

    async def poll() -> None:
        try:
            while True:
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            cleaned_up.set_result(clock.monotonic())
            raise

    sleeper = asyncio.create_task(clock.sleep(1))  # its driver is queued ahead of the poll
    poller = asyncio.create_task(poll())
    await asyncio.sleep(0)
    poller.cancel()  # the poll's next step delivers the cancel: it is about to run its cleanup
    assert await cleaned_up == 0.0
    await sleeper


async def test_time_holds_while_a_job_runs_in_the_default_executor() -> None:
    clock = VirtualClock()
    loop = asyncio.get_running_loop()

    def job() -> float:
        # Like getaddrinfo: the loop has nothing ready while the thread works, and
        # the job needs many turns of the loop (one per round trip) to finish.
        for _ in range(MANY_TURNS):
            turned = threading.Event()
            loop.call_soon_threadsafe(turned.set)
            turned.wait()
        return clock.monotonic()

    job_done = loop.run_in_executor(None, job)
    sleeper = asyncio.create_task(clock.sleep(1))
    assert await job_done == 0.0
    assert not sleeper.done()
    await sleeper
    assert clock.monotonic() == 1.0


async def test_time_holds_while_a_job_waits_in_the_executors_queue() -> None:
    clock = VirtualClock()
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(max_workers=1)
    loop.set_default_executor(pool)

    def first() -> None:  # keeps the one worker busy for many turns
        for _ in range(MANY_TURNS):
            turned = threading.Event()
            loop.call_soon_threadsafe(turned.set)
            turned.wait()

    try:
        first_done = loop.run_in_executor(None, first)
        second_done = loop.run_in_executor(None, clock.monotonic)  # queued behind it
        sleeper = asyncio.create_task(clock.sleep(1))
        await first_done
        assert await second_done == 0.0
        await sleeper
    finally:
        pool.shutdown(wait=True)


async def test_time_moves_once_the_default_executor_has_shut_down() -> None:
    clock = VirtualClock()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, int)
    await loop.shutdown_default_executor()  # its worker threads are gone
    await clock.sleep(2)
    assert clock.monotonic() == 2.0


async def test_an_executor_it_cannot_see_into_still_lets_time_move() -> None:
    class Pool(ThreadPoolExecutor):
        pass

    clock = VirtualClock()
    loop = asyncio.get_running_loop()
    pool = Pool(max_workers=1)
    loop.set_default_executor(pool)
    try:
        await loop.run_in_executor(None, int)
        await asyncio.gather(clock.sleep(1), clock.sleep(2))
        assert clock.monotonic() == 2.0
    finally:
        pool.shutdown(wait=True)


class OpaqueSelector(selectors.BaseSelector):
    """A selector the clock does not know (it might be edge-triggered)."""

    def __init__(self) -> None:
        self._inner = selectors.DefaultSelector()

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        return self._inner.select(timeout)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._inner.get_map()

    def close(self) -> None:
        self._inner.close()


def test_a_loop_it_cannot_see_into_falls_back_to_counting_turns() -> None:
    async def main() -> list[float]:
        clock = VirtualClock()
        loop = asyncio.get_running_loop()
        seen: list[float] = []
        woke: list[float] = []

        def link(left: int) -> None:
            seen.append(clock.monotonic())
            if left:
                loop.call_soon(link, left - 1)

        async def nap(seconds: float) -> None:
            await clock.sleep(seconds)
            woke.append(clock.monotonic())

        loop.call_soon(link, 20)  # shorter than the turns it counts: time holds
        await asyncio.gather(nap(2), nap(1))
        return seen + woke

    loop = asyncio.SelectorEventLoop(OpaqueSelector())
    try:
        assert loop.run_until_complete(main()) == [0.0] * 21 + [1.0, 2.0]
    finally:
        loop.close()


async def test_two_clocks_on_one_loop_do_not_hold_each_other_up() -> None:
    first, second = VirtualClock(), VirtualClock()
    await asyncio.gather(first.sleep(1), second.sleep(2), first.sleep(3))
    assert (first.monotonic(), second.monotonic()) == (3.0, 2.0)


async def test_a_cancelled_sleeper_neither_moves_time_nor_holds_it() -> None:
    clock = VirtualClock()
    gone = asyncio.create_task(clock.sleep(1))
    stays = asyncio.create_task(clock.sleep(3))
    also_gone = asyncio.create_task(clock.sleep(3))  # due with `stays`, behind it
    await asyncio.sleep(0)
    gone.cancel()
    also_gone.cancel()
    await stays
    assert clock.monotonic() == 3.0
    await clock.sleep(2)
    assert clock.monotonic() == 5.0


async def test_a_loop_that_never_goes_idle_fails_the_sleepers_instead_of_hanging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_clock, "_IDLE_TIMEOUT", -1.0)  # give up on the second busy look
    clock = VirtualClock()
    loop = asyncio.get_running_loop()
    sleeper = asyncio.create_task(clock.sleep(1))
    cancelled = asyncio.create_task(clock.sleep(2))
    await asyncio.sleep(0)
    cancelled.cancel()

    def again() -> None:  # a callback that always queues itself: the loop is never idle
        if not sleeper.done():
            loop.call_soon(again)

    loop.call_soon(again)
    with pytest.raises(RuntimeError, match=r"did not go idle .* callbacks ready to run"):
        await sleeper
    assert clock.monotonic() == 0.0
    await clock.sleep(1)  # a later sleep starts the driver afresh
    assert clock.monotonic() == 1.0


def test_a_clock_serves_one_loop_after_another() -> None:
    clock = VirtualClock()
    asyncio.run(clock.sleep(1))  # may leave its driver behind on the closed loop
    asyncio.run(clock.sleep(1))
    assert clock.monotonic() == 2.0


# A loopback HTTP exchange, as between the client and the emulator.

SERVER_SLEEP = 5.0
ANSWER = b"y" * (8 * 1024 * 1024)  # big enough to need many turns to cross loopback


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, VirtualClock]]:
    clock = VirtualClock()

    async def slow_echo(request: web.Request) -> web.Response:
        await request.read()
        await clock.sleep(SERVER_SLEEP)
        return web.Response(body=ANSWER)

    app = web.Application()
    app.router.add_post("/", slow_echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}/", clock
    finally:
        await runner.cleanup()


async def test_a_loopback_http_round_trip_takes_exactly_the_servers_sleep(
    server: tuple[str, VirtualClock],
) -> None:
    url, clock = server
    timed_out: list[float] = []

    async def client_deadline() -> None:  # a client-side timeout just past the answer
        await clock.sleep(SERVER_SLEEP + 0.001)
        timed_out.append(clock.monotonic())

    async def post(session: aiohttp.ClientSession) -> tuple[bytes, float]:
        began = clock.monotonic()
        async with session.post(url, data=b"x" * 65_536) as answer:
            body = await answer.read()
        return body, clock.monotonic() - began

    async with aiohttp.ClientSession() as session:
        deadline = asyncio.create_task(client_deadline())
        exchange = asyncio.create_task(post(session))
        while not exchange.done():  # a poll alongside must not let time slip either
            await asyncio.sleep(0)
        body, took = await exchange
        deadline.cancel()
        await asyncio.gather(deadline, return_exceptions=True)
    assert body == ANSWER
    assert took == SERVER_SLEEP
    assert timed_out == []


async def test_a_short_real_wait_in_flight_keeps_far_sleepers_asleep() -> None:
    # A server answering after 0.05 real seconds (the emulator's `slow` fault)
    # must not see a waiter's one-hour deadline reached meanwhile; a short
    # virtual step (a grace of half a second) may still run out.
    clock = VirtualClock()
    deadline = asyncio.ensure_future(clock.sleep(3600.0))
    grace = asyncio.ensure_future(clock.sleep(0.5))
    answered = asyncio.ensure_future(asyncio.sleep(0.05))

    await answered
    assert grace.done()
    assert clock.monotonic() == 0.5
    assert not deadline.done()

    await deadline  # nothing real in flight any more: the jump comes
    assert clock.monotonic() == 3600.0
