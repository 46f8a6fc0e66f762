"""Backups, schedules, rotation and copies through the public client, against the emulator."""

from __future__ import annotations

import asyncio
import datetime

import pytest

import zomro_async as z
from zomro_async.testing import VirtualClock, ZomroEmulator

from ._support import OTHER_VM, UNKNOWN_VM, VM, Connect, StartEmulator, until

S = z.ImageStatus
CREATE = "instances.fleio_bckps.edit"
PASSWORD = "Restore-2026"
DAY = 24 * 3600.0


def backup_ids(emulator: ZomroEmulator, instance_id: int) -> list[int]:
    return [int(r["id"]) for r in emulator.backups_of(instance_id)]


async def test_backup_lifecycle(start_emulator: StartEmulator, connect: Connect) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM)
    client = connect(emulator)

    backup = await client.backups.create(VM, "before-upgrade")
    assert isinstance(backup, z.Backup)
    assert (backup.status, backup.backup_type, backup.instance_id) == (
        S.SAVING,
        z.BackupType.MANUAL,
        VM,
    )
    assert backup_ids(emulator, VM) == [backup.id]
    assert emulator.snapshots_of(VM) == []  # a backup is no snapshot

    active = await backup.wait_active(timeout=7200.0)
    assert active.status is S.ACTIVE
    assert await client.backups.get(VM, backup.id) == active
    assert [b.id for b in await client.backups.list(VM)] == [backup.id]

    await active.delete()
    await active.wait_deleted()
    assert backup_ids(emulator, VM) == []
    with pytest.raises(z.NotFoundError):
        await active.refresh()


async def test_a_lost_create_answer_makes_no_duplicate_backup(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM)
    emulator.lose_answers(CREATE)
    client = connect(emulator)
    backup = await client.backups.create(VM, "b")
    assert backup_ids(emulator, VM) == [backup.id]
    assert emulator.calls[CREATE] == 1


async def test_a_lost_delete_answer_is_a_delete(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM)
    backup_id = emulator.add_backup(VM, "old", active=True)
    emulator.lose_answers("image.delete")
    client = connect(emulator)
    await client.backups.delete(VM, backup_id)
    await client.backups.wait_deleted(VM, backup_id)
    assert backup_ids(emulator, VM) == []
    assert emulator.calls["image.delete"] == 2


