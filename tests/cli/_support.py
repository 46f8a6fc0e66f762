"""Helpers of the CLI tests: run the command in-process, read its JSON and the emulator."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from click.testing import CliRunner, Result

from zomro_async._cli import _sandbox, main
from zomro_async.testing import ZomroEmulator

A, B, C = _sandbox.SAMPLE_INSTANCES
DOOMED = _sandbox.DOOMED_INSTANCE
# A step that changes a seeded emulator before its command runs (`sandbox_setup`).
Setup = Callable[[ZomroEmulator], object]
# A step awaited on a seeded emulator before a command runs (after the `Setup`s).
AsyncSetup = Callable[[ZomroEmulator], Awaitable[object]]


def invoke(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    """Run `zomro-async ARGS`; a crash (not an exit) fails the test with its traceback."""
    result = CliRunner().invoke(main, list(args), env=env, input=input)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def document(result: Result) -> dict[str, Any]:
    """The JSON document on stdout, with the keys every document has checked."""
    doc: dict[str, Any] = json.loads(result.stdout)
    assert doc["version"] == 1
    assert isinstance(doc["command"], str)
    assert isinstance(doc["ok"], bool)
    assert doc["error"] is None or set(doc["error"]) == {"type", "message"}
    assert isinstance(doc["results"], list)
    assert isinstance(doc["resume"], list)
    for row in doc["results"]:
        assert isinstance(row["instance_id"], int)
        # an instance's result (instances list|wait) has no snapshot keys
        assert row.get("snapshot_id") is None or isinstance(row["snapshot_id"], int)
        assert row["name"] is None or isinstance(row["name"], str)
        assert row["status"] is None or isinstance(row["status"], str)
        assert isinstance(row["ok"], bool)
        assert (row["error"] is None) == row["ok"]
        if row["error"] is not None:
            assert set(row["error"]) == {"type", "message"}
            assert isinstance(row["error"]["message"], str)
    return doc


def names_on(emulator: ZomroEmulator, instance_id: int) -> list[str]:
    return [row["name"] for row in emulator.snapshots_of(instance_id)]


def ids_on(emulator: ZomroEmulator, instance_id: int) -> list[int]:
    return [int(row["id"]) for row in emulator.snapshots_of(instance_id)]
