"""Bulk jobs against the emulator: order, failures, faults, budget, serialisation, cancel."""

from __future__ import annotations

import asyncio
import random

import pytest

import zomro_async as z
from zomro_async.testing import VirtualClock, pending_sdk_tasks

from ._support import VM, Connect, StartEmulator, ids_of

K = z.ProgressKind


async def test_results_come_in_input_order_with_events_per_instance(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator()
    ids = [5203705, 5203701, 5203709, 5203703]
    for n, iid in enumerate(ids):
        emulator.add_instance(iid, time_to_active=4.0 + 3 * n)
    client = connect(emulator)
    seen_by_callback: list[z.ProgressEvent] = []

    job = client.snapshots.create_many(
        ids, "nightly-{instance_id}", on_progress=seen_by_callback.append
    )
    seen_by_iterator = [event async for event in job]
    results = await job

    assert [r.instance_id for r in results] == ids
    assert all(r.ok and r.error is None for r in results)
    assert [r.snapshot.name for r in results if r.snapshot] == [f"nightly-{i}" for i in ids]
    assert {r.snapshot.status for r in results if r.snapshot} == {z.SnapshotStatus.ACTIVE}
    assert [r.snapshot_id for r in results] == [r.snapshot.id for r in results if r.snapshot]
    assert seen_by_iterator == seen_by_callback
    for iid in ids:
        kinds = [e.kind for e in seen_by_iterator if e.instance_id == iid]
        assert kinds[0] is K.CREATED
        assert kinds[-1] is K.ACTIVE
        assert set(kinds[1:-1]) <= {K.SAVING}
    stamps = [e.at for e in seen_by_iterator]
    assert stamps == sorted(stamps)
    assert stamps[0].tzinfo is not None


async def test_a_template_renders_date_and_time_and_bad_input_sends_nothing(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM)
    client = connect(emulator)
    for bad_ids, name, error in [
        ([VM, VM], "x", ValueError),
        ([VM, True], "x", TypeError),
        ([VM], "{nope}", ValueError),
        ([VM], "{instance_id", ValueError),
        ([VM], "", ValueError),
        ([VM], 5, TypeError),
        ([VM], "x" * 250 + "{instance_id}", ValueError),
    ]:
        with pytest.raises(error):
            client.snapshots.create_many(bad_ids, name)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="duplicate"):
        client.snapshots.delete_many([(VM, 1), (VM, 1)])
    with pytest.raises(ValueError, match="concurrency"):
        client.snapshots.create_many([VM], "x", concurrency=0)
    assert sum(emulator.calls.values()) == 0

    [result] = await client.snapshots.create_many([VM], "auto-{date}-{time}-{instance_id}")
    assert result.snapshot is not None
    assert result.snapshot.name.startswith("auto-2026-01-01-0000")
    assert result.snapshot.name.endswith(f"-{VM}")


