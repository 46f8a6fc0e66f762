"""Filters the web panel leaves stored for the user hide nothing from the SDK: every
listing clears them first, so no instance or snapshot is missed, and no create whose
result a filter would hide is made twice."""

from __future__ import annotations

import asyncio

import pytest

import zomro_async as z
from zomro_async._core._inferred import FILTER_CLEAR_REUSE
from zomro_async.testing import VirtualClock

from ._support import OTHER_VM, VM, Connect, StartEmulator, ids_of, until

IS = z.InstanceStatus
S = z.SnapshotStatus
INSTANCES_FILTER = "instances.filter"
SNAPSHOTS_FILTER = "instances.snapshots.filter"


async def test_an_instances_filter_left_by_the_panel_hides_nothing(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM, name="web-1")
    emulator.add_instance(OTHER_VM, name="db-1", status="stopped")
    emulator.set_stored_filter(INSTANCES_FILTER, name="web", instance_status="active")
    client = connect(emulator)

    listed = await client.instances.list()

    assert [i.id for i in listed] == [VM, OTHER_VM]
    assert emulator.stored_filter(INSTANCES_FILTER) == {}


async def test_a_snapshots_filter_left_by_the_panel_hides_nothing(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM, snapshots=3)
    emulator.add_instance(OTHER_VM, snapshots=1)
    emulator.set_stored_filter(SNAPSHOTS_FILTER, name="x")
    client = connect(emulator)

    assert [s.id for s in await client.snapshots.list(VM)] == ids_of(emulator, VM)
    assert len(ids_of(emulator, VM)) == 3
    assert emulator.stored_filter(SNAPSHOTS_FILTER) == {}
    assert len(await client.snapshots.list(OTHER_VM)) == 1


async def test_a_filter_set_again_after_the_reuse_window_is_cleared_again(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM, name="web-1")
    emulator.add_instance(OTHER_VM, name="db-1")
    client = connect(emulator)
    assert len(await client.instances.list()) == 2
    await zomro_clock.sleep(FILTER_CLEAR_REUSE + 0.5)
    emulator.set_stored_filter(INSTANCES_FILTER, name="db")

    assert [i.id for i in await client.instances.list()] == [VM, OTHER_VM]
    assert emulator.stored_filter(INSTANCES_FILTER) == {}
    assert emulator.calls[INSTANCES_FILTER] == 2


