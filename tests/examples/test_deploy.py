"""examples/deploy/: each scheduler's file is well formed, and its command runs on the emulator.

The crontab line, the systemd unit's ExecStart and each CronJob's command are
parsed with the CLI's own click parser, then run: in-process on the
`--emulator` sandbox, and as the scheduler runs them (a process of the
installed `zomro-async` script, with the environment and credentials the file
sets up: the emulator's username and password, in the configuration file or
the Secret the file's comment describes) against an emulator served on
loopback, once for each exit status docs/scheduling.md names. How the CLI
takes Ctrl-C and SIGTERM is tests/cli/test_interrupt.py's and
tests/cli/test_sigterm.py's; here they reach the service's own command, and
the rerun after them adopts what it made.
(tests/cli/_process.py runs `--emulator` commands; these need an emulator the
test serves, on the test's event loop, as test_nightly_rotation.py does.)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import json
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli._support import DOOMED, A, document, invoke, names_on
from tests.cli.conftest import _seeded, clean_env, closed_port, emulators  # noqa: F401 (fixtures)
from zomro_async._cli import _sandbox, main
from zomro_async.testing import VirtualClock, ZomroEmulator

from ._support import EXAMPLES

DEPLOY = EXAMPLES / "deploy"
DOCS = EXAMPLES.parent / "docs"
CRONTAB = DEPLOY / "crontab"
SERVICE = DEPLOY / "zomro-async-rotate.service"
TIMER = DEPLOY / "zomro-async-rotate.timer"
CRONJOBS = DEPLOY / "cronjob.yaml"
SAMPLE = _sandbox.SAMPLE_INSTANCES
# The installed console script, as the schedulers run it.
SCRIPT = Path(sys.executable).with_name("zomro-async")
# A safety net, never waited out by a passing test: a run that hangs fails.
RUN_LIMIT = 60.0
# A progress line on stderr: `<time> instance I snapshot S <state>`.
PROGRESS = re.compile(r"\S+Z instance (\d+) snapshot (\d+) (\w+)")
RESUME = re.compile(r"zomro-async snapshots wait (\d+) (\d+)")
NEW_SNAPSHOT = "instances.snapshots.edit"
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX processes and signals")


# -- reading the files -----------------------------------------------------------

Unit = dict[str, list[tuple[str, str]]]


def read_unit(path: Path) -> Unit:
    """A systemd unit's settings by section, in order (a key may repeat)."""
    sections: Unit = {}
    section: list[tuple[str, str]] | None = None
    for line in path.read_text().splitlines():
        text = line.strip()
        if not text or text.startswith(("#", ";")):
            continue
        if text.startswith("[") and text.endswith("]"):
            section = sections.setdefault(text[1:-1], [])
            continue
        key, equals, value = text.partition("=")
        assert equals, f"{path.name}: {line!r}"
        assert section is not None, f"{path.name}: {line!r} is in no section"
        section.append((key.strip(), value.strip()))
    return sections


def unit_values(unit: Unit, section: str, key: str) -> list[str]:
    return [value for name, value in unit.get(section, []) if name == key]


def unit_value(unit: Unit, section: str, key: str) -> str:
    (value,) = unit_values(unit, section, key)
    return value


def comment_above(path: Path, key: str) -> str:
    """The comment lines right above `key=` in a unit, as one text."""
    lines = path.read_text().splitlines()
    at = next(n for n, line in enumerate(lines) if line.startswith(f"{key}="))
    comment: list[str] = []
    for line in reversed(lines[:at]):
        if not line.startswith("#"):
            break
        comment.insert(0, line.lstrip("# "))
    return " ".join(comment)


def seconds(span: str) -> int:
    """A systemd time span as the units write them (`60`, `15min`, `3h`), in seconds."""
    match = re.fullmatch(r"(\d+)(h|min|s|)", span)
    assert match, span
    return int(match[1]) * {"h": 3600, "min": 60, "s": 1, "": 1}[match[2]]


def crontab() -> tuple[dict[str, str], list[str]]:
    """The crontab's variables, and its entries (five time fields, then the command)."""
    variables: dict[str, str] = {}
    entries: list[str] = []
    for line in CRONTAB.read_text().splitlines():
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if assignment := re.fullmatch(r"([A-Z_]+)=(.*)", text):
            variables[assignment[1]] = assignment[2]
        else:
            entries.append(text)
    return variables, entries


def cron_command() -> tuple[list[str], str]:
    """The one entry's time fields and its shell command."""
    _, entries = crontab()
    (entry,) = entries
    *fields, command = entry.split(None, 5)
    return fields, command


