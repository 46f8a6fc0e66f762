"""`zomro-async snapshots list|create|delete|wait` against the seeded emulator."""

from __future__ import annotations

import re

import pytest

from zomro_async.testing import ZomroEmulator

from ._support import DOOMED, A, B, C, document, ids_on, invoke, names_on

LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ instance (\d+)(?: snapshot (\d+))? (\w+)(?:: (.*))?$"
)


def progress(text: str) -> list[tuple[int, int | None, str]]:
    """The progress lines: (instance, snapshot, state); every other line is not one."""
    found = []
    for line in text.splitlines():
        if m := LINE.match(line):
            found.append((int(m[1]), int(m[2]) if m[2] else None, m[3]))
    return found


def table_rows(text: str, first: int) -> dict[int, list[str]]:
    """Table rows by snapshot id (the second cell) whose first cell is `first`."""
    rows = (line.split() for line in text.splitlines())
    return {int(r[1]): r for r in rows if len(r) > 2 and r[0] == str(first) and r[1].isdigit()}


# -- list ------------------------------------------------------------------------


def test_list_shows_the_snapshots_of_each_instance(emulators: list[ZomroEmulator]) -> None:
    result = invoke("snapshots", "list", str(A), str(C), "--emulator")

    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output
    (emulator,) = emulators
    for instance in (A, C):
        rows = table_rows(result.stdout, instance)
        assert sorted(rows) == ids_on(emulator, instance)
        assert [rows[i][2] for i in sorted(rows)] == names_on(emulator, instance)
        assert all(r[3] == "active" for r in rows.values())
    protected = [r for r in table_rows(result.stdout, C).values() if r[-1] == "yes"]
    assert len(protected) == 1
    assert protected[0][2].startswith("auto-")
    # the listing's stored filter is cleared first (one the web panel left would hide rows)
    assert set(emulators[0].calls) == {"auth", "instances.snapshots", "instances.snapshots.filter"}


def test_list_json(emulators: list[ZomroEmulator]) -> None:
    result = invoke("snapshots", "list", str(A), str(C), "--emulator", "--json")

    assert result.exit_code == 0, result.output
    doc = document(result)
    assert (doc["command"], doc["ok"], doc["error"]) == ("snapshots list", True, None)
    (emulator,) = emulators
    expected = [(i, s) for i in (A, C) for s in ids_on(emulator, i)]
    assert [(r["instance_id"], r["snapshot_id"]) for r in doc["results"]] == expected
    for row in doc["results"]:
        assert set(row) == {
            "instance_id",
            "snapshot_id",
            "name",
            "status",
            "created_date",
            "protected",
            "ok",
            "error",
        }
        assert row["status"] == "active"
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", row["created_date"])
        assert isinstance(row["protected"], bool)
    assert sum(r["protected"] for r in doc["results"]) == 1


def test_an_unknown_instance_fails_alone_and_the_emulator_says_which_exist() -> None:
    result = invoke("snapshots", "list", str(A), "999", "--emulator")

    assert result.exit_code == 1
    assert table_rows(result.stdout, A)
    assert "error: instance 999: NotFoundError" in result.stderr
    assert f"the emulator's instances are {A} {B} {C} {DOOMED}" in result.stderr

    doc = document(invoke("snapshots", "list", str(A), "999", "--emulator", "--json"))
    (failed,) = [r for r in doc["results"] if not r["ok"]]
    assert failed["instance_id"] == 999
    assert failed["error"]["type"] == "NotFoundError"
    assert doc["ok"] is False
    assert doc["error"] is None  # items failed, the command did not


# -- create ----------------------------------------------------------------------


def test_create_and_wait(emulators: list[ZomroEmulator]) -> None:
    result = invoke("snapshots", "create", str(A), str(B), "--name", "n-{instance_id}", "--wait")
    assert result.exit_code == 3  # no credentials without --emulator

    result = invoke(
        "snapshots", "create", str(A), str(B), "--name", "n-{instance_id}", "--wait", "--emulator"
    )

    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output
    (emulator,) = emulators
    assert emulator.calls["instances.snapshots.edit"] == 2
    for instance in (A, B):
        new = ids_on(emulator, instance)[-1]
        assert names_on(emulator, instance)[-1] == f"n-{instance}"
        assert table_rows(result.stdout, instance)[new][1:] == [str(new), f"n-{instance}", "active"]
        seen = [(s, state) for i, s, state in progress(result.stderr) if i == instance]
        assert seen == [(new, "created"), (new, "saving"), (new, "active")]


def test_create_without_wait_returns_saving_snapshots(emulators: list[ZomroEmulator]) -> None:
    result = invoke("snapshots", "create", str(A), "--name", "quick", "--emulator", "--json")

    assert result.exit_code == 0, result.output
    (row,) = document(result)["results"]
    assert (row["instance_id"], row["name"], row["status"], row["ok"]) == (
        A,
        "quick",
        "saving",
        True,
    )
    assert row["snapshot_id"] == ids_on(emulators[0], A)[-1]


def test_create_json_keeps_stdout_for_the_document(emulators: list[ZomroEmulator]) -> None:
    result = invoke(
        "snapshots", "create", str(A), str(DOOMED), "--name", "n", "--wait", "--emulator", "--json"
    )

    assert result.exit_code == 1
    doc = document(result)  # stdout is the document alone
    assert not progress(result.stdout)
    assert (A, ids_on(emulators[0], A)[-1], "active") in progress(result.stderr)
    good, bad = doc["results"]
    assert (good["instance_id"], good["status"], good["ok"]) == (A, "active", True)
    assert (bad["instance_id"], bad["status"], bad["ok"]) == (DOOMED, "killed", False)
    assert bad["snapshot_id"] == ids_on(emulators[0], DOOMED)[-1]  # made, then Killed: not lost
    assert bad["error"]["type"] == "SnapshotFailed"


