"""`--all` on `snapshots create` and `rotate`: every instance of the account, not ids."""

from __future__ import annotations

import pytest

import zomro_async as z
from zomro_async.testing import ZomroEmulator

from ._support import DOOMED, A, B, C, document, invoke, names_on

EVERY = [A, B, C, DOOMED]
MUTATIONS = ("instances.snapshots.edit", "image.delete")


def test_create_all_snapshots_every_instance(emulators: list[ZomroEmulator]) -> None:
    result = invoke(
        "snapshots", "create", "--all", "--name", "all-{instance_id}", "--emulator", "--json"
    )

    assert result.exit_code == 0, result.output
    doc = document(result)
    assert [r["instance_id"] for r in doc["results"]] == EVERY
    (emulator,) = emulators
    assert emulator.calls["instances"] == 1  # listed once, at the start
    assert emulator.calls["instances.snapshots.edit"] == len(EVERY)
    for instance_id in EVERY:
        assert names_on(emulator, instance_id)[-1] == f"all-{instance_id}"


def test_create_all_with_wait_reports_each_instance(emulators: list[ZomroEmulator]) -> None:
    result = invoke("snapshots", "create", "--all", "--name", "n", "--wait", "--emulator")

    assert result.exit_code == 1  # DOOMED's snapshot ends Killed
    assert f"error: instance {DOOMED} snapshot" in result.stderr
    states = [line.split()[-1] for line in result.stderr.splitlines() if line[:2] == "20"]
    assert states.count("active") == 3


def test_rotate_all(emulators: list[ZomroEmulator]) -> None:
    result = invoke("rotate", "--all", "--keep", "2", "--dry-run", "--emulator", "--json")

    assert result.exit_code == 0, result.output
    doc = document(result)
    assert [r["instance_id"] for r in doc["results"]] == EVERY
    assert all(r["dry_run"] for r in doc["results"])
    assert all(emulators[0].calls[func] == 0 for func in MUTATIONS)

    result = invoke("rotate", "--all", "--keep", "3", "--emulator")
    assert result.exit_code == 1  # DOOMED again
    assert emulators[-1].calls["instances.snapshots.edit"] == len(EVERY)


@pytest.mark.parametrize(
    "command",
    [["snapshots", "create", "--name", "n"], ["rotate", "--keep", "2"]],
)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--all", str(A)], "give instance ids or --all, not both"),
        ([], "Missing argument 'INSTANCE...': give instance ids, or --all"),
    ],
)
def test_all_and_ids_exclude_each_other(
    command: list[str], args: list[str], message: str, emulators: list[ZomroEmulator]
) -> None:
    result = invoke(*command, *args, "--emulator")

    assert result.exit_code == 2
    assert message in result.stderr
    assert not emulators  # refused before anything ran


@pytest.mark.parametrize(
    "command",
    [["snapshots", "create", "--all", "--name", "n"], ["rotate", "--all", "--keep", "2"]],
)
def test_all_when_the_instances_cannot_be_listed(
    command: list[str], monkeypatch: pytest.MonkeyPatch, emulators: list[ZomroEmulator]
) -> None:
    async def refuse(self: z.InstancesManager) -> list[z.Instance]:
        raise z.ApiError("Insufficient privileges", type="access", func="instances")

    monkeypatch.setattr(z.InstancesManager, "list", refuse)
    result = invoke(*command, "--emulator", "--json")

    assert result.exit_code == 1
    doc = document(result)
    assert (doc["ok"], doc["results"], doc["error"]["type"]) == (False, [], "ApiError")
    assert "error: cannot list the instances of the account: ApiError" in result.stderr
    assert all(e.calls[func] == 0 for e in emulators for func in MUTATIONS)


def test_all_with_no_credentials_is_an_authentication_failure() -> None:
    result = invoke("rotate", "--all", "--keep", "2")
    assert result.exit_code == 3


@pytest.mark.parametrize("command", [["snapshots", "create"], ["rotate"]])
def test_help_mentions_all(command: list[str]) -> None:
    result = invoke(*command, "--help")
    text = " ".join(result.output.split())
    assert "--all Every instance of the account" in text
