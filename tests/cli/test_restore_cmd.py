"""`zomro-async restore` against the seeded emulator: confirmation, the root password
(from the environment or a prompt, never a flag, never shown), waits, failures.
"""

from __future__ import annotations

import logging
import re
import signal
import sys

import pytest

import zomro_async as z
from zomro_async._cli import _common, _restore_cmd, _sandbox
from zomro_async._instances import _client as instances_client
from zomro_async.testing import ZomroEmulator

from ._support import DOOMED, A, B, Setup, document, invoke

SEED_A = 5_204_214  # seed-1 of A, Active
PASSWORD = "Rebuild-pw-7731"
ENV = {"ZOMRO_REBUILD_PASSWORD": PASSWORD}
LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ instance (\d+) (.+?)(?:: (.*))?$")


def progress(text: str) -> list[tuple[int, str]]:
    return [(int(m[1]), m[2]) for m in map(LINE.match, text.splitlines()) if m]


def restore_row(text: str) -> list[str]:
    """The one row of the Restore table."""
    (row,) = [cells for cells in map(str.split, text.splitlines()) if cells and cells[0].isdigit()]
    return row


@pytest.fixture
def at_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_common, "stdin_is_tty", lambda: True)
    monkeypatch.setattr(_restore_cmd, "stdin_is_tty", lambda: True)


def rebuilds(emulators: list[ZomroEmulator]) -> list[tuple[int, int, str | None, bool]]:
    return [
        (r.instance_id, r.image_id, r.ssh_key, r.with_password)
        for e in emulators
        for r in e.rebuilds
    ]


# -- happy paths -----------------------------------------------------------------


def test_restore_with_yes_and_the_password_from_the_environment(
    emulators: list[ZomroEmulator], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="zomro_async")
    result = invoke("restore", str(A), str(SEED_A), "--yes", "--emulator", env=ENV)

    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output
    assert rebuilds(emulators) == [(A, SEED_A, None, True)]
    assert emulators[0].instance_status(A) == "active"
    assert restore_row(result.stdout) == [str(A), f"vps-{A}", str(SEED_A), "seed-1", "active"]
    assert [s for _, s in progress(result.stderr)] == [
        f"restoring from snapshot {SEED_A}",
        "restore accepted",
        "rebuilding",
        "active",
    ]
    assert "overwritten" not in result.output  # --yes: no question
    assert PASSWORD not in result.output
    assert PASSWORD not in caplog.text


def test_restore_json(emulators: list[ZomroEmulator]) -> None:
    result = invoke("restore", str(A), str(SEED_A), "--yes", "--emulator", "--json", env=ENV)

    assert result.exit_code == 0, result.output
    doc = document(result)
    assert (doc["command"], doc["ok"], doc["error"], doc["resume"]) == ("restore", True, None, [])
    (row,) = doc["results"]
    assert set(row) == {
        "instance_id",
        "name",
        "status",
        "region",
        "ip",
        "ip_v6",
        "tariff",
        "snapshot_id",
        "snapshot_name",
        "waited",
        "ok",
        "error",
    }
    assert (row["instance_id"], row["snapshot_id"], row["snapshot_name"]) == (A, SEED_A, "seed-1")
    assert (row["status"], row["waited"], row["ok"]) == ("active", True, True)
    assert (A, "rebuilding") in progress(result.stderr)
    assert not progress(result.stdout)
    assert PASSWORD not in result.output


def test_restore_with_an_ssh_key_asks_no_password(
    emulators: list[ZomroEmulator], at_a_terminal: None
) -> None:
    result = invoke(
        "restore", str(A), str(SEED_A), "--yes", "--ssh-key", _sandbox.SSH_KEY.upper(), "--emulator"
    )

    assert result.exit_code == 0, result.output
    assert "password" not in result.stderr.lower()
    assert rebuilds(emulators) == [(A, SEED_A, _sandbox.SSH_KEY, False)]


