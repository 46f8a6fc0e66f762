"""Transient faults and ambiguous creates: retried, bounded, and never a duplicate snapshot."""

from __future__ import annotations

import asyncio

import pytest

import zomro_async as z
from zomro_async.testing import FAULT_KINDS, VirtualClock, ZomroEmulator

from ._support import VM, Connect, StartEmulator, ids_of, total_calls, until

S = z.SnapshotStatus
LIST = "instances.snapshots"
EDIT = "instances.snapshots.edit"
FAILING_KINDS = ("html502", "html503", "reset", "truncated")
# The HTTP status each kind of fault surfaces with (a reset has none; a cut body came as 200).
STATUS_OF = {"html502": 502, "html503": 503, "reset": None, "truncated": 200}
FEW_RETRIES = z.RetryPolicy(attempts=3, initial_wait=0.1, max_wait=0.5, jitter=0.0)


def test_every_fault_kind_is_covered() -> None:
    assert set(FAULT_KINDS) == {*FAILING_KINDS, "slow"}


async def _round_trip(client: z.ZomroClient, emulator: ZomroEmulator) -> None:
    """list, create, wait, get, delete, wait: the whole lifecycle, checked as it goes."""
    seeded = ids_of(emulator, VM)
    assert [s.id for s in await client.snapshots.list(VM)] == seeded
    snap = await client.snapshots.create(VM, "through-the-storm")
    assert snap.status is S.SAVING
    assert ids_of(emulator, VM) == [*seeded, snap.id]  # exactly one new snapshot
    active = await snap.wait_active()
    assert active.status is S.ACTIVE
    assert active.image_size == 3
    assert await client.snapshots.get(VM, snap.id) == active
    await active.delete()
    await active.wait_deleted()
    assert ids_of(emulator, VM) == seeded


@pytest.mark.parametrize("seed", [7, 11])
@pytest.mark.parametrize("kind", FAILING_KINDS)
async def test_faults_are_absorbed_by_retries(
    start_emulator: StartEmulator, connect: Connect, kind: str, seed: int
) -> None:
    emulator = await start_emulator(fault_rate=0.3, fault_kinds=(kind,), seed=seed)
    emulator.add_instance(VM, snapshots=1)
    client = connect(emulator)

    await _round_trip(client, emulator)

    assert emulator.faults[kind] > 0
    assert set(emulator.faults) == {kind}
    assert client.retries > 0
    assert emulator.calls["auth"] >= 1


async def test_slow_answers_are_waited_for(start_emulator: StartEmulator, connect: Connect) -> None:
    emulator = await start_emulator(
        fault_rate=0.3, fault_kinds=("slow",), slow_seconds=0.02, seed=7
    )
    emulator.add_instance(VM, snapshots=1)
    client = connect(emulator)

    await _round_trip(client, emulator)

    assert emulator.faults["slow"] > 0
    assert client.retries == 0  # slow is not failed: nothing needed repeating


