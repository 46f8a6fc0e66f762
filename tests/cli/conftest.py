"""CLI fixtures: a clean environment, the emulators `--emulator` starts (and steps
that change them before the command runs), a closed port."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from zomro_async._cli import _sandbox
from zomro_async.testing import ZomroEmulator

from ._support import AsyncSetup, Setup

Seeded = tuple[list[ZomroEmulator], list[Setup], list[AsyncSetup]]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials or settings from the environment the tests run in, nor from
    a configuration file (the one looked for is in an empty directory)."""
    for name in ("TOKEN", "USERNAME", "PASSWORD", "API_URL", "CLI_RETRIES", "REBUILD_PASSWORD"):
        monkeypatch.delenv(f"ZOMRO_{name}", raising=False)
    for name in ("LOG", "PROFILE", "CONFIG"):
        monkeypatch.delenv(f"ZOMRO_{name}", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("COLUMNS", "200")  # no wrapping in tables
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):  # rich: "a terminal"
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def _seeded(monkeypatch: pytest.MonkeyPatch) -> Seeded:
    started: list[ZomroEmulator] = []
    setups: list[Setup] = []
    steps: list[AsyncSetup] = []
    seeded = _sandbox.seeded_emulator

    @contextlib.asynccontextmanager
    async def keep() -> AsyncIterator[ZomroEmulator]:
        async with seeded() as emulator:
            for setup in setups:
                setup(emulator)
            for step in steps:
                await step(emulator)
            emulator.calls.clear()
            started.append(emulator)
            yield emulator

    monkeypatch.setattr(_sandbox, "seeded_emulator", keep)
    return started, setups, steps


@pytest.fixture
def emulators(_seeded: Seeded) -> list[ZomroEmulator]:
    """Each seeded emulator a command ran against (closed, but its state and counters kept)."""
    return _seeded[0]


@pytest.fixture
def sandbox_setup(_seeded: Seeded) -> list[Setup]:
    """Steps (append them) applied to each seeded emulator before its command runs."""
    return _seeded[1]


@pytest.fixture
def async_setup(_seeded: Seeded) -> list[AsyncSetup]:
    """Steps awaited on each seeded emulator before its command runs (after `sandbox_setup`)."""
    return _seeded[2]


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (any more)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
