"""What a timeout or an outage left is resumed as an interrupted run is: the
`resume` commands in the JSON, `to resume, run:` on stderr."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import zomro_async as z
from zomro_async._cli import _progress
from zomro_async.testing import ZomroEmulator

from ._support import A, B, Setup, document, invoke

Kind = z.ProgressKind


def resume_lines(stderr: str) -> list[str]:
    """The commands under `to resume, run:`, the last lines of stderr."""
    if "to resume, run:\n" not in stderr:
        return []
    return [line.strip() for line in stderr.split("to resume, run:\n", 1)[1].splitlines()]


def created(doc: dict[str, Any]) -> list[tuple[int, int]]:
    return [(r["instance_id"], r["snapshot_id"]) for r in doc["results"]]


# -- exit 1: a wait out of time ------------------------------------------------------


def test_a_create_whose_wait_timed_out_is_resumed_with_wait() -> None:
    # A new snapshot is Active after 8 virtual seconds: 5 is too short.
    args = ("snapshots", "create", str(A), str(B), "--name", "n", "--wait", "--timeout", "5")
    result = invoke(*args, "--emulator", "--json")

    assert result.exit_code == 1
    doc = document(result)
    assert {r["error"]["type"] for r in doc["results"]} == {"WaitTimeout"}
    waits = [f"zomro-async snapshots wait --emulator {i} {s}" for i, s in created(doc)]
    assert doc["resume"] == waits
    assert resume_lines(result.stderr) == waits

    result = invoke(*args, "--emulator")
    assert result.exit_code == 1
    assert resume_lines(result.stderr) == waits  # the same ids: each run starts afresh
    assert "to resume" not in result.stdout


def test_only_the_items_cut_short_are_resumed(emulators: list[ZomroEmulator]) -> None:
    result = invoke("snapshots", "wait", str(A), "5204214", "--timeout", "5", "--emulator")

    assert result.exit_code == 0  # Active already: nothing left
    assert resume_lines(result.stderr) == []

    result = invoke(
        "snapshots",
        "wait",
        "--deleted",
        str(A),
        "5204214",
        "--timeout",
        "60",
        "--emulator",
        "--json",
    )
    assert result.exit_code == 1  # it stays
    assert document(result)["resume"] == [
        f"zomro-async snapshots wait --deleted --emulator {A} 5204214"
    ]


def test_a_killed_snapshot_is_not_resumed() -> None:
    result = invoke(
        "snapshots", "create", "5204200", "--name", "n", "--wait", "--emulator", "--json"
    )

    assert result.exit_code == 1
    (row,) = document(result)["results"]
    assert row["error"]["type"] == "SnapshotFailed"
    assert document(result)["resume"] == []
    assert "to resume" not in result.stderr


def test_a_backup_create_that_timed_out_tells_the_waits_once() -> None:
    result = invoke(
        "backups", "create", str(A), "--name", "n", "--wait", "--timeout", "5", "--emulator"
    )

    assert result.exit_code == 1
    (command,) = resume_lines(result.stderr)
    assert command.startswith(f"zomro-async backups wait --emulator {A} ")
    assert "the backup is being made" not in result.stderr  # told once, as a resume


def test_an_instance_wait_that_timed_out_is_resumed(sandbox_setup: list[Setup]) -> None:
    sandbox_setup.append(lambda e: e.set_instance_status(B, "resizing"))  # for ever

    result = invoke("instances", "wait", str(A), str(B), "--timeout", "60", "--emulator", "--json")

    assert result.exit_code == 1
    doc = document(result)
    assert [r["ok"] for r in doc["results"]] == [True, False]
    assert doc["resume"] == [f"zomro-async instances wait --emulator {B}"]
    assert resume_lines(result.stderr) == doc["resume"]


def test_a_copy_whose_wait_timed_out_is_resumed_with_images_wait() -> None:
    # A copy is Active after 60 virtual seconds.
    args = ("images", "copy", "5204214", "--region", "Netherlands-1", "--wait", "--timeout", "10")
    result = invoke(*args, "--emulator", "--json")

    assert result.exit_code == 1
    doc = json.loads(result.stdout)  # an image's result has no instance_id
    (row,) = doc["results"]
    assert row["error"]["type"] == "WaitTimeout"
    assert doc["resume"] == [f"zomro-async images wait --emulator {row['copy_id']}"]
    assert resume_lines(result.stderr) == doc["resume"]
    assert "the copy is being made" not in result.stderr


# -- an outage -----------------------------------------------------------------------


@pytest.fixture
def outage_after_creates(monkeypatch: pytest.MonkeyPatch, emulators: list[ZomroEmulator]) -> None:
    """The API goes down, for longer than any wait, once two snapshots were created."""
    real = _progress.Tracker.record
    made: list[z.ProgressEvent] = []
    tasks: list[asyncio.Task[None]] = []

    def then_go_down(self: _progress.Tracker, event: z.ProgressEvent) -> None:
        real(self, event)
        if event.kind is Kind.CREATED:
            made.append(event)
            if len(made) == 2:
                tasks.append(asyncio.ensure_future(emulators[0].outage(1e6, mode="html503")))

    monkeypatch.setattr(_progress.Tracker, "record", then_go_down)


@pytest.mark.usefixtures("outage_after_creates")
def test_waits_that_an_outage_ran_out_are_resumed() -> None:
    result = invoke(
        "snapshots",
        "create",
        str(A),
        str(B),
        "--name",
        "n",
        "--wait",
        "--timeout",
        "300",
        "--emulator",
        "--json",
        env={"ZOMRO_CLI_RETRIES": "1"},
    )

    assert result.exit_code == 1
    doc = document(result)
    assert {r["error"]["type"] for r in doc["results"]} == {"WaitTimeout"}
    assert doc["resume"] == [
        f"zomro-async snapshots wait --emulator {i} {s}" for i, s in created(doc)
    ]


# -- exit 4: the API out of reach ----------------------------------------------------


def test_an_api_lost_mid_wait_exits_4_with_the_waits_to_resume(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def unreachable(*args: object, **kwargs: object) -> z.Snapshot:
        raise z.TransportError("connection refused", reached_server=False)

    monkeypatch.setattr(z.SnapshotsManager, "wait_active", unreachable)
    args = ("snapshots", "create", str(A), str(B), "--name", "n", "--wait", "--emulator")

    result = invoke(*args, "--json")
    assert result.exit_code == 4
    doc = document(result)
    assert doc["error"]["type"] == "TransportError"
    waits = [f"zomro-async snapshots wait --emulator {i} {s}" for i, s in created(doc)]
    assert len(waits) == 2
    assert doc["resume"] == waits

    result = invoke(*args)
    assert result.exit_code == 4
    assert "error: could not reach the API: TransportError: connection refused" in result.stderr
    assert resume_lines(result.stderr) == waits
    assert result.stdout == ""


def test_an_api_out_of_reach_from_the_start_leaves_nothing_to_resume(closed_port: int) -> None:
    env = {
        "ZOMRO_TOKEN": "t",
        "ZOMRO_API_URL": f"http://127.0.0.1:{closed_port}/",
        "ZOMRO_CLI_RETRIES": "1",
    }

    result = invoke("snapshots", "wait", str(A), "5", "--json", env=env)
    assert result.exit_code == 4
    assert document(result)["resume"] == []

    result = invoke("snapshots", "wait", str(A), "5", env=env)
    assert result.exit_code == 4
    assert "to resume" not in result.stderr


# -- exit 3 ---------------------------------------------------------------------------


def test_an_authentication_failure_has_nothing_to_resume() -> None:
    result = invoke(
        "snapshots", "create", str(A), "--name", "n", "--emulator", "--token", "bogus", "--json"
    )

    assert result.exit_code == 3
    doc = document(result)
    assert doc["error"]["type"] == "AuthError"
    assert doc["resume"] == []
    assert "to resume" not in result.stderr
