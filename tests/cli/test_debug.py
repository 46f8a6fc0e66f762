"""`--debug` and `ZOMRO_LOG`: the SDK's redacted log on stderr, stdout as ever."""

from __future__ import annotations

import datetime
import logging
import re
import time

import pytest

from zomro_async.testing import ZomroEmulator

from ._support import A, invoke

TOKEN = "tok-Zq9-never-logged"
SANDBOX_PASSWORD = "demo-password"  # the sandbox emulator's account
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z DEBUG zomro_async: ", re.MULTILINE)


def _logged_secrets(stderr: str) -> set[str]:
    """Every value the log shows for a secret field: `***` only, if it redacts."""
    return set(re.findall(r"'(?:auth|password)': '([^']*)'", stderr))


def test_debug_logs_each_request_on_stderr_without_the_session_id(
    emulators: list[ZomroEmulator],
) -> None:
    plain = invoke("snapshots", "list", str(A), "--emulator")
    result = invoke("snapshots", "list", str(A), "--emulator", "--debug")

    assert result.exit_code == 0, result.output
    assert result.stdout == plain.stdout  # the log is on stderr only
    assert not LOG_LINE.search(plain.stderr)
    assert LOG_LINE.search(result.stderr)
    assert "zomro_async: auth -> ok" in result.stderr  # the login, by its func
    assert "zomro_async: instances.snapshots -> ok" in result.stderr
    assert _logged_secrets(result.stderr) == {"***"}
    # Every session the emulator handed out (the login's among them), and its password.
    sessions = set(emulators[-1]._sessions)
    assert sessions
    assert not any(session in result.stderr for session in sessions)
    assert SANDBOX_PASSWORD not in result.stderr


def test_debug_shows_the_commands_calls_not_the_sandboxs_seeding() -> None:
    result = invoke("snapshots", "list", str(A), "--emulator", "--debug")

    # The seeding creates snapshots; this command only lists them.
    assert "instances.snapshots.edit" not in result.stderr


def test_debug_never_shows_the_password() -> None:
    env = {"ZOMRO_PASSWORD": SANDBOX_PASSWORD}
    args = ("snapshots", "list", str(A), "--emulator", "--username", "demo", "--debug")
    result = invoke(*args, env=env)

    assert result.exit_code == 0, result.output
    assert "'password': '***'" in result.stderr
    assert SANDBOX_PASSWORD not in result.output


def test_debug_never_shows_the_token_even_when_it_is_refused() -> None:
    result = invoke("snapshots", "list", str(A), "--emulator", "--token", TOKEN, "--debug")

    assert result.exit_code == 3
    assert re.search(r"zomro_async: instances\.snapshots\S* -> AuthError", result.stderr)
    assert _logged_secrets(result.stderr) == {"***"}
    assert TOKEN not in result.output


@pytest.mark.parametrize("value", ["debug", "DEBUG", " debug "])
def test_zomro_log_debug_is_the_same_as_the_flag(value: str) -> None:
    result = invoke("snapshots", "list", str(A), "--emulator", env={"ZOMRO_LOG": value})

    assert result.exit_code == 0, result.output
    assert "zomro_async: instances.snapshots -> ok" in result.stderr


@pytest.mark.parametrize("value", ["info", "warning", "error", ""])
def test_other_levels_leave_the_debug_lines_out(value: str) -> None:
    result = invoke("snapshots", "list", str(A), "--emulator", env={"ZOMRO_LOG": value})

    assert result.exit_code == 0, result.output
    assert "DEBUG" not in result.stderr


def test_the_flag_wins_over_the_variable() -> None:
    env = {"ZOMRO_LOG": "error"}
    result = invoke("snapshots", "list", str(A), "--emulator", "--debug", env=env)

    assert LOG_LINE.search(result.stderr)


@pytest.mark.parametrize("value", ["verbose", "10", "trace"])
def test_an_unknown_level_is_a_usage_error(value: str, emulators: list[ZomroEmulator]) -> None:
    result = invoke("snapshots", "list", str(A), "--emulator", env={"ZOMRO_LOG": value})

    assert result.exit_code == 2
    assert "ZOMRO_LOG must be one of debug, info, warning, error" in result.stderr
    assert "Traceback" not in result.output
    assert not emulators  # refused before anything ran


def test_each_command_logs_as_it_was_asked() -> None:
    invoke("snapshots", "list", str(A), "--emulator", "--debug")
    after = invoke("snapshots", "list", str(A), "--emulator")

    assert not LOG_LINE.search(after.stderr)
    assert logging.getLogger("zomro_async").level == logging.NOTSET


def test_the_log_is_on_utc_as_the_progress_lines_are(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")  # nine hours off UTC
    time.tzset()
    try:
        result = invoke(
            "snapshots", "create", str(A), "--name", "n", "--wait", "--emulator", "--debug"
        )
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()

    assert result.exit_code == 0, result.output
    log_hours = {line[11:13] for line in result.stderr.splitlines() if LOG_LINE.match(line)}
    now = datetime.datetime.now(datetime.UTC)
    near = {f"{(now + datetime.timedelta(hours=h)):%H}" for h in (-1, 0, 1)}
    assert log_hours
    assert log_hours <= near
