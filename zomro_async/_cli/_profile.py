"""The configuration file: connection settings by profile, read with tomllib.

    [default]                 # used when no profile is named
    api_url = "https://api.zomro.com/"
    username = "alice"
    output = "tsv"            # the default of --output: table, tsv or json

    [profiles.staging]        # --profile staging, or ZOMRO_PROFILE=staging
    api_url = "http://127.0.0.1:8765/"
    token = "..."             # only in a file no one else can read (chmod 600)

The file is `$ZOMRO_CONFIG`, else `$XDG_CONFIG_HOME/zomro-async/config.toml`,
else `~/.config/zomro-async/config.toml`. A profile gives what a flag or a
variable does not (flags > environment > profile); it never inherits `[default]`.
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import click

from ._output import FORMATS

CONFIG_ENV = "ZOMRO_CONFIG"
PROFILE_ENV = "ZOMRO_PROFILE"
CREDENTIALS_ENV = "CREDENTIALS_DIRECTORY"  # systemd's, for a unit's LoadCredential=
KEYS = ("api_url", "username", "token", "password", "output")
SECRET_KEYS = frozenset({"token", "password"})
# As ssh does for a private key: a secret is refused in a file that anyone but
# its owner may read or write.
_OPEN_TO_OTHERS = stat.S_IRWXG | stat.S_IRWXO


class ConfigError(click.ClickException):
    """The configuration file cannot be used as it is: exit status 2, as a usage error."""

    exit_code = 2


@attrs.frozen(kw_only=True)
class Profile:
    """What a profile gives (None: not given), and `source`, where it is, for messages."""

    source: str = ""
    api_url: str | None = None
    username: str | None = None
    token: str | None = attrs.field(default=None, repr=False)
    password: str | None = attrs.field(default=None, repr=False)
    output: str | None = None  # one of `_output.FORMATS`


NO_PROFILE = Profile()


def config_path(env: Mapping[str, str]) -> tuple[Path | None, bool]:
    """The configuration file's path (None: no home to look in), and whether it was
    named (`ZOMRO_CONFIG`), when it must exist."""
    if named := env.get(CONFIG_ENV, "").strip():
        return Path(named).expanduser(), True
    base = env.get("XDG_CONFIG_HOME", "").strip()
    if base and Path(base).is_absolute():  # a relative one is to be ignored (the XDG spec)
        return Path(base) / "zomro-async" / "config.toml", False
    try:
        return Path.home() / ".config" / "zomro-async" / "config.toml", False
    except RuntimeError:  # no home directory to be found
        return None, False


def load(flag: str | None, env: Mapping[str, str]) -> Profile:
    """The profile named by `--profile` (`flag`) or `ZOMRO_PROFILE`, else `[default]`;
    `NO_PROFILE` when there is no file and none is named.

    Raises `click.UsageError` if the profile named is not there, and `ConfigError`
    if the file cannot be read, is not TOML, has a key or table this does not
    know, or holds a secret where others may read it.
    """
    name = flag or env.get(PROFILE_ENV, "").strip() or None
    hint = "--profile" if flag else PROFILE_ENV
    path, named = config_path(env)
    if path is None or not (named or path.exists()):
        if name is not None:
            raise click.UsageError(f"{hint}: no profile {name!r}: there is no configuration file")
        return NO_PROFILE
    tables = _read(path, private=_in_credentials(path, env))
    if name is None:
        return _profile(tables.get("default", {}), f"[default] of {path}")
    profiles = tables.get("profiles", {})
    if name not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise click.UsageError(f"{hint}: no profile {name!r} in {path} (its profiles: {known})")
    return _profile(profiles[name], f"[profiles.{name}] of {path}")


def _in_credentials(path: Path, env: Mapping[str, str]) -> bool:
    """Whether `path` is a credential systemd hands the service (`LoadCredential=`):
    in `$CREDENTIALS_DIRECTORY`, which only the unit's processes may enter. systemd
    may grant a DynamicUser=/User= service its file by an ACL, which shows in the
    mode as group bits: the directory, not the mode, keeps it private."""
    directory = env.get(CREDENTIALS_ENV, "").strip()
    if not directory:
        return False
    try:
        return path.resolve().parent == Path(directory).resolve()
    except OSError:
        return False


def _read(path: Path, *, private: bool = False) -> dict[str, dict[str, Any]]:
    """The file's tables by name (`default`, `profiles`), each checked; a secret is
    refused where others may read it, unless the file is `private` by its place."""
    try:
        with path.open("rb") as file:
            mode = os.fstat(file.fileno()).st_mode  # of the file read, not one put there since
            document = tomllib.load(file)
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        # Its message says where (line, column), never what the line holds.
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not valid TOML: it is not UTF-8") from None
    tables: dict[str, dict[str, Any]] = {}
    for key, value in document.items():
        if key not in ("default", "profiles") or not isinstance(value, dict):
            raise ConfigError(
                f"{path}: unknown {key!r} at the top level: the file has a [default] "
                "table and [profiles.NAME] tables"
            )
        tables[key] = value
    sections = {"default": tables.get("default", {})}
    for name, profile in tables.get("profiles", {}).items():
        if not isinstance(profile, dict):
            raise ConfigError(f"{path}: profiles.{name} must be a table ([profiles.{name}])")
        sections[f"profiles.{name}"] = profile
    for section, values in sections.items():
        _check_table(path, section, values)
    secret = any(SECRET_KEYS.intersection(values) for values in sections.values())
    if secret and os.name == "posix" and mode & _OPEN_TO_OTHERS and not private:
        raise ConfigError(
            f"{path} holds a token or password, and others may read it "
            f"(mode {stat.S_IMODE(mode):04o}): run `chmod 600 {path}`"
        )
    return tables


def _check_table(path: Path, section: str, values: Mapping[str, Any]) -> None:
    for key, value in values.items():  # the errors name keys, never a value
        if key not in KEYS:
            raise ConfigError(
                f"{path}: unknown key {key!r} in [{section}] (known: {', '.join(KEYS)})"
            )
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{path}: {key} in [{section}] must be a non-empty string")
        if key == "output" and value not in FORMATS:
            raise ConfigError(f"{path}: output in [{section}] must be one of {', '.join(FORMATS)}")
    if "token" in values and ("username" in values or "password" in values):
        raise ConfigError(f"{path}: [{section}] gives a token or a username, not both")
    if "password" in values and "username" not in values:
        raise ConfigError(f"{path}: [{section}] gives a password without its username")


def _profile(values: Mapping[str, str], source: str) -> Profile:
    return Profile(source=source, **{key: values.get(key) for key in KEYS})
