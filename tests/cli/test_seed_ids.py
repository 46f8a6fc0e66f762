"""The CLI's emulators seed one set of ids: `--emulator`, `demo` and `emulator` agree."""

from __future__ import annotations

import click

from zomro_async._cli import _sandbox
from zomro_async._cli._demo import demo
from zomro_async._cli._emulator_cmd import emulator
from zomro_async.testing._ids import MAX_FLEET, fleet_ids

from ._support import DOOMED, A, B, C


def instances_bound(command: click.Command) -> tuple[int | None, int | None]:
    (option,) = [p for p in command.params if p.name == "instances"]
    assert isinstance(option.type, click.IntRange)
    return option.type.min, option.type.max


def test_the_sandbox_samples_are_the_first_of_the_fleet() -> None:
    assert fleet_ids(3) == (A, B, C)
    assert _sandbox.INSTANCES == (A, B, C, DOOMED)


def test_the_doomed_instance_is_in_no_fleet_a_command_can_seed() -> None:
    assert DOOMED not in fleet_ids(MAX_FLEET)
    assert instances_bound(demo) == (1, MAX_FLEET)
    assert instances_bound(emulator) == (0, MAX_FLEET)


def test_the_emulator_help_names_the_seeded_ids() -> None:
    help_text = " ".join(_sandbox.SANDBOX_HELP.split())
    assert f"{A} {B} {C} a manual snapshot (seed-1)" in help_text
    assert f"{DOOMED} seed-1 only; every new snapshot ends Killed" in help_text
