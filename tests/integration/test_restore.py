"""Restores over loopback HTTP: a rebuild from a snapshot, its status lag, failures,
outages, cancellation, lost answers (never a second rebuild) and busy instances;
protect and unprotect."""

from __future__ import annotations

import asyncio

import pytest

import zomro_async as z
from zomro_async._core._inferred import REBUILD_STATUS_LAG
from zomro_async.testing import VirtualClock, ZomroEmulator, pending_sdk_tasks
from zomro_async.testing._emulator import Rebuild

from ._support import OTHER_VM, UNKNOWN_VM, VM, Connect, StartEmulator, ids_of, until

IS = z.InstanceStatus
S = z.SnapshotStatus
PW = "Sup3rSecretRoot"
REBUILD = "instances.fleio.rebuild"


async def seeded(
    start_emulator: StartEmulator, connect: Connect, **config: object
) -> tuple[ZomroEmulator, z.ZomroClient, z.Snapshot]:
    emulator = await start_emulator(**config)
    emulator.add_instance(VM, snapshots=1)
    emulator.add_instance(OTHER_VM)
    client = connect(emulator)
    (snap,) = await client.snapshots.list(VM)
    return emulator, client, snap


# -- the happy paths ---------------------------------------------------------------------


async def test_restore_with_a_password_rebuilds_once_from_the_snapshot(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator, client, snap = await seeded(start_emulator, connect)
    got = await client.instances.restore(VM, snap, password=PW)
    assert got.id == VM
    assert got.status is IS.ACTIVE  # the old status: it reads so for `rebuild_lag`
    assert emulator.rebuilds == [
        Rebuild(VM, snap.id, str(snap.fleio_id), ssh_key=None, with_password=True)
    ]
    assert emulator.calls[REBUILD] == 1


async def test_restore_with_an_ssh_key(start_emulator: StartEmulator, connect: Connect) -> None:
    emulator, client, snap = await seeded(start_emulator, connect)
    key = emulator.add_ssh_key("laptop")
    await client.instances.restore(VM, snap, ssh_key=key.upper())
    (rebuild,) = emulator.rebuilds
    assert (rebuild.ssh_key, rebuild.with_password) == (key, False)
    assert rebuild.image_id == snap.id


async def test_an_unknown_ssh_key_is_refused_by_the_server(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator, client, snap = await seeded(start_emulator, connect)
    with pytest.raises(z.InvalidRequestError) as caught:
        await client.instances.restore(VM, snap, ssh_key="0f0e0d0c-0b0a-4908-8706-050403020100")
    assert caught.value.object == "ssh_keys"
    assert emulator.rebuilds == []


async def test_restore_and_wait_ends_active_only_after_the_rebuild(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator, client, snap = await seeded(
        start_emulator, connect, rebuild_lag=3.0, rebuild_time=20.0
    )
    started = zomro_clock.monotonic()
    got = await client.instances.restore(VM, snap, password=PW, wait=True)
    assert got.status is IS.ACTIVE
    assert zomro_clock.monotonic() - started >= 3.0 + 20.0
    assert emulator.instance_status(VM) == "active"
    assert len(emulator.rebuilds) == 1


async def test_a_status_that_lags_does_not_end_the_wait_before_rebuilding_is_seen(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    _, client, snap = await seeded(start_emulator, connect, rebuild_lag=10.0, rebuild_time=20.0)
    started = zomro_clock.monotonic()
    await client.instances.restore(VM, snap, password=PW)
    seen: list[tuple[float, z.InstanceStatus]] = []
    got = await client.instances.wait_settled(
        VM, on_update=lambda i: seen.append((zomro_clock.monotonic() - started, i.status))
    )
    assert got.status is IS.ACTIVE
    assert zomro_clock.monotonic() - started >= 10.0 + 20.0
    # It read `active` during the lag, and that was not taken for the end.
    assert [s for _, s in seen if s is IS.ACTIVE]
    assert IS.REBUILDING in [s for _, s in seen]


async def test_a_status_that_never_moves_ends_the_wait_after_the_lag_rule(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    # The instance reads its old status longer than REBUILD_STATUS_LAG: a listing
    # that started the lag after the rebuild tells the truth by the SDK's rule.
    _, client, snap = await seeded(
        start_emulator, connect, rebuild_lag=REBUILD_STATUS_LAG + 40.0, rebuild_time=20.0
    )
    started = zomro_clock.monotonic()
    got = await client.instances.restore(VM, snap, password=PW, wait=True)
    assert got.status is IS.ACTIVE
    assert REBUILD_STATUS_LAG <= zomro_clock.monotonic() - started < REBUILD_STATUS_LAG + 40.0


async def test_wait_status_after_a_restore_skips_the_old_status(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator(rebuild_lag=5.0, rebuild_time=10.0)
    emulator.add_instance(VM, snapshots=1, status="stopped")
    client = connect(emulator)
    (snap,) = await client.snapshots.list(VM)
    started = zomro_clock.monotonic()
    instance = await snap.restore(password=PW)
    assert instance.status is IS.STOPPED  # still the state from before
    got = await instance.wait_status(IS.ACTIVE)  # the rebuild ends active
    assert got.status is IS.ACTIVE
    assert zomro_clock.monotonic() - started >= 15.0


async def test_a_failed_rebuild_fails_the_wait(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM, snapshots=1, fail_rebuild=True)
    client = connect(emulator)
    (snap,) = await client.snapshots.list(VM)
    with pytest.raises(z.InstanceFailed) as caught:
        await client.instances.restore(VM, snap, password=PW, wait=True)
    assert caught.value.instance.id == VM
    assert caught.value.instance.status is IS.ERROR
    assert zomro_clock.monotonic() >= 3.0 + 20.0  # at the end of the rebuild, not before
    # An instance in `error` can be rebuilt again.
    emulator.set_instance_status(VM, "error")
    again = await client.instances.restore(VM, snap, password=PW)
    assert again.status is IS.ERROR
    assert len(emulator.rebuilds) == 2


async def test_a_rebuild_wait_rides_out_an_outage(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator, client, snap = await seeded(start_emulator, connect)
    started = zomro_clock.monotonic()
    waiting = asyncio.create_task(client.instances.restore(VM, snap, password=PW, wait=True))
    await until(lambda: len(emulator.rebuilds) == 1, zomro_clock, step=0.1)
    await emulator.outage(30.0)
    got = await waiting
    assert got.status is IS.ACTIVE
    assert zomro_clock.monotonic() - started >= 30.0
    assert len(emulator.rebuilds) == 1


@pytest.mark.parametrize("mode", ["html503", "reset", "refuse"])
async def test_a_restore_sent_into_an_outage_rebuilds_once_after_it(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock, mode: str
) -> None:
    # A 503 or a reset may have acted: the instance is watched for the lag, the
    # rebuild never shows (the outage made none), and it is sent again then.
    # A refused connection certainly did not act: it is sent again at once.
    emulator, client, snap = await seeded(start_emulator, connect)
    await emulator.outage(5.0, mode=mode)
    started = zomro_clock.monotonic()
    got = await client.instances.restore(VM, snap, password=PW, wait=True)
    assert got.status is IS.ACTIVE
    assert len(emulator.rebuilds) == 1
    assert emulator.instance_status(VM) == "active"
    took = zomro_clock.monotonic() - started
    if mode == "refuse":
        assert took < REBUILD_STATUS_LAG
    else:
        assert took >= REBUILD_STATUS_LAG + 3.0 + 20.0  # the watch, then the rebuild


async def test_a_restore_into_a_long_outage_gives_up_and_is_safe_to_call_again(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator, client, snap = await seeded(start_emulator, connect)
    await emulator.outage(3600.0, mode="refuse")
    with pytest.raises(z.TransportError):
        await client.instances.restore(VM, snap, password=PW)
    assert emulator.rebuilds == []
    await emulator.end_outage()
    await client.instances.restore(VM, snap, password=PW)
    assert len(emulator.rebuilds) == 1


async def test_cancelling_a_restore_wait_leaves_nothing_running(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator, client, snap = await seeded(start_emulator, connect)
    waiting = asyncio.create_task(client.instances.restore(VM, snap, password=PW, wait=True))
    await until(lambda: len(emulator.rebuilds) == 1, zomro_clock, step=0.1)
    listed = emulator.calls["instances"]
    await until(lambda: emulator.calls["instances"] >= listed + 2, zomro_clock, step=0.1)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    for _ in range(3):
        await asyncio.sleep(0)
    assert pending_sdk_tasks() == []
    assert client.instances.poller.watched == 0
    quiet = emulator.calls["instances"]
    await zomro_clock.sleep(60.0)
    assert emulator.calls["instances"] == quiet  # nobody polls for the abandoned wait
    # The client is usable, and the instance free for a snapshot.
    assert [i.id for i in await client.instances.list()] == [VM, OTHER_VM]
    assert (await client.instances.wait_settled(VM)).status is IS.ACTIVE
    made = await client.snapshots.create(VM, "after")
    assert made.status is S.SAVING
    assert len(emulator.rebuilds) == 1


@pytest.mark.parametrize("turns", [0, 1, 3, 8, 20, 40, 80])
async def test_cancelling_a_restore_anywhere_never_doubles_the_rebuild(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock, turns: int
) -> None:
    emulator, client, snap = await seeded(start_emulator, connect)
    emulator.lose_answers(REBUILD)  # the reconciler's watch is a cancel point too
    task = asyncio.create_task(client.instances.restore(VM, snap, password=PW, wait=True))
    for _ in range(turns):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(3):
        await asyncio.sleep(0)
    assert pending_sdk_tasks() == []
    made = len(emulator.rebuilds)
    assert made <= 1
    await zomro_clock.sleep(3.0 + 20.0 + 1.0)  # any rebuild it made is over
    # The instance is not left locked by the cancelled call.
    await client.instances.restore(VM, snap, password=PW)
    assert len(emulator.rebuilds) == made + 1


# -- lost answers: never a second rebuild --------------------------------------------------


@pytest.mark.parametrize("kind", ["html502", "html504", "reset"])
async def test_a_lost_rebuild_answer_makes_one_rebuild(
    start_emulator: StartEmulator, connect: Connect, kind: str
) -> None:
    emulator, client, snap = await seeded(start_emulator, connect)
    emulator.lose_answers(REBUILD, kind=kind)
    got = await client.instances.restore(VM, snap, password=PW)
    assert got.id == VM
    assert got.status is IS.REBUILDING  # seen under way: the proof it was made
    assert len(emulator.rebuilds) == 1
    assert emulator.lost_answers[REBUILD] == 1
    assert emulator.calls[REBUILD] == 1


async def test_a_lost_rebuild_answer_then_wait_ends_active(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator, client, snap = await seeded(start_emulator, connect)
    emulator.lose_answers(REBUILD, kind="reset")
    got = await client.instances.restore(VM, snap, password=PW, wait=True)
    assert got.status is IS.ACTIVE
    assert zomro_clock.monotonic() >= 3.0 + 20.0
    assert len(emulator.rebuilds) == 1


async def test_a_lost_rebuild_whose_status_lags_within_the_watch_is_one_rebuild(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator, client, snap = await seeded(
        start_emulator, connect, rebuild_lag=REBUILD_STATUS_LAG - 10.0
    )
    emulator.lose_answers(REBUILD)
    got = await client.instances.restore(VM, snap, password=PW)
    assert got.status is IS.REBUILDING
    assert zomro_clock.monotonic() >= REBUILD_STATUS_LAG - 10.0
    assert len(emulator.rebuilds) == 1
    assert emulator.calls[REBUILD] == 1


async def test_a_lost_rebuild_whose_status_lags_past_the_watch_is_still_one_rebuild(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    # Past the inferred lag the rebuild cannot be seen in the watch: it is sent
    # again, the server refuses it as busy, and that conflict is waited out until
    # the first rebuild shows (the emulator's guess: a rebuild under way, its lag
    # included, refuses another).
    emulator, client, snap = await seeded(
        start_emulator, connect, rebuild_lag=REBUILD_STATUS_LAG + 30.0
    )
    emulator.lose_answers(REBUILD)
    got = await client.instances.restore(VM, snap, password=PW)
    assert got.status is IS.REBUILDING
    assert zomro_clock.monotonic() >= REBUILD_STATUS_LAG + 30.0
    assert len(emulator.rebuilds) == 1
    assert emulator.calls[REBUILD] >= 2


# -- busy instances -----------------------------------------------------------------------


async def test_a_busy_instance_is_a_conflict_after_conflict_timeout(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM, snapshots=1)
    client = connect(emulator, conflict_timeout=15.0)
    (snap,) = await client.snapshots.list(VM)
    emulator.set_instance_status(VM, "building")
    started = zomro_clock.monotonic()
    with pytest.raises(z.ConflictError):
        await client.instances.restore(VM, snap, password=PW)
    assert 15.0 <= zomro_clock.monotonic() - started < 15.0 + 30.0
    assert emulator.rebuilds == []


async def test_a_busy_instance_is_rebuilt_once_it_settles(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator, client, snap = await seeded(start_emulator, connect)
    emulator.set_instance_status(VM, "building", then="active", after=30.0)
    started = zomro_clock.monotonic()
    await client.instances.restore(VM, snap, password=PW)
    assert zomro_clock.monotonic() - started >= 30.0
    assert len(emulator.rebuilds) == 1


async def test_a_snapshot_being_taken_holds_the_restore_back(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator(time_to_active=25.0)
    emulator.add_instance(VM, snapshots=1, saving=1)
    client = connect(emulator)
    good = (await client.snapshots.list(VM))[0]
    assert good.status is S.ACTIVE
    await client.instances.restore(VM, good, password=PW)
    assert zomro_clock.monotonic() >= 25.0
    assert len(emulator.rebuilds) == 1


async def test_a_snapshot_create_after_a_restore_waits_for_the_rebuild(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator, client, snap = await seeded(start_emulator, connect)
    started = zomro_clock.monotonic()
    await client.instances.restore(VM, snap, password=PW)
    made = await client.snapshots.create(VM, "after-restore")
    assert zomro_clock.monotonic() - started >= 3.0 + 20.0
    assert made.name == "after-restore"
    assert len(ids_of(emulator, VM)) == 2


async def test_restoring_an_unknown_instance_is_not_found(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator, client, snap = await seeded(start_emulator, connect)
    with pytest.raises(z.NotFoundError):
        await client.instances.restore(UNKNOWN_VM, snap, password=PW)
    assert emulator.rebuilds == []
    assert emulator.calls[REBUILD] == 1


# -- snapshot.restore, images by id, rows without fleio_id ----------------------------------


async def test_a_snapshot_restores_its_own_instance_and_onto_another(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator, client, snap = await seeded(start_emulator, connect)
    own = await snap.restore(password=PW)
    assert own.id == VM
    other = next(i for i in await client.instances.list() if i.id == OTHER_VM)
    onto = await snap.restore(onto=other, ssh_key=emulator.add_ssh_key())
    assert onto.id == OTHER_VM
    by_id = await client.snapshots.restore(snap, onto=OTHER_VM, password=PW, wait=True)
    assert by_id.status is IS.ACTIVE
    assert [(r.instance_id, r.image_id) for r in emulator.rebuilds] == [
        (VM, snap.id),
        (OTHER_VM, snap.id),
        (OTHER_VM, snap.id),
    ]


async def test_restore_by_image_id(start_emulator: StartEmulator, connect: Connect) -> None:
    emulator, client, snap = await seeded(start_emulator, connect)
    await client.instances.restore(OTHER_VM, snap.id, password=PW)
    (rebuild,) = emulator.rebuilds
    assert (rebuild.instance_id, rebuild.image_id, rebuild.fleio_id) == (
        OTHER_VM,
        snap.id,
        str(snap.fleio_id),
    )


async def test_restore_by_the_id_of_a_snapshot_still_saving_is_refused(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator(time_to_active=100.0)
    emulator.add_instance(VM, saving=1)
    client = connect(emulator)
    (snap,) = await client.snapshots.list(VM)
    with pytest.raises(ValueError, match="not Active"):
        await client.instances.restore(VM, snap.id, password=PW)
    with pytest.raises(ValueError, match="not Active"):
        await snap.restore(password=PW)
    assert emulator.calls[REBUILD] == 0


async def test_rows_without_fleio_id_are_restored_through_image_edit(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator, _, snap = await seeded(start_emulator, connect, snapshot_rows_have_fleio_id=False)
    assert snap.fleio_id is None
    await snap.restore(password=PW, wait=True)
    (rebuild,) = emulator.rebuilds
    assert rebuild.fleio_id == emulator.snapshot_details(snap.id)["fleio_id"]
    assert emulator.calls["image.edit"] == 1


async def test_a_bound_instance_restores_and_waits(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator, client, snap = await seeded(start_emulator, connect)
    instance = await client.instances.get(OTHER_VM)
    await instance.restore(snap, password=PW)
    assert (await instance.wait_settled()).status is IS.ACTIVE
    assert emulator.rebuilds[0].instance_id == OTHER_VM


# -- protect and unprotect ------------------------------------------------------------------


@pytest.mark.parametrize("as_orig", [False, True], ids=["dollar", "orig"])
async def test_protect_round_trip_keeps_the_snapshot_out_of_deletes_and_rotations(
    start_emulator: StartEmulator, connect: Connect, as_orig: bool
) -> None:
    emulator = await start_emulator(
        time_to_active=2.0, delete_linger=1.0, protected_as_orig=as_orig
    )
    emulator.add_instance(VM)
    client = connect(emulator)
    for n in range(3):
        await (await client.snapshots.create(VM, f"auto-{n}")).wait_active()
    keep = (await client.snapshots.list(VM))[0]
    await keep.protect()
    await keep.protect()  # harmless when it is protected already
    assert (await keep.refresh()).protected
    assert emulator.snapshot_details(keep.id)["protected"] == "on"

    [rotated] = await client.snapshots.rotate([VM], keep=1, prefix="auto-")
    assert rotated.ok, rotated.error
    assert keep.id not in [s.id for s in rotated.deleted]
    assert keep.id in ids_of(emulator, VM)

    with pytest.raises(z.InvalidRequestError):
        await keep.delete()
    assert keep.id in ids_of(emulator, VM)

    await client.snapshots.unprotect(VM, keep.id)
    assert not (await keep.refresh()).protected
    await keep.delete()
    await keep.wait_deleted()
    assert keep.id not in ids_of(emulator, VM)


async def test_protect_keeps_the_name_and_the_fields_sent_back(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator, _, snap = await seeded(start_emulator, connect)
    before = emulator.snapshot_details(snap.id)
    await snap.protect()
    after = emulator.snapshot_details(snap.id)
    assert after["protected"] == "on"
    assert after["image_name"] == before["image_name"] == snap.name
    assert {k: v for k, v in after.items() if k not in {"protected", "updated"}} == {
        k: v for k, v in before.items() if k not in {"protected", "updated"}
    }


async def test_protect_of_a_snapshot_of_another_instance_is_not_found(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator, client, snap = await seeded(start_emulator, connect)
    with pytest.raises(z.NotFoundError):
        await client.snapshots.protect(OTHER_VM, snap.id)
    assert emulator.snapshot_details(snap.id)["protected"] == "off"
    assert emulator.calls["image.edit"] == 1  # the preview only


async def test_a_lost_protect_answer_is_retried_and_harmless(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator, _, snap = await seeded(start_emulator, connect)
    emulator.lose_answers("image.edit", count=2)
    await snap.protect()
    assert emulator.snapshot_details(snap.id)["protected"] == "on"


@pytest.mark.parametrize("outage", [70.0, 76.0])
async def test_a_lost_rebuild_whose_watch_an_outage_blinds_is_unknown_not_sent_again(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock, outage: float
) -> None:
    # The answer is lost, then the API goes down for longer than the watch: the
    # rebuild ran and ended unseen (`rebuilding` passes). The first listing that
    # works shows `active` again, which proves nothing: the outcome is unknown.
    emulator, client, snap = await seeded(start_emulator, connect)
    emulator.lose_answers(REBUILD)
    restoring = asyncio.create_task(client.instances.restore(VM, snap, password=PW, wait=True))
    await zomro_clock.sleep(0.5)
    await emulator.outage(outage, mode="html503")
    with pytest.raises(z.OutcomeUnknown) as caught:
        await restoring
    assert caught.value.instance_id == VM
    assert len(emulator.rebuilds) == 1  # the disk was overwritten once, never twice
    assert PW not in repr(caught.value)
    assert PW not in str(caught.value)


async def test_a_lost_rebuild_shorter_than_the_growing_poll_gaps_is_still_seen(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    # `rebuilding` lasts from 17 s to 25 s after the lost answer: the growing poll
    # schedule (16.25 s, then 26.4 s) would step over it and send a second
    # rebuild; the watch looks at the first poll delay throughout instead.
    emulator, client, snap = await seeded(
        start_emulator, connect, rebuild_lag=17.0, rebuild_time=8.0
    )
    emulator.lose_answers(REBUILD)
    got = await client.instances.restore(VM, snap, password=PW, wait=True)
    assert got.status is z.InstanceStatus.ACTIVE
    assert len(emulator.rebuilds) == 1
