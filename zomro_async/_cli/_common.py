"""What every command shares: settings and credentials, the client, progress, output, exit codes.

A command parses its arguments, then hands `run_command` an async body that
takes a `Run` (the client, the progress tracker) and returns an `Outcome` (JSON
rows, a table, one error or None per item). `run_command` owns the rest: the
event loop, the output format, the exit status, Ctrl-C and SIGTERM.

Results go to stdout, in the format `--output` asks; everything else (progress,
notes, errors, what to run to resume) goes to stderr, the same in every format.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import json
import math
import os
import signal
import sys
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Protocol, TypeVar

import attrs
import click
from rich.text import Text

import zomro_async as z
from zomro_async._checks import MAX_ID, check_base_url, check_name
from zomro_async._client import DEFAULT_BASE_URL

from . import _logging, _output, _profile, _progress, _sandbox
from ._output import Column, ResultTable
from ._progress import SNAPSHOTS, Items, Key, ProgressView, Tracker, follow, left_unfinished

EXIT_FAILED = 1
EXIT_AUTH = 3
EXIT_UNREACHABLE = 4
# A signal that stops a command (Ctrl-C, SIGTERM) exits 128 + its number, as a
# shell tells a process the signal ended: 130 for Ctrl-C, 143 for SIGTERM.
EXIT_SIGNAL_BASE = 128
JSON_VERSION = 1
RETRIES_ENV = "ZOMRO_CLI_RETRIES"  # undocumented in --help: attempts per call (tests, scripts)

Kind = z.ProgressKind
T = TypeVar("T")
Row = dict[str, Any]

JSON_HELP = """\b
--json prints one document on stdout (version 1; keys are only ever added),
with progress and messages on stderr:
  {"version": 1, "command": "snapshots create", "ok": true, "error": null,
   "results": [{"instance_id": 5203773, "snapshot_id": 5204226,
                "name": "nightly", "status": "active", "ok": true,
                "error": null}],
   "resume": []}
"ok" is true when every result is. "error" is null or {"type": "<class name>",
"message": "..."}: per result, that item's; at the top level, what stopped
the command (AuthError, TransportError, KeyboardInterrupt for Ctrl-C, SIGTERM).
"status" is the snapshot's state in lower case, or null. "resume" lists the
`snapshots wait` (or `instances wait`) commands that finish what a run left:
one interrupted, timed out, or cut off from the API (rotate: then itself).

\b
Exit status: 0 all done; 1 some items failed; 2 usage error; 3 authentication
failed; 4 the API could not be reached; 130 interrupted (Ctrl-C); 143
terminated (SIGTERM)."""

OUTPUTS = _output.FORMATS


class FiniteFloatRange(click.FloatRange):
    """A `FloatRange` that also refuses `inf` and `nan` (`nan` passes any bound)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


class NameType(click.types.StringParamType):
    """A name (or name template) as the SDK takes one: not blank, no control
    characters. Its length is the SDK's to check, once a template is filled in."""

    def __init__(self, what: str) -> None:
        self.what = what

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return check_name(super().convert(value, param, ctx), self.what, limit=sys.maxsize)
        except (TypeError, ValueError) as exc:
            self.fail(str(exc), param, ctx)