async def test_slow_answers_past_the_request_timeout_are_retried(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator(
        fault_rate=0.3, fault_kinds=("slow",), slow_seconds=0.25, seed=3
    )
    emulator.add_instance(VM, snapshots=2)
    client = connect(emulator, token=emulator.token, request_timeout=0.05)

    for _ in range(8):
        assert len(await client.snapshots.list(VM)) == 2

    assert emulator.faults["slow"] > 0
    assert client.retries == emulator.faults["slow"]


@pytest.mark.parametrize("kind", FAILING_KINDS)
async def test_dead_api_gives_up_after_the_retry_policy(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock, kind: str
) -> None:
    emulator = await start_emulator(fault_rate=1.0, fault_kinds=(kind,))
    emulator.add_instance(VM)
    client = connect(emulator, token=emulator.token, retry=FEW_RETRIES)

    with pytest.raises(z.TransportError) as info:
        await client.snapshots.list(VM)

    assert info.value.status == STATUS_OF[kind]
    # The stored-filter clear that comes first gives up; the listing is never sent.
    assert emulator.calls[f"{LIST}.filter"] == 3
    assert total_calls(emulator) == 3
    assert client.retries == 2
    assert zomro_clock.monotonic() < 5.0


async def test_dead_api_create_gives_up_without_creating(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator(fault_rate=1.0, fault_kinds=("html503",))
    emulator.add_instance(VM)
    client = connect(emulator, token=emulator.token, retry=FEW_RETRIES)

    with pytest.raises(z.TransportError):
        await client.snapshots.create(VM, "never")

    assert emulator.calls[EDIT] == 0
    assert emulator.snapshots_of(VM) == []


async def test_slow_dead_api_gives_up(start_emulator: StartEmulator, connect: Connect) -> None:
    emulator = await start_emulator(fault_rate=1.0, fault_kinds=("slow",), slow_seconds=0.2)
    emulator.add_instance(VM)
    client = connect(
        emulator,
        token=emulator.token,
        request_timeout=0.03,
        retry=z.RetryPolicy(attempts=2, initial_wait=0.1, jitter=0.0),
    )

    with pytest.raises(z.TransportError) as info:
        await client.snapshots.list(VM)

    assert info.value.status is None
    assert emulator.calls[f"{LIST}.filter"] == 2
    assert client.retries == 1


async def test_dead_api_login_is_bounded_by_the_retry_policy(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator(fault_rate=1.0, fault_kinds=("html502",))
    emulator.add_instance(VM)
    client = connect(emulator, retry=FEW_RETRIES)

    with pytest.raises(z.TransportError):
        await client.snapshots.list(VM)

    assert total_calls(emulator) <= FEW_RETRIES.attempts
    assert client.retries <= FEW_RETRIES.attempts - 1


# -- ambiguous creates: made, but answered with an error page ------------------------


async def test_ambiguous_create_returns_the_snapshot_made(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator(ambiguous_create_rate=1.0)
    emulator.add_instance(VM, snapshots=1)
    (seeded,) = ids_of(emulator, VM)
    client = connect(emulator)

    made = []
    for n in range(3):
        snap = await client.snapshots.create(VM, f"ambiguous-{n}")
        made.append(snap.id)
        assert snap.name == f"ambiguous-{n}"
        assert snap.status is S.SAVING
        assert ids_of(emulator, VM) == [seeded, *made]  # one new snapshot, no duplicate
        assert emulator.calls[EDIT] == n + 1  # the create was never blindly repeated
        assert (await snap.wait_active()).status is S.ACTIVE

    assert emulator.ambiguous_creates == 3
    assert client.retries == 0


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_bulk_creates_through_faults_make_exactly_one_each(
    start_emulator: StartEmulator, connect: Connect, seed: int
) -> None:
    emulator = await start_emulator(ambiguous_create_rate=0.3, fault_rate=0.1, seed=seed)
    instances = list(range(6_000_001, 6_000_031))
    for instance_id in instances:
        emulator.add_instance(instance_id, snapshots=1)
    seeded = {i: ids_of(emulator, i) for i in instances}
    client = connect(emulator)

    results = await asyncio.gather(*(client.snapshots.create(i, f"bulk-{i}") for i in instances))

    assert len(results) == len(instances)
    for instance_id, snap in zip(instances, results, strict=True):
        assert snap.instance_id == instance_id
        assert snap.name == f"bulk-{instance_id}"
        assert ids_of(emulator, instance_id) == [*seeded[instance_id], snap.id]
    assert len({s.id for s in results}) == len(instances)
    assert emulator.ambiguous_creates > 0
    assert sum(emulator.faults.values()) > 0
    assert emulator.max_in_flight <= 8  # the client's default cap held

    active = await asyncio.gather(*(s.wait_active() for s in results))
    assert [s.id for s in active] == [s.id for s in results]
    assert all(s.status is S.ACTIVE for s in active)
    for instance_id in instances:
        assert len(emulator.snapshots_of(instance_id)) == 2


async def _create_against_a_server_slower_than_the_client(
    start_emulator: StartEmulator,
    connect: Connect,
    clock: VirtualClock,
    time_to_active: float,
) -> tuple[ZomroEmulator, z.Snapshot]:
    # The proxy gives up on the first two create posts at once (504), and the
    # backend carries each out 40 s later: after the client's 20 s watch of the
    # first, and after it sent the create again.
    emulator = await start_emulator(time_to_active=time_to_active)
    emulator.act_late(EDIT, 40.0, count=2)
    emulator.add_instance(VM)
    client = connect(emulator, token=emulator.token, request_timeout=20.0)
    snap = await client.snapshots.create(VM, "once")
    await until(lambda: not emulator.late_acts_pending, clock)  # both posts land
    assert emulator.late_acts[EDIT] == 2
    assert emulator.calls[EDIT] == 2  # the create was re-sent after the first failed
    return emulator, snap


async def test_a_create_abandoned_on_a_slow_server_makes_no_duplicate(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    # Real snapshots take minutes: the abandoned request lands while the re-sent
    # one is still Saving, and the API refuses it (one snapshot in progress).
    emulator, snap = await _create_against_a_server_slower_than_the_client(
        start_emulator, connect, zomro_clock, time_to_active=60.0
    )
    assert ids_of(emulator, VM) == [snap.id]


@pytest.mark.xfail(
    strict=True,
    reason="KNOWN LIMITATION (docs/errors.md): a create the server holds longer than "
    "the request timeout plus the grace, on a snapshot that completes before the held "
    "request lands, can still duplicate; no client can see a request the server has "
    "not acted on yet",
)
async def test_an_instant_snapshot_and_a_server_slower_than_the_grace_can_duplicate(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator, snap = await _create_against_a_server_slower_than_the_client(
        start_emulator, connect, zomro_clock, time_to_active=0.0
    )
    assert ids_of(emulator, VM) == [snap.id]
