"""No token, session id or password in any log record, repr, error text or progress event."""

from __future__ import annotations

import logging

import pytest

import zomro_async as z
from zomro_async.testing import VirtualClock

from ._support import Connect, StartEmulator

PASSWORD = "correct-horse-battery-staple"


async def test_a_full_run_leaks_no_secret(
    start_emulator: StartEmulator,
    connect: Connect,
    zomro_clock: VirtualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, aiohttp's and asyncio's included
    emulator = await start_emulator(
        password=PASSWORD, fault_rate=0.2, ambiguous_create_rate=0.2, slow_seconds=0.0, seed=4
    )
    for instance_id in range(1, 11):
        emulator.add_instance(instance_id, snapshots=1, kill=instance_id == 3)
    client = connect(emulator, password=PASSWORD)
    texts: list[str] = []
    events: list[z.ProgressEvent] = []

    first = await client.snapshots.create_many(range(1, 6), "a", on_progress=events.append)
    emulator.expire_sessions()  # a re-login happens mid-run
    second = await client.snapshots.create_many([6, 7, 8, 99], "b", on_progress=events.append)
    deleted = await client.snapshots.delete_many(
        [r.snapshot for r in first if r.snapshot is not None], on_progress=events.append
    )
    token_client = connect(emulator, token=emulator.token)
    emulator.expire_sessions()
    with pytest.raises(z.AuthError) as expired:
        await token_client.snapshots.list(1)
    with pytest.raises(z.AuthError) as refused:
        await connect(emulator, password=PASSWORD + "-wrong").snapshots.list(1)

    for result in [*first, *second, *deleted]:
        texts += [repr(result), str(result.error), repr(result.error)]
    texts += [repr(e) for e in events]
    texts += [repr(client), repr(client.snapshots), repr(token_client)]
    for error in (expired.value, refused.value):
        texts += [str(error), repr(error), error.message, error.detail, repr(error.params)]
    texts.append(caplog.text)
    texts += [repr(record.args) for record in caplog.records]

    secrets = {PASSWORD, PASSWORD + "-wrong", emulator.token, *client._api._secrets.spellings()}
    secrets |= token_client._api._secrets.spellings()
    assert len(secrets) >= 4  # the password(s), the token, and the sessions the client held
    everything = "\n".join(texts)
    for secret in secrets:
        assert secret not in everything
    # The run really exercised logging, failures and re-login.
    assert "instances.snapshots ->" in caplog.text
    assert any(not r.ok for r in second)
    assert emulator.calls["auth"] >= 3
