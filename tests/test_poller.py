"""The shared poller on a virtual clock: call counts, join, ride, leave, cancel, errors."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest

import zomro_async as z
from zomro_async._core._poller import (
    Judge,
    Listing,
    OnUpdate,
    Poller,
    PollPolicy,
    _Watch,
    judge_active,
    judge_deleted,
)
from zomro_async.testing import VirtualClock, pending_sdk_tasks

POLL = PollPolicy(initial=2.0, multiplier=1.5, maximum=30.0, jitter=0.0)


class FakeInstances:
    """Snapshots that turn Active at a set time; counts list calls per instance."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.ready_at: dict[tuple[int, int], float] = {}
        self.calls: Counter[int] = Counter()
        self.gate: asyncio.Event | None = None

    def add(self, instance_id: int, snapshot_id: int, ready_at: float) -> None:
        self.ready_at[(instance_id, snapshot_id)] = ready_at

    async def list(self, instance_id: int) -> list[z.Snapshot]:
        self.calls[instance_id] += 1
        now = self.clock.monotonic()
        # The listing is what the server saw when the call arrived, however late it answers.
        listing = [
            z.Snapshot(
                id=sid,
                instance_id=iid,
                name="n",
                status=z.SnapshotStatus.ACTIVE if now >= ready else z.SnapshotStatus.SAVING,
            )
            for (iid, sid), ready in self.ready_at.items()
            if iid == instance_id
        ]
        if self.gate is not None:
            await self.gate.wait()
        return listing


class Snapshots:
    """The poller as the snapshot resource uses it: listings of `fake`, by instance."""

    def __init__(self, fake: FakeInstances, clock: VirtualClock) -> None:
        self.fake = fake
        self.poller = Poller(clock=clock, poll=POLL)

    def listing(self, instance_id: int) -> Listing[z.Snapshot]:
        return Listing("instances.snapshots", instance_id, lambda: self.fake.list(instance_id))

    async def wait(
        self,
        instance_id: int,
        snapshot_id: int,
        *,
        timeout: float,
        judge: Judge[z.Snapshot, object] | None = None,
        goal: str = "Active",
        on_update: OnUpdate[z.Snapshot] | None = None,
    ):  # type: ignore[no-untyped-def]
        # Awaited by a coroutine, as a resource's wait_active() awaits it.
        listing = self.listing(instance_id)
        return await self.poller.wait(
            listing,
            snapshot_id,
            timeout=timeout,
            judge=judge or judge_active,
            goal=goal,
            on_update=on_update,
        )

    async def close(self) -> None:
        await self.poller.close()

    @property
    def watched(self) -> int:
        return self.poller.watched


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def fake(clock: VirtualClock) -> FakeInstances:
    return FakeInstances(clock)


@pytest.fixture
def poller(fake: FakeInstances, clock: VirtualClock) -> Snapshots:
    return Snapshots(fake, clock)


def active(poller: Snapshots, instance_id: int, snapshot_id: int, timeout: float = 3600.0):  # type: ignore[no-untyped-def]
    return poller.wait(instance_id, snapshot_id, timeout=timeout)


async def test_ten_waiters_on_one_instance_cost_what_one_costs(
    fake: FakeInstances, poller: Snapshots, clock: VirtualClock
) -> None:
    fake.add(1, 100, ready_at=20.0)
    await active(poller, 1, 100)
    alone = fake.calls[1]

    clock2 = VirtualClock()
    fake2 = FakeInstances(clock2)
    poller2 = Snapshots(fake2, clock2)
    for sid in range(200, 210):
        fake2.add(1, sid, ready_at=20.0)
    results = await asyncio.gather(*(active(poller2, 1, sid) for sid in range(200, 210)))

    assert {r.status for r in results} == {z.SnapshotStatus.ACTIVE}
    assert fake2.calls[1] == alone
    assert alone == 6  # t = 0, 2, 5, 9.5, 16.25, 26.375


async def test_instances_are_polled_independently(fake: FakeInstances, poller: Snapshots) -> None:
    for iid in (1, 2, 3):
        for sid in range(3):
            fake.add(iid, iid * 10 + sid, ready_at=20.0)
    await asyncio.gather(
        *(active(poller, iid, iid * 10 + sid) for iid in (1, 2, 3) for sid in range(3))
    )
    assert fake.calls == Counter({1: 6, 2: 6, 3: 6})