# Every id of the API (instances, snapshots, backups, schedules, images), bounded
# as the SDK checks them: past the bound is a usage error, not a traceback.
class IdRange(click.IntRange):
    """An id as the API writes one: ASCII digits only. Python's int() also reads
    `52_04_214`, full-width digits and a sign, so a mistyped id would name
    another snapshot (to delete, say) instead of being refused."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not (value.isascii() and value.isdigit()):
            self.fail(f"{value!r} is not an id: digits 0-9 only", param, ctx)
        return super().convert(value, param, ctx)


API_ID = IdRange(min=1, max=MAX_ID)
INSTANCE_ID = API_ID
WAIT_OPTION = click.option("--wait", is_flag=True, help="Await the end state of each item.")
ALL_OPTION = click.option(
    "--all",
    "all_instances",
    is_flag=True,
    help="Every instance of the account (listed at the start), instead of INSTANCE ids.",
)


def unique_ids(ids: Sequence[int], what: str) -> list[int]:
    """`ids` as a list; `ValueError` (a usage error, through `usage`) if one repeats."""
    if len(set(ids)) != len(ids):
        twice = next(i for n, i in enumerate(ids) if i in ids[:n])
        raise ValueError(f"{what} is given twice: {twice}")
    return list(ids)


def check_targets(instances: Sequence[int], all_instances: bool) -> None:
    """INSTANCE ids or `--all`: exactly one of them (a usage error otherwise)."""
    if all_instances and instances:
        raise click.UsageError("give instance ids or --all, not both")
    if not all_instances and not instances:
        raise click.UsageError(
            "Missing argument 'INSTANCE...': give instance ids, "
            "or --all for every instance of the account"
        )


def timeout_option(default: float) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return click.option(
        "--timeout",
        type=FiniteFloatRange(min=0),
        default=default,
        show_default=True,
        help="Seconds each wait may take.",
    )


# -- settings and credentials ----------------------------------------------------


@attrs.frozen(kw_only=True)
class Settings:
    """The options every command takes."""

    token: str | None = attrs.field(default=None, repr=False)  # a secret
    username: str | None = None
    api_url: str | None = None
    emulator: bool = False
    output: str | None = None  # one of OUTPUTS; None: not given (the profile's, or table)
    headers: bool = True  # tsv's line of column titles
    debug: bool = False
    profile: str | None = None

    @property
    def as_json(self) -> bool:
        """True when the command prints one JSON document (`--output json`, `--json`)."""
        return self.output == "json"

    def flags(self) -> list[str]:
        """The connection flags to repeat in a printed command: never a secret."""
        flags = ["--emulator"] if self.emulator else []
        if self.api_url:
            flags += ["--api-url", self.api_url]
        if self.username:
            flags += ["--username", self.username]
        if self.profile:
            flags += ["--profile", self.profile]
        return flags


_OPTIONS = (
    click.option(
        "--token",
        metavar="TOKEN",
        help="Session token [env ZOMRO_TOKEN]; a flag shows in `ps`, prefer the variable.",
    ),
    click.option(
        "--username",
        metavar="NAME",
        help="Account to log in as [env ZOMRO_USERNAME]; the password comes from "
        "ZOMRO_PASSWORD or a prompt, never from a flag.",
    ),
    click.option(
        "--api-url", metavar="URL", help=f"The API [env ZOMRO_API_URL; {DEFAULT_BASE_URL}]."
    ),
    click.option(
        "--emulator", is_flag=True, help="Run against an in-process emulator (see below)."
    ),
    click.option(
        "--output",
        "-o",
        type=click.Choice(OUTPUTS),
        default=None,
        help="table: for people (the default; plain aligned lines, one per row, when "
        "stdout is not a terminal); tsv: a line of column titles, then one "
        "tab-separated line per row; json: one document (see below). Progress and "
        "messages go to stderr.",
    ),
    click.option("--json", "as_json", is_flag=True, help="The same as --output json."),
    click.option(
        "--no-headers",
        "headers",
        flag_value=False,
        default=True,
        help="With --output tsv, no line of column titles: the rows alone, for cut and xargs.",
    ),
    click.option(
        "--debug",
        is_flag=True,
        help="The SDK's DEBUG log on stderr, secrets redacted [env ZOMRO_LOG=debug].",
    ),
    click.option(
        "--profile",
        metavar="NAME",
        help="A profile of ~/.config/zomro-async/config.toml (or $ZOMRO_CONFIG) [env "
        "ZOMRO_PROFILE]; see zomro-async --help.",
    ),
    click.option(
        "--password",
        hidden=True,
        expose_value=False,
        is_eager=True,
        callback=lambda ctx, param, value: _refuse_password(ctx, value),
    ),
)

REBUILD_PASSWORD_ENV = "ZOMRO_REBUILD_PASSWORD"  # noqa: S105 - a variable's name


def _refuse_password(ctx: click.Context, value: str | None) -> None:
    if value is None:
        return
    message = (
        "a password is never a flag (it would show in `ps`): "
        "set ZOMRO_PASSWORD, or give --username at a terminal to be asked"
    )
    if ctx.info_name == "restore":
        message += (
            f"; the new root password comes from {REBUILD_PASSWORD_ENV} or a prompt, "
            "or pass --ssh-key"
        )
    raise click.UsageError(message)


def common_options(func: Callable[..., None]) -> Callable[..., None]:
    """Add the shared options to a command; it receives them as one `Settings`."""

    @functools.wraps(func)
    def command(
        *,
        token: str | None,
        username: str | None,
        api_url: str | None,
        emulator: bool,
        output: str | None,
        as_json: bool,
        headers: bool,
        debug: bool,
        profile: str | None,
        **arguments: Any,
    ) -> None:
        if as_json and output not in (None, "json"):
            raise click.UsageError(f"--json and --output {output} exclude each other")
        settings = Settings(
            token=token,
            username=username,
            api_url=api_url,
            emulator=emulator,
            output="json" if as_json else output,
            headers=headers,
            debug=debug,
            profile=profile,
        )
        func(settings, **arguments)

    for option in reversed(_OPTIONS):
        command = option(command)
    return command


class AuthFailure(click.ClickException):
    exit_code = EXIT_AUTH


def stdin_is_tty() -> bool:
    return sys.stdin.isatty()


def chosen_profile(settings: Settings, env: Mapping[str, str]) -> _profile.Profile:
    """The profile of the configuration file the command reads (`_profile.load`);
    none with `--emulator`, which never reads the file."""
    if settings.emulator and settings.profile:
        raise click.UsageError("--profile and --emulator exclude each other")
    return _profile.NO_PROFILE if settings.emulator else _profile.load(settings.profile, env)


def with_defaults(settings: Settings, profile: _profile.Profile) -> Settings:
    """`settings` with what no flag gave taken from `profile`: the output format."""
    return attrs.evolve(settings, output=settings.output or profile.output or "table")


def client_settings(
    settings: Settings, env: Mapping[str, str], profile: _profile.Profile | None = None
) -> dict[str, Any]:
    """`ZomroClient` (or `ZomroEmulator.client`) arguments: flags over the environment,
    the environment over the profile of the configuration file (`chosen_profile`
    unless given).

    With `--emulator` only flags count (the emulator's own account otherwise),
    so a real account in the environment or a profile never reaches it.
    """
    if settings.emulator and settings.api_url:
        raise click.UsageError("--api-url and --emulator exclude each other")
    if profile is None:
        profile = chosen_profile(settings, env)
    found = {
        "retry": z.RetryPolicy(attempts=_retries(env)),
        **_credentials(settings, {} if settings.emulator else env, env, profile),
    }
    if not settings.emulator:
        url = settings.api_url or env.get("ZOMRO_API_URL") or profile.api_url or DEFAULT_BASE_URL
        try:
            found["base_url"] = check_base_url(url)
        except ValueError as exc:
            if settings.api_url:
                hint = "--api-url"
            elif env.get("ZOMRO_API_URL"):
                hint = "ZOMRO_API_URL"
            else:
                hint = f"api_url in {profile.source}"
            raise click.BadParameter(str(exc), param_hint=hint) from exc
    return found


def _credentials(
    settings: Settings,
    env: Mapping[str, str],
    password_env: Mapping[str, str],
    profile: _profile.Profile = _profile.NO_PROFILE,
) -> dict[str, str]:
    """The first source's credentials, of the flags, `env` and `profile`; in each, a
    token over a username (whose password comes from `password_env`, then the
    profile if it is the profile's username, then a prompt)."""
    if settings.token and settings.username:
        raise click.UsageError("pass --token or --username, not both")
    if settings.token:
        return {"token": settings.token}
    if settings.username:
        password = _password(settings.username, password_env, profile)
        return {"username": settings.username, "password": password}
    if settings.emulator:
        return {}
    if token := env.get("ZOMRO_TOKEN"):
        return {"token": token}
    if username := env.get("ZOMRO_USERNAME"):
        return {"username": username, "password": _password(username, env, profile)}
    if profile.token:
        return {"token": profile.token}
    if profile.username:
        password = _password(profile.username, env, profile)
        return {"username": profile.username, "password": password}
    raise AuthFailure(
        "no credentials: set ZOMRO_TOKEN, or ZOMRO_USERNAME and ZOMRO_PASSWORD "
        "(or pass --token or --username, or name a profile of the configuration file "
        "that has them); --emulator needs none"
    )


def _password(
    username: str, env: Mapping[str, str], profile: _profile.Profile = _profile.NO_PROFILE
) -> str:
    if password := env.get("ZOMRO_PASSWORD"):
        return password
    if profile.password and profile.username == username:  # a password is its username's
        return profile.password
    if stdin_is_tty():
        answer: str = click.prompt(f"Password for {username}", hide_input=True, err=True)
        return answer
    raise AuthFailure(
        f"no password for {username}: set ZOMRO_PASSWORD "
        "(stdin is not a terminal to ask for it; a password is never a flag)"
    )


def _retries(env: Mapping[str, str]) -> int:
    raw = env.get(RETRIES_ENV) or str(z.RetryPolicy().attempts)
    # isascii: "²".isdigit() is true, and int("²") an error
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise click.UsageError(f"{RETRIES_ENV} must be a whole number of attempts, 1 or more")
    return int(raw)


@asynccontextmanager
async def open_client(
    settings: Settings, arguments: dict[str, Any]
) -> AsyncIterator[z.ZomroClient]:
    """A client of the API, or of a freshly seeded emulator with `--emulator`."""
    if not settings.emulator:
        async with z.ZomroClient(**arguments) as client:
            yield client
        return
    async with _sandbox.seeded_emulator() as emulator, emulator.client(**arguments) as client:
        yield client


@attrs.frozen
class Run:
    """What a command's body works with."""

    client: z.ZomroClient
    settings: Settings
    tracker: Tracker

    def progress(self, keys: Sequence[Key], *, finish: Iterable[Kind], title: str) -> ProgressView:
        """The progress of `keys`, named as the tracker's items are."""
        return ProgressView(keys, finish=finish, title=title, items=self.tracker.items)

    def now(self) -> datetime.datetime:
        """The client clock's wall time, for progress lines."""
        return datetime.datetime.fromtimestamp(self.client.clock.time(), datetime.UTC)

    async def targets(
        self, instances: Sequence[int], all_instances: bool
    ) -> Sequence[int | z.Instance]:
        """The instances a bulk command works on: the ids given, or with `--all`
        every instance of the account (`ListFailed` if they cannot be listed)."""
        return await self.all_instances() if all_instances else instances

    async def over_instances(
        self,
        instances: Sequence[int],
        all_instances: bool,
        start: Callable[[Sequence[int | z.Instance]], z.BulkJob[T]],
        *,
        finish: Iterable[Kind],
        title: str,
    ) -> list[T]:
        """Run the bulk job `start` makes of the instances a command works on (the
        ids given, or with `--all` the account's), one progress item an instance;
        its results in order. Input the SDK refuses is a usage error."""
        if all_instances:
            # Arguments the SDK refuses are refused before the account is listed:
            # a job is checked when it is made, and one of no instances never runs.
            usage(lambda: start(()))
        targets = await self.targets(instances, all_instances)
        job = usage(lambda: start(targets))
        keys = [(i if isinstance(i, int) else i.id, None) for i in targets]
        return await follow(job, self.progress(keys, finish=finish, title=title))

    async def all_instances(self) -> list[z.Instance]:
        """Every instance of the account; `ListFailed` if they cannot be listed
        (`AuthError` and `TransportError` stop the command as ever)."""
        return await must_list(self.client.instances.list(), "the instances of the account")

    def event(
        self,
        kind: Kind,
        instance_id: int,
        snapshot: z.InstanceImage,
        error: BaseException | None = None,
    ) -> z.ProgressEvent:
        """An event of work done outside a bulk job, stamped with the client's clock."""
        return z.ProgressEvent(
            kind=kind, instance_id=instance_id, at=self.now(), snapshot=snapshot, error=error
        )


class ListFailed(Exception):
    """What a command works on (`what`: with `--all`, the account's instances) could
    not be listed (`error` tells why): the command stops, with exit status 1."""

    def __init__(self, error: z.ZomroError, what: str) -> None:
        super().__init__(f"cannot list {what}: {error}")
        self.error = error
        self.what = what


async def must_list(listing: Awaitable[T], what: str) -> T:
    """What `listing` lists; `ListFailed` (naming `what`) if the API refuses it.
    `AuthError` and `TransportError` stop the command as ever."""
    try:
        return await listing
    except (z.AuthError, z.TransportError):
        raise
    except z.ZomroError as exc:
        raise ListFailed(exc, what) from exc


def usage(build: Callable[[], T]) -> T:
    """`build()`; the SDK's refusal of bad input before anything is sent is a usage error."""
    try:
        return build()
    except (ValueError, TypeError) as exc:
        raise click.UsageError(str(exc)) from exc


async def asked(call: Awaitable[T]) -> T:
    """`call`'s value; as `usage`, the SDK's refusal of bad input is a usage error."""
    try:
        return await call
    except (ValueError, TypeError) as exc:
        raise click.UsageError(str(exc)) from exc


async def or_error(call: Awaitable[T]) -> T | z.ZomroError:
    """`call`'s value, or the error of the API that refused it (an item's failure)."""
    try:
        return await call
    except z.ZomroError as exc:
        return exc


class _Identified(Protocol):
    @property
    def id(self) -> int: ...


Listed = TypeVar("Listed", bound=_Identified)


async def by_id(listing: Awaitable[Iterable[Listed]]) -> dict[int, Listed]:
    """What `listing` lists, by id, for the names of a command's items: empty when
    it cannot be listed (each item's call then tells what is wrong). `AuthError`
    and `TransportError` stop the command as ever."""
    try:
        return {item.id: item for item in await listing}
    except (z.AuthError, z.TransportError):
        raise
    except z.ZomroError:
        return {}


M = TypeVar("M")


def last_seen(error: z.ZomroError, model: type[M]) -> M | None:
    """The last state seen of what a failed wait awaited, if it is a `model`: the
    image of an `ImageFailed`, or the `last` of a `WaitTimeout`."""
    if isinstance(error, z.ImageFailed) and isinstance(error.image, model):
        return error.image
    if isinstance(error, z.WaitTimeout) and isinstance(error.last, model):
        return error.last
    return None


def await_later(run: Run, errors: Iterable[BaseException | None], one: str, many: str) -> list[str]:
    """The notes of a command that did not wait (no `--wait`): what is on its way
    (`one`: `the copy is being made`; `many` when several commands await it) and
    the `wait` commands that await it, as Ctrl-C would print them; none when
    nothing is left to await, or when one of the items' `errors` cut the run
    short (the resume commands then tell the same)."""
    if cut_short(errors):
        return []
    commands = run.tracker.resume(run.settings.flags())
    if len(commands) == 1:
        return [f"{one}; `{commands[0]}` awaits it"]
    if not commands:
        return []
    return [f"{many}; to await them, run:", *(f"  {command}" for command in commands)]


# -- output ----------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Outcome:
    """What a command found: JSON `rows`, a `table` (for `--output table` and `tsv`),
    one error or None per item."""

    rows: list[Row]
    errors: list[BaseException | None]
    table: ResultTable
    extra: dict[str, Any] = attrs.field(factory=dict)  # more top-level JSON keys
    # Lines on stderr, in every output format: `notes` after the table (what is
    # on its way, a dry run's), `remarks` after the items' errors (hints on them).
    notes: list[str] = attrs.field(factory=list)
    remarks: list[str] = attrs.field(factory=list)
    # What stopped the command before any item (exit 1): `--all` could not list.
    failure: BaseException | None = None
    failure_what: str = "the command failed"


def error_json(error: BaseException | None) -> dict[str, str] | None:
    """`{"type": <class name>, "message": ...}`; a signal's type is `Stopped.type_name`."""
    if error is None:
        return None
    name = error.type_name if isinstance(error, Stopped) else type(error).__name__
    return {"type": name, "message": str(error)}


def image_fields(
    image: z.InstanceImage | z.Image | None,
    image_id: int | None = None,
    *,
    id_key: str = "snapshot_id",
) -> Row:
    """The id (`id_key`), `name` and `status` keys of a JSON row, for any image:
    a snapshot, a backup, an image of the account."""
    if image is None:
        return {id_key: image_id, "name": None, "status": None}
    # A stand-in made from ids alone has no name, and no known status.
    status = None if image.status is z.ImageStatus.UNKNOWN else image.status.value
    return {id_key: image.id, "name": image.name or None, "status": status}


def snapshot_fields(snapshot: z.InstanceImage | None, snapshot_id: int | None = None) -> Row:
    """The `snapshot_id`, `name` and `status` keys of a JSON row."""
    return image_fields(snapshot, snapshot_id)


def instance_fields(instance: z.Instance | None) -> Row:
    """The `name`, `status` and address keys of an instance's JSON row (null: not seen)."""
    if instance is None:
        return dict.fromkeys(("name", "status", "region", "ip", "ip_v6", "tariff"))
    status: str | None = instance.status.value
    if instance.status is z.InstanceStatus.UNKNOWN:  # a state the SDK does not know: as sent
        status = instance.status_text.strip().lower() or None
    return {
        "name": instance.name or None,
        "status": status,
        "region": instance.region,
        "ip": instance.ip,
        "ip_v6": instance.ip_v6,
        "tariff": instance.tariff,
    }


def result_row(instance_id: int, fields: Row, error: BaseException | None, **more: Any) -> Row:
    return {
        "instance_id": instance_id,
        **fields,
        **more,
        "ok": error is None,
        "error": error_json(error),
    }


_ID_COLUMNS = frozenset(
    {"Instance", "Snapshot", "New snapshot", "Backup", "Schedule", "Image", "Copy", "Keeps"}
)


def new_table(title: str, *columns: str) -> ResultTable:
    """A table of results titled `title`, of `columns` (ids among them right-aligned)."""
    return ResultTable(title, [Column(c, numeric=c in _ID_COLUMNS) for c in columns])


def status_text(status: str | None, ok: bool = True) -> Text:
    if not ok:
        return Text(status or "failed", style="red")
    done = {"active": "green", "deleted": "green", "removed": "green"}
    style = {**done, "error": "red", "killed": "red"}.get(status or "", "yellow")
    return Text(status or "-", style=style)


def exit_code(errors: Sequence[BaseException | None]) -> int:
    """0 when every item is done; 3 or 4 when every item failed on authentication or
    on reaching the API; 1 when some items failed otherwise.
    """
    failures = [e for e in errors if e is not None]
    if not failures:
        return 0
    if len(failures) == len(errors):
        if all(isinstance(e, z.AuthError) for e in failures):
            return EXIT_AUTH
        if all(isinstance(e, z.TransportError) for e in failures):
            return EXIT_UNREACHABLE
    return EXIT_FAILED


def _document(command: str, rows: list[Row], error: BaseException | None, **extra: Any) -> str:
    document = {
        "version": JSON_VERSION,
        "command": command,
        "ok": error is None and all(row["ok"] for row in rows),
        "error": error_json(error),
        **extra,
        "results": rows,
    }
    document.setdefault("resume", [])
    return json.dumps(document, indent=2)


def cut_short(errors: Iterable[BaseException | None]) -> bool:
    """Whether an item stopped short (a wait out of time, the API out of reach):
    the run left something to resume."""
    return any(left_unfinished(error) for error in errors)


def _fatal_message(error: BaseException, code: int) -> str:
    what = "authentication failed" if code == EXIT_AUTH else "could not reach the API"
    return f"error: {what}: {type(error).__name__}: {error}"


def _say(line: str) -> None:
    """A line of progress, a note or a diagnostic: on stderr, whatever the output."""
    click.echo(line, err=True)


def _say_resume(resume: Sequence[str]) -> None:
    if resume:
        _say("to resume, run:")
        for line in resume:
            _say(f"  {line}")


def _report(settings: Settings, command: str, outcome: Outcome, tracker: Tracker) -> int:
    code = exit_code(outcome.errors)
    fatal = next(e for e in outcome.errors if e is not None) if code > EXIT_FAILED else None
    failure = outcome.failure if fatal is None else None
    resume = tracker.resume(settings.flags()) if cut_short(outcome.errors) else []
    if settings.as_json:
        extra = {**outcome.extra, "resume": resume}
        click.echo(_document(command, outcome.rows, fatal or failure, **extra))
    elif fatal is None and failure is None:
        _output.print_table(
            outcome.table,
            settings.output or "table",
            _progress.make_console(),
            headers=settings.headers,
        )
    for note in outcome.notes:
        _say(note)
    if fatal is not None:
        _say(_fatal_message(fatal, code))
        _say_resume(resume)
        return code
    if failure is not None:
        _say(f"error: {outcome.failure_what}: {type(failure).__name__}: {failure}")
        code = EXIT_FAILED
    for row in outcome.rows:
        if not row["ok"]:
            error = row["error"]
            _say(f"error: {_item(row)}: {error['type']}: {error['message']}")
    for remark in outcome.remarks:
        _say(remark)
    instances = {row.get("instance_id") for row in outcome.rows} - {None}
    unknown = instances - set(_sandbox.INSTANCES)
    if settings.emulator and unknown:
        known = " ".join(map(str, _sandbox.INSTANCES))
        _say(f"the emulator's instances are {known}")
    _say_resume(resume)
    return code


def _item(row: Row) -> str:
    """What a failed row is about, from its ids in order: `instance 5203773 snapshot
    5204214`, `instance 5203773 backup 5204230`, `image 5204227 copy 5204230`."""
    parts = [
        f"{key.removesuffix('_id')} {value}"
        for key, value in row.items()
        if key.endswith("_id") and isinstance(value, int) and not isinstance(value, bool)
    ]
    return " ".join(parts) or "item"


def _report_fatal(
    settings: Settings, command: str, error: BaseException, code: int, tracker: Tracker
) -> int:
    """What stopped the command (exit 3, 4), and what it left to resume."""
    resume = tracker.resume(settings.flags())
    if settings.as_json:
        click.echo(_document(command, [], error, resume=resume))
    _say(_fatal_message(error, code))
    _say_resume(resume)
    return code


class Stopped(Exception):
    """What a signal that cancelled the command (Ctrl-C, SIGTERM) is told as: the
    first line of the summary, and the JSON `error`. Reported, never raised."""

    def __init__(self, signum: signal.Signals) -> None:
        self.signum = signum
        if signum is signal.SIGINT:
            message = "interrupted: the job was cancelled"
        else:
            message = f"terminated by {signum.name}: the job was cancelled"
        super().__init__(message)

    @property
    def type_name(self) -> str:
        """`KeyboardInterrupt` for Ctrl-C, as ever; else the signal's name (`SIGTERM`)."""
        return KeyboardInterrupt.__name__ if self.signum is signal.SIGINT else self.signum.name

    @property
    def exit_code(self) -> int:
        return EXIT_SIGNAL_BASE + self.signum.value


def _report_interrupted(
    settings: Settings, command: str, tracker: Tracker, stopped: Stopped
) -> int:
    """What exists after Ctrl-C or SIGTERM, and the commands that resume the waits:
    on stderr in every format, and in the document with `--json`."""
    items = tracker.items
    resume = tracker.resume(settings.flags())
    if settings.as_json:
        rows = []
        for key, event in tracker.last.items():  # `status`: the latest event's kind
            image = tracker.made.get(key) or event.snapshot
            fields = image_fields(image, id_key=items.id_key)
            # One still awaited did not get there: the stop is its error, as a
            # timeout would be, so that `ok` is never true for unfinished work.
            error = event.error or (stopped if key in tracker.goals else None)
            rows.append(result_row(key[0], {**fields, "status": event.kind.value}, error))
        click.echo(_document(command, rows, stopped, resume=resume))
    _say(str(stopped))
    if tracker.made:
        _say("created before the interruption:")
        for key, image in tracker.made.items():
            state = tracker.last[key].kind.value
            _say(f"  {items.describe(key, image.name)} ({state})")
    elif tracker.creates:
        _say(f"no {items.second} was created before the interruption")
    # Awaited, though this run did not make them (a rotation's adopted snapshot).
    awaited = [
        (key, event)
        for key, event in tracker.last.items()
        if key not in tracker.made and tracker.goals.get(key) is Kind.ACTIVE
    ]
    if awaited:
        _say("awaited when it stopped:")
        for key, event in awaited:
            name = event.snapshot.name if event.snapshot is not None else ""
            _say(f"  {items.describe(key, name)} ({event.kind.value})")
    if tracker.creates:
        _say(f"a create sent just before the interruption may yet appear: see {items.group} list")
    for i in sorted(tracker.restoring):
        _say(f"the restore of instance {i} was sent and may have begun: see instances list")
    for line in tracker.notes.values():  # what a command that tracks itself left to say
        _say(line)
    _say_resume(resume)
    return stopped.exit_code


Body = Callable[[Run], Awaitable[Outcome]]


class _Signalled:
    """The signal that cancelled the command's task, once one did."""

    def __init__(self) -> None:
        self.signum: signal.Signals | None = None
        # Set once the body has its outcome: a signal then (the client closing)
        # must not throw a finished result away; it is reported, then the exit.
        self.finished = False

    def cancel(self, signum: signal.Signals, task: asyncio.Task[Any]) -> None:
        # Once: a second one must not cut the cleanup short.
        if self.signum is None and not self.finished:
            self.signum = signum
            task.cancel()


@contextmanager
def _held(signum: signal.Signals) -> Iterator[None]:
    """Within it, `signum` waits: the report being printed is finished (a JSON
    document cut short is worse than none), and the command exits right after."""
    try:
        previous = signal.signal(signum, lambda *_: None)
    except ValueError:  # not the main thread: signals are not this thread's to take
        yield
        return
    try:
        yield
    finally:
        signal.signal(signum, previous)


@contextmanager
def _cancelled_on(signum: signal.Signals, signalled: _Signalled) -> Iterator[None]:
    """Within it, `signum` cancels the running task, as asyncio.run does on Ctrl-C:
    the job winds down and the client closes before the command reports. The
    handler before it is back after (where the loop cannot take signals, Windows
    or another thread than the main one, `signum` keeps its own)."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None  # called from a coroutine
    previous = signal.getsignal(signum)
    try:
        loop.add_signal_handler(signum, signalled.cancel, signum, task)
    except (NotImplementedError, RuntimeError):
        installed = False
    else:
        installed = True
    try:
        yield
    finally:
        if installed:
            loop.remove_signal_handler(signum)
            if previous is not None:  # None: a handler not set from Python, left as is
                signal.signal(signum, previous)


def run_command(
    settings: Settings,
    command: str,
    body: Body,
    *,
    creates: bool = False,
    items: Items = SNAPSHOTS,
) -> None:
    """Run a command's body and exit with its status: 0 done, 1 some items failed,
    3 authentication failed, 4 the API could not be reached, 130 interrupted
    (Ctrl-C), 143 terminated (SIGTERM). `items` names what it works on, in
    progress lines and after Ctrl-C.
    """
    _logging.configure(settings.debug, os.environ)
    profile = chosen_profile(settings, os.environ)
    settings = with_defaults(settings, profile)
    arguments = client_settings(settings, os.environ, profile)
    tracker = Tracker(creates=creates, items=items)
    signalled = _Signalled()

    async def main() -> Outcome:
        with _cancelled_on(signal.SIGTERM, signalled):
            async with open_client(settings, arguments) as client:
                try:
                    outcome = await body(Run(client, settings, tracker))
                except ListFailed as exc:
                    outcome = Outcome(
                        rows=[],
                        errors=[],
                        table=new_table(""),
                        failure=exc.error,
                        failure_what=f"cannot list {exc.what}",
                    )
                signalled.finished = True
                return outcome

    report: Callable[[], int]
    try:
        outcome = asyncio.run(main())
    except KeyboardInterrupt:
        stopped = Stopped(signal.SIGINT)
        report = functools.partial(_report_interrupted, settings, command, tracker, stopped)
    except asyncio.CancelledError:
        if signalled.signum is None:
            raise
        stopped = Stopped(signalled.signum)
        report = functools.partial(_report_interrupted, settings, command, tracker, stopped)
    except z.AuthError as exc:
        report = functools.partial(_report_fatal, settings, command, exc, EXIT_AUTH, tracker)
    except z.TransportError as exc:
        report = functools.partial(_report_fatal, settings, command, exc, EXIT_UNREACHABLE, tracker)
    else:
        report = functools.partial(_report, settings, command, outcome, tracker)
    with _held(signal.SIGTERM):
        code = report()
    if code:
        sys.exit(code)
