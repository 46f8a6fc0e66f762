"""Rotation against the emulator: retention, reruns that adopt, failures, the daily limit."""

from __future__ import annotations

import asyncio
import datetime

import attrs
import pytest

import zomro_async as z
from zomro_async._core._rotation import plan_rotation
from zomro_async.testing import VirtualClock, ZomroEmulator

from ._support import Connect, StartEmulator, total_calls

OLD = ["auto-a", "auto-b", "auto-c", "auto-d"]
CREATE = "instances.snapshots.edit"
DELETE = "image.delete"


async def seed(client: z.ZomroClient, instance_id: int, names: list[str]) -> list[z.Snapshot]:
    made = []
    for name in names:
        snapshot = await client.snapshots.create(instance_id, name)
        made.append(await snapshot.wait_active())
    return made


def names_on(emulator: ZomroEmulator, instance_id: int) -> list[str]:
    return [row["name"] for row in emulator.snapshots_of(instance_id)]


def kept_names(result: z.RotationResult) -> list[tuple[str, tuple[str, ...]]]:
    return [(s.name, rules) for s, rules in result.kept]


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
    assert not result.resumed
    assert result.snapshot is not None
    assert result.snapshot.status is z.SnapshotStatus.ACTIVE
    assert result.planned_name == result.snapshot.name
    assert result.snapshot.name.startswith("auto-2026-")
    assert [s.id for s in result.deleted] == [old[0].id, old[1].id]
    assert names_on(emulator, 1) == ["seed-1", "auto-c", "auto-d", result.snapshot.name]
    assert kept_names(result) == [
        (result.snapshot.name, ("last",)),
        ("auto-d", ("last",)),
        ("auto-c", ("last",)),
    ]
    kinds = [e.kind for e in events]
    assert kinds.index(z.ProgressKind.ACTIVE) < kinds.index(z.ProgressKind.DELETING)


