"""CLI fixtures: a clean environment, the emulators `--emulator` starts, a closed port."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator

import pytest

from zomro_async._cli import _sandbox
from zomro_async.testing import ZomroEmulator


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No credentials or settings from the environment the tests run in."""
    for name in ("TOKEN", "USERNAME", "PASSWORD", "API_URL", "CLI_RETRIES"):
        monkeypatch.delenv(f"ZOMRO_{name}", raising=False)
    monkeypatch.setenv("COLUMNS", "200")  # no wrapping in tables


@pytest.fixture
def emulators(monkeypatch: pytest.MonkeyPatch) -> list[ZomroEmulator]:
    """Each seeded emulator a command ran against (closed, but its state and counters kept)."""
    started: list[ZomroEmulator] = []
    seeded = _sandbox.seeded_emulator

    @contextlib.asynccontextmanager
    async def keep() -> AsyncIterator[ZomroEmulator]:
        async with seeded() as emulator:
            started.append(emulator)
            yield emulator

    monkeypatch.setattr(_sandbox, "seeded_emulator", keep)
    return started


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (any more)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
