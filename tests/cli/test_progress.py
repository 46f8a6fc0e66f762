"""Progress, on stderr: plain timestamped lines when not on a terminal, live bars on one."""

from __future__ import annotations

import datetime
import io

import pytest
from rich.console import Console

import zomro_async as z
from zomro_async._cli import _progress

from ._support import DOOMED, A, B, invoke

AT = datetime.datetime(2026, 11, 28, 18, 0, tzinfo=datetime.UTC)


def event(
    kind: z.ProgressKind, snapshot_id: int | None = 5204214, error: BaseException | None = None
) -> z.ProgressEvent:
    snapshot = None if snapshot_id is None else z.Snapshot(id=snapshot_id, instance_id=A)
    return z.ProgressEvent(kind=kind, instance_id=A, at=AT, snapshot=snapshot, error=error)


def test_plain_lines_one_per_change(capsys: pytest.CaptureFixture[str]) -> None:
    view = _progress.ProgressView([(A, None)], finish={z.ProgressKind.ACTIVE}, title="t")
    with view:
        for kind in ("created", "saving", "saving", "saving", "active"):
            view.show(event(z.ProgressKind(kind)))
        view.show(event(z.ProgressKind.FAILED, None, error=z.TransportError("down")))

    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"2026-11-28T18:00:00Z instance {A} snapshot 5204214 created",
        f"2026-11-28T18:00:00Z instance {A} snapshot 5204214 saving",
        f"2026-11-28T18:00:00Z instance {A} snapshot 5204214 active",
        f"2026-11-28T18:00:00Z instance {A} failed: TransportError: down",
    ]


def test_no_control_codes_when_stdout_is_not_a_terminal() -> None:
    for args in (
        ["snapshots", "create", str(A), str(DOOMED), "--name", "n", "--wait"],
        ["rotate", str(A), str(B), "--keep", "1"],
        ["snapshots", "list", str(A), "999"],
    ):
        result = invoke(*args, "--emulator")
        assert result.exit_code == 1 or args[0] == "rotate", result.output
        assert "\x1b" not in result.output
        assert "\r" not in result.output


def test_live_bars_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    screens: list[tuple[bool, io.StringIO]] = []

    def terminal(*, err: bool = False) -> Console:
        screens.append((err, io.StringIO()))
        return Console(file=screens[-1][1], force_terminal=True, width=100)

    monkeypatch.setattr(_progress, "make_console", terminal)
    result = invoke("snapshots", "create", str(A), str(B), "--name", "n", "--wait", "--emulator")

    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # everything went to the terminal
    assert result.stderr == ""
    (bars_on_stderr, bars), (table_on_stderr, table) = screens
    assert (bars_on_stderr, table_on_stderr) == (True, False)
    assert "\x1b[" in bars.getvalue()  # drawn live, then cleared (transient)
    assert "Snapshots created" in table.getvalue()
    assert f"instance {A} snapshot" in bars.getvalue()  # the items' bars
    assert "Z instance" not in bars.getvalue() + table.getvalue()  # no plain lines


def test_json_sends_progress_to_stderr() -> None:
    result = invoke("snapshots", "create", str(A), "--name", "n", "--wait", "--emulator", "--json")

    assert result.exit_code == 0
    assert result.stdout.lstrip().startswith("{")
    assert f"instance {A} snapshot" in result.stderr
    assert result.stderr.splitlines()[-1].endswith(" active")
