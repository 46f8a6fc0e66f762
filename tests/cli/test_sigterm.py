"""SIGTERM (systemd, Kubernetes, `kill`) stops a command as Ctrl-C does: the job is
cancelled, what exists and the resume commands are told, exit status 143."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from collections.abc import Iterator
from types import FrameType

import pytest

import zomro_async as z
from zomro_async._cli import _common, _progress, _sandbox

from . import _process
from ._support import A, B, C, document, ids_on, invoke
from .test_streams import progress_lines

Kind = z.ProgressKind
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
SAVING = re.compile(r" instance (\d+) snapshot (\d+) saving$")


class TermNotHandled(Exception):
    """SIGTERM reached the handler the command should have replaced."""


@pytest.fixture
def term_handler() -> Iterator[object]:
    """A SIGTERM handler of the test's own while it runs: were the command not to
    take SIGTERM, the test fails on it, rather than the test run ending."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise TermNotHandled

    previous = signal.signal(signal.SIGTERM, handler)
    yield handler
    signal.signal(signal.SIGTERM, previous)


@pytest.fixture
def term_at_created(monkeypatch: pytest.MonkeyPatch, term_handler: object) -> list[z.ProgressEvent]:
    """SIGTERM to this process at the second CREATED event `on_progress` records."""
    seen: list[z.ProgressEvent] = []
    real = _progress.Tracker.record

    def then_terminate(self: _progress.Tracker, event: z.ProgressEvent) -> None:
        real(self, event)
        seen.append(event)
        if event.kind is Kind.CREATED and sum(e.kind is Kind.CREATED for e in seen) == 2:
            signal.raise_signal(signal.SIGTERM)

    monkeypatch.setattr(_progress.Tracker, "record", then_terminate)
    return seen


CREATE = ("snapshots", "create", str(A), str(B), str(C), "--name", "n", "--wait", "--emulator")


def test_sigterm_reports_what_was_created_and_exits_143(
    term_at_created: list[z.ProgressEvent], emulators: list[object]
) -> None:
    result = invoke(*CREATE)

    assert result.exit_code == 143, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""  # no table: the summary is on stderr
    out = result.stderr[result.stderr.index("terminated") :]
    assert out.startswith(
        "terminated by SIGTERM: the job was cancelled\ncreated before the interruption:\n"
    )
    reported = [
        (int(i), int(s)) for i, s in re.findall(r"^  instance (\d+) snapshot (\d+) n \(", out, re.M)
    ]
    created = {(e.instance_id, e.snapshot_id) for e in term_at_created if e.kind is Kind.CREATED}
    assert len(reported) >= 2
    assert created <= set(reported)
    for instance_id, snapshot_id in reported:
        assert snapshot_id in ids_on(emulators[0], instance_id)  # type: ignore[arg-type]
    commands = out.split("to resume, run:\n", 1)[1].splitlines()
    assert commands == [f"  zomro-async snapshots wait --emulator {i} {s}" for i, s in reported]


def test_sigterm_with_json_names_the_signal_and_lists_the_resume_commands(
    term_at_created: list[z.ProgressEvent],
) -> None:
    result = invoke(*CREATE, "--json")

    assert result.exit_code == 143
    doc = document(result)
    assert doc["ok"] is False
    assert doc["error"] == {
        "type": "SIGTERM",
        "message": "terminated by SIGTERM: the job was cancelled",
    }
    rows = [(r["instance_id"], r["snapshot_id"]) for r in doc["results"]]
    assert len(rows) >= 2
    assert doc["resume"] == [f"zomro-async snapshots wait --emulator {i} {s}" for i, s in rows]
    assert "terminated by SIGTERM" in result.stderr  # the summary, there as ever


def test_the_handler_before_the_command_is_back_after_it(term_handler: object) -> None:
    assert invoke("snapshots", "list", str(A), "--emulator").exit_code == 0
    assert signal.getsignal(signal.SIGTERM) is term_handler


def test_after_sigterm_the_handler_before_is_back_too(
    term_at_created: list[z.ProgressEvent], term_handler: object
) -> None:
    assert invoke(*CREATE).exit_code == 143
    assert signal.getsignal(signal.SIGTERM) is term_handler


# -- a real process, a real signal ---------------------------------------------------