def test_the_sandbox_ssh_key_is_the_seeded_one(emulators: list[ZomroEmulator]) -> None:
    # The emulator refuses a key the account lacks (below): this one it has.
    assert _sandbox.SSH_KEY in " ".join(_sandbox.SANDBOX_HELP.split())
    result = invoke(
        "restore", str(A), str(SEED_A), "--yes", "--ssh-key", _sandbox.SSH_KEY, "--emulator"
    )
    assert result.exit_code == 0, result.output


def test_restore_from_a_snapshot_of_another_instance_asks_first(
    emulators: list[ZomroEmulator], at_a_terminal: None
) -> None:
    result = invoke("restore", str(B), str(SEED_A), "--emulator", env=ENV, input="y\n")

    assert result.exit_code == 0, result.output
    question = " ".join(result.stderr.split())
    assert (
        f"The disk of instance {B} (vps-{B}) will be overwritten with snapshot {SEED_A} "
        f"(seed-1, taken " in question
    )
    assert f"of instance {A}): whatever was written to it since is lost." in question
    assert f"Restore instance {B} from snapshot {SEED_A}? [y/N]" in question
    assert rebuilds(emulators) == [(B, SEED_A, None, True)]


def test_the_password_is_asked_twice_without_echo_after_the_confirmation(
    emulators: list[ZomroEmulator], at_a_terminal: None
) -> None:
    answers = f"y\nshort\nshort\n{PASSWORD}\nno-match-1A\n{PASSWORD}\n{PASSWORD}\n"
    result = invoke("restore", str(A), str(SEED_A), "--emulator", input=answers)

    assert result.exit_code == 0, result.output
    err = result.stderr
    assert err.index("overwritten") < err.index(f"New root password for instance {A}")
    assert "error: password must be 8 to 48 characters, got 5" in err  # the rule, not the value
    assert "do not match" in err
    assert rebuilds(emulators) == [(A, SEED_A, None, True)]
    assert PASSWORD not in result.output
    assert "short" not in result.output  # hidden input is not echoed


def test_no_wait_returns_once_the_rebuild_is_accepted(emulators: list[ZomroEmulator]) -> None:
    result = invoke("restore", str(A), str(SEED_A), "--yes", "--no-wait", "--emulator", env=ENV)

    assert result.exit_code == 0, result.output
    assert restore_row(result.stdout)[-1] == "accepted"
    assert f"`zomro-async instances wait {A}` awaits its end" in result.stderr
    assert [s for _, s in progress(result.stderr)][-1] == "restore accepted"
    assert emulators[0].calls["instances.fleio.rebuild"] == 1

    doc = document(
        invoke(
            "restore", str(A), str(SEED_A), "--yes", "--no-wait", "--emulator", "--json", env=ENV
        )
    )
    assert (doc["results"][0]["waited"], doc["ok"]) == (False, True)


# -- refusals before anything is sent ----------------------------------------------


def test_without_a_terminal_yes_is_required(emulators: list[ZomroEmulator]) -> None:
    result = invoke("restore", str(A), str(SEED_A), "--emulator", env=ENV)

    assert result.exit_code == 2
    assert "stdin is not a terminal to confirm on: pass --yes" in result.stderr
    assert not emulators  # refused before anything ran


def test_without_a_terminal_the_password_must_come_from_the_environment(
    emulators: list[ZomroEmulator],
) -> None:
    result = invoke("restore", str(A), str(SEED_A), "--yes", "--emulator")

    assert result.exit_code == 2
    assert "no root password: set ZOMRO_REBUILD_PASSWORD, or pass --ssh-key" in result.stderr
    assert not emulators


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("Sh0rt", "password must be 8 to 48 characters"),
        ("no-upper-case-1", "password must contain an upper-case letter"),
        ("With space 1A", "password must be printable ASCII with no spaces"),
        ("Forbidden#1abc", "password must not contain any of"),
    ],
)
def test_a_password_the_rules_refuse_is_a_usage_error_that_never_shows_it(
    password: str, message: str, emulators: list[ZomroEmulator]
) -> None:
    env = {"ZOMRO_REBUILD_PASSWORD": password}
    result = invoke("restore", str(A), str(SEED_A), "--yes", "--emulator", "--json", env=env)

    assert result.exit_code == 2
    assert f"ZOMRO_REBUILD_PASSWORD: {message}" in result.stderr
    assert password not in result.output
    assert not emulators


