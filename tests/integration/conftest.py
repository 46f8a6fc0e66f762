"""Integration fixtures: emulators on loopback, clients on the shared VirtualClock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

import zomro_async as z
from zomro_async.testing import VirtualClock, ZomroEmulator

from ._support import POLL, RETRY, Connect, StartEmulator


@pytest.fixture
async def start_emulator(zomro_clock: VirtualClock) -> AsyncIterator[StartEmulator]:
    """Start a `ZomroEmulator` on the test's clock with the given config; closed afterwards."""
    started: list[ZomroEmulator] = []

    async def start(**config: Any) -> ZomroEmulator:
        emulator = ZomroEmulator(clock=zomro_clock, **config)
        await emulator.start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in reversed(started):
        await emulator.close()


@pytest.fixture
async def connect(start_emulator: StartEmulator) -> AsyncIterator[Connect]:
    """Build a client of an emulator (login by default; `token=` for a token client).

    Every client made is closed before the emulators are.
    """
    clients: list[z.ZomroClient] = []

    def make(emulator: ZomroEmulator, **settings: Any) -> z.ZomroClient:
        settings.setdefault("poll", POLL)
        settings.setdefault("retry", RETRY)
        client = emulator.client(**settings)
        clients.append(client)
        return client

    yield make
    for client in reversed(clients):
        await client.aclose()