def shell_words(command: str) -> list[str]:
    """A shell command's words, its operators (`>>`, `&&`, `|`, ...) words of their own."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


def cli_words(command: str) -> list[str]:
    """The `zomro-async ...` words of a shell command, up to its first operator."""
    words = shell_words(command)
    start = next(n for n, word in enumerate(words) if Path(word).name == "zomro-async")
    found: list[str] = []
    for word in words[start:]:
        if set(word) <= set("();<>|&"):
            break
        found.append(word)
    return found


def documented_config(path: Path) -> tuple[str, dict[str, str]]:
    """The configuration file `path`'s comment tells to write (the lines indented
    under `# then edit it:`): its one table's header and its keys."""
    lines = path.read_text().splitlines()
    at = next(n for n, line in enumerate(lines) if line.endswith("# then edit it:"))
    body: list[str] = []
    for line in lines[at + 1 :]:
        if not (match := re.fullmatch(r"#\s{5,}(\S.*)", line)):
            break
        body.append(match[1])
    document = tomllib.loads("\n".join(body))
    if "default" in document:
        assert list(document) == ["default"]
        return "[default]", document["default"]
    ((name, table),) = document["profiles"].items()
    return f"[profiles.{name}]", table


def config_of(path: Path, url: str, username: str, password: str) -> str:
    """That configuration file, for an account at `url`: the comment's keys
    filled in, and `api_url`."""
    header, table = documented_config(path)
    given = {"username": username, "password": password}
    keys = [f'{key} = "{given[key]}"' for key in table]
    return "\n".join([header, f'api_url = "{url}"', *keys, ""])


def login(emulator: ZomroEmulator) -> tuple[str, str]:
    """The username and password of the emulator's account."""
    return emulator.config.username, emulator.config.password


def program_of(words: list[str]) -> str:
    """The `zomro-async` word of a command, as written."""
    return next(word for word in words if Path(word).name == "zomro-async")


def documented_secrets() -> dict[str, dict[str, str]]:
    """The `kubectl create secret generic NAME --from-...=KEY=...` commands of
    cronjob.yaml's comment: each Secret's options, by the key each fills."""
    lines = CRONJOBS.read_text().splitlines()
    comment = "\n".join(line.removeprefix("#") for line in lines if line.startswith("#"))
    found: dict[str, dict[str, str]] = {}
    for command in comment.replace("\\\n", " ").splitlines():
        if not command.strip().startswith("kubectl create secret "):
            continue
        words = shlex.split(command)
        assert words[:4] == ["kubectl", "create", "secret", "generic"], command
        name, *options = words[4:]
        keys = {}
        for option in options:
            source, _, key_value = option.partition("=")
            assert source in ("--from-literal", "--from-file"), option
            key, equals, _ = key_value.partition("=")
            assert equals, f"{option}: a key of its own, not the file's name"
            keys[key] = option
        found[name] = keys
    return found


def cronjobs() -> list[dict[str, Any]]:
    documents = [d for d in yaml.safe_load_all(CRONJOBS.read_text()) if d is not None]
    assert all(d["kind"] == "CronJob" and d["apiVersion"] == "batch/v1" for d in documents)
    return documents


