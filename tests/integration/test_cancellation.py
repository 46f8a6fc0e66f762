"""Cancelling a public coroutine at any await point leaves the client usable, nothing pending."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable

import pytest

import zomro_async as z
from zomro_async.testing import VirtualClock, ZomroEmulator, pending_sdk_tasks

from ._support import Connect, StartEmulator

# Loop turns to let pass before cancelling: spread over a call's whole life
# (login, budget, request on the wire, parsing, polling, sleeping).
POINTS = [0, 1, 2, 3, 5, 8, 12, 18, 27, 40, 60, 90]
_fresh = itertools.count(8_000_000)


Operation = Callable[[z.ZomroClient, ZomroEmulator], Awaitable[object]]


def fresh_instance(emulator: ZomroEmulator, snapshots: int = 1) -> int:
    instance_id = next(_fresh)
    emulator.add_instance(instance_id, snapshots=snapshots)
    return instance_id


async def op_list(client: z.ZomroClient, emulator: ZomroEmulator) -> object:
    return await client.snapshots.list(fresh_instance(emulator))


async def op_create(client: z.ZomroClient, emulator: ZomroEmulator) -> object:
    return await client.snapshots.create(fresh_instance(emulator), "cancel-me")


async def op_wait_active(client: z.ZomroClient, emulator: ZomroEmulator) -> object:
    instance_id = fresh_instance(emulator, snapshots=0)
    snapshot = await client.snapshots.create(instance_id, "w")
    return await snapshot.wait_active()


async def op_delete_and_wait(client: z.ZomroClient, emulator: ZomroEmulator) -> object:
    instance_id = fresh_instance(emulator)
    [snapshot] = await client.snapshots.list(instance_id)
    await snapshot.delete()
    return await snapshot.wait_deleted()


async def op_create_many(client: z.ZomroClient, emulator: ZomroEmulator) -> object:
    return await client.snapshots.create_many([fresh_instance(emulator) for _ in range(5)], "bulk")


async def op_rotate(client: z.ZomroClient, emulator: ZomroEmulator) -> object:
    return await client.snapshots.rotate([fresh_instance(emulator, 3)], keep=1, prefix="seed-")


@pytest.mark.parametrize(
    "operation",
    [op_list, op_create, op_wait_active, op_delete_and_wait, op_create_many, op_rotate],
    ids=lambda op: op.__name__.removeprefix("op_"),
)
@pytest.mark.parametrize("login", [False, True], ids=["token", "login"])
async def test_cancel_at_every_point_leaves_the_client_usable(
    start_emulator: StartEmulator,
    connect: Connect,
    zomro_clock: VirtualClock,
    operation: Operation,
    login: bool,
) -> None:
    emulator = await start_emulator(time_to_active=6.0, delete_linger=3.0)
    client = connect(emulator) if login else connect(emulator, token=emulator.token)
    cancelled = 0
    first = next(_fresh)
    for turns in POINTS:
        task = asyncio.create_task(operation(client, emulator))
        for _ in range(turns):
            await asyncio.sleep(0)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            cancelled += 1
        for _ in range(3):
            await asyncio.sleep(0)
        assert pending_sdk_tasks() == [], f"pending after cancelling at turn {turns}"
        assert client.snapshots.poller.watched == 0
        # The client works, and an instance touched by the cancelled call is free.
        instance_id = fresh_instance(emulator)
        snapshot = await client.snapshots.create(instance_id, "after")
        assert (await snapshot.wait_active()).status is z.SnapshotStatus.ACTIVE
    touched = range(first + 1, next(_fresh))
    assert cancelled >= 4  # several points really cut the call short
    for instance_id in touched:
        names = [row["name"] for row in emulator.snapshots_of(instance_id)]
        assert names.count("cancel-me") <= 1  # a cancelled create never doubled
