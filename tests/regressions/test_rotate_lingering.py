"""rotate(keep=N) must keep N usable snapshots: one already being deleted is not one of them."""

from zomro_async.testing import VirtualClock, ZomroEmulator


async def test_rotation_does_not_count_a_snapshot_being_deleted_as_kept():
    clock = VirtualClock()
    async with ZomroEmulator(clock=clock, delete_linger=5000.0) as emu:
        emu.add_instance(1, snapshots=2)  # seed-1, seed-2, both Active
        async with emu.client() as client:
            seed1, seed2 = await client.snapshots.list(1)
            await seed2.delete()  # an earlier clean-up: seed-2 now lingers as Deleting
            [result] = await client.snapshots.rotate([1], keep=2, prefix="seed-", timeout=6000)
            assert result.ok, result.error
            # keep=2: the new snapshot and seed-1 should remain; seed-2 was going anyway.
            assert seed1.id not in [s.id for s in result.deleted], (
                "rotation deleted seed-1 because it counted the already-deleting seed-2 as kept"
            )


async def test_rotation_never_chooses_a_snapshot_still_saving_nor_counts_it():
    clock = VirtualClock()
    async with ZomroEmulator(clock=clock, time_to_active=5000.0) as emu:
        emu.add_instance(1, snapshots=2, saving=1)  # seed-1, seed-2 Active; seed-3 Saving
        async with emu.client() as client:
            [plan] = await client.snapshots.rotate([1], keep=1, prefix="seed-", dry_run=True)
            assert [s.name for s in plan.deleted] == ["seed-1", "seed-2"]
            # Not this period's (its name has no time): kept aside, taking no place.
            assert [(s.name, rules) for s, rules in plan.kept] == [("seed-3", ("in progress",))]
