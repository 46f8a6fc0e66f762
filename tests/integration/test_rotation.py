"""Rotation against the emulator: keep-N, prefix only, protected, failures, dry run."""

from __future__ import annotations

import attrs
import pytest

import zomro_async as z
from zomro_async._core._rotation import rotation_victims
from zomro_async.testing import ZomroEmulator

from ._support import Connect, StartEmulator

OLD = ["auto-a", "auto-b", "auto-c", "auto-d"]


async def seed(client: z.ZomroClient, instance_id: int, names: list[str]) -> list[z.Snapshot]:
    made = []
    for name in names:
        snapshot = await client.snapshots.create(instance_id, name)
        made.append(await snapshot.wait_active())
    return made


def names_on(emulator: ZomroEmulator, instance_id: int) -> list[str]:
    return [row["name"] for row in emulator.snapshots_of(instance_id)]


async def test_keep_n_deletes_the_oldest_prefixed_after_the_new_one_is_active(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator(time_to_active=2.0, delete_linger=1.0)
    emulator.add_instance(1, snapshots=1)  # "seed-1": no prefix, never touched
    client = connect(emulator)
    old = await seed(client, 1, OLD)
    events: list[z.ProgressEvent] = []

    [result] = await client.snapshots.rotate([1], keep=3, on_progress=events.append)

    assert result.ok
    assert result.snapshot is not None
    assert result.snapshot.status is z.SnapshotStatus.ACTIVE
    assert result.planned_name == result.snapshot.name
    assert result.snapshot.name.startswith("auto-2026-")
    assert [s.id for s in result.deleted] == [old[0].id, old[1].id]
    assert names_on(emulator, 1) == ["seed-1", "auto-c", "auto-d", result.snapshot.name]
    kinds = [e.kind for e in events]
    assert kinds.index(z.ProgressKind.ACTIVE) < kinds.index(z.ProgressKind.DELETING)


async def test_protected_and_unprefixed_snapshots_are_never_touched_nor_counted(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator(time_to_active=2.0, delete_linger=1.0)
    emulator.add_instance(1, snapshots=2)
    client = connect(emulator)
    old = await seed(client, 1, OLD)
    emulator.set_protected(1, old[0].id)

    [result] = await client.snapshots.rotate([1], keep=2)

    assert result.ok
    assert [s.name for s in result.deleted] == ["auto-b", "auto-c"]
    assert result.snapshot is not None
    assert names_on(emulator, 1) == ["seed-1", "seed-2", "auto-a", "auto-d", result.snapshot.name]


async def test_a_failed_new_snapshot_leaves_the_old_ones_alone(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator(time_to_active=2.0)
    emulator.add_instance(1, snapshots=3)
    emulator.add_instance(2, snapshots=3, kill=True)  # anything made on it now dies
    client = connect(emulator)

    ok, failed = await client.snapshots.rotate([1, 2], keep=1, prefix="seed-")

    assert ok.ok
    assert [s.name for s in ok.deleted] == ["seed-1", "seed-2", "seed-3"]
    assert not failed.ok
    assert isinstance(failed.error, z.SnapshotFailed)
    assert failed.deleted == ()
    assert failed.snapshot is not None  # the dead snapshot is reported, not lost
    assert failed.snapshot.status is z.SnapshotStatus.KILLED
    assert names_on(emulator, 2) == ["seed-1", "seed-2", "seed-3", failed.planned_name]
    assert emulator.calls["image.delete"] == 3


def test_failed_old_snapshots_go_before_good_ones_and_keep_is_never_undercut() -> None:
    def snap(sid: int, name: str, status: z.SnapshotStatus = z.SnapshotStatus.ACTIVE) -> z.Snapshot:
        return z.Snapshot(id=sid, instance_id=1, name=name, status=status)

    listed = [
        snap(1, "auto-a"),
        snap(2, "auto-b", z.SnapshotStatus.KILLED),
        snap(3, "auto-c"),
        snap(4, "manual"),
        attrs.evolve(snap(5, "auto-d"), protected=True),
        snap(6, "auto-new"),
    ]
    victims = rotation_victims(listed, prefix="auto-", keep=2, new_id=6)
    assert [v.id for v in victims] == [2, 1]
    assert rotation_victims(listed, prefix="auto-", keep=9, new_id=6) == []


async def test_dry_run_shows_the_plan_and_changes_nothing(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator(time_to_active=2.0)
    emulator.add_instance(1, snapshots=1)
    emulator.add_instance(2)
    client = connect(emulator)
    old = await seed(client, 1, OLD)
    calls_before = dict(emulator.calls)
    rows_before = (emulator.snapshots_of(1), emulator.snapshots_of(2))

    plan_1, plan_2 = await client.snapshots.rotate([1, 2], keep=2, dry_run=True)

    assert plan_1.dry_run
    assert plan_1.ok
    assert plan_1.snapshot is None
    assert plan_1.planned_name.startswith("auto-")
    assert [s.id for s in plan_1.deleted] == [old[0].id, old[1].id, old[2].id]
    assert plan_2.deleted == ()
    changed = {f: n - calls_before.get(f, 0) for f, n in emulator.calls.items()}
    assert changed.get("instances.snapshots.edit", 0) == 0
    assert changed.get("image.delete", 0) == 0
    assert changed["instances.snapshots"] == 2
    assert (emulator.snapshots_of(1), emulator.snapshots_of(2)) == rows_before


@pytest.mark.parametrize(
    ("keep", "prefix", "error"),
    [
        (0, "auto-", ValueError),
        (True, "auto-", TypeError),
        (2, "", ValueError),
        (2, " ", ValueError),
    ],
)
async def test_bad_rotation_settings_send_nothing(
    start_emulator: StartEmulator,
    connect: Connect,
    keep: object,
    prefix: str,
    error: type[Exception],
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(1)
    client = connect(emulator)
    with pytest.raises(error):
        client.snapshots.rotate([1], keep=keep, prefix=prefix)  # type: ignore[arg-type]
    assert sum(emulator.calls.values()) == 0
