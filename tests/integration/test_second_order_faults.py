"""The second-order contracts (issue "Trust under second-order faults"), over loopback HTTP.

Each test names its contract; each failed on the code before the fix.
"""

from __future__ import annotations

import asyncio

import pytest

import zomro_async as z
from zomro_async.testing import VirtualClock, ZomroEmulator, pending_sdk_tasks

from ._support import POLL, RETRY, VM, Connect, StartEmulator, ids_of

S = z.SnapshotStatus


# -- 1. a delete whose answer was lost is not a failure ----------------------------


@pytest.mark.parametrize("kind", ["html502", "html504", "reset"])
async def test_a_delete_whose_answer_was_lost_is_a_delete(
    start_emulator: StartEmulator, connect: Connect, kind: str
) -> None:
    emulator = await start_emulator(delete_linger=0.0)
    emulator.add_instance(VM, snapshots=1)
    client = connect(emulator)
    (snap,) = await client.snapshots.list(VM)
    emulator.lose_answers("image.delete", kind=kind)

    await snap.delete()  # the repeat finds it gone: the lost attempt did it

    assert emulator.calls["image.delete"] == 2
    assert ids_of(emulator, VM) == []


@pytest.mark.parametrize("kind", ["snapshots", "backups"])
async def test_a_delete_whose_every_answer_was_lost_is_a_delete(
    start_emulator: StartEmulator, connect: Connect, kind: str
) -> None:
    # While it lingers as Deleting, each repeat is done again and its answer lost
    # again: the retries run out with the delete done. The listing tells.
    emulator = await start_emulator(delete_linger=3600.0)
    emulator.add_instance(VM, snapshots=1)
    emulator.add_backup(VM, "nightly", active=True)
    client = connect(emulator)
    (image,) = await getattr(client, kind).list(VM)
    emulator.lose_answers("image.delete", count=RETRY.attempts, kind="html502")

    await image.delete()

    assert emulator.calls["image.delete"] == RETRY.attempts
    (listed,) = await getattr(client, kind).list(VM)
    assert listed.status.being_deleted


