"""The configuration file's profiles: flags over the environment over the profile."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click
import pytest

from zomro_async._cli import _common, _profile

from ._support import A, invoke

TOKEN = "tok-from-the-profile-271828"
PASSWORD = "pw-from-the-profile-161803"


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the configuration file is looked for (clean_env's XDG_CONFIG_HOME)."""
    monkeypatch.setattr(_common, "stdin_is_tty", lambda: False)  # never a prompt
    return Path(os.environ["XDG_CONFIG_HOME"]) / "zomro-async"


def write(home: Path, text: str, mode: int = 0o600) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.toml"
    path.write_text(text)
    path.chmod(mode)
    return path


SAMPLE = f"""
[default]
api_url = "http://127.0.0.1:1111/"
token = "{TOKEN}"

[profiles.staging]
api_url = "http://127.0.0.1:2222/"
username = "alice"
password = "{PASSWORD}"

[profiles.plain]
username = "bob"
"""


def settings(env: dict[str, str] | None = None, **flags: Any) -> dict[str, Any]:
    """`client_settings` of the flags, the environment (os.environ's, then `env`)
    and the configuration file, without the retry policy."""
    found = _common.client_settings(_common.Settings(**flags), {**os.environ, **(env or {})})
    del found["retry"]
    return found


# -- precedence: flag > environment > profile ------------------------------------------


def test_the_default_table_is_read_when_no_profile_is_named(home: Path) -> None:
    write(home, SAMPLE)
    assert settings() == {"base_url": "http://127.0.0.1:1111/", "token": TOKEN}


@pytest.mark.parametrize(
    ("flags", "env"),
    [({"profile": "staging"}, {}), ({}, {"ZOMRO_PROFILE": "staging"})],
    ids=["flag", "environment"],
)
def test_a_profile_is_chosen_by_flag_or_environment(
    home: Path, flags: dict[str, str], env: dict[str, str]
) -> None:
    write(home, SAMPLE)
    assert settings(env, **flags) == {
        "base_url": "http://127.0.0.1:2222/",
        "username": "alice",
        "password": PASSWORD,
    }


def test_the_flag_names_the_profile_over_the_environment(home: Path) -> None:
    write(home, SAMPLE)
    found = settings({"ZOMRO_PROFILE": "plain"}, profile="staging")
    assert found["username"] == "alice"


def test_a_profile_does_not_inherit_the_default_table(home: Path) -> None:
    write(home, SAMPLE)
    found = settings({"ZOMRO_PASSWORD": "pw"}, profile="plain")
    assert found == {"base_url": "https://api.zomro.com/", "username": "bob", "password": "pw"}


def test_api_url_environment_and_flag_over_profile(home: Path) -> None:
    write(home, SAMPLE)
    env = {"ZOMRO_API_URL": "http://127.0.0.1:3333/"}
    assert settings(env)["base_url"] == "http://127.0.0.1:3333/"
    found = settings(env, api_url="http://127.0.0.1:4444/")
    assert found["base_url"] == "http://127.0.0.1:4444/"


def test_token_environment_and_flag_over_profile(home: Path) -> None:
    write(home, SAMPLE)
    assert settings({"ZOMRO_TOKEN": "env-token"})["token"] == "env-token"
    assert settings({"ZOMRO_TOKEN": "env-token"}, token="flag-token")["token"] == "flag-token"


def test_username_environment_and_flag_over_profile(home: Path) -> None:
    write(home, SAMPLE)
    env = {"ZOMRO_USERNAME": "carol", "ZOMRO_PASSWORD": "pw"}
    found = settings(env, profile="staging")
    assert (found["username"], found["password"]) == ("carol", "pw")
    found = settings({"ZOMRO_PASSWORD": "pw"}, profile="staging", username="dave")
    assert (found["username"], found["password"]) == ("dave", "pw")
    # Credentials of the environment replace the profile's whole, as a flag's do.
    assert "token" not in settings(env)


def test_the_password_environment_over_profile(home: Path) -> None:
    write(home, SAMPLE)
    found = settings({"ZOMRO_PASSWORD": "env-pw"}, profile="staging")
    assert found["password"] == "env-pw"