@pytest.mark.parametrize("key", ["nope", "0554c89f-0006-49f0-aceb", ""])
def test_a_bad_ssh_key_is_a_usage_error(key: str, emulators: list[ZomroEmulator]) -> None:
    result = invoke("restore", str(A), str(SEED_A), "--yes", "--ssh-key", key, "--emulator")

    assert result.exit_code == 2
    assert "Invalid value for --ssh-key: ssh_key must be the uuid" in result.stderr
    assert not emulators


@pytest.mark.parametrize("args", [["--password", PASSWORD], [f"--password={PASSWORD}"]])
def test_the_root_password_is_never_a_flag(args: list[str], emulators: list[ZomroEmulator]) -> None:
    result = invoke("restore", str(A), str(SEED_A), "--yes", "--emulator", *args)

    assert result.exit_code == 2
    assert "a password is never a flag" in result.stderr
    assert "ZOMRO_REBUILD_PASSWORD" in result.stderr
    assert PASSWORD not in result.output
    assert not emulators


def test_declining_sends_nothing(emulators: list[ZomroEmulator], at_a_terminal: None) -> None:
    result = invoke("restore", str(A), str(SEED_A), "--emulator", env=ENV, input="n\n")

    assert result.exit_code == 1
    assert "not confirmed: nothing was changed" in result.stderr
    assert emulators[0].calls["instances.fleio.rebuild"] == 0
    assert emulators[0].calls["image.edit"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([str(A)], "Missing argument 'SNAPSHOT'"),
        ([str(A), "0"], "0 is not in the range"),
        ([str(A), str(SEED_A), "--timeout", "-1"], "-1.0 is not in the range"),
    ],
)
def test_restore_usage_errors(args: list[str], message: str) -> None:
    result = invoke("restore", *args, "--yes", "--emulator", env=ENV)
    assert result.exit_code == 2
    assert message in result.stderr


# -- failures --------------------------------------------------------------------


def test_a_rebuild_that_ends_in_error_exits_1(emulators: list[ZomroEmulator]) -> None:
    result = invoke("restore", str(DOOMED), str(SEED_A), "--yes", "--emulator", env=ENV)

    assert result.exit_code == 1
    assert restore_row(result.stdout)[-1] == "error"
    assert (
        f"error: instance {DOOMED} snapshot {SEED_A}: InstanceFailed: instance {DOOMED} is error"
        in result.stderr
    )
    assert (DOOMED, "failed") in progress(result.stderr)
    assert PASSWORD not in result.output


def test_a_wait_that_times_out_exits_1(emulators: list[ZomroEmulator]) -> None:
    result = invoke(
        "restore", str(A), str(SEED_A), "--yes", "--timeout", "10", "--emulator", "--json", env=ENV
    )

    assert result.exit_code == 1
    (row,) = document(result)["results"]
    assert (row["ok"], row["error"]["type"], row["status"]) == (False, "WaitTimeout", "rebuilding")
    assert emulators[0].calls["instances.fleio.rebuild"] == 1


def test_unknown_instance_or_image(emulators: list[ZomroEmulator]) -> None:
    result = invoke("restore", "999", str(SEED_A), "--yes", "--emulator", env=ENV)
    assert result.exit_code == 1
    assert "error: instance 999 snapshot 5204214: NotFoundError" in result.stderr
    assert "the emulator's instances are" in result.stderr

    result = invoke("restore", str(A), "77", "--yes", "--emulator", "--json", env=ENV)
    assert result.exit_code == 1
    (row,) = document(result)["results"]
    assert (row["snapshot_id"], row["snapshot_name"], row["error"]["type"]) == (
        77,
        None,
        "NotFoundError",
    )
    assert all(e.calls["instances.fleio.rebuild"] == 0 for e in emulators)


def test_an_unknown_image_is_named_as_such_in_the_question(
    emulators: list[ZomroEmulator], at_a_terminal: None
) -> None:
    result = invoke("restore", str(A), "77", "--emulator", env=ENV, input="y\n")

    assert result.exit_code == 1
    assert "overwritten with image 77 (no instance of the account lists it" in result.stderr


