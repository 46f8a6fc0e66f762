"""Instances over loopback HTTP: paged listings, get, waits on the shared poller (one
listing per tick for every wait), failures, and bulk jobs over the listed fleet."""

from __future__ import annotations

import asyncio
import datetime

import pytest

import zomro_async as z
from zomro_async.testing import VirtualClock

from ._support import OTHER_VM, UNKNOWN_VM, VM, Connect, StartEmulator, ids_of, until

IS = z.InstanceStatus
S = z.SnapshotStatus
LIST = "instances"


def today(clock: VirtualClock) -> datetime.date:
    return datetime.datetime.fromtimestamp(clock.time(), datetime.UTC).date()


@pytest.mark.parametrize("as_list", [False, True], ids=["createdate", "createdate-list"])
async def test_list_follows_every_page(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock, as_list: bool
) -> None:
    emulator = await start_emulator(page_size=2, createdate_as_list=as_list)
    ids = [VM + n for n in range(5)]
    for n, instance_id in enumerate(ids):
        emulator.add_instance(instance_id, name=f"web-{n}", region="Germany-1")
    client = connect(emulator)

    listed = await client.instances.list()

    assert [i.id for i in listed] == ids
    assert [i.name for i in listed] == [f"web-{n}" for n in range(5)]
    assert emulator.calls[LIST] == 3  # pages 1, 2 and 3
    first = listed[0]
    assert first.status is IS.ACTIVE
    assert first.created == today(zomro_clock)
    assert first.region == "Germany-1"
    assert first.ip is not None
    assert first.ip_v6 is not None
    assert first.billing_status == "Active"
    assert first.tariff
    assert first.cost
    assert first.os_distro == "Ubuntu"


async def test_get_and_refresh_and_an_unknown_id(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM, status="stopped")
    emulator.add_instance(OTHER_VM)
    client = connect(emulator)

    got = await client.instances.get(VM)
    assert (got.id, got.status) == (VM, IS.STOPPED)
    emulator.set_instance_status(VM, "active")
    assert (await got.refresh()).status is IS.ACTIVE

    with pytest.raises(z.NotFoundError):
        await client.instances.get(UNKNOWN_VM)
    with pytest.raises(z.NotFoundError):
        await client.instances.wait_status(UNKNOWN_VM, IS.ACTIVE)


