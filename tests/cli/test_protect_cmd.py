"""`zomro-async snapshots protect|unprotect` against the seeded emulator."""

from __future__ import annotations

import pytest

from zomro_async.testing import ZomroEmulator

from ._support import A, C, document, ids_on, invoke


def protected_on(emulator: ZomroEmulator, instance_id: int) -> dict[int, bool]:
    return {int(r["id"]): r["protected"] == "on" for r in emulator.snapshots_of(instance_id)}


def test_protect_snapshots(emulators: list[ZomroEmulator]) -> None:
    doc = document(invoke("snapshots", "list", str(A), "--emulator", "--json"))
    first, second = [r["snapshot_id"] for r in doc["results"]][:2]

    result = invoke("snapshots", "protect", str(A), str(first), str(second), "--emulator")

    assert result.exit_code == 0, result.output
    emulator = emulators[-1]
    flags = protected_on(emulator, A)
    assert (flags[first], flags[second]) == (True, True)
    assert sum(flags.values()) == 2
    rows = {int(r[1]): r for r in map(str.split, result.stdout.splitlines()) if r[:1] == [str(A)]}
    assert rows[first][2:] == ["seed-1", "yes"]
    assert rows[second][3:] == ["yes"]
    assert emulator.calls["image.edit"] == 4  # a preview and a commit each


def test_unprotect_json_and_protecting_twice_is_harmless(emulators: list[ZomroEmulator]) -> None:
    doc = document(invoke("snapshots", "list", str(C), "--emulator", "--json"))
    (guarded,) = [r["snapshot_id"] for r in doc["results"] if r["protected"]]

    again = invoke("snapshots", "protect", str(C), str(guarded), "--emulator", "--json")
    assert again.exit_code == 0, again.output
    assert protected_on(emulators[-1], C)[guarded] is True

    result = invoke("snapshots", "unprotect", str(C), str(guarded), "--emulator", "--json")

    assert result.exit_code == 0, result.output
    doc = document(result)
    assert doc["command"] == "snapshots unprotect"
    (row,) = doc["results"]
    assert (row["instance_id"], row["snapshot_id"], row["protected"], row["ok"]) == (
        C,
        guarded,
        False,
        True,
    )
    assert row["name"].startswith("auto-")
    assert not any(protected_on(emulators[-1], C).values())


def test_an_unknown_snapshot_fails_alone(emulators: list[ZomroEmulator]) -> None:
    result = invoke("snapshots", "protect", str(A), "5204214", "42", "--emulator")

    assert result.exit_code == 1
    assert "error: instance 5203773 snapshot 42: NotFoundError" in result.stderr
    rows = {r[1]: r for r in map(str.split, result.stdout.splitlines()) if r[:1] == [str(A)]}
    assert (rows["5204214"][-1], rows["42"][-1]) == ("yes", "failed")
    assert protected_on(emulators[0], A)[5204214] is True

    doc = document(invoke("snapshots", "protect", str(A), "42", "--emulator", "--json"))
    (row,) = doc["results"]
    assert (row["protected"], row["ok"], row["error"]["type"]) == (None, False, "NotFoundError")


def test_a_snapshot_of_another_instance_is_not_found(emulators: list[ZomroEmulator]) -> None:
    theirs = 5204214  # A's seed-1
    result = invoke("snapshots", "protect", str(C), str(theirs), "--emulator")

    assert result.exit_code == 1
    assert "NotFoundError" in result.stderr
    assert theirs in ids_on(emulators[0], A)
    assert protected_on(emulators[0], A)[theirs] is False


@pytest.mark.parametrize("command", ["protect", "unprotect"])
@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([str(A)], "Missing argument 'SNAPSHOT...'"),
        ([str(A), "5", "5"], "a snapshot id is given twice"),
        ([str(A), "0"], "0 is not in the range"),
    ],
)
def test_usage_errors(
    command: str, args: list[str], message: str, emulators: list[ZomroEmulator]
) -> None:
    result = invoke("snapshots", command, *args, "--emulator")

    assert result.exit_code == 2
    assert message in result.stderr
    assert all(e.calls["image.edit"] == 0 for e in emulators)


@pytest.mark.parametrize("command", ["protect", "unprotect"])
def test_help(command: str) -> None:
    result = invoke("snapshots", command, "--help")

    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert '"protected" (bool; null when it failed)' in text