def test_a_profiles_password_is_its_usernames_only(home: Path) -> None:
    write(home, SAMPLE)
    assert settings(profile="staging", username="alice")["password"] == PASSWORD
    with pytest.raises(_common.AuthFailure, match="no password for mallory"):
        settings(profile="staging", username="mallory")


def test_no_file_is_no_profile(home: Path) -> None:
    assert not home.exists()
    assert settings({"ZOMRO_TOKEN": "t"}) == {"base_url": "https://api.zomro.com/", "token": "t"}


def test_zomro_config_names_the_file(home: Path, tmp_path: Path) -> None:
    write(home, SAMPLE)
    other = write(tmp_path / "elsewhere", '[default]\ntoken = "other-token"\n')
    assert settings({"ZOMRO_CONFIG": str(other)})["token"] == "other-token"


def test_the_profile_is_repeated_in_resume_commands() -> None:
    flags = _common.Settings(profile="staging", api_url="https://x/").flags()
    assert flags == ["--api-url", "https://x/", "--profile", "staging"]


# -- through the command line ----------------------------------------------------------


def test_the_command_uses_the_profile(home: Path, closed_port: int) -> None:
    write(
        home,
        f'[profiles.down]\napi_url = "http://127.0.0.1:{closed_port}/"\ntoken = "{TOKEN}"\n',
    )
    env = {"ZOMRO_CLI_RETRIES": "1"}
    result = invoke("snapshots", "list", str(A), "--profile", "down", env=env)

    assert result.exit_code == 4, result.output
    assert f"127.0.0.1:{closed_port}" in result.stderr
    assert TOKEN not in result.output


def test_the_profile_gives_the_output_format_a_flag_does_not(home: Path, closed_port: int) -> None:
    write(
        home,
        f'[profiles.cron]\napi_url = "http://127.0.0.1:{closed_port}/"\n'
        f'token = "{TOKEN}"\noutput = "json"\n',
    )
    env = {"ZOMRO_CLI_RETRIES": "1"}

    by_profile = invoke("snapshots", "list", str(A), "--profile", "cron", env=env)
    by_flag = invoke("snapshots", "list", str(A), "--profile", "cron", "-o", "tsv", env=env)

    assert by_profile.exit_code == by_flag.exit_code == 4
    assert json.loads(by_profile.stdout)["error"]["type"] == "TransportError"
    assert by_flag.stdout == ""  # tsv: nothing to list, and the error on stderr


def test_the_emulator_ignores_the_file_and_refuses_a_profile(home: Path) -> None:
    write(home, "this is not TOML", mode=0o644)
    assert invoke("instances", "list", "--emulator").exit_code == 0
    env = {"ZOMRO_PROFILE": "staging"}
    assert invoke("instances", "list", "--emulator", env=env).exit_code == 0

    result = invoke("instances", "list", "--emulator", "--profile", "staging")
    assert result.exit_code == 2
    assert "--profile and --emulator exclude each other" in result.stderr


# -- errors: exit status 2, no traceback, no secret ----------------------------------


def refused(*args: str, env: dict[str, str] | None = None) -> str:
    """stderr of a command refused with exit status 2."""
    result = invoke("instances", "list", *args, env=env)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert TOKEN not in result.output
    assert PASSWORD not in result.output
    return result.stderr


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
def test_a_secret_in_a_file_others_may_read_is_refused(home: Path, mode: int) -> None:
    path = write(home, SAMPLE, mode)
    stderr = refused()

    assert str(path) in stderr
    assert f"chmod 600 {path}" in stderr
    assert f"mode {mode:04o}" in stderr