async def test_an_account_with_no_instances_lists_none(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    assert await connect(emulator).instances.list() == []


async def test_every_status_the_notes_name_is_read(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    from zomro_async.testing._emulator import INSTANCE_STATUSES

    emulator = await start_emulator(single_elem_as_object=True)
    for n, status in enumerate(INSTANCE_STATUSES):
        emulator.add_instance(VM + n, status=status)
    listed = await connect(emulator).instances.list()
    assert [i.status.value for i in listed] == list(INSTANCE_STATUSES)
    assert IS.UNKNOWN not in [i.status for i in listed]


# -- waits -------------------------------------------------------------------------------


async def test_wait_status_reaches_stopped(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM)
    client = connect(emulator)
    emulator.set_instance_status(VM, "stopping", then="stopped", after=15.0)
    started = zomro_clock.monotonic()
    seen: list[z.InstanceStatus] = []

    got = await client.instances.wait_status(
        VM, IS.STOPPED, on_update=lambda i: seen.append(i.status)
    )

    assert got.status is IS.STOPPED
    assert zomro_clock.monotonic() - started >= 15.0
    assert set(seen) == {IS.STOPPING}


async def test_wait_settled_returns_the_steady_state(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM)
    client = connect(emulator)
    instance = await client.instances.get(VM)
    emulator.set_instance_status(VM, "rebooting", then="active", after=12.0)

    got = await instance.wait_settled()

    assert got.status is IS.ACTIVE
    assert zomro_clock.monotonic() >= 12.0
    # A steady instance is settled at once: one listing.
    listed = emulator.calls[LIST]
    emulator.set_instance_status(VM, "stopped")
    assert (await instance.wait_settled()).status is IS.STOPPED
    assert emulator.calls[LIST] == listed + 1


async def test_reaching_error_fails_the_wait_with_the_instance(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM)
    client = connect(emulator)
    emulator.set_instance_status(VM, "resizing", then="error", after=10.0)

    with pytest.raises(z.InstanceFailed) as caught:
        await client.instances.wait_status(VM, IS.ACTIVE)

    assert caught.value.instance.id == VM
    assert caught.value.instance.status is IS.ERROR
    assert 10.0 <= zomro_clock.monotonic() < 30.0  # failed when seen, not at the deadline


async def test_a_wait_times_out_with_the_last_state(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM, status="building")
    client = connect(emulator)
    with pytest.raises(z.WaitTimeout) as caught:
        await client.instances.wait_settled(VM, timeout=20.0)
    assert isinstance(caught.value.last, z.Instance)
    assert caught.value.last.status is IS.BUILDING
    assert zomro_clock.monotonic() == pytest.approx(20.0, abs=0.01)


async def test_a_wait_rides_out_an_outage(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM)
    client = connect(emulator)
    emulator.set_instance_status(VM, "stopping", then="stopped", after=20.0)
    waiting = asyncio.create_task(client.instances.wait_status(VM, IS.STOPPED))
    await until(lambda: emulator.calls[LIST] >= 2, zomro_clock, step=0.1)
    await emulator.outage(60.0, mode="html503")
    got = await waiting
    assert got.status is IS.STOPPED
    assert zomro_clock.monotonic() >= 60.0


@pytest.mark.parametrize("page_size", [None, 50])
async def test_many_waits_cost_one_listing_per_tick(
    start_emulator: StartEmulator,
    connect: Connect,
    zomro_clock: VirtualClock,
    page_size: int | None,
) -> None:
    count = 200
    emulator = await start_emulator(page_size=page_size)
    ids = [VM + n for n in range(count)]
    for n, instance_id in enumerate(ids):
        emulator.add_instance(instance_id)
        # Staggered, so the waits end over several ticks.
        emulator.set_instance_status(instance_id, "stopping", then="stopped", after=5.0 + n % 20)
    client = connect(emulator)
    pages = 1 if page_size is None else -(-count // page_size)

    got = await asyncio.gather(*(client.instances.wait_status(i, IS.STOPPED) for i in ids))

    assert [g.id for g in got] == ids
    assert all(g.status is IS.STOPPED for g in got)
    ticks = client.instances.poller.list_calls
    assert 3 <= ticks <= 10
    assert emulator.calls[LIST] == ticks * pages  # one listing (all its pages) per tick
    assert emulator.calls["instances.filter"] <= ticks  # at most one clear per tick
    assert client.instances.poller.watched == 0


async def test_waits_on_instances_and_snapshots_share_one_poller(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator(time_to_active=10.0)
    emulator.add_instance(VM)
    client = connect(emulator)
    snap = await client.snapshots.create(VM, "n")
    emulator.set_instance_status(VM, "rebooting", then="active", after=10.0)
    active, instance = await asyncio.gather(snap.wait_active(), client.instances.wait_settled(VM))
    assert active.status is S.ACTIVE
    assert instance.status is IS.ACTIVE
    assert client.snapshots.poller is client.instances.poller


# -- bulk jobs over the listed fleet -------------------------------------------------------


async def test_create_many_over_the_listed_instances(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator(time_to_active=4.0)
    for n in range(4):
        emulator.add_instance(VM + n)
    client = connect(emulator)
    fleet = await client.instances.list()

    results = await client.snapshots.create_many(fleet, "nightly-{instance_id}")

    assert [r.instance_id for r in results] == [i.id for i in fleet]
    assert all(r.ok and r.snapshot is not None for r in results)
    assert all(r.snapshot.status is S.ACTIVE for r in results if r.snapshot)
    for instance in fleet:
        assert [row["name"] for row in emulator.snapshots_of(instance.id)] == [
            f"nightly-{instance.id}"
        ]


async def test_rotate_over_the_listed_instances(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator(time_to_active=2.0, delete_linger=1.0)
    emulator.add_instance(VM, snapshots=3)
    emulator.add_instance(OTHER_VM, snapshots=1)
    client = connect(emulator)

    results = await client.snapshots.rotate(await client.instances.list(), keep=2, prefix="seed-")

    assert all(r.ok for r in results), [r.error for r in results]
    assert len(ids_of(emulator, VM)) == 2
    assert len(ids_of(emulator, OTHER_VM)) == 2  # seed-1 and the new one
