"""A server that pages listings at a size it remembers: the client follows every page."""

from __future__ import annotations

import zomro_async as z

from ._support import VM, Connect, StartEmulator, ids_of


async def test_listing_create_and_rotation_see_every_page(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator(page_size=2, time_to_active=2.0, delete_linger=1.0)
    emulator.add_instance(VM, snapshots=5)
    client = connect(emulator)

    listed = await client.snapshots.list(VM)
    assert [s.id for s in listed] == ids_of(emulator, VM)
    assert len(listed) == 5
    assert emulator.calls["instances.snapshots"] == 3  # pages 1, 2 and 3

    made = await client.snapshots.create(VM, "on-page-three")  # found past page one
    assert made.name == "on-page-three"
    [rotated] = await client.snapshots.rotate([VM], keep=2, prefix="seed-")
    assert rotated.ok
    assert [s.name for s in rotated.deleted] == ["seed-1", "seed-2", "seed-3", "seed-4"]
    assert len(await client.snapshots.list(VM)) == 3  # seed-5, on-page-three, the new one


async def test_a_page_past_the_end_repeats_and_is_not_counted_twice(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator(page_size=3)
    emulator.add_instance(VM, snapshots=3)
    client = connect(emulator)
    assert len(await client.snapshots.list(VM)) == 3
    assert emulator.calls["instances.snapshots"] == 1
    assert isinstance((await client.snapshots.list(VM))[0], z.Snapshot)
