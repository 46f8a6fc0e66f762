"""Bad input is a usage error (exit 2, no traceback) in every command, before anything runs.

The commands are found by walking the click tree, and their parameters by type
(the shared id type, float types, names), so that a new command is covered
without being listed here.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine, Iterator
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from zomro_async._cli import _common, main
from zomro_async.testing import ZomroEmulator

from ._support import A

BAD_IDS = [
    "0",
    "-1",
    str(2**63),
    str(10**30),
    "abc",
    "1.5",
    "",
    "52_04_214",
    "\uff15\uff12",
    "+7",
    " 7",
]
BAD_FLOATS = ["inf", "-inf", "nan", "1e999", "-1", "soon"]
BAD_NAMES = ["", "   ", "tab\there"]
# Values that pass where a parameter's type alone cannot tell; always given.
EXAMPLES = {"--region": "Germany-1", "--days": "mon", "--at": "02:00", "--keep": "2"}
ENV = {"ZOMRO_REBUILD_PASSWORD": "Root-pw-2026"}  # restore's, so that it gets as far as running
# A parameter named so holds an id of the API.
ID_NAME = re.compile(r"instance|snapshot|backup|schedule|image|(^|_)ids?$")


def _leaves(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from _leaves(command, (*path, name))
        else:
            yield (*path, name)


def _command(path: tuple[str, ...]) -> click.Command:
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


COMMANDS = list(_leaves(main))


def _is_id(param: click.Parameter) -> bool:
    return param.type is _common.API_ID


def _is_float(param: click.Parameter) -> bool:
    return isinstance(param.type, click.types.FloatParamType)


def _is_name(param: click.Parameter) -> bool:
    return isinstance(param.type, _common.NameType)


def _bad_values(param: click.Parameter) -> list[str]:
    if _is_id(param):
        return BAD_IDS
    if _is_float(param):
        return BAD_FLOATS
    if _is_name(param):
        return BAD_NAMES
    return []


def _valid(param: click.Parameter) -> list[str]:
    """A value the parameter takes, as command-line words."""
    if _is_id(param):
        value = str(A)
    elif isinstance(param, click.Option) and param.opts[0] in EXAMPLES:
        value = EXAMPLES[param.opts[0]]
    elif isinstance(param.type, click.Choice):
        value = str(param.type.choices[0])
    elif isinstance(param.type, click.types.IntParamType | click.types.FloatParamType):
        value = str(getattr(param.type, "min", None) or 1)
    else:
        value = "n"
    return [param.opts[0], value] if isinstance(param, click.Option) else [value]


def _argv(path: tuple[str, ...], given: dict[str, list[str]] | None = None) -> list[str]:
    """The command with a valid value for every required parameter (and every id
    argument), `given` (values by parameter name) instead where given."""
    given = given or {}
    options: list[str] = []
    arguments: list[str] = []
    for param in _command(path).params:
        name = param.name or ""
        if name in given:
            values = given[name]
        elif (
            param.required
            or (isinstance(param, click.Argument) and _is_id(param))
            or (isinstance(param, click.Option) and param.opts[0] in EXAMPLES)
        ):
            values = _valid(param)
        else:
            continue
        if isinstance(param, click.Option):
            options += [param.opts[0], *values] if name in given else values
        else:
            arguments += values
    names = {p.name for p in _command(path).params}
    options += ["--yes"] if "yes" in names else []
    options += ["--emulator"] if "emulator" in names else []
    # `--` so that a value like -1 is read as an argument, not an option.
    return [*path, *options, "--", *arguments]


def _cases() -> Iterator[Any]:
    for path in COMMANDS:
        for param in _command(path).params:
            for value in _bad_values(param):
                yield pytest.param(path, param.name, value, id=f"{' '.join(path)}-{param.name}")


class _Ran(Exception):
    """The command got as far as running its body."""


@pytest.fixture
def nothing_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command's body (its event loop) is refused: a usage error comes before."""

    def refuse(main: Coroutine[Any, Any, Any], **_: Any) -> None:
        main.close()
        raise _Ran

    monkeypatch.setattr(asyncio, "run", refuse)


def _run(argv: list[str]) -> Result:
    return CliRunner().invoke(main, argv, env=ENV)


def test_the_walk_finds_every_kind_of_parameter() -> None:
    found = [param for path in COMMANDS for param in _command(path).params]
    assert any(_is_id(p) for p in found)
    assert any(_is_float(p) for p in found)
    assert any(_is_name(p) for p in found)
    assert ("backups", "schedule", "remove") in COMMANDS  # into nested groups too


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_ids_and_floats_use_the_checked_types(path: tuple[str, ...]) -> None:
    for param in _command(path).params:
        integer = isinstance(param.type, click.types.IntParamType)
        if integer and isinstance(param, click.Argument) and ID_NAME.search(param.name or ""):
            assert _is_id(param), f"{param.name}: ids are API_ID"
        if _is_float(param):
            assert isinstance(param.type, _common.FiniteFloatRange), f"{param.name}: finite"


@pytest.mark.parametrize(
    "path", [p for p in COMMANDS if any(_bad_values(q) for q in _command(p).params)], ids=" ".join
)
@pytest.mark.usefixtures("nothing_runs")
def test_the_valid_command_line_runs(path: tuple[str, ...]) -> None:
    result = _run(_argv(path))

    # What the bad values are swapped into is itself good: each refusal is theirs.
    assert isinstance(result.exception, _Ran), result.output


@pytest.mark.parametrize(("path", "name", "value"), list(_cases()))
@pytest.mark.usefixtures("nothing_runs")
def test_a_bad_value_is_a_usage_error(
    path: tuple[str, ...], name: str, value: str, emulators: list[ZomroEmulator]
) -> None:
    command = _command(path)
    (param,) = [p for p in command.params if p.name == name]
    result = _run(_argv(path, {name: [value]}))

    assert not isinstance(result.exception, _Ran), f"{value!r} was taken"
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "Error" in result.stderr
    assert param.get_error_hint(click.Context(command)) in result.stderr
    assert not emulators


@pytest.mark.parametrize(
    ("path", "name"),
    [
        (path, param.name)
        for path in COMMANDS
        for param in _command(path).params
        if _is_id(param) and param.nargs == -1
    ],
)
def test_an_id_given_twice_is_a_usage_error(
    path: tuple[str, ...], name: str, emulators: list[ZomroEmulator]
) -> None:
    result = _run(_argv(path, {name: [str(A), "5", str(A)]}))

    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert re.search(rf"(given twice|duplicate).*\b{A}\b", result.stderr), result.stderr
    assert all(sum(e.calls.values()) == 0 for e in emulators)  # nothing was sent
