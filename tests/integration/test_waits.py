"""Waiting: failed and vanished snapshots, deadlines, cancellation, conflicts between creates."""

from __future__ import annotations

import asyncio

import pytest

import zomro_async as z
from zomro_async.testing import VirtualClock

from ._support import OTHER_VM, VM, Connect, StartEmulator, ids_of, until

S = z.SnapshotStatus
LIST = "instances.snapshots"
EDIT = "instances.snapshots.edit"


async def test_killed_snapshot_fails_the_wait(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM, kill=True)
    client = connect(emulator)
    snap = await client.snapshots.create(VM, "doomed")
    assert snap.status is S.SAVING

    with pytest.raises(z.SnapshotFailed) as info:
        await snap.wait_active()

    assert isinstance(info.value, z.ZomroError)
    assert info.value.snapshot.id == snap.id
    assert info.value.snapshot.status is S.KILLED
    assert info.value.snapshot.status.failed
    assert info.value.snapshot.image_size is None
    # A killed snapshot is no longer in progress: the next create is not held up by it.
    again = await client.snapshots.create(VM, "retry")
    assert again.status is S.SAVING
    assert len(ids_of(emulator, VM)) == 2


async def test_wait_times_out_with_last_seen(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator(time_to_active=100.0)
    emulator.add_instance(VM)
    client = connect(emulator)
    snap = await client.snapshots.create(VM, "slow")
    started = zomro_clock.monotonic()

    with pytest.raises(z.WaitTimeout) as info:
        await snap.wait_active(timeout=10.0)

    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value, z.ZomroError)
    assert info.value.last is not None
    assert info.value.last.id == snap.id
    assert info.value.last.status is S.SAVING
    assert zomro_clock.monotonic() - started == pytest.approx(10.0, abs=0.01)
    # The snapshot is unharmed: a longer wait sees it through.
    active = await snap.wait_active()
    assert active.status is S.ACTIVE
    assert zomro_clock.monotonic() - started >= 100.0