async def test_listings_within_the_reuse_window_share_one_clear(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    for n in range(3):
        emulator.add_instance(VM + n, snapshots=1)
    client = connect(emulator)
    await asyncio.gather(
        client.instances.list(),
        client.instances.list(),
        *(client.snapshots.list(VM + n) for n in range(3)),
    )
    assert emulator.calls[INSTANCES_FILTER] == 1
    assert emulator.calls[SNAPSHOTS_FILTER] == 1  # one filter for every instance's listing


async def test_a_filter_hides_nothing_from_waits(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator(time_to_active=12.0)
    emulator.add_instance(VM)
    client = connect(emulator)
    snap = await client.snapshots.create(VM, "nightly")
    emulator.set_instance_status(VM, "stopping", then="stopped", after=8.0)

    async def panel() -> None:
        # Someone in the panel keeps filtering both lists while the waits run.
        for _ in range(6):
            emulator.set_stored_filter(INSTANCES_FILTER, instance_status="active")
            emulator.set_stored_filter(SNAPSHOTS_FILTER, fleio_status="Saving")
            await zomro_clock.sleep(2.5)

    stopped, active, _ = await asyncio.gather(
        client.instances.wait_status(VM, IS.STOPPED), snap.wait_active(), panel()
    )
    assert stopped.status is IS.STOPPED
    assert active.status is S.ACTIVE


async def test_a_restore_sees_through_a_filter_left_by_the_panel(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM, snapshots=1, name="web-1")
    client = connect(emulator)
    (snap,) = await client.snapshots.list(VM)
    emulator.set_stored_filter(INSTANCES_FILTER, name="db")
    emulator.lose_answers("instances.fleio.rebuild")

    got = await client.instances.restore(VM, snap, password="Sup3rSecretRoot", wait=True)

    assert got.status is IS.ACTIVE
    assert len(emulator.rebuilds) == 1
    assert emulator.stored_filter(INSTANCES_FILTER) == {}


@pytest.mark.parametrize("kind", ["html502", "html504", "reset"])
async def test_a_create_a_name_filter_would_hide_is_not_made_twice(
    start_emulator: StartEmulator, connect: Connect, kind: str
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM, snapshots=1)
    emulator.set_stored_filter(SNAPSHOTS_FILTER, name="x")
    emulator.lose_answers("instances.snapshots.edit", kind=kind)
    client = connect(emulator)

    made = await client.snapshots.create(VM, "nightly")

    assert made.name == "nightly"
    names = [row["name"] for row in emulator.snapshots_of(VM)]
    assert names.count("nightly") == 1
    assert emulator.calls["instances.snapshots.edit"] == 1


async def test_a_create_after_the_panel_filtered_again_is_not_made_twice(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM)
    client = connect(emulator)
    assert await client.snapshots.list(VM) == []  # cleared once, long before the create
    await zomro_clock.sleep(FILTER_CLEAR_REUSE * 5)
    emulator.set_stored_filter(SNAPSHOTS_FILTER, fleio_status="Active")  # hides a Saving one
    emulator.lose_answers("instances.snapshots.edit")

    made = await client.snapshots.create(VM, "nightly")

    assert made.status is S.SAVING
    assert [row["name"] for row in emulator.snapshots_of(VM)] == ["nightly"]
    assert emulator.calls["instances.snapshots.edit"] == 1


async def test_a_filter_set_while_a_create_watches_is_cleared_at_the_next_look(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    # The answer is lost and the server holds the create; meanwhile the panel sets
    # a filter that hides it. The next look (past the reuse window) clears it.
    emulator = await start_emulator()
    emulator.add_instance(VM)
    client = connect(emulator)
    emulator.hold("instances.snapshots.edit", 4.0, count=1)
    emulator.lose_answers("instances.snapshots.edit", kind="html504")
    creating = asyncio.create_task(client.snapshots.create(VM, "nightly"))
    await until(lambda: emulator.calls["instances.snapshots.edit"] == 1, zomro_clock, step=0.1)
    emulator.set_stored_filter(SNAPSHOTS_FILTER, name="other")

    made = await creating

    assert made.name == "nightly"
    assert [row["name"] for row in emulator.snapshots_of(VM)] == ["nightly"]
    assert emulator.calls["instances.snapshots.edit"] == 1


async def test_a_filter_saved_inside_the_reuse_window_does_not_fail_a_wait(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    # A filter saved within the reuse window of a clear hides a row from the
    # listings that reuse it: the absence must not be taken for a disappearance.
    emulator = await start_emulator(time_to_active=30.0)
    emulator.add_instance(VM)
    emulator.add_instance(OTHER_VM)
    client = connect(emulator)
    alpha = await client.snapshots.create(VM, "alpha")
    beta = await client.snapshots.create(OTHER_VM, "beta")
    # Two watches, a second apart: VM's ticks clear (at 0, 2, 5, ...), OTHER_VM's
    # (at 1, 3, 6, ...) reuse the clear made a second before.
    first = asyncio.create_task(alpha.wait_active())
    await zomro_clock.sleep(1.0)
    second = asyncio.create_task(beta.wait_active())
    await zomro_clock.sleep(4.5)  # just after VM's clear at 5
    emulator.set_stored_filter(SNAPSHOTS_FILTER, name="alpha")  # the panel, looking for alpha

    results = await asyncio.gather(first, second, return_exceptions=True)

    assert [getattr(r, "status", r) for r in results] == [S.ACTIVE, S.ACTIVE]


async def test_a_filter_saved_inside_the_reuse_window_does_not_fail_an_instance_wait(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    # As above, for the instances listing: another caller's clear is reused.
    emulator = await start_emulator()
    emulator.add_instance(VM, name="web-1")
    emulator.add_instance(OTHER_VM, name="db-1")
    client = connect(emulator)
    emulator.set_instance_status(VM, "stopping", then="stopped", after=20.0)
    waiting = asyncio.create_task(client.instances.wait_status(VM, IS.STOPPED))  # ticks 0, 2, 5
    await zomro_clock.sleep(4.0)
    await client.instances.get(OTHER_VM)  # another caller's listing clears at 4
    emulator.set_stored_filter(INSTANCES_FILTER, name="db")  # the panel, at 4

    got = await asyncio.gather(waiting, return_exceptions=True)

    assert [getattr(r, "status", r) for r in got] == [IS.STOPPED]


async def test_a_filter_saved_right_after_a_listing_hides_nothing_from_the_next(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    # No time passes: a listing the caller reads clears the filter itself, never
    # trusting the clear of the listing just before.
    emulator = await start_emulator()
    emulator.add_instance(VM, snapshots=2)
    emulator.add_instance(OTHER_VM)
    emulator.set_instance_status(OTHER_VM, "stopped")
    client = connect(emulator)
    assert {i.id for i in await client.instances.list()} == {VM, OTHER_VM}
    emulator.set_stored_filter(INSTANCES_FILTER, instance_status="stopped")
    assert {i.id for i in await client.instances.list()} == {VM, OTHER_VM}
    assert len(await client.snapshots.list(VM)) == 2
    emulator.set_stored_filter(SNAPSHOTS_FILTER, name="nothing-like-it")
    assert len(await client.snapshots.list(VM)) == 2
