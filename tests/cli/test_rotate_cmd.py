"""`zomro-async rotate` against the seeded emulator: the plan, retention, failures."""

from __future__ import annotations

import re
from typing import Any

import pytest

from zomro_async.testing import ZomroEmulator

from ._support import DOOMED, A, B, C, document, ids_on, invoke, names_on

MUTATIONS = ("instances.snapshots.edit", "image.delete")
NEW_NAME = re.compile(r"auto-\d{4}-\d\d-\d\d-\d{6}")


def seeded_auto(emulator: ZomroEmulator, instance_id: int) -> list[dict[str, str]]:
    return [r for r in emulator.snapshots_of(instance_id) if r["name"].startswith("auto-")]


def test_dry_run_prints_the_plan_and_changes_nothing(emulators: list[ZomroEmulator]) -> None:
    result = invoke("rotate", str(A), str(C), str(DOOMED), "--keep", "2", "--dry-run", "--emulator")

    assert result.exit_code == 0, result.output
    (emulator,) = emulators
    assert all(emulator.calls[func] == 0 for func in MUTATIONS)
    assert emulator.calls["instances.snapshots"] == 3
    assert len(seeded_auto(emulator, A)) == 3  # the seeded state, untouched
    oldest_a, second_a, _ = seeded_auto(emulator, A)
    _, second_c, _ = seeded_auto(emulator, C)  # the oldest of C is protected
    plan = result.stdout
    assert f"{oldest_a['id']} {oldest_a['name']}" in plan
    assert f"{second_a['id']} {second_a['name']}" in plan
    assert f"{second_c['id']} {second_c['name']}" in plan
    assert len(NEW_NAME.findall(plan)) == 3 + 3  # each instance's new name, then the victims
    assert "dry run: nothing was created or deleted" in plan
    assert "\x1b" not in result.output


def test_dry_run_json(emulators: list[ZomroEmulator]) -> None:
    result = invoke("rotate", str(A), str(C), "--keep", "2", "--dry-run", "--emulator", "--json")

    assert result.exit_code == 0, result.output
    doc = document(result)
    assert (doc["command"], doc["dry_run"], doc["ok"]) == ("rotate", True, True)
    (emulator,) = emulators
    assert all(emulator.calls[func] == 0 for func in MUTATIONS)
    row_a, row_c = doc["results"]
    for row in (row_a, row_c):
        assert row["dry_run"] is True
        assert row["snapshot_id"] is None
        assert NEW_NAME.fullmatch(row["name"])
        assert row["created"] == [
            {"snapshot_id": None, "name": row["name"], "status": None, "created_date": None}
        ]
        check_snapshot_lists(row)
    old = [int(r["id"]) for r in seeded_auto(emulator, A)]
    assert [s["snapshot_id"] for s in row_a["deleted"]] == old[:2]
    assert [s["snapshot_id"] for s in row_c["deleted"]] == [int(seeded_auto(emulator, C)[1]["id"])]


def check_snapshot_lists(row: dict[str, Any]) -> None:
    for snapshot in row["created"] + row["deleted"]:
        assert set(snapshot) == {"snapshot_id", "name", "status", "created_date"}
        assert snapshot["snapshot_id"] is None or isinstance(snapshot["snapshot_id"], int)
        assert isinstance(snapshot["name"], str)