def test_a_failed_create_is_reported_with_its_instance() -> None:
    result = invoke(
        "snapshots", "create", str(A), str(DOOMED), "--name", "n", "--wait", "--emulator"
    )

    assert result.exit_code == 1
    assert re.search(
        rf"^error: instance {DOOMED} snapshot \d+: SnapshotFailed: .* is Killed$",
        result.stderr,
        re.MULTILINE,
    )
    assert "error: instance" not in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([str(A), str(A), "--name", "n"], "duplicate instance id"),
        ([str(A), "--name", "{nope}"], "bad name template"),
        ([str(A), "--name", " "], "must not be empty"),
        ([str(A)], "Missing option '--name'"),
        (["--name", "n"], "Missing argument"),
        (["0", "--name", "n"], "0 is not in the range"),
    ],
)
def test_create_usage_errors(args: list[str], message: str, emulators: list[ZomroEmulator]) -> None:
    result = invoke("snapshots", "create", *args, "--emulator")

    assert result.exit_code == 2
    assert message in result.stderr
    assert all(e.calls["instances.snapshots.edit"] == 0 for e in emulators)


# -- delete ----------------------------------------------------------------------


def test_delete_and_wait(emulators: list[ZomroEmulator]) -> None:
    doc = document(invoke("snapshots", "list", str(A), "--emulator", "--json"))
    first, second = [r["snapshot_id"] for r in doc["results"]][1:3]

    result = invoke(
        "snapshots", "delete", str(A), str(first), str(second), "--wait", "--emulator", "--json"
    )

    assert result.exit_code == 0, result.output
    rows = document(result)["results"]
    assert [(r["snapshot_id"], r["status"], r["ok"]) for r in rows] == [
        (first, "deleted", True),
        (second, "deleted", True),
    ]
    assert all(r["name"].startswith("auto-") for r in rows)
    emulator = emulators[-1]
    assert first not in ids_on(emulator, A)
    assert second not in ids_on(emulator, A)
    assert emulator.calls["image.delete"] == 2


def test_delete_without_wait_and_an_unknown_snapshot(emulators: list[ZomroEmulator]) -> None:
    doc = document(invoke("snapshots", "list", str(B), "--emulator", "--json"))
    target = doc["results"][-1]["snapshot_id"]

    result = invoke("snapshots", "delete", str(B), str(target), "77", "--emulator")

    assert result.exit_code == 1
    rows = table_rows(result.stdout, B)
    assert rows[target][-1] == "deleting"
    assert rows[77][-1] == "failed"
    assert "error: instance 5203774 snapshot 77: NotFoundError" in result.stderr
    states = {(s, state) for _, s, state in progress(result.stderr)}
    assert states == {(target, "deleting"), (77, "failed")}


def test_delete_needs_a_snapshot() -> None:
    result = invoke("snapshots", "delete", str(A), "--emulator")
    assert result.exit_code == 2


# -- wait ------------------------------------------------------------------------


def test_wait_for_active_snapshots(emulators: list[ZomroEmulator]) -> None:
    doc = document(invoke("snapshots", "list", str(A), "--emulator", "--json"))
    ids = [r["snapshot_id"] for r in doc["results"]][:2]

    result = invoke("snapshots", "wait", str(A), *map(str, ids), "--emulator", "--json")

    assert result.exit_code == 0, result.output
    rows = document(result)["results"]
    assert [(r["snapshot_id"], r["status"], r["ok"]) for r in rows] == [
        (ids[0], "active", True),
        (ids[1], "active", True),
    ]
    assert rows[0]["name"] == "seed-1"


def test_wait_reports_each_item(emulators: list[ZomroEmulator]) -> None:
    result = invoke("snapshots", "wait", str(A), "5204214", "42", "--emulator")

    assert result.exit_code == 1
    rows = table_rows(result.stdout, A)
    assert rows[5204214][-1] == "active"
    assert rows[42][-1] == "failed"
    assert "error: instance 5203773 snapshot 42: NotFoundError" in result.stderr


def test_wait_deleted(emulators: list[ZomroEmulator]) -> None:
    result = invoke("snapshots", "wait", "--deleted", str(A), "42", "--emulator", "--json")

    assert result.exit_code == 0, result.output
    (row,) = document(result)["results"]
    assert (row["snapshot_id"], row["status"], row["ok"]) == (42, "deleted", True)


def test_wait_deleted_times_out_on_a_snapshot_that_stays(emulators: list[ZomroEmulator]) -> None:
    result = invoke(
        "snapshots", "wait", "--deleted", str(A), "5204214", "--timeout", "60", "--emulator"
    )

    assert result.exit_code == 1
    assert "WaitTimeout" in result.stderr
    assert table_rows(result.stdout, A)[5204214][-1] == "active"  # as last seen


def test_wait_rejects_a_repeated_id() -> None:
    result = invoke("snapshots", "wait", str(A), "5", "5", "--emulator")
    assert result.exit_code == 2
    assert "twice" in result.stderr


@pytest.mark.parametrize("command", ["list", "create", "delete", "wait"])
def test_help_documents_the_json_schema_and_the_emulator(command: str) -> None:
    result = invoke("snapshots", command, "--help")

    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert '"version": 1' in text
    assert '{"type": "<class name>", "message": "..."}' in text
    assert f"{A} {B} {C}" in text
    assert str(DOOMED) in text
    assert "--password" not in text