async def test_the_sixth_manual_backup_of_a_day_is_limit_exceeded_and_makes_nothing(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator(time_to_active=1.0)
    emulator.add_instance(VM)
    client = connect(emulator)
    assert (await client.backups.usage(VM)).left_today == 5
    for n in range(5):
        await (await client.backups.create(VM, f"b{n}")).wait_active()
    usage = await client.backups.usage(VM)
    assert (usage.made_today, usage.left_today, usage.made_in_all) == (5, 0, 5)
    with pytest.raises(z.LimitExceeded):
        await client.backups.create(VM, "b5")
    assert len(backup_ids(emulator, VM)) == 5
    assert emulator.calls[CREATE] == 6  # refused once, never re-sent

    zomro_clock.advance(DAY)  # a new day on the server's clock
    assert (await client.backups.usage(VM)).left_today == 5
    await client.backups.create(VM, "b5")


async def test_a_bulk_backup_reports_the_limit_per_instance(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator(backups_per_day=1)
    emulator.add_instance(VM)
    emulator.add_instance(OTHER_VM)
    emulator.add_backup(OTHER_VM, "made earlier today", active=True)
    client = connect(emulator)
    job = client.backups.create_many([VM, OTHER_VM], "pre-release-{date}")
    first, second = await job
    assert first.ok
    assert isinstance(first.snapshot, z.Backup)
    assert first.snapshot.status is S.ACTIVE
    assert isinstance(second.error, z.LimitExceeded)
    assert second.snapshot is None
    assert len(backup_ids(emulator, OTHER_VM)) == 1


async def test_a_backup_waits_for_a_snapshot_being_taken(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator(time_to_active=30.0)
    emulator.add_instance(VM)
    client = connect(emulator)
    snapshot = await client.snapshots.create(VM, "s")
    backup = await client.backups.create(VM, "b")  # refused while Saving, waited out
    assert (await snapshot.refresh()).status is S.ACTIVE
    assert backup_ids(emulator, VM) == [backup.id]


async def test_a_backup_restores_its_instance(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM)
    backup_id = emulator.add_backup(VM, "good", active=True)
    client = connect(emulator)
    backup = await client.backups.get(VM, backup_id)
    instance = await backup.restore(password=PASSWORD, wait=True)
    assert instance.status is z.InstanceStatus.ACTIVE
    assert [r.image_id for r in emulator.rebuilds] == [backup_id]


async def test_protect_guards_a_backup_from_delete(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM)
    backup_id = emulator.add_backup(VM, "keep", active=True)
    client = connect(emulator)
    backup = await client.backups.get(VM, backup_id)
    await backup.protect()
    assert (await backup.refresh()).protected
    with pytest.raises(z.InvalidRequestError):
        await backup.delete()
    await backup.unprotect()
    await backup.delete()


# -- schedules and the server's rotation ------------------------------------------


async def test_schedules_add_list_remove(start_emulator: StartEmulator, connect: Connect) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM)
    client = connect(emulator)
    added = await client.backups.add_schedule(
        VM, "nightly", days={z.Weekday.MON, z.Weekday.SUN}, at=datetime.time(2, 1)
    )
    assert (added.name, added.days, added.at) == (
        "nightly",
        {z.Weekday.MON, z.Weekday.SUN},
        datetime.time(2, 1),
    )
    (row,) = emulator.schedules_of(VM)
    assert (row["rotation_days"], row["rotation_time"]) == ("Monday Sunday", "02:01")
    assert await client.backups.schedules(VM) == [added]
    await client.backups.remove_schedule(VM, added.id)
    assert await client.backups.schedules(VM) == []
    with pytest.raises(z.NotFoundError):
        await client.backups.remove_schedule(VM, added.id)


async def test_a_lost_schedule_answer_makes_no_second_schedule(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM)
    emulator.lose_answers("instances.fleio_bckps.schedule.edit")
    client = connect(emulator)
    schedule = await client.backups.add_schedule(
        VM, "nightly", days=set(z.Weekday), at=datetime.time(3, 0)
    )
    assert [s.id for s in await client.backups.schedules(VM)] == [schedule.id]


async def test_a_schedule_makes_backups_and_the_server_keeps_the_rotation(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator(time_to_active=60.0)
    emulator.add_instance(VM)
    client = connect(emulator)
    assert await client.backups.rotation(VM) == 3
    await client.backups.set_rotation(VM, 2)
    assert await client.backups.rotation(VM) == 2
    assert emulator.backup_rotation(VM) == 2
    # The clock starts on Thursday 2026-01-01, 03:00 on the panel's clock (UTC+3).
    await client.backups.add_schedule(VM, "daily", days=set(z.Weekday), at=datetime.time(4, 0))
    zomro_clock.advance(3 * DAY)  # three firings: Thursday, Friday, Saturday at 04:00
    scheduled = [
        b for b in await client.backups.list(VM) if b.backup_type is z.BackupType.SCHEDULED
    ]
    assert len(scheduled) == 2  # the server overwrote the oldest
    assert all(b.status is S.ACTIVE for b in scheduled)
    assert (await client.backups.usage(VM)).made_today == 0  # scheduled ones are not manual


# -- copies to another region --------------------------------------------------------


async def test_copy_an_image_to_another_region(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator(copy_time=1800.0)
    emulator.add_instance(VM, snapshots=1)
    client = connect(emulator)
    (snapshot,) = await client.snapshots.list(VM)
    started = zomro_clock.monotonic()
    copy = await client.images.copy(snapshot.id, region="Netherlands-1", name="dr-copy")
    assert (copy.name, copy.region, copy.status) == ("dr-copy", "Netherlands-1", S.SAVING)
    done = await copy.wait_active(timeout=4 * 3600.0)
    assert done.status is S.ACTIVE
    assert zomro_clock.monotonic() - started >= 1800.0
    listed = {i.id: i for i in await client.images.list()}
    assert listed[copy.id] == done
    assert listed[snapshot.id].image_type is z.ImageType.SNAPSHOT
    assert emulator.calls["image.copy"] == 2  # the preview, then the copy


async def test_copy_to_the_images_own_region_is_refused_before_copying(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM, snapshots=1)
    client = connect(emulator)
    (snapshot,) = await client.snapshots.list(VM)
    offered = await client.images.copy_regions(snapshot.id)
    assert "Netherlands-2" not in offered.values()
    assert "Netherlands-1" in offered.values()
    with pytest.raises(ValueError, match="Netherlands-1"):
        await client.images.copy(snapshot.id, region="Netherlands-2")
    with pytest.raises(z.NotFoundError):
        await client.images.copy(UNKNOWN_VM, region="Netherlands-1")
    assert len(emulator.images()) == 1


async def test_a_lost_copy_answer_makes_no_second_copy(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM, snapshots=1)
    (snapshot,) = emulator.snapshots_of(VM)
    emulator.lose_answers("image.copy")  # the preview's answer is lost: a read, retried
    emulator.lose_answers("image.copy")  # the commit's: reconciled by listing
    client = connect(emulator)
    copy = await client.images.copy(int(snapshot["id"]), region="Germany-1", name="dr")
    copies = [i for i in emulator.images() if i["image_name"] == "dr"]
    assert [int(i["id"]) for i in copies] == [copy.id]


async def test_a_backup_of_the_copys_name_made_there_meanwhile_is_never_taken_for_it(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM)  # in Netherlands-2
    emulator.add_instance(OTHER_VM, region="Netherlands-1")
    source = emulator.add_backup(VM, "nightly", active=True)
    emulator.hold("image.copy", 5.0, count=2)  # the preview and the commit answer late
    client = connect(emulator)
    copying = asyncio.ensure_future(client.images.copy(source, region="Netherlands-1"))
    # While the commit is held, after the copy listed what was there before it:
    await until(lambda: emulator.calls["image.copy"] == 2, zomro_clock, step=0.1)
    await client.backups.create(OTHER_VM, "nightly")
    with pytest.raises(z.OutcomeUnknown, match="could be it"):
        await copying
    # Both exist; neither was taken for the other, and nothing was sent twice.
    assert emulator.calls["image.copy"] == 2


async def test_a_failed_copy_fails_its_wait(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM, snapshots=1)
    emulator.fail_copies(1)
    client = connect(emulator)
    (snapshot,) = await client.snapshots.list(VM)
    copy = await client.images.copy(snapshot.id, region="USA-1")
    with pytest.raises(z.ImageFailed) as caught:
        await copy.wait_active()
    assert caught.value.image.id == copy.id


async def test_a_hundred_copy_waits_share_one_listing_a_tick(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator(copy_time=600.0)
    emulator.add_instance(VM, snapshots=1)
    client = connect(emulator)
    (snapshot,) = await client.snapshots.list(VM)
    regions = ["Netherlands-1", "Germany-1", "USA-1"]
    copies = [
        await client.images.copy(snapshot.id, region=regions[n % 3], name=f"dr-{n}")
        for n in range(100)
    ]
    before = emulator.calls["image"]
    started = zomro_clock.monotonic()
    done = await asyncio.gather(*(c.wait_active() for c in copies))
    assert all(c.status is S.ACTIVE for c in done)
    listings = emulator.calls["image"] - before
    # The poll schedule (2 s growing 1.5x to 30 s) over ~600 s is about 25 ticks;
    # a listing per wait would be 100 times that.
    ticks = len([t for t in POLL_TICKS if t <= zomro_clock.monotonic() - started]) + 2
    assert listings <= ticks


def _ticks(initial: float = 2.0, multiplier: float = 1.5, maximum: float = 30.0) -> list[float]:
    at, delay, out = 0.0, initial, []
    while at < 24 * 3600:
        at += delay
        out.append(at)
        delay = min(maximum, delay * multiplier)
    return out


POLL_TICKS = _ticks()