def test_rotate_keeps_n_and_leaves_a_failed_instance_alone(emulators: list[ZomroEmulator]) -> None:
    result = invoke("rotate", str(A), str(C), str(DOOMED), "--keep", "2", "--emulator", "--json")

    assert result.exit_code == 1
    doc = document(result)
    assert (doc["dry_run"], doc["ok"], doc["error"]) == (False, False, None)
    (emulator,) = emulators
    row_a, row_c, row_doomed = doc["results"]
    for row in (row_a, row_c, row_doomed):
        check_snapshot_lists(row)
    # A: two of the three seeded auto- snapshots go; seed-1 stays; the new one is kept
    assert row_a["ok"]
    assert row_a["status"] == "active"
    assert row_a["created"] == [
        {
            "snapshot_id": row_a["snapshot_id"],
            "name": row_a["name"],
            "status": "active",
            "created_date": row_a["created"][0]["created_date"],
        }
    ]
    assert len(row_a["deleted"]) == 2
    assert names_on(emulator, A)[0] == "seed-1"
    assert [n for n in names_on(emulator, A) if n.startswith("auto-")][-1] == row_a["name"]
    assert len(seeded_auto(emulator, A)) == 2
    # C: the protected one is neither deleted nor counted
    assert [s["snapshot_id"] for s in row_c["deleted"]] == [int(seeded_auto_before(row_c))]
    assert len(seeded_auto(emulator, C)) == 3  # protected + the newest seeded + the new one
    # the failed new snapshot deletes nothing
    assert not row_doomed["ok"]
    assert row_doomed["error"]["type"] == "SnapshotFailed"
    assert row_doomed["deleted"] == []
    assert row_doomed["status"] == "killed"
    assert emulator.calls["image.delete"] == 3
    assert f"error: instance {DOOMED} snapshot {row_doomed['snapshot_id']}" in result.stderr


def seeded_auto_before(row: dict[str, Any]) -> int:
    (deleted,) = row["deleted"]
    snapshot_id: int = deleted["snapshot_id"]
    return snapshot_id


def test_rotate_table_and_progress(emulators: list[ZomroEmulator]) -> None:
    before = document(invoke("snapshots", "list", str(A), "--emulator", "--json"))["results"]
    oldest = next(r for r in before if r["name"].startswith("auto-"))

    result = invoke("rotate", str(A), "--keep", "3", "--prefix", "auto-", "--emulator")

    assert result.exit_code == 0, result.output
    emulator = emulators[-1]
    new = ids_on(emulator, A)[-1]
    assert oldest["snapshot_id"] not in ids_on(emulator, A)
    lines = [line.split(" ", 1)[1] for line in result.stdout.splitlines() if line[:2] == "20"]
    assert lines == [
        f"instance {A} snapshot {new} created",
        f"instance {A} snapshot {new} saving",
        f"instance {A} snapshot {new} active",
        f"instance {A} snapshot {oldest['snapshot_id']} deleting",
        f"instance {A} snapshot {oldest['snapshot_id']} deleted",
    ]
    (row,) = [line.split() for line in result.stdout.splitlines() if line.split()[:1] == [str(A)]]
    assert row == [
        str(A),
        str(new),
        names_on(emulator, A)[-1],
        "active",
        str(oldest["snapshot_id"]),
    ]


def test_a_prefix_that_matches_nothing_deletes_nothing(emulators: list[ZomroEmulator]) -> None:
    result = invoke("rotate", str(B), "--keep", "1", "--prefix", "weekly-", "--emulator", "--json")

    assert result.exit_code == 0, result.output
    (row,) = document(result)["results"]
    assert row["deleted"] == []
    assert row["name"].startswith("weekly-")
    assert len(seeded_auto(emulators[0], B)) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([str(A)], "Missing option '--keep'"),
        ([str(A), "--keep", "0"], "0 is not in the range"),
        ([str(A), "--keep", "2", "--prefix", " "], "non-empty prefix"),
        ([str(A), str(A), "--keep", "2"], "duplicate instance id"),
        (["--keep", "2"], "Missing argument"),
    ],
)
def test_rotate_usage_errors(args: list[str], message: str, emulators: list[ZomroEmulator]) -> None:
    result = invoke("rotate", *args, "--emulator")

    assert result.exit_code == 2
    assert message in result.stderr
    assert all(e.calls[func] == 0 for e in emulators for func in MUTATIONS)


def test_rotate_help_documents_its_json() -> None:
    result = invoke("rotate", "--help")

    text = " ".join(result.output.split())
    assert result.exit_code == 0
    assert '"dry_run" at the top level' in text
    assert '"created"' in text
    assert '"deleted"' in text
    assert f"{A} {B} {C}" in text