async def test_a_newcomer_is_checked_at_once_then_joins_the_schedule(
    fake: FakeInstances, poller: Snapshots, clock: VirtualClock
) -> None:
    fake.add(1, 100, ready_at=1000.0)
    fake.add(1, 101, ready_at=0.0)
    first = asyncio.create_task(active(poller, 1, 100))
    await clock.sleep(10.0)  # first polled at 0, 2, 5, 9.5
    assert fake.calls[1] == 4
    late = await active(poller, 1, 101)  # checked now, not at the next tick (16.25)
    assert late.id == 101
    assert clock.monotonic() == 10.0
    assert fake.calls[1] == 5
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_a_newcomer_rides_a_listing_already_in_flight(
    fake: FakeInstances, poller: Snapshots
) -> None:
    fake.add(1, 100, ready_at=0.0)
    fake.add(1, 101, ready_at=0.0)
    fake.gate = asyncio.Event()
    first = asyncio.create_task(active(poller, 1, 100))
    while fake.calls[1] == 0:
        await asyncio.sleep(0)
    second = asyncio.create_task(active(poller, 1, 101))
    await asyncio.sleep(0)
    fake.gate.set()
    assert (await first).id == 100
    assert (await second).id == 101
    assert fake.calls[1] == 1


async def test_a_cancelled_waiter_leaves_without_disturbing_the_others(
    fake: FakeInstances, poller: Snapshots, clock: VirtualClock
) -> None:
    fake.add(1, 100, ready_at=20.0)
    fake.add(1, 101, ready_at=20.0)
    leaving = asyncio.create_task(active(poller, 1, 100))
    staying = asyncio.create_task(active(poller, 1, 101))
    await clock.sleep(3.0)
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert (await staying).status is z.SnapshotStatus.ACTIVE
    assert fake.calls[1] == 6