async def test_a_retention_keeps_by_calendar_and_leaves_protected_and_unprefixed_alone(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    # The clock starts on Thursday 2026-01-01, ISO week 1 of 2026 (from Monday 2025-12-29).
    emulator = await start_emulator(time_to_active=2.0, delete_linger=1.0)
    emulator.add_instance(1, snapshots=1)
    client = connect(emulator)
    dates = ["2025-12-20", "2025-12-27", "2025-12-28", "2025-12-29", "2025-12-30", "2025-12-31"]
    made = await seed(client, 1, [f"auto-{d}-020000" for d in dates])
    old = dict(zip(dates, made, strict=True))
    # Newer than 12-27 in the same week: counted, it would take that week's place.
    emulator.set_protected(1, old["2025-12-28"].id)

    [result] = await client.snapshots.rotate([1], keep=z.Retention(daily=2, weekly=3))

    assert result.ok, result.error
    assert result.snapshot is not None
    new = result.snapshot.name
    assert kept_names(result) == [
        (new, ("daily", "weekly")),
        ("auto-2025-12-31-020000", ("daily",)),
        ("auto-2025-12-27-020000", ("weekly",)),
        ("auto-2025-12-20-020000", ("weekly",)),
    ]
    assert [s.id for s in result.deleted] == [old["2025-12-29"].id, old["2025-12-30"].id]
    assert names_on(emulator, 1) == [
        "seed-1",
        "auto-2025-12-20-020000",
        "auto-2025-12-27-020000",
        "auto-2025-12-28-020000",
        "auto-2025-12-31-020000",
        new,
    ]


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


async def test_a_rerun_within_the_period_adopts_the_snapshot_instead_of_a_second(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator(time_to_active=2.0, delete_linger=1.0)
    emulator.add_instance(1)
    client = connect(emulator)
    [first] = await client.snapshots.rotate([1], keep=3)
    await zomro_clock.sleep(3 * 3600.0)  # a cron retry, later the same day
    events: list[z.ProgressEvent] = []

    [again] = await client.snapshots.rotate([1], keep=3, on_progress=events.append)

    assert again.ok, again.error
    assert again.resumed
    assert not first.resumed
    assert first.snapshot is not None
    assert again.snapshot is not None
    assert again.snapshot.id == first.snapshot.id
    assert again.planned_name == first.snapshot.name  # not this run's later time
    assert emulator.calls[CREATE] == 1
    assert [e.kind for e in events] == [z.ProgressKind.ACTIVE]
    assert names_on(emulator, 1) == [first.snapshot.name]

    await zomro_clock.sleep(86_400.0)  # the next day is a new period
    [next_day] = await client.snapshots.rotate([1], keep=3)
    assert not next_day.resumed
    assert emulator.calls[CREATE] == 2


async def test_a_rerun_after_an_interruption_awaits_the_snapshot_still_saving(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator(time_to_active=600.0)
    emulator.add_instance(1)
    client = connect(emulator)
    job = client.snapshots.rotate([1], keep=2)
    async for event in job:
        if event.kind is z.ProgressKind.CREATED:
            job.cancel()  # Ctrl-C, or a pod restart, while it is Saving
    with pytest.raises(asyncio.CancelledError):
        await job
    (row,) = emulator.snapshots_of(1)
    assert row["fleio_status"] == "Saving"

    [result] = await client.snapshots.rotate([1], keep=2)

    assert result.ok, result.error
    assert result.resumed
    assert result.snapshot is not None
    assert result.snapshot.id == int(row["id"])
    assert result.snapshot.status is z.SnapshotStatus.ACTIVE
    assert emulator.calls[CREATE] == 1


async def test_hourly_rotations_adopt_within_the_hour_and_make_one_the_next(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator(time_to_active=2.0, delete_linger=1.0)
    emulator.add_instance(1)
    client = connect(emulator)
    keep = z.Retention(hourly=2, daily=1)
    made = []
    for pause in (0.0, 1200.0, 3600.0, 3600.0):
        await zomro_clock.sleep(pause)
        [result] = await client.snapshots.rotate([1], keep=keep)
        assert result.ok, result.error
        made.append(result)

    assert [r.resumed for r in made] == [False, True, False, False]
    assert emulator.calls[CREATE] == 3
    third, last = made[2].snapshot, made[3].snapshot
    assert third is not None
    assert last is not None
    assert kept_names(made[3]) == [(last.name, ("hourly", "daily")), (third.name, ("hourly",))]
    assert names_on(emulator, 1) == [third.name, last.name]


async def test_a_rerun_after_a_failed_snapshot_creates_and_clears_the_failed_one(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator(time_to_active=2.0, delete_linger=1.0)
    emulator.add_instance(1, snapshots=3, kill=True)  # Active seed-1..3; anything new dies
    client = connect(emulator)

    [first] = await client.snapshots.rotate([1], keep=2, prefix="seed-")
    await zomro_clock.sleep(600.0)
    [second] = await client.snapshots.rotate([1], keep=2, prefix="seed-")

    for result in (first, second):
        assert isinstance(result.error, z.SnapshotFailed)
        assert not result.resumed  # a failed one of the period is not adopted
        assert result.snapshot is not None
        assert result.snapshot.status is z.SnapshotStatus.KILLED
        assert result.kept == ()
    assert first.snapshot is not None
    assert second.snapshot is not None
    assert emulator.calls[CREATE] == 2
    assert first.deleted == ()
    # The earlier failed one goes, also on a run whose own snapshot failed; the
    # good ones stay; this run's failed one is left for the next run, reported.
    assert [s.id for s in second.deleted] == [first.snapshot.id]
    assert names_on(emulator, 1) == ["seed-1", "seed-2", "seed-3", second.planned_name]
    assert emulator.calls[DELETE] == 1


async def test_a_failed_new_snapshot_leaves_the_good_ones_alone(
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
    assert emulator.calls[DELETE] == 3


def snap(
    sid: int,
    name: str,
    status: z.SnapshotStatus = z.SnapshotStatus.ACTIVE,
    created: datetime.date | None = None,
) -> z.Snapshot:
    return z.Snapshot(id=sid, instance_id=1, name=name, status=status, created=created)


def test_failed_ones_go_first_count_for_nothing_and_keep_is_never_undercut() -> None:
    listed = [
        snap(1, "auto-a"),
        snap(2, "auto-b", z.SnapshotStatus.KILLED),
        snap(3, "auto-c"),
        snap(4, "manual"),
        attrs.evolve(snap(5, "auto-d"), protected=True),
        snap(7, "auto-e", z.SnapshotStatus.ERROR),
        snap(8, "auto-new"),
    ]
    plan = plan_rotation(listed, prefix="auto-", retention=z.Retention(last=2), own=listed[-1])
    assert [v.id for v in plan.victims] == [2, 7, 1]
    assert [(s.id, rules) for s, rules in plan.kept] == [(8, ("last",)), (3, ("last",))]
    roomy = plan_rotation(listed, prefix="auto-", retention=z.Retention(last=9), own=listed[-1])
    assert [v.id for v in roomy.victims] == [2, 7]  # failed ones go whatever is kept


def test_one_being_made_or_deleted_is_neither_counted_nor_deleted() -> None:
    day = datetime.date(2026, 1, 1)
    listed = [
        snap(1, "auto-2025-12-29-020000"),
        snap(2, "auto-2025-12-30-020000", z.SnapshotStatus.SAVING),  # another run's
        snap(3, "auto-2025-12-31-020000", z.SnapshotStatus.DELETING),
        snap(4, "auto-2026-01-01-020000", created=day),
    ]
    plan = plan_rotation(listed, prefix="auto-", retention=z.Retention(last=2), own=listed[-1])
    assert plan.victims == ()
    assert [(s.id, rules) for s, rules in plan.kept] == [
        (4, ("last",)),
        (2, ("in progress",)),
        (1, ("last",)),
    ]


def test_one_neither_active_nor_failed_is_neither_counted_nor_deleted() -> None:
    listed = [
        snap(1, "auto-2026-01-01-020000"),
        snap(2, "auto-2026-01-02-020000", z.SnapshotStatus.DEACTIVATED),
        snap(3, "auto-2026-01-03-020000", z.SnapshotStatus.UNKNOWN),  # a state not known
        snap(4, "auto-2026-01-04-020000"),
    ]
    plan = plan_rotation(listed, prefix="auto-", retention=z.Retention(last=2), own=listed[-1])
    # Neither takes a place of the two the rule keeps, nor is let go.
    assert plan.victims == ()
    assert [(s.id, rules) for s, rules in plan.kept] == [
        (4, ("last",)),
        (3, ("not active",)),
        (2, ("not active",)),
        (1, ("last",)),
    ]


def test_the_new_snapshot_is_kept_even_behind_one_named_in_the_future() -> None:
    listed = [snap(n, f"auto-old-{n}") for n in range(1, 300)]
    listed += [snap(300, "auto-2099-01-01-000000"), snap(301, "auto-2026-01-01-000000")]
    plan = plan_rotation(listed, prefix="auto-", retention=z.Retention(last=1), own=listed[-1])
    assert [(s.id, rules) for s, rules in plan.kept] == [(300, ("last",)), (301, ("new",))]
    assert len(plan.expired) == 299


def test_times_come_from_the_names_else_from_the_creation_dates() -> None:
    listed = [
        # Made on the 2nd, named for the 1st: the name wins.
        snap(1, "auto-2026-01-01-230000", created=datetime.date(2026, 1, 2)),
        snap(2, "auto-by-hand", created=datetime.date(2026, 1, 3)),  # the 3rd, 00:00
        snap(3, "auto-2026-01-02-010000", created=datetime.date(2026, 1, 2)),
    ]
    plan = plan_rotation(listed, prefix="auto-", retention=z.Retention(daily=9), own=None)
    assert [s.id for s, _ in plan.kept] == [2, 3, 1]


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
    assert not plan_1.resumed
    assert plan_1.planned_name.startswith("auto-")
    assert [s.id for s in plan_1.deleted] == [old[0].id, old[1].id, old[2].id]
    assert kept_names(plan_1) == [("auto-d", ("last",))]  # with the new one, 2
    assert plan_1.planned_rules == ("last",)  # the new one's place among the two
    assert plan_2.deleted == ()
    assert plan_2.kept == ()
    changed = {f: n - calls_before.get(f, 0) for f, n in emulator.calls.items()}
    assert changed.get(CREATE, 0) == 0
    assert changed.get(DELETE, 0) == 0
    assert changed["instances.snapshots"] == 2
    assert (emulator.snapshots_of(1), emulator.snapshots_of(2)) == rows_before


async def test_a_dry_run_rerun_says_it_would_adopt(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator(time_to_active=2.0)
    emulator.add_instance(1)
    client = connect(emulator)
    [made] = await client.snapshots.rotate([1], keep=1)

    [plan] = await client.snapshots.rotate([1], keep=1, dry_run=True)

    assert plan.resumed
    assert made.snapshot is not None
    assert plan.snapshot is not None
    assert plan.snapshot.id == made.snapshot.id
    assert kept_names(plan) == [(made.snapshot.name, ("last",))]
    assert plan.deleted == ()


@pytest.mark.parametrize(
    ("keep", "prefix", "error", "message"),
    [
        (0, "auto-", ValueError, "at least 1"),
        (True, "auto-", TypeError, "int or a Retention"),
        ("3", "auto-", TypeError, "int or a Retention"),
        (2.0, "auto-", TypeError, "int or a Retention"),
        (2, "", ValueError, "non-empty prefix"),
        (2, " ", ValueError, "non-empty prefix"),
        (z.Retention(hourly=6), "auto-", ValueError, "5 manual snapshots of an instance a day"),
        (z.Retention(hourly=24, daily=7), "auto-", ValueError, "hourly=24 is refused"),
    ],
)
async def test_bad_rotation_settings_send_nothing(
    start_emulator: StartEmulator,
    connect: Connect,
    keep: object,
    prefix: str,
    error: type[Exception],
    message: str,
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(1)
    client = connect(emulator)
    with pytest.raises(error, match=message):
        client.snapshots.rotate([1], keep=keep, prefix=prefix)  # type: ignore[arg-type]
    assert total_calls(emulator) == 0


async def test_five_hourly_snapshots_are_allowed(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator(time_to_active=2.0)
    emulator.add_instance(1)
    client = connect(emulator)
    [result] = await client.snapshots.rotate([1], keep=z.Retention(hourly=5))
    assert result.ok, result.error