async def test_an_account_image_delete_whose_every_answer_was_lost_is_a_delete(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator(delete_linger=3600.0)
    emulator.add_instance(VM, snapshots=1)
    client = connect(emulator)
    (image,) = await client.images.list()
    emulator.lose_answers("image.delete", count=RETRY.attempts, kind="reset")

    await client.images.delete(image.id)

    assert emulator.calls["image.delete"] == RETRY.attempts
    (listed,) = await client.images.list()
    assert listed.status.being_deleted


async def test_a_delete_that_never_got_through_still_fails(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    # The retries and the look at the listing all meet the outage: nothing
    # says the delete was done, so it was not.
    emulator = await start_emulator()
    emulator.add_instance(VM, snapshots=1)
    client = connect(emulator)
    (snap,) = await client.snapshots.list(VM)
    await emulator.outage(3600.0, mode="html503")

    with pytest.raises(z.TransportError):
        await snap.delete()

    await emulator.end_outage()
    (listed,) = await client.snapshots.list(VM)
    assert listed.status is S.ACTIVE


async def test_a_delete_first_answered_not_found_stays_not_found(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM)
    client = connect(emulator)
    with pytest.raises(z.NotFoundError):
        await client.snapshots.delete(VM, 12345)
    assert emulator.calls["image.delete"] == 1


async def test_delete_many_reports_a_lost_answer_as_deleted(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator(delete_linger=0.0)
    emulator.add_instance(VM, snapshots=3)
    client = connect(emulator)
    snaps = await client.snapshots.list(VM)
    emulator.lose_answers("image.delete", count=2, kind="reset")

    results = await client.snapshots.delete_many(snaps)

    assert [r.ok for r in results] == [True, True, True]
    assert ids_of(emulator, VM) == []


async def test_rotation_goes_on_after_a_lost_delete_answer(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator(time_to_active=5.0, delete_linger=0.0)
    emulator.add_instance(VM)
    client = connect(emulator)
    for n in range(3):
        await (await client.snapshots.create(VM, f"auto-old-{n}")).wait_active()
    emulator.lose_answers("image.delete", count=1, kind="html502")

    (result,) = await client.snapshots.rotate([VM], keep=2, prefix="auto-")

    assert result.ok, result.error
    assert len(result.deleted) == 2  # the lost one and the next victim
    assert result.snapshot is not None
    names = {row["name"] for row in emulator.snapshots_of(VM)}
    assert names == {"auto-old-2", result.snapshot.name}


# -- 2. waits ride out outages ---------------------------------------------------------


@pytest.mark.parametrize("mode", ["html503", "refuse", "reset"])
async def test_a_one_hour_wait_survives_a_ten_minute_outage(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock, mode: str
) -> None:
    emulator = await start_emulator(time_to_active=300.0)
    emulator.add_instance(VM)
    client = connect(emulator)
    snap = await client.snapshots.create(VM, "through-the-outage")
    await emulator.outage(600.0, mode=mode)

    active = await snap.wait_active(timeout=3600.0)

    assert active.status is S.ACTIVE
    assert 600.0 <= zomro_clock.monotonic() < 3600.0


async def test_a_deadline_inside_an_outage_is_a_timeout_caused_by_the_outage(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator(time_to_active=3000.0)
    emulator.add_instance(VM)
    client = connect(emulator)
    snap = await client.snapshots.create(VM, "deadline-in-outage")
    started = zomro_clock.monotonic()
    waiting = asyncio.create_task(snap.wait_active(timeout=600.0))
    await zomro_clock.sleep(1.0)  # it has seen the snapshot Saving
    await emulator.outage(2000.0, mode="html503")

    with pytest.raises(z.WaitTimeout) as caught:
        await waiting

    assert zomro_clock.monotonic() - started == pytest.approx(600.0)
    assert caught.value.last is not None
    assert caught.value.last.status is S.SAVING
    assert isinstance(caught.value.__cause__, z.TransportError)
    assert caught.value.__cause__.status == 503


async def test_a_definite_answer_still_ends_a_wait_at_once(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM)
    client = connect(emulator)
    with pytest.raises(z.NotFoundError):
        await client.snapshots.wait_active(9_999_999, 1, timeout=3600.0)
    assert zomro_clock.monotonic() < 1.0


# -- 3. deadlines are hard ---------------------------------------------------------------


async def test_a_deadline_fails_its_waiter_while_a_listing_is_in_flight(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator(time_to_active=0.0)
    emulator.add_instance(VM, snapshots=1, saving=0)
    client = connect(emulator)
    (snap,) = await client.snapshots.list(VM)
    emulator.hold("instances.snapshots", 100.0)
    started = zomro_clock.monotonic()

    patient = asyncio.create_task(snap.wait_active(timeout=3600.0))
    with pytest.raises(z.WaitTimeout):
        await client.snapshots.wait_active(VM, snap.id, timeout=10.0)
    assert zomro_clock.monotonic() - started == pytest.approx(10.0)

    # The other waiter kept the listing and has its answer when it lands.
    assert (await patient).status is S.ACTIVE
    assert zomro_clock.monotonic() - started == pytest.approx(100.0)


async def test_asyncio_timeout_around_a_held_call_composes() -> None:
    clock = VirtualClock(auto_advance=False)  # the hold lasts until the test moves time
    async with ZomroEmulator(clock=clock) as emulator:
        emulator.add_instance(VM, snapshots=1)
        async with emulator.client(token=emulator.token, retry=RETRY, poll=POLL) as client:
            emulator.hold("instances.snapshots", 50.0)

            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.05):
                    await client.snapshots.list(VM)

            emulator.hold("instances.snapshots", 0)
            assert len(await client.snapshots.list(VM)) == 1  # the client is still good
            assert pending_sdk_tasks() == []


# -- 6. a create claims only what it may have made ---------------------------------------


async def test_two_processes_creating_one_name_each_get_their_own(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator(time_to_active=5.0)
    emulator.add_instance(VM)
    first, second = connect(emulator), connect(emulator)

    a, b = await asyncio.gather(
        first.snapshots.create(VM, "nightly"), second.snapshots.create(VM, "nightly")
    )

    assert a.id != b.id
    assert sorted(ids_of(emulator, VM)) == sorted([a.id, b.id])


# -- 7. logins are shared whatever their outcome ----------------------------------------


@pytest.mark.parametrize("kind", ["http429", "html503", "html502", "reset"])
async def test_fifty_callers_share_a_failing_login_and_its_retries(
    start_emulator: StartEmulator, connect: Connect, kind: str
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM, snapshots=1)
    client = connect(emulator)
    emulator.fail_logins(2, kind=kind)

    listings = await asyncio.gather(*(client.snapshots.list(VM) for _ in range(50)))

    assert all(len(listing) == 1 for listing in listings)
    assert emulator.calls["auth"] == 3  # two failures and the one that worked


async def test_fifty_callers_of_a_login_that_keeps_failing_post_one_login_per_retry(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM)
    client = connect(emulator)
    emulator.fail_logins(1000, kind="http429")

    results = await asyncio.gather(
        *(client.snapshots.list(VM) for _ in range(50)), return_exceptions=True
    )

    assert all(isinstance(r, z.TransportError) and r.status == 429 for r in results)
    assert len({id(r) for r in results}) == 50  # each caller raises its own error
    assert emulator.calls["auth"] == RETRY.attempts
    assert emulator.calls["instances.snapshots"] == 0


async def test_a_rate_limited_login_honours_retry_after_as_a_date(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator(retry_after_style="date")
    emulator.add_instance(VM)
    client = connect(emulator)
    emulator.fail_logins(1, kind="http429", retry_after=20.0)

    await asyncio.gather(*(client.snapshots.list(VM) for _ in range(10)))

    assert emulator.calls["auth"] == 2
    assert zomro_clock.monotonic() >= 20.0  # RETRY's own backoff would be 0.5 s


# -- 9. lifecycle -----------------------------------------------------------------------------


async def test_aclose_ends_calls_in_flight_and_nothing_leaves_after_it() -> None:
    clock = VirtualClock(auto_advance=False)
    async with ZomroEmulator(clock=clock) as emulator:
        emulator.add_instance(VM, snapshots=1)
        client = emulator.client(token=emulator.token, retry=RETRY, poll=POLL)
        emulator.hold("instances.snapshots", 50.0)
        calls = [asyncio.create_task(client.snapshots.list(VM)) for _ in range(3)]
        waits = [asyncio.create_task(client.snapshots.wait_active(VM, 1, timeout=99.0))]
        while emulator.held_answers["instances.snapshots"] < 4:
            await asyncio.sleep(0.001)  # the requests travel over loopback

        await client.aclose()
        sent = sum(emulator.calls.values())

        for task in [*calls, *waits]:
            with pytest.raises(z.ZomroError, match="closed"):
                await task
        assert pending_sdk_tasks() == []
        clock.advance(60.0)  # the holds end: nobody is there to repeat anything
        for _ in range(50):
            await asyncio.sleep(0)
        assert sum(emulator.calls.values()) == sent


def test_a_client_is_used_again_from_a_second_event_loop() -> None:
    port = _free_port()
    # The emulator's own account; max_in_flight=2, so the budget is contended.
    client = z.ZomroClient(
        username="demo",
        password="demo-password",
        base_url=f"http://127.0.0.1:{port}/",
        max_in_flight=2,
    )

    async def run() -> int:
        async with ZomroEmulator(port=port) as emulator:
            emulator.add_instance(VM, snapshots=1)
            async with client:
                listings = await asyncio.gather(*(client.snapshots.list(VM) for _ in range(6)))
        return sum(len(listing) for listing in listings)

    assert asyncio.run(run()) == 6
    assert asyncio.run(run()) == 6  # a new loop: new locks, semaphores and session


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- 10. callbacks ---------------------------------------------------------------------------


async def test_an_async_callback_is_refused_at_the_call(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM)
    client = connect(emulator)

    async def hook(_: object) -> None: ...

    with pytest.raises(TypeError, match="async def"):
        await client.snapshots.wait_active(VM, 1, on_update=hook)
    with pytest.raises(TypeError, match="async def"):
        client.snapshots.create_many([VM], "n", on_progress=hook)
    with pytest.raises(TypeError, match="async def"):
        client.snapshots.rotate([VM], keep=2, on_progress=hook)
    assert sum(emulator.calls.values()) == 0


async def test_aclose_during_the_shared_login_fails_its_callers_with_a_zomro_error() -> None:
    clock = VirtualClock(auto_advance=False)
    async with ZomroEmulator(clock=clock) as emulator:
        emulator.add_instance(VM)
        client = emulator.client(retry=RETRY, poll=POLL)
        emulator.hold("auth", 50.0)
        calls = [asyncio.create_task(client.snapshots.list(VM)) for _ in range(5)]
        while emulator.held_answers["auth"] < 1:
            await asyncio.sleep(0.001)

        await client.aclose()

        for task in calls:
            with pytest.raises(z.ZomroError, match="closed"):
                await task
        assert emulator.calls["auth"] == 1  # one login for all five, ended by the close
        assert pending_sdk_tasks() == []


@pytest.mark.parametrize("check", ["held", "retrying"])
async def test_aclose_during_the_check_of_a_refused_session_fails_its_callers(
    check: str,
) -> None:
    clock = VirtualClock(auto_advance=False)
    async with ZomroEmulator(clock=clock) as emulator:
        emulator.add_instance(VM)
        client = emulator.client(retry=RETRY, poll=POLL)
        await client.snapshots.list(VM)
        emulator.expire_sessions()
        if check == "held":
            emulator.hold("whoami", 50.0)
        else:  # its answer lost: it sleeps before its retry
            emulator.lose_answers("whoami")
        calls = [asyncio.create_task(client.snapshots.list(VM)) for _ in range(5)]
        while emulator.held_answers["whoami"] + client.retries < 1:
            await asyncio.sleep(0.001)

        await client.aclose()

        for task in calls:
            with pytest.raises(z.ZomroError, match="closed"):
                await task
        assert emulator.calls["whoami"] == 1  # one check for all five, ended by the close
        assert emulator.calls["auth"] == 1
        assert pending_sdk_tasks() == []