def frozen(*args: str) -> _process.Process:
    """`zomro-async ARGS` on a sandbox whose clock stands still: every wait stays
    in flight until the process is signalled."""
    env = _process.child_env(**{_sandbox.FROZEN_CLOCK_ENV: "1"})
    return _process.Process(*args, env=env)


def saving(process: _process.Process) -> list[tuple[int, int]]:
    """The snapshots the progress lines read so far show saving (awaited)."""
    found = (SAVING.search(line) for line in progress_lines(process.text("stderr")))
    return [(int(m[1]), int(m[2])) for m in found if m]


def test_sigterm_to_a_process_mid_job_loses_nothing() -> None:
    process = frozen(*CREATE, "--json")
    process.read_until(lambda p: len(saving(p)) == 3)  # all made, all awaited
    made = saving(process)

    process.proc.send_signal(signal.SIGTERM)
    done = process.finish()

    assert done.code == 143, done
    doc = json.loads(done.stdout)
    assert doc["error"]["type"] == "SIGTERM"
    results = {(r["instance_id"], r["snapshot_id"]): r["status"] for r in doc["results"]}
    assert results == dict.fromkeys(made, "saving")
    assert sorted(doc["resume"]) == sorted(
        f"zomro-async snapshots wait --emulator {i} {s}" for i, s in made
    )
    summary = done.stderr[done.stderr.index("terminated by SIGTERM") :].splitlines()
    assert summary[1] == "created before the interruption:"
    assert sorted(summary[2:5]) == sorted(
        f"  instance {i} snapshot {s} n (saving)" for i, s in made
    )
    assert "Traceback" not in done.stderr


def test_sigterm_to_a_process_awaiting_instances_tells_the_wait_to_resume() -> None:
    process = frozen("instances", "wait", str(A), "--status", "stopped", "--emulator")
    process.read_until(lambda p: bool(progress_lines(p.text("stderr"))))  # it has looked once

    process.proc.send_signal(signal.SIGTERM)
    done = process.finish()

    assert done.code == 143, done
    assert done.stdout == ""
    assert done.stderr.splitlines()[-3:] == [
        "terminated by SIGTERM: the job was cancelled",
        "to resume, run:",
        f"  zomro-async instances wait --status stopped --emulator {A}",
    ]


@pytest.mark.parametrize("command", [["--help"], ["snapshots", "create", "--help"]])
def test_the_help_tells_the_exit_status_of_sigterm(command: list[str]) -> None:
    text = " ".join(invoke(*command).output.split())
    assert "130 interrupted (Ctrl-C); 143 terminated (SIGTERM)" in text


# -- a SIGTERM once the job is done: the result stands --------------------------------


def test_a_sigterm_while_the_client_closes_keeps_the_finished_result(
    monkeypatch: pytest.MonkeyPatch, term_handler: object
) -> None:
    real = z.ZomroClient.aclose
    closes: list[z.ZomroClient] = []

    async def terminated_while_closing(self: z.ZomroClient) -> None:
        closes.append(self)
        if len(closes) > 1:  # the first is the sandbox's seeding client; then the command's
            signal.raise_signal(signal.SIGTERM)
        for _ in range(5):  # the loop takes the signal from its wakeup pipe meanwhile
            await asyncio.sleep(0)
        await real(self)

    monkeypatch.setattr(z.ZomroClient, "aclose", terminated_while_closing)

    result = invoke("snapshots", "create", str(A), "--name", "n", "--wait", "--emulator", "--json")

    assert result.exit_code == 0, result.output
    doc = document(result)
    assert doc["ok"] is True
    assert [row["status"] for row in doc["results"]] == ["active"]
    assert len(closes) == 2


def test_a_sigterm_while_the_report_prints_waits_for_it(
    monkeypatch: pytest.MonkeyPatch, term_handler: object
) -> None:
    real = _common._report

    def terminated_while_reporting(*args: object) -> int:
        signal.raise_signal(signal.SIGTERM)  # held: else the test's handler raises
        code: int = real(*args)  # type: ignore[arg-type]
        return code

    monkeypatch.setattr(_common, "_report", terminated_while_reporting)

    result = invoke("snapshots", "list", str(A), "--emulator", "--json")

    assert result.exit_code == 0, result.output
    assert document(result)["ok"] is True  # the whole document, not one cut short