def test_a_credential_systemd_hands_over_is_read_whatever_its_group_bits(
    tmp_path: Path,
) -> None:
    credentials = tmp_path / "credentials"  # $CREDENTIALS_DIRECTORY: the unit's alone
    path = write(credentials, SAMPLE, 0o440)  # a DynamicUser's ACL shows as group bits
    env = {"ZOMRO_CONFIG": str(path)}

    given = settings({**env, "CREDENTIALS_DIRECTORY": str(credentials)})
    assert given["token"] == TOKEN
    # The same file anywhere else is refused, and so is one beside the directory.
    assert "chmod 600" in refused(env=env)
    other = write(tmp_path / "elsewhere", SAMPLE, 0o440)
    env = {"ZOMRO_CONFIG": str(other), "CREDENTIALS_DIRECTORY": str(credentials)}
    assert "chmod 600" in refused(env=env)


def test_a_secret_in_a_file_of_its_owner_only_is_read(home: Path) -> None:
    write(home, SAMPLE, 0o600)
    assert settings()["token"] == TOKEN
    write(home, SAMPLE, 0o400)
    assert settings()["token"] == TOKEN


def test_a_file_without_secrets_may_be_read_by_others(home: Path) -> None:
    write(home, '[default]\napi_url = "http://127.0.0.1:1111/"\nusername = "bob"\n', 0o644)
    assert settings({"ZOMRO_PASSWORD": "pw"})["username"] == "bob"


@pytest.mark.parametrize(
    ("args", "env"),
    [(["--profile", "nope"], {}), ([], {"ZOMRO_PROFILE": "nope"})],
    ids=["flag", "environment"],
)
def test_a_missing_profile_is_a_usage_error(
    home: Path, args: list[str], env: dict[str, str]
) -> None:
    path = write(home, SAMPLE)
    stderr = refused(*args, env=env)

    assert "no profile 'nope'" in stderr
    assert str(path) in stderr
    assert "plain, staging" in stderr  # the profiles there are
    assert ("--profile" if args else "ZOMRO_PROFILE") in stderr


def test_a_profile_named_without_a_file_is_a_usage_error(home: Path) -> None:
    assert "no profile 'nope': there is no configuration file" in refused("--profile", "nope")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f'[default]\ntoken = "{TOKEN}"\napi_url = ', "is not valid TOML"),
        (f'[default]\ntoken = "{TOKEN}"\ntokn = "{TOKEN}"\n', "unknown key 'tokn' in [default]"),
        (f'[profile.x]\ntoken = "{TOKEN}"\n', "unknown 'profile' at the top level"),
        (f'token = "{TOKEN}"\n', "unknown 'token' at the top level"),
        ('[profiles]\nx = "y"\n', "profiles.x must be a table"),
        ("[default]\nusername = 42\n", "username in [default] must be a non-empty string"),
        ('[default]\nusername = " "\n', "must be a non-empty string"),
        (f'[profiles.a]\ntoken = "{TOKEN}"\nusername = "u"\n', "a token or a username, not both"),
        (f'[default]\npassword = "{PASSWORD}"\n', "a password without its username"),
        ('[default]\noutput = "xml"\n', "output in [default] must be one of table, tsv, json"),
    ],
)
def test_a_broken_file_is_an_error_naming_it(home: Path, text: str, message: str) -> None:
    path = write(home, text)
    stderr = refused()

    assert message in stderr
    assert str(path) in stderr


def test_a_file_that_is_not_utf8_is_an_error(home: Path) -> None:
    home.mkdir(parents=True)
    (home / "config.toml").write_bytes(b'[default]\nusername = "\xff"\n')
    assert "is not valid TOML" in refused()


def test_a_bad_api_url_in_the_profile_names_the_profile(home: Path) -> None:
    path = write(home, f'[profiles.x]\napi_url = "http://example.com/"\ntoken = "{TOKEN}"\n')
    stderr = refused("--profile", "x")

    assert f"api_url in [profiles.x] of {path}" in stderr
    assert "refusing http URL" in stderr


def test_zomro_config_naming_no_file_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    stderr = refused(env={"ZOMRO_CONFIG": str(missing)})

    assert f"cannot read the configuration file {missing}" in stderr


def test_the_profile_module_errors_are_usage_errors() -> None:
    # exit status 2, as a usage error; but no "Usage:" line, which would point at the flags
    assert _profile.ConfigError("x").exit_code == 2
    assert issubclass(_profile.ConfigError, click.ClickException)
