"""Credentials and settings (flags over the environment, never a password flag), exit codes."""

from __future__ import annotations

import pytest

import zomro_async as z
from zomro_async._cli import _common
from zomro_async.testing import ZomroEmulator

from ._support import A, document, invoke

SECRET = "pw-never-shown-42"


def unreachable(port: int) -> dict[str, str]:
    return {
        "ZOMRO_TOKEN": "t",
        "ZOMRO_API_URL": f"http://127.0.0.1:{port}/",
        "ZOMRO_CLI_RETRIES": "1",
    }


# -- exit status 3: authentication ---------------------------------------------------


def test_no_credentials_is_an_authentication_failure() -> None:
    result = invoke("snapshots", "list", str(A))

    assert result.exit_code == 3
    assert "no credentials: set ZOMRO_TOKEN" in result.stderr


def test_a_username_without_a_password_and_no_terminal_is_refused() -> None:
    for args, env in [
        (["--username", "demo"], {}),
        ([], {"ZOMRO_USERNAME": "demo"}),
    ]:
        result = invoke("snapshots", "list", str(A), *args, env=env)
        assert result.exit_code == 3
        assert "no password for demo: set ZOMRO_PASSWORD" in result.stderr


def test_a_bad_password_from_the_environment_exits_3(emulators: list[ZomroEmulator]) -> None:
    env = {"ZOMRO_PASSWORD": SECRET}
    result = invoke("snapshots", "list", str(A), "--emulator", "--username", "demo", env=env)

    assert result.exit_code == 3
    assert "error: authentication failed: AuthError: Invalid username or password" in result.stderr
    assert SECRET not in result.output
    assert emulators[0].calls["auth"] == 1  # one refusal, not one per item


def test_a_bad_token_exits_3_also_in_json() -> None:
    result = invoke("rotate", str(A), "--keep", "2", "--emulator", "--token", "bogus", "--json")

    assert result.exit_code == 3
    doc = document(result)
    assert doc["error"]["type"] == "AuthError"
    assert [r["error"]["type"] for r in doc["results"]] == ["AuthError"]


def test_the_right_password_from_the_environment_works() -> None:
    env = {"ZOMRO_PASSWORD": "demo-password"}
    result = invoke("snapshots", "list", str(A), "--emulator", "--username", "demo", env=env)
    assert result.exit_code == 0, result.output


def test_the_password_is_asked_without_echo_at_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_common, "stdin_is_tty", lambda: True)

    result = invoke(
        "snapshots", "list", str(A), "--emulator", "--username", "demo", input="demo-password\n"
    )

    assert result.exit_code == 0, result.output
    assert "Password for demo:" in result.stderr
    assert "demo-password" not in result.output


@pytest.mark.parametrize("args", [["--password", SECRET], [f"--password={SECRET}"]])
def test_a_password_is_never_a_flag(args: list[str], emulators: list[ZomroEmulator]) -> None:
    result = invoke("snapshots", "list", str(A), "--emulator", "--username", "demo", *args)

    assert result.exit_code == 2
    assert "a password is never a flag" in result.stderr
    assert SECRET not in result.output
    assert not emulators  # refused before anything ran


def test_environment_credentials_never_reach_the_emulator() -> None:
    env = {"ZOMRO_TOKEN": "real-token", "ZOMRO_API_URL": "https://api.zomro.com/"}
    assert invoke("snapshots", "list", str(A), "--emulator", env=env).exit_code == 0


# -- exit status 4: the API cannot be reached ----------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["snapshots", "list", str(A)],
        ["snapshots", "create", str(A), "5", "--name", "n", "--wait"],
        ["snapshots", "delete", str(A), "5"],
        ["snapshots", "wait", str(A), "5"],
        ["rotate", str(A), "--keep", "2"],
    ],
)
def test_an_unreachable_api_exits_4(args: list[str], closed_port: int) -> None:
    result = invoke(*args, env=unreachable(closed_port))

    assert result.exit_code == 4, result.output
    assert "error: could not reach the API: TransportError" in result.stderr
    assert f"127.0.0.1:{closed_port}: connection refused" in result.stderr
    assert "Traceback" not in result.output

    result = invoke(*args, "--json", env=unreachable(closed_port))
    assert result.exit_code == 4
    assert document(result)["error"]["type"] == "TransportError"


def test_flags_override_the_environment(closed_port: int) -> None:
    env = {
        "ZOMRO_USERNAME": "alice",  # with no password: refused, if it counted
        "ZOMRO_API_URL": "http://example.com/",  # refused, if it counted
        "ZOMRO_CLI_RETRIES": "1",
    }
    url = f"http://127.0.0.1:{closed_port}/"
    result = invoke("snapshots", "list", str(A), "--token", "t", "--api-url", url, env=env)

    assert result.exit_code == 4  # the flags' API, tried with the flag's token


# -- exit status 2: usage ------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--token", "t", "--username", "u"], {}, "not both"),
        (["--emulator", "--api-url", "http://127.0.0.1:1/"], {}, "exclude each other"),
        (["--token", "t", "--api-url", "http://example.com/"], {}, "refusing http URL"),
        (["--token", "t", "--api-url", "http://127.0.0.1:99999/"], {}, "no valid port"),
        (["--emulator"], {"ZOMRO_CLI_RETRIES": "²"}, "ZOMRO_CLI_RETRIES"),
        (["--token", "t"], {"ZOMRO_API_URL": "ftp://x/"}, "ZOMRO_API_URL"),
        (["--emulator"], {"ZOMRO_CLI_RETRIES": "lots"}, "ZOMRO_CLI_RETRIES"),
    ],
)
def test_bad_settings_are_usage_errors(args: list[str], env: dict[str, str], message: str) -> None:
    result = invoke("snapshots", "list", str(A), *args, env=env)

    assert result.exit_code == 2
    assert message in result.stderr


# -- the mapping -----------------------------------------------------------------------


def test_exit_code() -> None:
    auth = z.AuthError("no")
    down = z.TransportError("down")
    other = z.NotFoundError("gone")
    assert _common.exit_code([]) == 0
    assert _common.exit_code([None, None]) == 0
    assert _common.exit_code([auth, auth]) == 3
    assert _common.exit_code([down]) == 4
    assert _common.exit_code([None, auth]) == 1  # some items went through: not the account
    assert _common.exit_code([None, down]) == 1
    assert _common.exit_code([auth, down]) == 1
    assert _common.exit_code([other, None]) == 1


def test_the_main_help_documents_exit_codes_and_variables() -> None:
    result = invoke("--help")

    text = " ".join(result.output.split())
    for needle in (
        "ZOMRO_TOKEN",
        "ZOMRO_USERNAME",
        "ZOMRO_PASSWORD",
        "ZOMRO_API_URL",
        "0 all done; 1 some items failed; 2 usage error; 3 authentication failed; "
        "4 the API could not be reached; 130 interrupted",
    ):
        assert needle in text
    assert {"snapshots", "rotate", "demo", "emulator"} <= set(result.output.split())