async def test_when_nobody_waits_nothing_polls(
    fake: FakeInstances, poller: Snapshots, clock: VirtualClock
) -> None:
    fake.add(1, 100, ready_at=1000.0)
    task = asyncio.create_task(active(poller, 1, 100))
    await clock.sleep(6.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    calls = fake.calls[1]
    await clock.sleep(600.0)
    assert fake.calls[1] == calls
    assert poller.watched == 0


async def test_a_failed_listing_fails_that_instances_waiters_only(
    fake: FakeInstances, poller: Snapshots, clock: VirtualClock
) -> None:
    fake.add(1, 100, ready_at=50.0)
    fake.add(2, 200, ready_at=5.0)
    doomed = asyncio.create_task(active(poller, 1, 100))
    fine = asyncio.create_task(active(poller, 2, 200))
    await clock.sleep(1.0)

    original = fake.list

    async def broken(instance_id: int) -> list[z.Snapshot]:
        if instance_id == 1:
            raise z.NotFoundError("gone", type="missed", object="elid")
        return await original(instance_id)

    fake.list = broken  # type: ignore[method-assign]
    with pytest.raises(z.NotFoundError):
        await doomed
    assert (await fine).id == 200


async def test_each_waiter_keeps_its_own_deadline_with_a_final_check(
    fake: FakeInstances, poller: Snapshots, clock: VirtualClock
) -> None:
    fake.add(1, 100, ready_at=1000.0)
    fake.add(1, 101, ready_at=1000.0)
    short = asyncio.create_task(active(poller, 1, 100, timeout=3.0))
    long = asyncio.create_task(active(poller, 1, 101, timeout=12.0))
    with pytest.raises(z.WaitTimeout) as caught:
        await short
    assert clock.monotonic() == 3.0
    assert caught.value.last is not None
    assert caught.value.last.status is z.SnapshotStatus.SAVING
    with pytest.raises(z.WaitTimeout):
        await long
    assert clock.monotonic() == 12.0


async def test_wait_deleted_through_the_poller(
    fake: FakeInstances, poller: Snapshots, clock: VirtualClock
) -> None:
    fake.add(1, 100, ready_at=0.0)
    waiting = asyncio.create_task(
        poller.wait(1, 100, timeout=60.0, judge=judge_deleted, goal="deleted")
    )
    await clock.sleep(4.0)
    assert not waiting.done()
    del fake.ready_at[(1, 100)]
    assert await waiting is None


async def test_close_fails_every_waiter_with_a_zomro_error(
    fake: FakeInstances, poller: Snapshots, clock: VirtualClock
) -> None:
    fake.add(1, 100, ready_at=1000.0)
    task = asyncio.create_task(active(poller, 1, 100))
    await clock.sleep(1.0)
    await poller.close()
    with pytest.raises(z.ZomroError, match="closed"):
        await task
    assert poller.watched == 0


async def test_absence_in_a_listing_older_than_the_waiter_is_not_proof(
    fake: FakeInstances, poller: Snapshots
) -> None:
    # A listing that started before the snapshot existed must not fail its waiter.
    fake.add(1, 100, ready_at=0.0)
    fake.gate = asyncio.Event()
    first = asyncio.create_task(active(poller, 1, 100))
    while fake.calls[1] == 0:
        await asyncio.sleep(0)
    fake.add(1, 101, ready_at=0.0)  # made after the round in flight listed the instance
    second = asyncio.create_task(active(poller, 1, 101))
    await asyncio.sleep(0)
    fake.gate.set()
    assert (await first).id == 100
    assert (await second).id == 101
    assert fake.calls[1] == 2  # the newcomer asked for a fresh listing at once


async def test_a_broken_update_hook_breaks_nobody(
    fake: FakeInstances, poller: Snapshots, caplog: pytest.LogCaptureFixture
) -> None:
    fake.add(1, 100, ready_at=10.0)
    fake.add(1, 101, ready_at=10.0)

    def broken(snapshot: z.Snapshot) -> None:
        raise RuntimeError("hook bug")

    hooked = poller.wait(1, 100, timeout=60.0, on_update=broken)
    results = await asyncio.gather(hooked, active(poller, 1, 101))
    assert [r.id for r in results] == [100, 101]
    assert "on_update callback failed" in caplog.text


async def test_each_waiter_gets_its_own_exception_object(
    fake: FakeInstances, poller: Snapshots
) -> None:
    fake.add(1, 100, ready_at=50.0)
    fake.add(1, 101, ready_at=50.0)

    async def gone(instance_id: int) -> list[z.Snapshot]:
        raise z.NotFoundError("no such instance", type="missed", object="elid")

    fake.list = gone  # type: ignore[method-assign]
    results = await asyncio.gather(
        active(poller, 1, 100), active(poller, 1, 101), return_exceptions=True
    )
    assert all(isinstance(r, z.NotFoundError) for r in results)
    assert results[0] is not results[1]


def test_the_poller_never_keeps_a_keyboard_interrupt() -> None:
    clock = VirtualClock()
    fake = FakeInstances(clock)
    fake.add(1, 100, ready_at=50.0)

    async def interrupted(instance_id: int) -> list[z.Snapshot]:
        raise KeyboardInterrupt

    fake.list = interrupted  # type: ignore[method-assign]

    async def main() -> None:
        await active(Snapshots(fake, clock), 1, 100)

    with pytest.raises(KeyboardInterrupt):
        asyncio.run(main())  # out of the loop, once, not swallowed into a wait


async def test_aclose_awaits_the_loops_it_cancelled(
    fake: FakeInstances, poller: Snapshots, clock: VirtualClock
) -> None:
    fake.add(1, 100, ready_at=50.0)
    waiting = asyncio.create_task(active(poller, 1, 100))
    await clock.sleep(1.0)
    waiting.cancel()  # the last waiter leaves: its loop is cancelled, not awaited
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    await poller.close()
    assert pending_sdk_tasks() == []


async def test_a_zero_final_lead_keeps_deadlines_hard(
    fake: FakeInstances, clock: VirtualClock
) -> None:
    poller = Snapshots(fake, clock)
    poller.poller = Poller(clock=clock, poll=z.PollPolicy(final_lead=0.0))
    fake.add(1, 100, ready_at=1000.0)
    fake.gate = asyncio.Event()  # the listing never comes back
    with pytest.raises(z.WaitTimeout):
        await active(poller, 1, 100, timeout=5.0)
    assert clock.monotonic() == 5.0
    fake.gate.set()


# -- turns: no more listings in flight than the client sends at once ---------------


class InFlight(FakeInstances):
    """Listings held until released; counts how many are in flight at once."""

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__(clock)
        self.now = 0
        self.most = 0
        self.started: list[int] = []

    async def list(self, instance_id: int) -> list[z.Snapshot]:
        self.now += 1
        self.most = max(self.most, self.now)
        self.started.append(instance_id)
        try:
            return await super().list(instance_id)
        finally:
            self.now -= 1


def capped(fake: FakeInstances, clock: VirtualClock, rounds: int) -> Snapshots:
    snapshots = Snapshots(fake, clock)
    snapshots.poller = Poller(clock=clock, poll=POLL, max_rounds=rounds)
    return snapshots


async def test_listings_beyond_the_cap_wait_their_turn_in_order(clock: VirtualClock) -> None:
    fake = InFlight(clock)
    for vm in range(1, 6):
        fake.add(vm, 100 + vm, ready_at=0.0)
    fake.gate = asyncio.Event()
    poller = capped(fake, clock, rounds=2)
    waits = [asyncio.create_task(active(poller, vm, 100 + vm)) for vm in range(1, 6)]
    await clock.sleep(1.0)
    assert fake.started == [1, 2]  # the others hold a place in line, not a listing
    fake.gate.set()
    done = await asyncio.gather(*waits)
    assert [s.id for s in done] == [101, 102, 103, 104, 105]
    assert fake.started == [1, 2, 3, 4, 5]
    assert fake.most == 2


async def test_a_wait_in_line_still_fails_at_its_deadline(clock: VirtualClock) -> None:
    fake = InFlight(clock)
    fake.add(1, 101, ready_at=1000.0)
    fake.add(2, 102, ready_at=1000.0)
    fake.gate = asyncio.Event()  # the first listing never comes back
    poller = capped(fake, clock, rounds=1)
    first = asyncio.create_task(active(poller, 1, 101, timeout=600.0))
    await clock.sleep(0.5)
    with pytest.raises(z.WaitTimeout):
        await active(poller, 2, 102, timeout=5.0)  # never had its turn
    assert clock.monotonic() == pytest.approx(5.5)
    assert fake.started == [1]
    first.cancel()
    fake.gate.set()
    await asyncio.gather(first, return_exceptions=True)


async def test_a_wait_that_leaves_the_line_passes_its_turn_on(clock: VirtualClock) -> None:
    fake = InFlight(clock)
    for vm in (1, 2, 3):
        fake.add(vm, 100 + vm, ready_at=0.0)
    fake.gate = asyncio.Event()
    poller = capped(fake, clock, rounds=1)
    first = asyncio.create_task(active(poller, 1, 101))
    second = asyncio.create_task(active(poller, 2, 102))
    third = asyncio.create_task(active(poller, 3, 103))
    await clock.sleep(1.0)
    second.cancel()  # its watch leaves the line before its turn
    await asyncio.gather(second, return_exceptions=True)
    fake.gate.set()
    assert (await first).id == 101
    assert (await third).id == 103
    assert fake.started == [1, 3]
    assert poller.watched == 0


# -- the loop's edges: nothing left hanging, no stale wake, the cap held ------------


async def ended_before(clock: VirtualClock, seconds: float, wait: asyncio.Future[Any]) -> None:
    """Fail, rather than hang, when `wait` is still pending `seconds` later on `clock`."""
    guard = asyncio.ensure_future(clock.sleep(seconds))
    # A wait is also a coroutine, which asyncio.wait() refuses: watch its end.
    ended = asyncio.Event()
    wait.add_done_callback(lambda _: ended.set())
    watcher = asyncio.ensure_future(ended.wait())
    await asyncio.wait({watcher, guard}, return_when=asyncio.FIRST_COMPLETED)
    guard.cancel()
    watcher.cancel()
    assert wait.done(), f"the wait still hangs {seconds} s on"


async def test_a_fetch_that_fails_before_its_first_await_fails_the_wait(
    clock: VirtualClock,
) -> None:
    def broken() -> Coroutine[Any, Any, list[z.Snapshot]]:
        raise ZeroDivisionError("the fetch could not even start")

    poller = Poller(clock=clock, poll=POLL)
    wait = poller.wait(
        Listing("instances.snapshots", 1, broken), 100, timeout=60.0, judge=judge_active, goal="x"
    )
    await ended_before(clock, 600.0, wait)
    with pytest.raises(ZeroDivisionError):
        await wait  # the listing's outcome, as any failed listing's
    assert poller.watched == 0


async def test_waits_a_loop_leaves_behind_are_failed_not_left_hanging(
    fake: FakeInstances, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.add(1, 100, ready_at=50.0)
    poller = Snapshots(fake, clock)

    def bug(*_: object) -> bool:
        raise RuntimeError("a bug in the loop")

    monkeypatch.setattr(poller.poller, "_judge_round", bug)
    wait = asyncio.ensure_future(active(poller, 1, 100))
    await ended_before(clock, 600.0, wait)
    with pytest.raises(z.ZomroError, match="polling of this wait stopped"):
        await wait
    assert poller.watched == 0


async def test_a_callback_queued_as_a_pause_ends_does_not_end_the_next(
    clock: VirtualClock,
) -> None:
    poller = Poller(clock=clock, poll=POLL)
    watch = _Watch(Listing("instances.snapshots", 1, FakeInstances(clock).list))
    round_: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    slept: list[float] = []

    async def as_the_loop_pauses() -> None:
        await poller._pause(watch, None, round_)  # the pause during a listing
        started = clock.monotonic()
        await poller._pause(watch, 10.0)  # the pause after it
        slept.append(clock.monotonic() - started)

    pausing = asyncio.create_task(as_the_loop_pauses())
    await asyncio.sleep(0)
    watch.wake_up()  # a newcomer ends the first pause...
    round_.set_result(None)  # ...and the listing ends in the same turn
    await pausing
    assert slept == [10.0]


class WindingDown(InFlight):
    """A listing cancelled takes a second to wind down, as a request does."""

    async def list(self, instance_id: int) -> list[z.Snapshot]:
        try:
            return await super().list(instance_id)
        except asyncio.CancelledError:
            self.now += 1  # still in flight while it winds down
            try:
                await self.clock.sleep(1.0)
            finally:
                self.now -= 1
            raise


async def test_a_listing_cut_short_keeps_its_turn_until_it_has_ended(
    clock: VirtualClock,
) -> None:
    fake = WindingDown(clock)
    fake.add(1, 101, ready_at=1000.0)
    fake.add(2, 102, ready_at=0.0)
    fake.gate = asyncio.Event()
    poller = capped(fake, clock, rounds=1)
    first = asyncio.create_task(active(poller, 1, 101))
    await clock.sleep(1.0)
    second = asyncio.create_task(active(poller, 2, 102))
    await clock.sleep(1.0)
    first.cancel()  # its listing is cancelled, and winds down...
    await asyncio.gather(first, return_exceptions=True)
    fake.gate.set()
    assert (await second).id == 102
    assert fake.most == 1  # ...before the next listing starts


@contextlib.contextmanager
def left_on_a_stopped_loop(
    fake: FakeInstances, clock: VirtualClock, poller: Snapshots, vm: int, snapshot: int
) -> Iterator[None]:
    """A wait on `vm` whose listing has not come back when its loop stops running
    (its watch, listing and turn held); inside, another loop uses `poller`. The
    first loop then ends its wait cleanly."""
    gate: list[asyncio.Event] = []
    left: list[asyncio.Future[Any]] = []

    async def first_loop() -> None:
        gate.append(asyncio.Event())
        fake.gate = gate[0]
        left.append(asyncio.ensure_future(active(poller, vm, snapshot)))
        await clock.sleep(1.0)

    old = asyncio.new_event_loop()
    try:
        old.run_until_complete(first_loop())
        fake.gate = None
        yield
    finally:
        gate[0].set()
        left[0].cancel()
        old.run_until_complete(asyncio.gather(*left, return_exceptions=True))
        old.run_until_complete(asyncio.sleep(0))
        old.close()


def test_turns_held_on_a_loop_no_longer_running_do_not_stop_the_next_loop() -> None:
    clock = VirtualClock()
    fake = InFlight(clock)
    fake.add(1, 101, ready_at=1000.0)
    fake.add(2, 102, ready_at=0.0)
    poller = capped(fake, clock, rounds=1)

    async def second_loop() -> z.Snapshot:
        return await active(poller, 2, 102, timeout=60.0)

    with left_on_a_stopped_loop(fake, clock, poller, 1, 101):
        assert asyncio.run(second_loop()).id == 102


def test_a_watch_left_on_a_loop_no_longer_running_is_not_joined() -> None:
    clock = VirtualClock()
    fake = InFlight(clock)
    fake.add(1, 101, ready_at=0.0)
    poller = Snapshots(fake, clock)

    async def second_loop() -> z.Snapshot:
        wait = asyncio.ensure_future(active(poller, 1, 101, timeout=60.0))
        await ended_before(clock, 600.0, wait)
        return await wait

    with left_on_a_stopped_loop(fake, clock, poller, 1, 101):
        assert asyncio.run(second_loop()).id == 101  # the same listing, a new watch


# -- the wait itself: a future that is also a coroutine --------------------------------


def one_wait(
    clock: VirtualClock, *, ready_at: float, timeout: float
) -> tuple[FakeInstances, Snapshots, Any]:
    """A wait for snapshot 7 of instance 1, Active at `ready_at`."""
    fake = FakeInstances(clock)
    snapshots = Snapshots(fake, clock)
    fake.add(1, 7, ready_at=ready_at)
    wait = snapshots.poller.wait(
        snapshots.listing(1), 7, timeout=timeout, judge=judge_active, goal="Active"
    )
    return fake, snapshots, wait


async def test_a_wait_is_a_future_that_gather_takes_without_a_task(clock: VirtualClock) -> None:
    fake = FakeInstances(clock)
    snapshots = Snapshots(fake, clock)
    for n in range(50):
        fake.add(1, n, ready_at=5.0)
    tasks_before = len(asyncio.all_tasks())
    waits = [
        snapshots.poller.wait(
            snapshots.listing(1), n, timeout=60.0, judge=judge_active, goal="Active"
        )
        for n in range(50)
    ]
    assert all(asyncio.isfuture(w) for w in waits)
    gathered = asyncio.gather(*waits)
    # One watch task for the instance; none per wait, none for the gather.
    assert len(asyncio.all_tasks()) - tasks_before == 1
    assert [s.id for s in await gathered] == list(range(50))


async def test_a_task_drives_a_wait_as_a_coroutine(clock: VirtualClock) -> None:
    fake = FakeInstances(clock)
    snapshots = Snapshots(fake, clock)
    fake.add(1, 7, ready_at=5.0)
    listing = snapshots.listing(1)

    driven = asyncio.create_task(
        snapshots.poller.wait(listing, 7, timeout=60.0, judge=judge_active, goal="Active")
    )
    async with asyncio.TaskGroup() as group:
        grouped = group.create_task(
            snapshots.poller.wait(listing, 7, timeout=60.0, judge=judge_active, goal="Active")
        )

    assert (await driven).status is z.SnapshotStatus.ACTIVE
    assert grouped.result().id == 7
    assert snapshots.poller.watched == 0  # the watch ended with its two waits


async def test_a_task_cancelled_before_its_first_step_leaves_the_watch(
    clock: VirtualClock,
) -> None:
    fake, snapshots, wait = one_wait(clock, ready_at=500.0, timeout=600.0)
    task = asyncio.create_task(wait)
    task.cancel()  # before the task ever stepped the wait

    with pytest.raises(asyncio.CancelledError):
        await task
    assert wait.cancelled()  # type: ignore[attr-defined]
    await clock.sleep(100.0)
    assert snapshots.poller.watched == 0
    assert fake.calls[1] <= 1


def test_a_wait_asked_with_no_loop_running_is_a_coroutine_that_waits_once_run() -> None:
    clock = VirtualClock()
    fake = FakeInstances(clock)
    snapshots = Snapshots(fake, clock)
    fake.add(1, 7, ready_at=5.0)

    wait = snapshots.poller.wait(
        snapshots.listing(1), 7, timeout=60.0, judge=judge_active, goal="Active"
    )

    assert not asyncio.isfuture(wait)
    assert asyncio.run(wait).status is z.SnapshotStatus.ACTIVE  # type: ignore[arg-type]


async def test_tasks_may_drive_one_wait_together_and_after_it_ended(clock: VirtualClock) -> None:
    _, _, wait = one_wait(clock, ready_at=5.0, timeout=60.0)

    first, second = asyncio.create_task(wait), asyncio.create_task(wait)
    assert [s.id for s in await asyncio.gather(first, second, wait)] == [7, 7, 7]
    assert (await asyncio.create_task(wait)).id == 7  # one more, after the end


async def test_a_wait_dropped_unstarted_as_a_coroutine_leaves_the_watch(
    clock: VirtualClock,
) -> None:
    _, snapshots, wait = one_wait(clock, ready_at=500.0, timeout=600.0)

    wait.close()  # as a task group that refuses a coroutine does

    assert wait.cancelled()  # type: ignore[attr-defined]
    await clock.sleep(100.0)
    assert snapshots.poller.watched == 0
