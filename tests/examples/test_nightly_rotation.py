"""examples/nightly_rotation.py against the emulator: exit codes, one log line per instance."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any

import pytest

from zomro_async.testing import VirtualClock, ZomroEmulator

from ._support import DOOMED_VM, EXAMPLES, OTHER_VM, VM, load_example

rotation = load_example("nightly_rotation")


def env_of(emulator: ZomroEmulator, **more: str) -> dict[str, str]:
    """The environment the script reads, pointed at `emulator`."""
    return {
        "ZOMRO_API_URL": emulator.url,
        "ZOMRO_USERNAME": emulator.config.username,
        "ZOMRO_PASSWORD": emulator.config.password,
        **more,
    }


def lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "nightly_rotation"]


async def test_a_rotation_that_succeeds_exits_0_and_keeps_the_newest(
    zomro_emulator: ZomroEmulator, zomro_clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    zomro_emulator.add_instance(VM, 1)  # "seed-1": no prefix, never touched
    zomro_emulator.add_instance(OTHER_VM)
    env = env_of(zomro_emulator, ZOMRO_INSTANCES=f"{VM}, {OTHER_VM}", ZOMRO_KEEP="2")

    for _ in range(3):
        assert await rotation.run(env, clock=zomro_clock) == 0
        await zomro_clock.sleep(86_400.0)  # the next night: a rerun the same day adopts

    names = [row["name"] for row in zomro_emulator.snapshots_of(VM)]
    assert names[0] == "seed-1"
    assert len(names) == 3
    assert [name[:16] for name in names[1:]] == ["auto-2026-01-02-", "auto-2026-01-03-"]
    assert len(zomro_emulator.snapshots_of(OTHER_VM)) == 2

    logged = lines(caplog)
    per_instance = [text for level, text in logged if text.startswith("instance ")]
    assert len(per_instance) == 6  # one line per instance per run
    assert all(level == logging.INFO for level, _ in logged)
    assert per_instance[-2].startswith(f"instance {VM}: ok: new snapshot ")
    assert not per_instance[-2].endswith("deleted: none")  # the third run let one go
    assert per_instance[0].endswith("deleted: none")
    assert logged[-1][1] == "rotation done: 2 ok, 0 failed"


async def test_a_failed_instance_makes_the_exit_code_non_zero(
    zomro_emulator: ZomroEmulator, zomro_clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    zomro_emulator.add_instance(VM, 1)
    zomro_emulator.add_instance(DOOMED_VM, 1, kill=True)
    env = env_of(zomro_emulator, ZOMRO_INSTANCES=f"{DOOMED_VM},{VM}", ZOMRO_KEEP="1")

    assert await rotation.run(env, clock=zomro_clock) == 1

    logged = lines(caplog)
    failed = [text for level, text in logged if level == logging.ERROR]
    assert len(failed) == 1
    assert failed[0].startswith(f"instance {DOOMED_VM}: FAILED (snapshot ")
    assert "SnapshotFailed" in failed[0]
    assert any(text.startswith(f"instance {VM}: ok") for _, text in logged)
    assert logged[-1][1] == "rotation done: 1 ok, 1 failed"
    # Nothing was deleted where the new snapshot failed.
    assert [row["name"] for row in zomro_emulator.snapshots_of(DOOMED_VM)] == [
        "seed-1",
        "auto-2026-01-01-000000",
    ]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ZOMRO_KEEP": "3"}, "ZOMRO_INSTANCES"),
        ({"ZOMRO_INSTANCES": " , ", "ZOMRO_KEEP": "3"}, "ZOMRO_INSTANCES"),
        ({"ZOMRO_INSTANCES": "5203773,abc", "ZOMRO_KEEP": "3"}, "'abc'"),
        ({"ZOMRO_INSTANCES": "0", "ZOMRO_KEEP": "3"}, "'0'"),
        ({"ZOMRO_INSTANCES": "5203773"}, "ZOMRO_KEEP"),
        ({"ZOMRO_INSTANCES": "5203773", "ZOMRO_KEEP": "0"}, "ZOMRO_KEEP"),
        ({"ZOMRO_INSTANCES": "1", "ZOMRO_KEEP": "1", "ZOMRO_PREFIX": " "}, "ZOMRO_PREFIX"),
    ],
)
async def test_a_bad_configuration_exits_2(
    zomro_emulator: ZomroEmulator,
    caplog: pytest.LogCaptureFixture,
    env: dict[str, str],
    message: str,
) -> None:
    assert await rotation.run(env_of(zomro_emulator, **env)) == 2
    assert message in lines(caplog)[-1][1]
    assert sum(zomro_emulator.calls.values()) == 0


@pytest.mark.parametrize(
    "client_env",
    [
        {},  # no credentials
        {
            "ZOMRO_TOKEN": "t",
            "ZOMRO_API_URL": "http://api.example.com/",
        },  # plain http, not loopback
    ],
)
async def test_bad_client_settings_exit_2(
    caplog: pytest.LogCaptureFixture, client_env: dict[str, str]
) -> None:
    assert await rotation.run({"ZOMRO_INSTANCES": "1", "ZOMRO_KEEP": "1", **client_env}) == 2
    assert lines(caplog)[-1][1].startswith("configuration: ")


async def run_script(env: dict[str, str]) -> tuple[int, str]:
    """The example as cron runs it: its exit code and what it printed to stdout."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ZOMRO_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / "nightly_rotation.py"),
        env={**clean, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert err == b""
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_the_script_logs_to_stdout_and_exits_with_the_code() -> None:
    # A real-time emulator whose snapshots are Active at once: nothing sleeps.
    settings: dict[str, Any] = {"time_to_active": 0.0, "delete_linger": 0.0}
    async with ZomroEmulator(**settings) as emulator:
        emulator.add_instance(VM, 1)
        code, out = await run_script(env_of(emulator, ZOMRO_INSTANCES=str(VM), ZOMRO_KEEP="1"))
    assert code == 0
    printed = out.splitlines()
    assert len(printed) == 2
    assert f"INFO instance {VM}: ok: new snapshot " in printed[0]
    assert printed[1].endswith("INFO rotation done: 1 ok, 0 failed")

    code, out = await run_script({"ZOMRO_KEEP": "1"})
    assert code == 2
    assert "ERROR configuration: set ZOMRO_INSTANCES" in out
