"""Logging in, sessions expiring, and the HTTP session the client runs on."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

import zomro_async as z
from zomro_async.testing import VirtualClock

from ._support import VM, Connect, StartEmulator


async def test_one_login_for_concurrent_first_calls(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM, snapshots=2)
    client = connect(emulator)

    results = await asyncio.gather(*(client.snapshots.list(VM) for _ in range(20)))

    assert emulator.calls["auth"] == 1
    assert emulator.calls["instances.snapshots"] == 20
    assert all(len(r) == 2 for r in results)
    assert client.retries == 0


async def test_max_in_flight_caps_requests_on_the_wire(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator(fault_rate=1.0, fault_kinds=("slow",), slow_seconds=0.01)
    emulator.add_instance(VM)
    client = connect(emulator, token=emulator.token, max_in_flight=3)

    await asyncio.gather(*(client.snapshots.list(VM) for _ in range(12)))

    assert emulator.calls["instances.snapshots"] == 12
    assert 1 < emulator.max_in_flight <= 3


async def test_bad_password_is_auth_error(start_emulator: StartEmulator, connect: Connect) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM)
    client = connect(emulator, password="not-the-password")

    with pytest.raises(z.AuthError) as info:
        await client.snapshots.list(VM)

    assert info.value.object == "badpassword"
    assert "not-the-password" not in str(info.value)
    assert emulator.calls["auth"] == 1  # refused credentials are not retried
    assert emulator.calls["instances.snapshots"] == 0
    assert client.retries == 0


async def test_bad_password_concurrent_callers_share_one_refusal(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM)
    client = connect(emulator, password="not-the-password")

    results = await asyncio.gather(
        *(client.snapshots.list(VM) for _ in range(20)), return_exceptions=True
    )

    assert all(isinstance(r, z.AuthError) for r in results)
    assert emulator.calls["auth"] == 1


async def test_relogin_after_session_ttl(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    emulator = await start_emulator(session_ttl=600.0)
    emulator.add_instance(VM, snapshots=1)
    client = connect(emulator)

    assert len(await client.snapshots.list(VM)) == 1
    zomro_clock.advance(599.0)
    assert len(await client.snapshots.list(VM)) == 1  # still alive; the use renews it
    assert emulator.calls["auth"] == 1

    zomro_clock.advance(601.0)
    assert len(await client.snapshots.list(VM)) == 1
    assert emulator.calls["auth"] == 2
    assert emulator.calls["instances.snapshots"] == 3
    # Each listing clears the stored filter first: the third clear met the
    # expired session (3 answered + 1 refused).
    assert emulator.calls["instances.snapshots.filter"] == 4
    assert client.retries == 0


async def test_relogin_after_sessions_dropped(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM)
    client = connect(emulator)

    snap = await client.snapshots.create(VM, "before")
    assert emulator.calls["auth"] == 1
    emulator.expire_sessions()

    active = await snap.wait_active()  # the wait logs in again transparently
    assert active.status is z.SnapshotStatus.ACTIVE
    assert emulator.calls["auth"] == 2

    emulator.expire_sessions()
    await active.delete()
    assert emulator.calls["auth"] == 3
    await active.wait_deleted()
    assert emulator.snapshots_of(VM) == []


async def test_relogin_is_shared_by_concurrent_callers(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM, snapshots=1)
    client = connect(emulator)
    await client.snapshots.list(VM)
    emulator.expire_sessions()

    results = await asyncio.gather(*(client.snapshots.list(VM) for _ in range(20)))

    assert all(len(r) == 1 for r in results)
    assert emulator.calls["auth"] == 2


async def test_long_wait_across_short_sessions(
    start_emulator: StartEmulator, connect: Connect, zomro_clock: VirtualClock
) -> None:
    # Polls 30 s apart outlive a 10 s session: every poll logs in again, none fails.
    emulator = await start_emulator(session_ttl=10.0, time_to_active=300.0)
    emulator.add_instance(VM)
    client = connect(emulator)
    snap = await client.snapshots.create(VM, "slow")

    active = await snap.wait_active()

    assert active.status is z.SnapshotStatus.ACTIVE
    assert zomro_clock.monotonic() >= 300.0
    assert emulator.calls["auth"] > 2


async def test_token_client(start_emulator: StartEmulator, connect: Connect) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM, snapshots=1)
    client = connect(emulator, token=emulator.token)

    assert len(await client.snapshots.list(VM)) == 1
    assert emulator.calls["auth"] == 0
    assert emulator.token not in repr(client)


async def test_token_client_after_sessions_dropped_is_auth_error(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM, snapshots=1)
    client = connect(emulator, token=emulator.token)
    await client.snapshots.list(VM)
    emulator.expire_sessions()

    with pytest.raises(z.AuthError) as info:
        await client.snapshots.list(VM)

    assert info.value.type == "access"
    assert emulator.calls["auth"] == 0  # it has nothing to log in with
    # The second listing's own filter clear met the dropped session first.
    assert emulator.calls["instances.snapshots.filter"] == 2
    assert emulator.calls["instances.snapshots"] == 1
    assert client.retries == 0


async def test_token_client_with_unknown_token_is_auth_error(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM)
    client = connect(emulator, token="0123456789abcdef01234567")
    with pytest.raises(z.AuthError):
        await client.snapshots.create(VM, "never")
    assert emulator.calls["instances.snapshots.edit"] == 0
    assert emulator.snapshots_of(VM) == []


# -- the HTTP session --------------------------------------------------------------


async def test_caller_session_is_used_and_not_closed(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM, snapshots=1)
    sent: list[str] = []

    async def on_request_start(_: Any, __: Any, params: aiohttp.TraceRequestStartParams) -> None:
        sent.append(str(params.url))

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    async with aiohttp.ClientSession(trace_configs=[trace]) as http:
        async with connect(emulator, session=http) as client:
            assert len(await client.snapshots.list(VM)) == 1
        assert not http.closed  # the client's aclose left the caller's session alone
        # auth, the stored-filter clear, then the list, all through it
        assert sent == [emulator.url] * 3
        async with connect(emulator, session=http) as again:
            assert len(await again.snapshots.list(VM)) == 1
        assert not http.closed
        assert len(sent) == 6
    assert http.closed


async def test_own_session_is_closed(
    start_emulator: StartEmulator, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = await start_emulator()
    emulator.add_instance(VM)
    made: list[aiohttp.ClientSession] = []
    original_init = aiohttp.ClientSession.__init__

    def recording_init(self: aiohttp.ClientSession, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(aiohttp.ClientSession, "__init__", recording_init)

    async with connect(emulator) as client:
        await client.snapshots.list(VM)
        await client.snapshots.list(VM)
        assert len(made) == 1  # one session, made on first use, reused
        assert not made[0].closed
    assert made[0].closed
    await client.aclose()  # closing twice is harmless
