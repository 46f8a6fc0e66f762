"""Ctrl-C in the middle of a bulk job: cancelled, reported with ids and a resume command."""

from __future__ import annotations

import logging
import re
import signal
import sys
from collections.abc import Callable

import pytest

import zomro_async as z
from zomro_async._cli import _progress
from zomro_async.testing import ZomroEmulator

from ._support import A, B, C, document, ids_on, invoke

Kind = z.ProgressKind
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def press_ctrl_c() -> None:
    signal.raise_signal(signal.SIGINT)  # as the terminal does on Ctrl-C


def raise_keyboard_interrupt() -> None:
    raise KeyboardInterrupt


@pytest.fixture
def interrupt_at(monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[z.ProgressEvent]]:
    """Interrupt at the `n`th event of `kind`: by default Ctrl-C as `on_progress`
    records it (in the job's task); with `in_display`, a KeyboardInterrupt as the
    progress display shows it (in the command's task). Returns the events seen.
    """

    def arm(kind: Kind, n: int, *, in_display: bool = False) -> list[z.ProgressEvent]:
        seen: list[z.ProgressEvent] = []
        owner: type = _progress.ProgressView if in_display else _progress.Tracker
        method = "show" if in_display else "record"
        real = getattr(owner, method)
        how = raise_keyboard_interrupt if in_display else press_ctrl_c

        def then_interrupt(self: object, event: z.ProgressEvent) -> None:
            real(self, event)
            seen.append(event)
            if event.kind is kind and sum(e.kind is kind for e in seen) == n:
                how()

        monkeypatch.setattr(owner, method, then_interrupt)
        return seen

    return arm


@pytest.mark.parametrize("in_display", [False, True])
def test_ctrl_c_during_create_reports_what_was_created(
    in_display: bool,
    interrupt_at: Callable[..., list[z.ProgressEvent]],
    emulators: list[ZomroEmulator],
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen = interrupt_at(Kind.CREATED, 2, in_display=in_display)

    result = invoke(
        "snapshots", "create", str(A), str(B), str(C), "--name", "n", "--wait", "--emulator"
    )

    assert result.exit_code == 130, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    created = [(e.instance_id, e.snapshot_id) for e in seen if e.kind is Kind.CREATED]
    # Interrupted at the second: a create whose answer came in the same loop step
    # may still be told, and then it is reported like the others.
    assert len(created) >= 2
    assert not [e for e in seen if e.kind is Kind.ACTIVE]  # stopped part-way
    out = result.stderr[result.stderr.index("interrupted") :]
    assert out.startswith("interrupted: the job was cancelled\ncreated before the interruption:\n")
    reported = [
        (int(i), int(s)) for i, s in re.findall(r"^  instance (\d+) snapshot (\d+) n \(", out, re.M)
    ]
    assert set(created) <= set(reported)  # the display may lag behind `on_progress`
    for instance_id, snapshot_id in reported:
        assert snapshot_id in ids_on(emulators[0], instance_id)  # really made
    commands = out.split("to resume, run:\n", 1)[1].splitlines()
    assert commands == [f"  zomro-async snapshots wait --emulator {i} {s}" for i, s in reported]


def test_resume_commands_repeat_the_connection_flags_but_never_a_secret(
    interrupt_at: Callable[..., list[z.ProgressEvent]],
) -> None:
    interrupt_at(Kind.CREATED, 1)

    result = invoke(
        "snapshots",
        "create",
        str(A),
        "--name",
        "n",
        "--wait",
        "--emulator",
        "--username",
        "demo",
        env={"ZOMRO_PASSWORD": "demo-password"},
    )

    assert result.exit_code == 130
    (command,) = re.findall(r"zomro-async snapshots wait .*", result.stderr)
    assert command.startswith("zomro-async snapshots wait --emulator --username demo 5203773 ")
    assert "demo-password" not in result.output


def test_ctrl_c_during_rotation_resumes_the_deletes(
    interrupt_at: Callable[..., list[z.ProgressEvent]],
) -> None:
    seen = interrupt_at(Kind.DELETING, 1)

    result = invoke("rotate", str(A), "--keep", "1", "--emulator", "--json")

    assert result.exit_code == 130
    doc = document(result)
    assert doc["error"]["type"] == "KeyboardInterrupt"
    (new,) = [e.snapshot_id for e in seen if e.kind is Kind.CREATED]
    (victim,) = [e.snapshot_id for e in seen if e.kind is Kind.DELETING]
    assert doc["resume"] == [
        f"zomro-async snapshots wait --deleted --emulator {A} {victim}",
        f"zomro-async rotate --emulator {A} --keep-last 1",  # the deletes it did not reach
    ]
    rows = {r["snapshot_id"]: r for r in doc["results"]}
    assert (rows[new]["status"], rows[new]["name"]) == ("active", doc["results"][0]["name"])
    assert rows[new]["ok"] is True  # it got there
    assert rows[victim]["status"] == "deleting"
    # Still awaited when it stopped: not ok, with the stop as its error.
    assert (rows[victim]["ok"], rows[victim]["error"]["type"]) == (False, "KeyboardInterrupt")
    assert "interrupted" in result.stderr


def test_ctrl_c_before_anything_was_created(
    interrupt_at: Callable[..., list[z.ProgressEvent]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_list = z.SnapshotsManager.list

    async def list_then_interrupt(self: z.SnapshotsManager, instance_id: int) -> list[z.Snapshot]:
        press_ctrl_c()
        return await real_list(self, instance_id)

    monkeypatch.setattr(z.SnapshotsManager, "list", list_then_interrupt)
    result = invoke("snapshots", "create", str(A), "--name", "n", "--emulator")

    assert result.exit_code == 130
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "interrupted: the job was cancelled",
        "no snapshot was created before the interruption",
        "a create sent just before the interruption may yet appear: see snapshots list",
    ]


def test_ctrl_c_during_a_wait_resumes_what_is_left(
    interrupt_at: Callable[..., list[z.ProgressEvent]],
) -> None:
    interrupt_at(Kind.ACTIVE, 1)

    result = invoke("snapshots", "wait", str(A), "5204214", "5204218", "--emulator")

    assert result.exit_code == 130
    (command,) = re.findall(r"zomro-async snapshots wait .*", result.stderr)
    left = command.split()[-1]
    assert command == f"zomro-async snapshots wait --emulator {A} {left}"
    assert left in {"5204214", "5204218"}
    assert "created before" not in result.stderr
