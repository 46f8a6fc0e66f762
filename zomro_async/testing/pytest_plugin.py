"""pytest fixtures for code that uses zomro-async: `zomro_emulator` and `zomro_client`.

Registered through the `pytest11` entry point; the async fixtures need pytest-asyncio,
and are declared with `pytest_asyncio.fixture`, so they work in its default strict
mode (where the tests that use them are marked `@pytest.mark.asyncio`). Both run on
`zomro_clock`, a `VirtualClock`, so waits take no real time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from zomro_async import ZomroClient

from ._clock import VirtualClock
from ._emulator import ZomroEmulator

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - the fixtures below need it; plain pytest still loads
    pytest_asyncio = None  # type: ignore[assignment]


@pytest.fixture
def zomro_clock() -> VirtualClock:
    """The virtual clock the emulator and client share; `advance()` it or let it run."""
    return VirtualClock()


if pytest_asyncio is not None:

    @pytest_asyncio.fixture
    async def zomro_emulator(zomro_clock: VirtualClock) -> AsyncIterator[ZomroEmulator]:
        """A running `ZomroEmulator` on loopback; seed it with `add_instance()`."""
        async with ZomroEmulator(clock=zomro_clock) as emulator:
            yield emulator

    @pytest_asyncio.fixture
    async def zomro_client(zomro_emulator: ZomroEmulator) -> AsyncIterator[ZomroClient]:
        """A `ZomroClient` logged in to `zomro_emulator` as its user."""
        async with zomro_emulator.client() as client:
            yield client
