"""The snapshot lifecycle through the public client, against the emulator over loopback HTTP."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import pytest

import zomro_async as z
from zomro_async.testing import VirtualClock, ZomroEmulator

from ._support import UNKNOWN_VM, VM, Connect, StartEmulator, ids_of, total_calls

S = z.SnapshotStatus


async def test_full_lifecycle(start_emulator: StartEmulator, connect: Connect) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM, snapshots=1)
    seeded = ids_of(emulator, VM)
    client = connect(emulator)

    before = await client.snapshots.list(VM)
    assert [s.id for s in before] == seeded
    assert before[0].name == "seed-1"
    assert before[0].status is S.ACTIVE

    snap = await client.snapshots.create(VM, "nightly")
    assert snap.status is S.SAVING
    assert snap.status_text == "Saving"
    assert snap.name == "nightly"
    assert snap.instance_id == VM
    assert snap.image_size is None  # known only once creation has finished
    assert snap.item_real_status == 5
    assert snap.id not in seeded
    assert ids_of(emulator, VM) == [*seeded, snap.id]
    assert emulator.calls["instances.snapshots.edit"] == 1

    active = await snap.wait_active()
    assert active.id == snap.id
    assert active.status is S.ACTIVE
    assert active.image_size == 3
    assert active.item_real_status == 2

    listed = await client.snapshots.list(VM)
    assert [s.id for s in listed] == [*seeded, snap.id]
    assert listed[-1] == active

    assert await client.snapshots.get(VM, snap.id) == active
    assert await snap.refresh() == active
    assert await active.refresh() == active

    await active.delete()
    deleting = await active.refresh()
    assert deleting.status is S.DELETING
    assert emulator.calls["image.delete"] == 1

    await active.wait_deleted()
    assert ids_of(emulator, VM) == seeded
    assert all(int(row["id"]) != snap.id for row in emulator.snapshots_of(VM))
    with pytest.raises(z.NotFoundError):
        await active.refresh()
    assert [s.id for s in await client.snapshots.list(VM)] == seeded


async def test_wait_active_by_ids(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator(time_to_active=40.0)
    emulator.add_instance(VM)
    client = connect(emulator)
    snap = await client.snapshots.create(VM, "by-ids")
    started = zomro_clock.monotonic()

    active = await client.snapshots.wait_active(VM, snap.id)

    assert active.id == snap.id
    assert active.status is S.ACTIVE
    assert active.image_size == 3
    assert zomro_clock.monotonic() - started >= 40.0
    await client.snapshots.delete(VM, snap.id)
    await client.snapshots.wait_deleted(VM, snap.id)
    assert ids_of(emulator, VM) == []


async def test_active_snapshot_is_fully_structured(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM)
    client = connect(emulator)
    snap = await (await client.snapshots.create(VM, "MySnapshot")).wait_active()
    (row,) = emulator.snapshots_of(VM)

    for field in attrs.fields(z.Snapshot):
        if field.name not in {"extra", "_client"}:
            assert getattr(snap, field.name) is not None, field.name
    assert snap.extra == {}  # every field the API sends is one the page documents
    assert snap.id == int(row["id"])
    assert snap.instance_id == VM
    assert snap.name == "MySnapshot"
    assert snap.status is S.ACTIVE
    assert snap.status_text == "Active"
    assert snap.architecture == "x86_64"
    assert snap.disk_format == "qcow2"
    assert snap.hypervisor_type == "any_hypervisor"
    assert snap.os_distro == "Ubuntu"
    assert snap.os_version == "22.04 x64"
    assert snap.region == "Netherlands-2"
    assert snap.visibility == "private"
    assert snap.image_size == 3
    assert snap.item_real_status == 2
    assert snap.min_disk == 20
    assert snap.min_ram == 0
    assert snap.protected is False
    assert isinstance(snap.created, datetime.date)
    assert snap.created == datetime.date.fromisoformat(row["createdate"])
    assert snap.created == datetime.datetime.fromtimestamp(zomro_clock.time(), datetime.UTC).date()
    assert isinstance(snap.fleio_id, uuid.UUID)
    assert snap.fleio_id == uuid.UUID(row["fleio_id"])
    assert snap.fleio_id.version == 4


async def test_protected_flag_and_refused_delete(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM, snapshots=1)
    (snap_id,) = ids_of(emulator, VM)
    emulator.set_protected(VM, snap_id)
    client = connect(emulator)

    snap = await client.snapshots.get(VM, snap_id)
    assert snap.protected is True
    with pytest.raises(z.InvalidRequestError) as info:
        await snap.delete()
    assert info.value.object == "protected"
    assert ids_of(emulator, VM) == [snap_id]
    assert (await snap.refresh()).status is S.ACTIVE


async def test_list_of_instance_without_snapshots_is_empty(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM)
    assert await connect(emulator).snapshots.list(VM) == []


async def test_get_of_missing_snapshot_is_not_found(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM, snapshots=1)
    client = connect(emulator)
    missing = max(ids_of(emulator, VM)) + 100
    with pytest.raises(z.NotFoundError):
        await client.snapshots.get(VM, missing)
    with pytest.raises(z.NotFoundError):
        await client.snapshots.wait_active(VM, missing)
    await client.snapshots.wait_deleted(VM, missing)  # already gone: returns at once


async def test_list_of_unknown_instance_is_not_found(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM)
    client = connect(emulator)
    with pytest.raises(z.NotFoundError) as info:
        await client.snapshots.list(UNKNOWN_VM)
    assert isinstance(info.value, z.ApiError)
    assert info.value.func == "instances.snapshots"
    assert client.retries == 0  # an API refusal is not retried
    assert emulator.calls["instances.snapshots"] == 1


async def test_create_on_unknown_instance_is_not_found_and_creates_nothing(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM)
    client = connect(emulator)
    with pytest.raises(z.NotFoundError):
        await client.snapshots.create(UNKNOWN_VM, "ghost")
    assert emulator.calls["instances.snapshots.edit"] == 0
    assert ids_of(emulator, VM) == []
    with pytest.raises(KeyError):
        emulator.snapshots_of(UNKNOWN_VM)


async def test_delete_on_unknown_instance_or_snapshot_is_not_found(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM, snapshots=1)
    (snap_id,) = ids_of(emulator, VM)
    client = connect(emulator)
    with pytest.raises(z.NotFoundError):
        await client.snapshots.delete(UNKNOWN_VM, snap_id)
    with pytest.raises(z.NotFoundError):
        await client.snapshots.delete(VM, snap_id + 100)
    assert ids_of(emulator, VM) == [snap_id]
    assert (await client.snapshots.get(VM, snap_id)).status is S.ACTIVE


# -- invalid input never reaches the wire ----------------------------------------

BAD_IDS: list[tuple[Any, type[Exception]]] = [
    (True, TypeError),
    (False, TypeError),
    (0, ValueError),
    (-1, ValueError),
    (-VM, ValueError),
    (2**63, ValueError),
    (str(VM), TypeError),
    (float(VM), TypeError),
    (None, TypeError),
]

Call = Callable[[z.ZomroClient, Any], Awaitable[Any]]
CALLS_BY_INSTANCE: dict[str, Call] = {
    "list": lambda c, bad: c.snapshots.list(bad),
    "get": lambda c, bad: c.snapshots.get(bad, 5204214),
    "create": lambda c, bad: c.snapshots.create(bad, "fine"),
    "delete": lambda c, bad: c.snapshots.delete(bad, 5204214),
    "wait_active": lambda c, bad: c.snapshots.wait_active(bad, 5204214),
    "wait_deleted": lambda c, bad: c.snapshots.wait_deleted(bad, 5204214),
}
CALLS_BY_SNAPSHOT: dict[str, Call] = {
    "get": lambda c, bad: c.snapshots.get(VM, bad),
    "delete": lambda c, bad: c.snapshots.delete(VM, bad),
    "wait_active": lambda c, bad: c.snapshots.wait_active(VM, bad),
    "wait_deleted": lambda c, bad: c.snapshots.wait_deleted(VM, bad),
}


@pytest.fixture
async def idle(
    start_emulator: StartEmulator, connect: Connect
) -> tuple[ZomroEmulator, z.ZomroClient]:
    emulator = await start_emulator()
    emulator.add_instance(VM, snapshots=1)
    return emulator, connect(emulator)


@pytest.mark.parametrize(("bad", "error"), BAD_IDS)
@pytest.mark.parametrize("call", sorted(CALLS_BY_INSTANCE))
async def test_bad_instance_id_sends_nothing(
    idle: tuple[ZomroEmulator, z.ZomroClient], call: str, bad: Any, error: type[Exception]
) -> None:
    emulator, client = idle
    with pytest.raises(error):
        await CALLS_BY_INSTANCE[call](client, bad)
    assert total_calls(emulator) == 0, dict(emulator.calls)


@pytest.mark.parametrize(("bad", "error"), BAD_IDS)
@pytest.mark.parametrize("call", sorted(CALLS_BY_SNAPSHOT))
async def test_bad_snapshot_id_sends_nothing(
    idle: tuple[ZomroEmulator, z.ZomroClient], call: str, bad: Any, error: type[Exception]
) -> None:
    emulator, client = idle
    with pytest.raises(error):
        await CALLS_BY_SNAPSHOT[call](client, bad)
    assert total_calls(emulator) == 0, dict(emulator.calls)


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("", ValueError),
        ("   ", ValueError),
        ("\t\n", ValueError),
        ("x" * 256, ValueError),
        ("bad\x00name", ValueError),
        ("line\nbreak", ValueError),
        ("bell\x07", ValueError),
        ("del\x7f", ValueError),
        (None, TypeError),
        (42, TypeError),
        (b"bytes", TypeError),
    ],
    ids=repr,
)
async def test_bad_name_sends_nothing(
    idle: tuple[ZomroEmulator, z.ZomroClient], name: Any, error: type[Exception]
) -> None:
    emulator, client = idle
    with pytest.raises(error):
        await client.snapshots.create(VM, name)
    assert total_calls(emulator) == 0, dict(emulator.calls)


@pytest.mark.parametrize(
    ("timeout", "error"),
    [(-1, ValueError), (float("nan"), ValueError), (float("inf"), ValueError), (True, TypeError)],
    ids=repr,
)
@pytest.mark.parametrize("wait", ["wait_active", "wait_deleted"])
async def test_bad_timeout_sends_nothing(
    idle: tuple[ZomroEmulator, z.ZomroClient], wait: str, timeout: Any, error: type[Exception]
) -> None:
    emulator, client = idle
    (snap_id,) = ids_of(emulator, VM)
    with pytest.raises(error):
        await getattr(client.snapshots, wait)(VM, snap_id, timeout=timeout)
    assert total_calls(emulator) == 0, dict(emulator.calls)


async def test_longest_name_is_accepted(
    idle: tuple[ZomroEmulator, z.ZomroClient],
) -> None:
    emulator, client = idle
    name = "ü" * 255
    snap = await client.snapshots.create(VM, name)
    assert snap.name == name
    assert emulator.snapshots_of(VM)[-1]["name"] == name


# -- response shape variations -----------------------------------------------------


async def test_single_elem_as_object(start_emulator: StartEmulator, connect: Connect) -> None:
    emulator = await start_emulator(single_elem_as_object=True)
    emulator.add_instance(VM)
    client = connect(emulator)

    snap = await client.snapshots.create(VM, "only")  # its listing is one object, not a list
    assert snap.status is S.SAVING
    listed = await client.snapshots.list(VM)
    assert [s.id for s in listed] == [snap.id]
    active = await snap.wait_active()
    assert active.status is S.ACTIVE
    assert await client.snapshots.get(VM, snap.id) == active
    await active.delete()
    await active.wait_deleted()
    assert await client.snapshots.list(VM) == []
    assert ids_of(emulator, VM) == []


async def test_create_returns_id(start_emulator: StartEmulator, connect: Connect) -> None:
    emulator = await start_emulator(create_returns_id=True)
    emulator.add_instance(VM, snapshots=2)
    client = connect(emulator)
    seeded = ids_of(emulator, VM)

    snap = await client.snapshots.create(VM, "seed-1")  # the name of an older snapshot
    assert snap.id not in seeded
    assert ids_of(emulator, VM) == [*seeded, snap.id]
    assert snap.name == "seed-1"
    assert snap.status is S.SAVING
    assert (await snap.wait_active()).status is S.ACTIVE