def job_spec(cronjob: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = cronjob["spec"]["jobTemplate"]["spec"]
    return spec


def pod_spec(cronjob: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = job_spec(cronjob)["template"]["spec"]
    return spec


def container(cronjob: dict[str, Any]) -> dict[str, Any]:
    (only,) = pod_spec(cronjob)["containers"]
    assert isinstance(only, dict)
    return only


def deploy_commands() -> dict[str, list[str]]:
    """Every file's `zomro-async` command line, by where it comes from."""
    found = {"crontab": cli_words(cron_command()[1])}
    exec_start = unit_value(read_unit(SERVICE), "Service", "ExecStart")
    assert not set("$%\\") & set(exec_start), "a plain command: no expansion to undo"
    found["systemd"] = shlex.split(exec_start)
    for cronjob in cronjobs():
        words = [*container(cronjob)["command"], *container(cronjob).get("args", [])]
        found[f"cronjob {cronjob['metadata']['name']}"] = [str(word) for word in words]
    return found


COMMANDS = deploy_commands()


def parse(words: list[str]) -> tuple[str, dict[str, Any]]:
    """The subcommand of `zomro-async WORDS` and its parameters, as click parses them
    (a bad option or value raises its usage error)."""
    program, *args = words
    assert Path(program).name == "zomro-async"
    with main.make_context("zomro-async", list(args)) as group:
        name, command, rest = main.resolve_command(group, list(args))
        assert name is not None
        assert command is not None
        with command.make_context(name, rest, parent=group) as context:
            return name, dict(context.params)


def without_account(words: list[str]) -> list[str]:
    """The command's arguments (after `zomro-async`) with `--profile NAME` left out:
    the sandbox stands in for the account, and `--emulator` excludes a profile."""
    args = words[1:]
    if "--profile" in args:
        at = args.index("--profile")
        del args[at : at + 2]
    return args


# -- the command lines -------------------------------------------------------------


@pytest.mark.parametrize("where", sorted(COMMANDS))
def test_every_file_runs_the_nightly_rotation_of_the_account(where: str) -> None:
    name, params = parse(COMMANDS[where])

    assert name == "rotate"
    assert params["all_instances"] is True
    assert params["instances"] == ()
    assert params["keep_daily"] == 7
    assert params["keep_weekly"] == 4
    assert params["dry_run"] is False
    # Credentials come from the scheduler's secret store, never the command line.
    assert params["token"] is None
    assert params["username"] is None
    assert params["emulator"] is False


@pytest.mark.parametrize("path", sorted(DEPLOY.iterdir()), ids=lambda path: path.name)
def test_no_example_runs_on_a_token(path: Path) -> None:
    # A session lives an hour after its last request: a token saved for a
    # nightly job will have expired (docs/authentication.md).
    text = path.read_text()
    assert not re.search(r"^[#\s]*token\s*=", text, re.MULTILINE)  # no token in a config
    assert "ZOMRO_TOKEN" not in text
    assert "key: token" not in text
    assert "=token=" not in text  # nor in a Secret


@pytest.mark.parametrize(("path", "table"), [(CRONTAB, None), (SERVICE, "[default]")])
def test_the_documented_configuration_holds_a_username_and_password(
    path: Path, table: str | None
) -> None:
    header, keys = documented_config(path)

    # The crontab's profile is the one its line names; the unit names none.
    assert header == (table or f"[profiles.{profile_of_cron()}]")
    assert keys == {"username": "...", "password": "..."}
    assert "chmod 600" in path.read_text() or "install -m 600" in path.read_text()


def test_the_crontab_and_the_unit_run_the_cli_where_their_comments_install_it() -> None:
    cron_program = program_of(shell_words(cron_command()[1]))
    unit_program = shlex.split(unit_value(read_unit(SERVICE), "Service", "ExecStart"))[0]

    # cron's PATH holds no venv: the line must not depend on it.
    assert Path(cron_program).is_absolute()
    assert cron_program == unit_program
    venv = Path(unit_program).parent.parent
    install = f"python3 -m venv {venv} && {venv}/bin/pip install 'zomro-async[cli]'"
    for path in (CRONTAB, SERVICE, DOCS / "scheduling.md"):
        assert install in path.read_text(), path.name


def test_the_cli_page_s_snippets_are_the_examples_lines() -> None:
    page = (DOCS / "cli.md").read_text()
    (cron,) = re.findall(r"```cron\n(.*?)\n```", page, re.DOTALL)
    (ini,) = re.findall(r"```ini\n(.*?)\n```", page, re.DOTALL)

    assert cron.split() == " ".join(crontab()[1]).split()
    unit = SERVICE.read_text().splitlines()
    assert all(line in unit for line in ini.splitlines()), ini
    assert "TimeoutStopSec=" in ini


def test_the_two_cronjobs_run_the_same_job_for_two_accounts() -> None:
    jobs = [k for k in COMMANDS if k.startswith("cronjob ")]
    assert len(jobs) == 2
    team_a, team_b = (parse(COMMANDS[k])[1] for k in jobs)
    assert team_a["keep_monthly"] is None
    assert team_b["keep_monthly"] == 6  # each account its own retention


@pytest.mark.parametrize("where", sorted(COMMANDS))
def test_every_command_runs_to_the_end_on_the_sandbox(
    where: str,
    emulators: list[ZomroEmulator],  # noqa: F811
) -> None:
    result = invoke(*without_account(COMMANDS[where]), "--emulator", "--output", "json")

    # --all takes the sandbox's doomed instance too: its snapshot fails alone.
    assert result.exit_code == 1, result.output
    doc = document(result)
    (emulator,) = emulators
    rows = {row["instance_id"]: row for row in doc["results"]}
    assert list(rows) == [*SAMPLE, DOOMED]
    for instance_id in SAMPLE:
        row = rows[instance_id]
        assert row["ok"], row
        assert row["resumed"] is False
        (new,) = row["created"]
        assert new["status"] == "active"
        assert names_on(emulator, instance_id)[-1] == new["name"]
        assert row["deleted"] == []  # 7 days and 4 weeks keep the three seeded nights
    assert rows[DOOMED]["error"]["type"] == "SnapshotFailed"
    assert doc["resume"] == []  # a failed item has nothing to resume: rerun
    assert f"error: instance {DOOMED} snapshot " in result.stderr


# -- the crontab -------------------------------------------------------------------


def test_the_crontab_entry_runs_nightly_under_flock_with_its_log() -> None:
    variables, _ = crontab()
    fields, command = cron_command()
    minute, hour, *days = fields
    assert 0 <= int(minute) < 60
    assert 0 <= int(hour) < 24
    assert days == ["*", "*", "*"]
    assert "%" not in command  # cron would cut the command there
    assert variables["SHELL"] == "/bin/sh"
    assert "PATH" in variables

    words = shell_words(command)
    flock = words.index("flock")
    assert words[flock : flock + 4] == ["flock", "-n", "-E", "75"]
    program = program_of(words)
    assert words.index(program) == flock + 5  # flock LOCK zomro-async ...
    assert Path(program).is_absolute()
    # Both streams appended to a log file.
    after = words[words.index(program) :]
    assert after[after.index(">>") + 2 :] == ["2", ">&", "1"]
    assert "--profile" in after


class CronHome:
    """A home set up as the crontab's comment says, for an account on `emulator`."""

    def __init__(self, root: Path, emulator: ZomroEmulator, mode: int = 0o600) -> None:
        if shutil.which("flock") is None:
            pytest.skip("flock(1) is not installed")
        self.home = root / "home"
        (self.home / ".local/state/zomro-async").mkdir(parents=True)
        config = self.home / ".config/zomro-async/config.toml"
        config.parent.mkdir(parents=True)
        config.write_text(config_of(CRONTAB, emulator.url, *login(emulator)))
        config.chmod(mode)

    def command(self, program: Path | None = None) -> str:
        """The entry's command, with `program` (the installed script unless given)
        where the line has the CLI installed."""
        command = cron_command()[1]
        written = program_of(shell_words(command))
        assert f" {written} " in command
        found = program or script_or_skip()
        return command.replace(f" {written} ", f" {shlex.quote(str(found))} ")

    def path(self, word: str) -> Path:
        assert word.startswith("$HOME/")
        return self.home / word.removeprefix("$HOME/")

    def env(self) -> dict[str, str]:
        """cron's environment: the crontab's variables (its PATH alone: the script's
        directory is not on it), HOME and LANG."""
        variables, _ = crontab()
        return {**variables, "HOME": str(self.home), "LANG": "C.UTF-8"}


def cron_paths() -> tuple[str, str]:
    """The lock file and the log file of the entry, as written (`$HOME/...`)."""
    words = shell_words(cron_command()[1])
    return words[words.index("flock") + 4], words[words.index(">>") + 1]


def profile_of_cron() -> str:
    words = cli_words(cron_command()[1])
    return words[words.index("--profile") + 1]


@posix_only
async def test_the_crontab_entry_rotates_and_logs_nothing_for_cron_to_mail(
    tmp_path: Path,
) -> None:
    async with account() as emulator:
        home = CronHome(tmp_path, emulator)
        code, out, err = await finish(await shell(home.command(), home.env()))

    assert (code, out, err) == (0, "", "")
    assert emulator.calls["auth"] == 1  # logged in with the profile's password
    assert emulator.calls[NEW_SNAPSHOT] == len(SAMPLE)
    _, log = cron_paths()
    logged = home.path(log).read_text()
    assert re.search(rf"instance {SAMPLE[0]} snapshot \d+ active", logged)
    assert "Rotation" in logged  # the table, after the progress lines
    assert "error" not in logged


@posix_only
async def test_a_night_whose_run_is_still_going_skips_with_75(tmp_path: Path) -> None:
    async with account() as emulator:
        home = CronHome(tmp_path, emulator)
        lock, log = (home.path(word) for word in cron_paths())
        with holding(lock):  # the night before, still running
            code, out, err = await finish(await shell(home.command(), home.env()))

    assert (code, out, err) == (75, "", "")
    assert sum(emulator.calls.values()) == 0
    assert log.read_text() == ""  # the shell made it for `>>`; nothing ran to write it


@posix_only
async def test_a_password_in_a_profile_others_may_read_exits_2(tmp_path: Path) -> None:
    async with account() as emulator:
        home = CronHome(tmp_path, emulator, mode=0o644)
        code, out, err = await finish(await shell(home.command(), home.env()))

    assert (code, out, err) == (2, "", "")
    logged = home.path(cron_paths()[1]).read_text()
    assert "others may read it" in logged
    assert emulator.config.password not in logged
    assert sum(emulator.calls.values()) == 0


@posix_only
async def test_a_line_whose_cli_is_not_installed_there_exits_69(tmp_path: Path) -> None:
    async with account() as emulator:
        home = CronHome(tmp_path, emulator)
        missing = tmp_path / "elsewhere/bin/zomro-async"
        code, out, err = await finish(await shell(home.command(missing), home.env()))

    assert (code, out, err) == (69, "", "")  # flock's EX_UNAVAILABLE; all else goes to the log
    assert sum(emulator.calls.values()) == 0
    _, log = cron_paths()
    assert f"failed to execute {missing}" in home.path(log).read_text()


# -- the systemd units -------------------------------------------------------------


def test_the_service_is_a_hardened_oneshot_with_its_password_as_a_credential() -> None:
    unit = read_unit(SERVICE)
    service = dict(unit["Service"])

    assert service["Type"] == "oneshot"
    assert service["DynamicUser"] == "yes"
    name, source = service["LoadCredential"].split(":")
    assert source.startswith("/etc/")
    assert service["Environment"] == f"ZOMRO_CONFIG=%d/{name}"
    assert "EnvironmentFile" not in service  # the password is in no environment
    # Stopping: long enough for the CLI's wind-down after SIGTERM, and said why.
    stop = seconds(service["TimeoutStopSec"])
    assert 30 <= stop <= 300
    explained = comment_above(SERVICE, "TimeoutStopSec")
    assert "SIGTERM" in explained
    assert "143" in explained
    assert seconds(service["TimeoutStartSec"]) >= 3600
    # A stop the CLI wound down (143) is no failure of the unit; a time limit still is.
    assert service["SuccessExitStatus"].split() == ["143"]
    # Retried on 1 and 4, never on what a retry cannot mend.
    assert service["Restart"] == "on-failure"
    assert set(service["RestartPreventExitStatus"].split()) == {"2", "3"}
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    }.items():
        assert service[key] == value, key


def test_the_timer_runs_nightly_spread_and_catches_up_after_downtime() -> None:
    timer = dict(read_unit(TIMER)["Timer"])

    assert timer["Persistent"] == "true"
    assert seconds(timer["RandomizedDelaySec"]) > 0
    assert re.fullmatch(r"\*-\*-\* \d\d:\d\d:\d\d UTC", timer["OnCalendar"])
    assert "Unit" not in timer  # it starts the service of its own name
    assert TIMER.stem == SERVICE.stem
    assert dict(read_unit(TIMER)["Install"])["WantedBy"] == "timers.target"


def copy_units(tmp_path: Path) -> tuple[Path, Path]:
    """The units in `tmp_path`, ExecStart on the installed script (verify wants it there)."""
    script = script_or_skip()
    service = tmp_path / SERVICE.name
    program = shlex.split(unit_value(read_unit(SERVICE), "Service", "ExecStart"))[0]
    service.write_text(SERVICE.read_text().replace(f"ExecStart={program} ", f"ExecStart={script} "))
    timer = tmp_path / TIMER.name
    shutil.copyfile(TIMER, timer)
    return service, timer


def run_tool(name: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`name ARGS` (a tool on PATH, `args` our own files) in `cwd`; the test skips
    without it."""
    tool = shutil.which(name)
    if tool is None:
        pytest.skip(f"{name} is not installed: the files are not checked with it here")
    return subprocess.run(  # noqa: S603
        [tool, *args], capture_output=True, text=True, check=False, cwd=cwd
    )


def systemd_analyze(*args: str) -> subprocess.CompletedProcess[str]:
    return run_tool("systemd-analyze", *args)


def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    service, timer = copy_units(tmp_path)

    verified = systemd_analyze("verify", "--man=no", str(timer), str(service))

    assert verified.returncode == 0, verified.stderr
    # Unknown keys and the like are only warnings: there must be none.
    assert SERVICE.stem not in verified.stderr + verified.stdout


def test_the_service_s_exposure_is_low(tmp_path: Path) -> None:
    service, _ = copy_units(tmp_path)
    version = systemd_analyze("--version").stdout.split()
    if len(version) < 2 or not version[1].isdigit() or int(version[1]) < 250:
        pytest.skip("systemd-analyze security --offline needs systemd 250 or later")

    scored = systemd_analyze("security", "--offline=yes", "--threshold=20", str(service))

    assert scored.returncode == 0, scored.stdout[-2000:]  # 2.0 or below: "OK"


def service_words(script: Path, *more: str) -> list[str]:
    program, *args = shlex.split(unit_value(read_unit(SERVICE), "Service", "ExecStart"))
    assert Path(program).name == "zomro-async"
    return [str(script), *args, *more]


class Credentials:
    """A run of the service as systemd makes it: the credential in its directory
    (mode 0400, as systemd hands it over), the unit's Environment= set."""

    def __init__(self, root: Path, config: str, mode: int = 0o400) -> None:
        self.directory = root / "credentials"
        self.directory.mkdir(mode=0o700)
        name, _ = unit_value(read_unit(SERVICE), "Service", "LoadCredential").split(":")
        path = self.directory / name
        path.write_text(config)
        path.chmod(mode)
        self.home = root / "home"  # a dynamic user's: nothing in it
        self.home.mkdir()

    def env(self, **more: str) -> dict[str, str]:
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "CREDENTIALS_DIRECTORY": str(self.directory),
        }
        for setting in unit_values(read_unit(SERVICE), "Service", "Environment"):
            for assignment in shlex.split(setting):
                name, _, value = assignment.partition("=")
                env[name] = value.replace("%d", str(self.directory))
        return {**env, **more}


def service_config(url: str, username: str, password: str) -> str:
    """The unit's credential, as its comment says to write it, for an account at `url`."""
    return config_of(SERVICE, url, username, password)


async def run_service(
    credentials: Credentials, *more: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """The service's ExecStart, `--output json` and `more` added: status, stdout, stderr."""
    words = service_words(script_or_skip(), "--output", "json", *more)
    return await finish(await start(words, credentials.env(**(env or {}))))


@posix_only
async def test_the_service_exits_0_when_every_instance_rotated(tmp_path: Path) -> None:
    async with account() as emulator:
        credentials = Credentials(tmp_path, service_config(emulator.url, *login(emulator)))
        code, out, err = await run_service(credentials)

    assert code == 0, err
    doc = json.loads(out)  # stdout holds the document and nothing else
    assert doc["ok"] is True
    assert doc["resume"] == []
    assert [row["instance_id"] for row in doc["results"]] == list(SAMPLE)
    assert all(row["ok"] and len(row["created"]) == 1 for row in doc["results"])
    assert "error" not in err
    assert emulator.calls["auth"] == 1  # logged in with the credential's password
    assert emulator.calls[NEW_SNAPSHOT] == len(SAMPLE)


@posix_only
async def test_a_rerun_the_same_day_adopts_the_day_s_snapshot(tmp_path: Path) -> None:
    async with account() as emulator:
        credentials = Credentials(tmp_path, service_config(emulator.url, *login(emulator)))
        day = utc_day()
        first = await run_service(credentials)
        second = await run_service(credentials)
        if utc_day() != day:
            pytest.skip("midnight UTC passed between the runs: a new day, a new snapshot")

    assert (first[0], second[0]) == (0, 0), second[2]
    made = [row["snapshot_id"] for row in json.loads(first[1])["results"]]
    rerun = json.loads(second[1])["results"]
    assert [row["snapshot_id"] for row in rerun] == made
    assert all(row["resumed"] for row in rerun)
    assert emulator.calls[NEW_SNAPSHOT] == len(SAMPLE)  # no second snapshot
    assert emulator.calls["auth"] == 2  # each run logs in afresh


@posix_only
async def test_an_item_that_failed_exits_1_and_leaves_nothing_to_resume(tmp_path: Path) -> None:
    async with account(doomed=True) as emulator:
        credentials = Credentials(tmp_path, service_config(emulator.url, *login(emulator)))
        code, out, err = await run_service(credentials)

    assert code == 1, err
    doc = json.loads(out)
    rows = {row["instance_id"]: row for row in doc["results"]}
    assert rows[DOOMED]["error"]["type"] == "SnapshotFailed"
    assert all(rows[i]["ok"] for i in SAMPLE)
    assert doc["resume"] == []  # the page's advice: a rerun, not a resume
    assert f"error: instance {DOOMED} snapshot " in err


@posix_only
@pytest.mark.parametrize(
    ("more", "said"),
    [
        (("--keep-dialy", "7"), "--keep-dialy"),
        ((str(A),), "give instance ids or --all, not both"),
        (("--keep-daily", "0", "--keep-weekly", "0"), "every --keep-* given is 0"),
    ],
)
async def test_a_usage_error_exits_2_and_sends_nothing(
    tmp_path: Path, more: tuple[str, ...], said: str
) -> None:
    async with account() as emulator:
        credentials = Credentials(tmp_path, service_config(emulator.url, *login(emulator)))
        code, out, err = await run_service(credentials, *more)

    assert code == 2
    assert out == ""
    assert said in err
    assert sum(emulator.calls.values()) == 0


@posix_only
async def test_the_service_reads_its_credential_whatever_its_group_bits(
    tmp_path: Path,
) -> None:
    # systemd may grant a DynamicUser= its copy by an ACL, which shows as group
    # bits; the credentials directory, not the mode, keeps it private.
    async with account() as emulator:
        config = service_config(emulator.url, *login(emulator))
        credentials = Credentials(tmp_path, config, mode=0o440)
        code, _, err = await run_service(credentials)

    assert code == 0, err
    assert emulator.calls["auth"] == 1


@posix_only
@pytest.mark.parametrize("password", ["pw-refused-7c1d0e", None])
async def test_bad_credentials_exit_3(tmp_path: Path, password: str | None) -> None:
    async with account() as emulator:
        # None: a profile with the API's address and no credentials at all.
        bare = f'[default]\napi_url = "{emulator.url}"\n'
        username = emulator.config.username
        config = service_config(emulator.url, username, password) if password else bare
        code, out, err = await run_service(Credentials(tmp_path, config))

    assert code == 3, err
    doc = json.loads(out) if out else None
    if password:
        assert doc is not None
        assert doc["error"]["type"] == "AuthError"
        assert password not in out + err
        assert emulator.calls["auth"] >= 1  # the login was refused
        assert emulator.calls[NEW_SNAPSHOT] == 0
    else:
        assert "no credentials" in err


@posix_only
async def test_an_api_out_of_reach_exits_4(tmp_path: Path, closed_port: int) -> None:  # noqa: F811
    url = f"http://127.0.0.1:{closed_port}/"
    credentials = Credentials(tmp_path, service_config(url, "demo", "pw-unsent-5e2a"))
    # One attempt a call: the default retries would wait in real time.
    code, out, err = await run_service(credentials, env={"ZOMRO_CLI_RETRIES": "1"})

    assert code == 4, err
    doc = json.loads(out)
    assert doc["error"]["type"] == "TransportError"
    assert "could not reach the API" in err


@posix_only
@pytest.mark.parametrize(
    ("signum", "status", "told"),
    [(signal.SIGINT, 130, "KeyboardInterrupt"), (signal.SIGTERM, 143, "SIGTERM")],
)
async def test_a_signal_mid_run_exits_128_plus_it_and_the_rerun_adopts(
    tmp_path: Path, signum: signal.Signals, status: int, told: str
) -> None:
    # Snapshots stay Saving until the test moves the emulator's clock.
    clock = VirtualClock(start=time.time())
    async with account(clock=clock) as emulator:
        credentials = Credentials(tmp_path, service_config(emulator.url, *login(emulator)))
        words = service_words(script_or_skip(), "--output", "json")
        process = await start(words, credentials.env())
        created = await progress_until(process, "created", SAMPLE)
        day = utc_day()
        process.send_signal(signum)  # systemctl stop, a drained node, Ctrl-C
        code, out, err = await finish(process)

        clock.advance(60.0)  # the snapshots made before the stop are Active now
        rerun = await run_service(credentials)
        if utc_day() != day:
            pytest.skip("midnight UTC passed between the runs: a new day, a new snapshot")

    assert code == status, err
    doc = json.loads(out)
    assert doc["error"]["type"] == told
    resumed = {tuple(map(int, m.groups())) for m in map(RESUME.fullmatch, doc["resume"]) if m}
    assert resumed == set(created.items())
    assert "to resume, run:" in err
    # The next run (a retry, a new pod, tomorrow's catch-up) needs none of that:
    # it adopts the day's snapshots.
    assert rerun[0] == 0, rerun[2]
    rows = json.loads(rerun[1])["results"]
    assert {row["instance_id"]: row["snapshot_id"] for row in rows} == created
    assert all(row["resumed"] for row in rows)
    assert emulator.calls[NEW_SNAPSHOT] == len(SAMPLE)


# -- the Kubernetes CronJobs -------------------------------------------------------

# The variables the CLI logs in with, and the key of the Secret each comes from.
CREDENTIAL_ENV = {"ZOMRO_USERNAME": "username", "ZOMRO_PASSWORD": "password"}


def test_each_cronjob_is_one_account_s_job_that_never_overlaps() -> None:
    found = cronjobs()
    assert len(found) == 2
    secrets = set()
    unit = dict(read_unit(SERVICE)["Service"])
    for cronjob in found:
        spec = cronjob["spec"]
        assert spec["concurrencyPolicy"] == "Forbid"
        assert 0 < spec["startingDeadlineSeconds"] < 86_400  # within the night's day
        assert spec["timeZone"] == "Etc/UTC"
        job = job_spec(cronjob)
        assert job["backoffLimit"] >= 1  # 1 and 4 are retried
        assert job["activeDeadlineSeconds"] == seconds(unit["TimeoutStartSec"])
        rules = job["podFailurePolicy"]["rules"]
        fail = [r for r in rules if r["action"] == "FailJob"]
        (codes,) = [r["onExitCodes"] for r in fail]
        assert codes["operator"] == "In"
        assert codes["values"] == [2, 3]  # ascending, as the API requires
        assert codes["containerName"] == container(cronjob)["name"]
        assert set(map(str, codes["values"])) == set(unit["RestartPreventExitStatus"].split())
        ignored = [r for r in rules if r["action"] == "Ignore"]
        assert [r["onPodConditions"] for r in ignored] == [[{"type": "DisruptionTarget"}]]
        pod = pod_spec(cronjob)
        assert pod["restartPolicy"] == "Never"  # a podFailurePolicy requires it
        assert pod["terminationGracePeriodSeconds"] == seconds(unit["TimeoutStopSec"])
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["automountServiceAccountToken"] is False
        box = container(cronjob)
        assert box["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }
        assert box["resources"]["requests"]["memory"]
        assert box["resources"]["limits"]["memory"]
        env = {e["name"]: e for e in box["env"]}
        assert "ZOMRO_TOKEN" not in env  # it would win over the login
        refs = {name: env[name]["valueFrom"]["secretKeyRef"] for name in CREDENTIAL_ENV}
        assert all("value" not in env[name] for name in CREDENTIAL_ENV)
        assert {name: ref["key"] for name, ref in refs.items()} == CREDENTIAL_ENV
        (secret,) = {ref["name"] for ref in refs.values()}  # one Secret holds both
        # ... and it is made, with those keys, as the file's comment says.
        assert set(documented_secrets()[secret]) == set(CREDENTIAL_ENV.values())
        secrets.add(secret)
    assert len(secrets) == 2  # each account its own Secret
    assert set(documented_secrets()) == secrets
    assert len({c["spec"]["schedule"] for c in found}) == 2  # and its own minute


@posix_only
@pytest.mark.parametrize("cronjob", cronjobs(), ids=lambda c: c["metadata"]["name"])
async def test_each_cronjob_s_container_runs_with_its_secret(cronjob: dict[str, Any]) -> None:
    box = container(cronjob)
    script = script_or_skip()
    async with account() as emulator:
        secret = dict(zip(("username", "password"), login(emulator), strict=True))
        env = {"PATH": f"{script.parent}:/usr/bin:/bin", "HOME": "/nonexistent"}
        for variable in box["env"]:
            if "valueFrom" in variable:
                # The Secret's key, as the kubelet would put it there.
                env[variable["name"]] = secret[variable["valueFrom"]["secretKeyRef"]["key"]]
            else:
                env[variable["name"]] = variable["value"]
        env["ZOMRO_API_URL"] = emulator.url
        words = [*box["command"], *box.get("args", []), "--output", "json"]
        code, out, err = await finish(await start(words, env))

    assert code == 0, err
    assert json.loads(out)["ok"] is True
    assert emulator.calls["auth"] == 1  # logged in with the Secret's password
    assert emulator.calls[NEW_SNAPSHOT] == len(SAMPLE)


@pytest.mark.parametrize("name", sorted(documented_secrets()))
def test_kubectl_makes_each_secret_with_a_username_and_password(name: str, tmp_path: Path) -> None:
    options = documented_secrets()[name]
    password = "pw-of-the-file-8d3b"
    for option in options.values():
        if option.startswith("--from-file="):
            # A file holding the password alone, no newline: as the comment says.
            (tmp_path / option.rpartition("=")[2]).write_text(password)

    made = run_tool(
        "kubectl", "create", "secret", "generic", name, *options.values(),
        "--dry-run=client", "-o", "json", cwd=tmp_path,
    )  # fmt: skip

    assert made.returncode == 0, made.stderr
    data = json.loads(made.stdout)["data"]
    assert set(data) == {"username", "password"}
    assert base64.b64decode(data["password"]).decode() == password


def test_kubectl_accepts_the_cronjobs() -> None:
    context = run_tool("kubectl", "config", "current-context")
    if context.returncode != 0:
        # A client dry run still asks the server which kinds there are.
        pytest.skip(f"kubectl has no cluster to ask: {context.stderr.strip()}")

    created = run_tool("kubectl", "create", "--dry-run=client", "-o", "name", "-f", str(CRONJOBS))

    if "connection refused" in created.stderr or "unable to recognize" in created.stderr:
        pytest.skip(f"kubectl's cluster cannot be reached: {created.stderr.strip()[-300:]}")
    assert created.returncode == 0, created.stderr
    names = {f"cronjob.batch/{c['metadata']['name']}" for c in cronjobs()}
    assert set(created.stdout.split()) == names


# -- running processes ---------------------------------------------------------------


def script_or_skip() -> Path:
    if not SCRIPT.exists():
        pytest.skip(f"no zomro-async script next to {sys.executable}")
    return SCRIPT


def utc_day() -> datetime.date:
    return datetime.datetime.now(datetime.UTC).date()


@contextlib.asynccontextmanager
async def account(
    *, doomed: bool = False, clock: VirtualClock | None = None
) -> AsyncIterator[ZomroEmulator]:
    """An account with the sandbox's instances (and its doomed one), served on
    loopback. On the real clock snapshots are Active and deletes done at once;
    on a virtual one, they wait for the test to move it."""
    settings: dict[str, Any] = {"delete_linger": 0.0}
    if clock is None:
        settings["time_to_active"] = 0.0
    async with ZomroEmulator(clock=clock, **settings) as emulator:
        for instance_id in SAMPLE:
            emulator.add_instance(instance_id, 1)
        if doomed:
            emulator.add_instance(DOOMED, 1, kill=True)
        yield emulator


async def start(words: list[str], env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *words, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )


async def shell(command: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    """`command` run as cron runs it: by the crontab's SHELL, with its variables."""
    return await start([env.get("SHELL", "/bin/sh"), "-c", command], env)


async def finish(process: asyncio.subprocess.Process) -> tuple[int, str, str]:
    """The process's exit status, stdout and stderr, once it ends."""
    try:
        out, err = await asyncio.wait_for(process.communicate(), RUN_LIMIT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"still running after {RUN_LIMIT:g} s") from None
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def progress_until(
    process: asyncio.subprocess.Process, state: str, instances: tuple[int, ...]
) -> dict[int, int]:
    """Read the process's progress lines until each of `instances` reached `state`;
    the snapshot of each, by instance."""
    assert process.stderr is not None
    seen: dict[int, int] = {}
    while set(seen) != set(instances):
        try:
            line = await asyncio.wait_for(process.stderr.readline(), RUN_LIMIT)
        except TimeoutError:
            process.kill()
            raise AssertionError(f"no {state!r} line after {RUN_LIMIT:g} s") from None
        if not line:
            raise AssertionError(f"the process ended first ({await process.wait()})")
        if (match := PROGRESS.match(line.decode())) and match[3] == state:
            seen[int(match[1])] = int(match[2])
    return seen


@contextlib.contextmanager
def holding(lock: Path) -> Iterator[None]:
    """`lock` locked as flock(1) locks it, by someone else, until the block ends."""
    import fcntl  # POSIX only, as the tests that use it

    with lock.open("a") as file:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)