def test_a_snapshot_still_saving_is_refused_before_asking(
    emulators: list[ZomroEmulator], sandbox_setup: list[Setup], at_a_terminal: None
) -> None:
    sandbox_setup.append(lambda e: e.add_instance(5_203_790, 0, saving=1))
    doc = document(invoke("snapshots", "list", "5203790", "--emulator", "--json"))
    (saving,) = [r["snapshot_id"] for r in doc["results"]]

    result = invoke("restore", str(A), str(saving), "--emulator", env=ENV)

    assert result.exit_code == 1
    assert f"snapshot {saving} is Saving, not Active: await it first" in result.stderr
    assert f"zomro-async snapshots wait 5203790 {saving}" in result.stderr
    assert "overwritten" not in result.stderr
    assert emulators[-1].calls["instances.fleio.rebuild"] == 0


def test_an_ssh_key_the_account_lacks_is_refused_by_the_api(emulators: list[ZomroEmulator]) -> None:
    key = "11111111-2222-4333-8444-555555555555"
    result = invoke("restore", str(A), str(SEED_A), "--yes", "--ssh-key", key, "--emulator")

    assert result.exit_code == 1
    assert "InvalidRequestError" in result.stderr
    assert emulators[0].instance_status(A) == "active"


def test_the_password_is_never_shown_even_when_the_api_echoes_it(
    emulators: list[ZomroEmulator],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Let a password the server refuses through the client's own checks: the
    # emulator's refusal quotes it back, in the error's detail and params.
    monkeypatch.setattr(_restore_cmd, "check_rebuild_password", lambda value: value)
    monkeypatch.setattr(instances_client, "check_rebuild_password", lambda value: value)
    caplog.set_level(logging.DEBUG, logger="zomro_async")
    refused = "all-lower-case-9"
    env = {"ZOMRO_REBUILD_PASSWORD": refused}

    for extra in ([], ["--json"]):
        result = invoke("restore", str(A), str(SEED_A), "--yes", "--emulator", *extra, env=env)

        assert result.exit_code == 1
        assert "InvalidRequestError" in result.output
        assert refused not in result.output
    assert refused not in caplog.text
    assert all(e.calls["instances.fleio.rebuild"] == 1 for e in emulators)


# -- Ctrl-C ----------------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_during_the_wait_tells_how_to_resume(monkeypatch: pytest.MonkeyPatch) -> None:
    real = z.InstancesManager.wait_settled

    async def interrupted(self: z.InstancesManager, *args: object, **kwargs: object) -> z.Instance:
        signal.raise_signal(signal.SIGINT)
        return await real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(z.InstancesManager, "wait_settled", interrupted)
    result = invoke("restore", str(A), str(SEED_A), "--yes", "--emulator", env=ENV)

    assert result.exit_code == 130
    out = result.stderr[result.stderr.index("interrupted") :]
    assert out.splitlines() == [
        "interrupted: the job was cancelled",
        "to resume, run:",
        f"  zomro-async instances wait --emulator {A}",
    ]
    assert PASSWORD not in result.output


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_while_the_restore_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    real = z.InstancesManager.restore

    async def interrupted(self: z.InstancesManager, *args: object, **kwargs: object) -> z.Instance:
        signal.raise_signal(signal.SIGINT)
        return await real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(z.InstancesManager, "restore", interrupted)
    result = invoke("restore", str(A), str(SEED_A), "--yes", "--emulator", "--json", env=ENV)

    assert result.exit_code == 130
    doc = document(result)
    assert doc["error"]["type"] == "KeyboardInterrupt"
    assert doc["resume"] == []
    assert f"the restore of instance {A} was sent and may have begun" in result.stderr
    assert PASSWORD not in result.output


def test_help_says_where_the_password_comes_from() -> None:
    result = invoke("restore", "--help")

    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "ZOMRO_REBUILD_PASSWORD" in text
    assert "never from a flag" in text
    assert "--yes" in text
    assert "--password" not in text
    assert '"snapshot_id", "snapshot_name" and "waited"' in text