async def test_one_failure_never_stops_the_rest_and_nothing_is_lost(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(1)
    emulator.add_instance(2, kill=True)
    emulator.add_instance(3, time_to_active=500.0)
    emulator.add_instance(5)
    client = connect(emulator)

    results = await client.snapshots.create_many([1, 2, 3, 4, 5], "n", timeout=60.0)

    assert [r.ok for r in results] == [True, False, False, False, True]
    killed, slow, unknown = results[1], results[2], results[3]
    assert isinstance(killed.error, z.SnapshotFailed)
    assert killed.snapshot is not None
    assert killed.snapshot.status is z.SnapshotStatus.KILLED
    assert isinstance(slow.error, z.WaitTimeout)
    assert slow.snapshot is not None  # made, not yet Active: its id is not lost
    assert slow.snapshot.id in ids_of(emulator, 3)
    assert isinstance(unknown.error, z.NotFoundError)
    assert unknown.snapshot is None


@pytest.mark.parametrize("seed", [1, 2])
async def test_a_200_instance_job_under_faults_and_session_expiry_loses_nothing(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock, seed: int
) -> None:
    emulator = await start_emulator(
        fault_rate=0.1, ambiguous_create_rate=0.1, slow_seconds=0.0, seed=seed
    )
    ids = list(range(7000, 7200))
    random.Random(seed).shuffle(ids)
    for iid in ids:
        emulator.add_instance(iid, snapshots=1, time_to_active=random.Random(iid).uniform(3, 12))
    client = connect(emulator, max_in_flight=8)

    async def expire_part_way() -> None:
        await zomro_clock.sleep(5.0)
        emulator.expire_sessions()

    expiry = asyncio.create_task(expire_part_way())
    results = await client.snapshots.create_many(ids, "bulk-{instance_id}")
    await expiry

    assert [r.instance_id for r in results] == ids
    failed = [(r.instance_id, r.error) for r in results if not r.ok]
    assert failed == []
    for r in results:
        assert r.snapshot is not None
        assert r.snapshot.status is z.SnapshotStatus.ACTIVE
        new = [row for row in emulator.snapshots_of(r.instance_id) if row["name"] != "seed-1"]
        assert [int(row["id"]) for row in new] == [r.snapshot.id]  # one each, no duplicate
    assert emulator.faults.total() > 0
    assert emulator.ambiguous_creates > 0
    assert emulator.calls["auth"] >= 2  # logged in again after the expiry
    assert emulator.max_in_flight <= 8


async def test_the_request_cap_is_never_exceeded(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator(fault_rate=0.5, fault_kinds=("slow",), slow_seconds=0.002)
    ids = list(range(100, 140))
    for iid in ids:
        emulator.add_instance(iid)
    client = connect(emulator, max_in_flight=3)
    results = await client.snapshots.create_many(ids, "capped")
    assert all(r.ok for r in results)
    assert 1 < emulator.max_in_flight <= 3


async def test_the_rate_cap_spaces_requests(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM)
    client = connect(emulator, token=emulator.token, max_rate=2.0)
    started = zomro_clock.monotonic()
    await asyncio.gather(*(client.snapshots.list(VM) for _ in range(10)))
    assert zomro_clock.monotonic() - started >= 4.5  # 10 starts, half a second apart
    with pytest.raises(ValueError, match="max_rate"):
        connect(emulator, max_rate=0)


async def test_mutations_on_one_instance_run_one_at_a_time(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator(time_to_active=10.0)
    emulator.add_instance(VM)
    client = connect(emulator)

    first, second = await asyncio.gather(
        client.snapshots.create(VM, "first"), client.snapshots.create(VM, "second")
    )

    # The second create queued behind the first snapshot instead of meeting a conflict.
    assert emulator.calls["instances.snapshots.edit"] == 2
    assert sorted(ids_of(emulator, VM)) == sorted([first.id, second.id])
    assert (await first.refresh()).status is z.SnapshotStatus.ACTIVE


async def test_cancelling_a_bulk_job_leaves_nothing_pending_and_the_client_usable(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator(time_to_active=100.0)
    ids = list(range(300, 330))
    for iid in ids:
        emulator.add_instance(iid)
    client = connect(emulator)
    created: list[z.ProgressEvent] = []
    job = client.snapshots.create_many(ids, "c", on_progress=created.append)
    runner = asyncio.ensure_future(job)
    while len(created) < 10:
        await zomro_clock.sleep(0.5)
    assert pending_sdk_tasks()  # the check below can see the job's tasks
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    for _ in range(5):
        await asyncio.sleep(0)
    assert pending_sdk_tasks() == []
    assert client.snapshots.poller.watched == 0
    assert await client.snapshots.list(ids[0])  # the session is intact


async def test_an_iterating_consumer_cancelled_takes_the_job_with_it(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator(time_to_active=100.0)
    for iid in (1, 2, 3):
        emulator.add_instance(iid)
    client = connect(emulator)
    job = client.snapshots.create_many([1, 2, 3], "it")

    async def consume() -> None:
        async for _ in job:
            pass

    consumer = asyncio.create_task(consume())
    await zomro_clock.sleep(5.0)
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    with pytest.raises(asyncio.CancelledError):
        await job


async def test_a_broken_progress_callback_costs_nobody_their_results(
    start_emulator: StartEmulator, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM)
    client = connect(emulator)

    def explode(event: z.ProgressEvent) -> None:
        raise RuntimeError("callback bug")

    [result] = await client.snapshots.create_many([VM], "x", on_progress=explode)
    assert result.ok
    assert "on_progress callback failed" in caplog.text


async def test_delete_many_takes_snapshots_and_pairs_in_order(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator(delete_linger=5.0)
    for iid in (1, 2, 3):
        emulator.add_instance(iid, snapshots=1)
    client = connect(emulator)
    one = (await client.snapshots.list(1))[0]
    two = (await client.snapshots.list(2))[0]
    events: list[z.ProgressEvent] = []

    results = await client.snapshots.delete_many(
        [one, (2, two.id), (3, 1)], on_progress=events.append
    )

    assert [(r.instance_id, r.snapshot_id, r.ok) for r in results] == [
        (1, one.id, True),
        (2, two.id, True),
        (3, 1, False),
    ]
    assert results[0].snapshot == one
    assert isinstance(results[2].error, z.NotFoundError)
    assert ids_of(emulator, 1) == []
    assert ids_of(emulator, 2) == []
    assert [e.kind for e in events if e.instance_id == 1] == [K.DELETING, K.DELETED]
    # A delete given by ids still says which snapshot each event is about.
    assert {e.snapshot_id for e in events if e.instance_id == 2} == {two.id}
    assert {e.snapshot_id for e in events if e.instance_id == 3} == {1}


async def test_a_restarted_process_resumes_waiting_by_ids(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM)
    first = connect(emulator)
    [result] = await first.snapshots.create_many([VM], "resume", wait=False)
    assert result.snapshot is not None
    assert result.snapshot.status is z.SnapshotStatus.SAVING
    await first.aclose()

    second = connect(emulator)
    active = await second.snapshots.wait_active(VM, result.snapshot.id, timeout=60.0)
    assert active.status is z.SnapshotStatus.ACTIVE


async def test_empty_bulk_jobs_have_no_results(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    client = connect(emulator)
    assert await client.snapshots.create_many([], "n") == []
    assert await client.snapshots.delete_many([]) == []
    assert await client.snapshots.rotate([], keep=2) == []