async def test_last_check_lands_at_the_deadline(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    # Polls at 0, 2, 5 see Saving; the next would be at 9.5, past the last
    # check, which starts `final_lead` (1 s) before the deadline: at 8.7, when
    # the snapshot is Active.
    emulator = await start_emulator(time_to_active=8.6)
    emulator.add_instance(VM)
    client = connect(emulator)
    snap = await client.snapshots.create(VM, "just-in-time")
    started = zomro_clock.monotonic()

    active = await snap.wait_active(timeout=9.7)

    assert active.status is S.ACTIVE
    assert zomro_clock.monotonic() - started == pytest.approx(8.7, abs=0.01)


async def test_wait_deleted_times_out_with_last_seen(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator(delete_linger=120.0)
    emulator.add_instance(VM, snapshots=1)
    client = connect(emulator)
    (snap,) = await client.snapshots.list(VM)
    await snap.delete()

    with pytest.raises(z.WaitTimeout) as info:
        await snap.wait_deleted(timeout=5.0)

    assert info.value.last is not None
    assert info.value.last.status is S.DELETING
    await snap.wait_deleted()
    assert emulator.snapshots_of(VM) == []


async def test_snapshot_deleted_by_someone_else_fails_the_wait(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator(time_to_active=600.0, delete_linger=60.0)
    emulator.add_instance(VM)
    client = connect(emulator)
    other = connect(emulator, token=emulator.token)
    snap = await client.snapshots.create(VM, "contested")
    listed = emulator.calls[LIST]

    waiter = asyncio.create_task(snap.wait_active())
    await until(lambda: emulator.calls[LIST] >= listed + 2, zomro_clock)
    await other.snapshots.delete(VM, snap.id)

    with pytest.raises(z.SnapshotFailed) as info:
        await waiter
    assert info.value.snapshot.id == snap.id
    assert info.value.snapshot.status is S.DELETING
    assert zomro_clock.monotonic() < 600.0  # failed at once, not at the deadline


async def test_snapshot_vanishing_while_awaited_fails_the_wait(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator(time_to_active=600.0, delete_linger=0.0)
    emulator.add_instance(VM)
    client = connect(emulator)
    other = connect(emulator, token=emulator.token)
    snap = await client.snapshots.create(VM, "vanishing")
    listed = emulator.calls[LIST]

    waiter = asyncio.create_task(client.snapshots.wait_active(VM, snap.id))
    await until(lambda: emulator.calls[LIST] >= listed + 2, zomro_clock)
    await other.snapshots.delete(VM, snap.id)
    assert emulator.snapshots_of(VM) == []

    with pytest.raises(z.SnapshotFailed) as info:
        await waiter
    assert info.value.snapshot.id == snap.id  # the last state seen of it
    assert info.value.snapshot.status is S.SAVING
    assert zomro_clock.monotonic() < 600.0


# -- cancellation --------------------------------------------------------------------


async def test_cancelled_wait_raises_and_the_client_still_works(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator(time_to_active=300.0)
    emulator.add_instance(VM)
    client = connect(emulator)
    snap = await client.snapshots.create(VM, "patient")
    listed = emulator.calls[LIST]

    waiter = asyncio.create_task(snap.wait_active())
    await until(lambda: emulator.calls[LIST] >= listed + 2, zomro_clock)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert waiter.cancelled()

    # Nothing keeps polling for the abandoned wait.
    quiet = emulator.calls[LIST]
    await zomro_clock.sleep(200.0)
    assert emulator.calls[LIST] == quiet

    assert [s.id for s in await client.snapshots.list(VM)] == [snap.id]
    active = await snap.wait_active()
    assert active.status is S.ACTIVE
    await active.delete()
    await active.wait_deleted()
    assert emulator.snapshots_of(VM) == []


async def test_cancelling_one_waiter_leaves_the_others_waiting(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator(time_to_active=60.0)
    emulator.add_instance(VM)
    client = connect(emulator)
    snap = await client.snapshots.create(VM, "shared")
    listed = emulator.calls[LIST]

    doomed = asyncio.create_task(snap.wait_active())
    kept = [asyncio.create_task(client.snapshots.wait_active(VM, snap.id)) for _ in range(3)]
    await until(lambda: emulator.calls[LIST] >= listed + 2, zomro_clock)
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed

    results = await asyncio.gather(*kept)
    assert all(r.status is S.ACTIVE and r.id == snap.id for r in results)
    assert zomro_clock.monotonic() >= 60.0


async def test_cancelled_request_frees_its_slot(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    # Every answer is slow, so the first list is surely on the wire when cancelled.
    emulator = await start_emulator(fault_rate=1.0, fault_kinds=("slow",), slow_seconds=0.05)
    emulator.add_instance(VM, snapshots=1)
    client = connect(emulator, token=emulator.token, max_in_flight=1)

    task = asyncio.create_task(client.snapshots.list(VM))
    for _ in range(10_000):
        if emulator.in_flight:
            break
        await asyncio.sleep(0)
    assert emulator.in_flight == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    # With one slot, this would hang if the cancelled request had kept it.
    results = await asyncio.wait_for(
        asyncio.gather(client.snapshots.list(VM), client.snapshots.list(VM)), 5.0
    )
    assert [len(r) for r in results] == [1, 1]


async def test_cancelled_create_releases_the_instance(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator(time_to_active=50.0)
    emulator.add_instance(VM)
    client = connect(emulator)
    first = await client.snapshots.create(VM, "first")

    queued = asyncio.create_task(client.snapshots.create(VM, "queued"))  # held up by `first`
    await zomro_clock.sleep(10.0)
    assert not queued.done()
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    assert ids_of(emulator, VM) == [first.id]

    second = await client.snapshots.create(VM, "second")
    assert ids_of(emulator, VM) == [first.id, second.id]
    assert (await first.refresh()).status is S.ACTIVE


async def test_closing_the_client_ends_pending_waits(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator(time_to_active=600.0)
    emulator.add_instance(VM)
    client = connect(emulator)
    snap = await client.snapshots.create(VM, "orphan")
    listed = emulator.calls[LIST]
    waiter = asyncio.create_task(snap.wait_active())
    await until(lambda: emulator.calls[LIST] >= listed + 1, zomro_clock)

    await client.aclose()

    with pytest.raises(z.ZomroError):
        await asyncio.wait_for(waiter, 5.0)


async def test_concurrent_waits_on_many_instances(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM)
    emulator.add_instance(OTHER_VM, time_to_active=30.0)
    client = connect(emulator)
    a = await client.snapshots.create(VM, "a")
    b = await client.snapshots.create(OTHER_VM, "b")

    got = await asyncio.gather(a.wait_active(), b.wait_active(), a.wait_active())

    assert [s.id for s in got] == [a.id, b.id, a.id]
    assert all(s.status is S.ACTIVE for s in got)
    assert got[0].instance_id == VM
    assert got[1].instance_id == OTHER_VM


# -- a create while the previous snapshot is still being taken ----------------------


async def test_create_waits_out_a_snapshot_in_progress(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator(time_to_active=20.0)
    emulator.add_instance(VM)
    client = connect(emulator)
    first = await client.snapshots.create(VM, "first")
    started = zomro_clock.monotonic()

    second = await client.snapshots.create(VM, "second")

    assert zomro_clock.monotonic() - started >= 20.0
    assert second.status is S.SAVING
    assert second.name == "second"
    assert ids_of(emulator, VM) == [first.id, second.id]
    assert (await first.refresh()).status is S.ACTIVE
    assert (await second.wait_active()).status is S.ACTIVE


async def test_concurrent_creates_from_two_clients_both_succeed(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator(time_to_active=20.0)
    emulator.add_instance(VM)
    one = connect(emulator)
    two = connect(emulator)

    a, b = await asyncio.gather(
        one.snapshots.create(VM, "from-one"), two.snapshots.create(VM, "from-two")
    )

    assert sorted(ids_of(emulator, VM)) == sorted([a.id, b.id])
    assert a.id != b.id
    assert {a.name, b.name} == {"from-one", "from-two"}
    # Neither client knew of the other's snapshot: the API refused one create as a
    # conflict, and that create was retried until the first snapshot was Active.
    assert emulator.calls[EDIT] > 2
    assert zomro_clock.monotonic() >= 20.0
    first, second = sorted([a, b], key=lambda s: s.id)
    assert (await first.refresh()).status is S.ACTIVE
    assert second.status is S.SAVING


async def test_conflict_with_no_time_to_wait_is_raised(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator(time_to_active=20.0)
    emulator.add_instance(VM)
    client = connect(emulator, conflict_timeout=0)
    first = await client.snapshots.create(VM, "first")

    with pytest.raises(z.ConflictError) as info:
        await client.snapshots.create(VM, "second")

    assert info.value.object == "runningoperation"
    assert isinstance(info.value, z.ApiError)
    assert info.value.func == EDIT
    assert ids_of(emulator, VM) == [first.id]
    assert emulator.calls[EDIT] == 2  # the refused create was not repeated


async def test_conflict_outlasting_conflict_timeout_is_raised(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator(time_to_active=100.0)
    emulator.add_instance(VM)
    client = connect(emulator, conflict_timeout=15.0)
    first = await client.snapshots.create(VM, "first")
    started = zomro_clock.monotonic()

    with pytest.raises(z.ConflictError) as info:
        await client.snapshots.create(VM, "second")

    assert info.value.object == "runningoperation"
    assert 15.0 <= zomro_clock.monotonic() - started < 20.0
    assert ids_of(emulator, VM) == [first.id]
    assert (await first.refresh()).status is S.SAVING


async def test_wait_with_no_time_checks_once(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator(time_to_active=30.0)
    emulator.add_instance(VM, snapshots=1)
    client = connect(emulator)
    (seeded,) = await client.snapshots.list(VM)
    snap = await client.snapshots.create(VM, "fresh")
    started = zomro_clock.monotonic()

    assert (await seeded.wait_active(timeout=0)).status is S.ACTIVE
    with pytest.raises(z.WaitTimeout) as info:
        await snap.wait_active(timeout=0)
    assert info.value.last is not None
    assert info.value.last.status is S.SAVING
    assert zomro_clock.monotonic() == started


async def test_wait_on_unknown_instance_is_not_found(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM)
    client = connect(emulator)
    with pytest.raises(z.NotFoundError):
        await asyncio.wait_for(client.snapshots.wait_active(OTHER_VM, 5204214), 5.0)
    with pytest.raises(z.NotFoundError):
        await asyncio.wait_for(client.snapshots.wait_deleted(OTHER_VM, 5204214), 5.0)


async def test_waits_of_mixed_goals_on_one_instance(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator(time_to_active=25.0, delete_linger=10.0)
    emulator.add_instance(VM, snapshots=1)
    client = connect(emulator)
    (old,) = await client.snapshots.list(VM)
    new = await client.snapshots.create(VM, "new")
    await old.delete()
    missing = new.id + 1000

    gone, active, not_there = await asyncio.gather(
        old.wait_deleted(),
        new.wait_active(),
        client.snapshots.wait_active(VM, missing),
        return_exceptions=True,
    )

    assert gone is None
    assert isinstance(active, z.Snapshot)
    assert active.status is S.ACTIVE
    assert isinstance(not_there, z.NotFoundError)
    assert ids_of(emulator, VM) == [new.id]
    assert zomro_clock.monotonic() >= 25.0


async def test_token_client_wait_fails_when_its_session_ends(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator(time_to_active=600.0)
    emulator.add_instance(VM)
    client = connect(emulator, token=emulator.token)
    snap = await client.snapshots.create(VM, "stranded")
    listed = emulator.calls[LIST]

    waiter = asyncio.create_task(snap.wait_active())
    await until(lambda: emulator.calls[LIST] >= listed + 2, zomro_clock)
    emulator.expire_sessions()

    with pytest.raises(z.AuthError):
        await asyncio.wait_for(waiter, 5.0)
    assert zomro_clock.monotonic() < 600.0


# -- the wait itself -------------------------------------------------------------------


async def test_gathered_waits_on_one_instance_make_no_task_each(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator(time_to_active=30.0)
    emulator.add_instance(VM, snapshots=1)
    client = connect(emulator)
    (first,) = await client.snapshots.list(VM)
    second = await client.snapshots.create(VM, "second")
    tasks_before = len(asyncio.all_tasks())

    waits = [client.snapshots.wait_active(VM, s.id) for s in (first, second)] * 20
    waits += [second.wait_active() for _ in range(20)]
    gathered = asyncio.gather(*waits)

    assert len(asyncio.all_tasks()) - tasks_before == 1  # the instance's one watch
    assert {s.id for s in await gathered} == {first.id, second.id}


async def test_a_wait_with_bad_arguments_raises_at_the_call(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM)
    client = connect(emulator)
    with pytest.raises(TypeError):
        client.snapshots.wait_active("1", 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        client.backups.wait_active(VM, 2, timeout=-1.0)
    with pytest.raises(ValueError):
        client.images.wait_deleted(0)
    assert emulator.calls[LIST] == 0


async def test_the_waits_are_coroutine_functions_to_introspection_and_mocks(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    import inspect
    import sys
    from unittest import mock

    emulator = await start_emulator()
    emulator.add_instance(VM, snapshots=1)
    client = connect(emulator)
    (snap,) = await client.snapshots.list(VM)
    waits = [
        client.snapshots.wait_active,
        client.snapshots.wait_deleted,
        client.backups.wait_active,
        client.images.wait_active,
        client.images.wait_deleted,
        snap.wait_active,
        snap.wait_deleted,
    ]
    if sys.version_info >= (3, 12):
        assert all(inspect.iscoroutinefunction(w) for w in waits)
    else:  # 3.14 deprecates asyncio.iscoroutinefunction; 3.11's mock still reads it
        assert all(asyncio.iscoroutinefunction(w) for w in waits)
    # A user's autospec of the manager gives an awaitable wait_active.
    manager = mock.create_autospec(type(client.snapshots), instance=True)
    manager.wait_active.return_value = snap
    assert await manager.wait_active(VM, snap.id) is snap
