"""`zomro-async rotate` against the seeded emulator: retention flags, the plan, reruns, failures."""

from __future__ import annotations

import datetime
import re
import signal
from typing import Any

import pytest

import zomro_async as z
from zomro_async._cli import _progress
from zomro_async.testing import ZomroEmulator

from ._support import DOOMED, A, AsyncSetup, B, C, document, ids_on, invoke, names_on

MUTATIONS = ("instances.snapshots.edit", "image.delete")
NEW_NAME = re.compile(r"auto-\d{4}-\d\d-\d\d-\d{6}")
# A progress line on stderr: `<time> instance I snapshot S <state>`.
PROGRESS = re.compile(r"\S+Z (instance \d+ snapshot \d+ \w+)$")


def seeded_auto(emulator: ZomroEmulator, instance_id: int) -> list[dict[str, str]]:
    return [r for r in emulator.snapshots_of(instance_id) if r["name"].startswith("auto-")]


def plan_rows(stdout: str) -> list[list[str]]:
    """The table's rows (Instance, Snapshot, Name, Status, Action, Rules), each cell one line."""
    rows = [re.split(r"\s{2,}", line.strip()) for line in stdout.splitlines()]
    return [r for r in rows if len(r) == 6 and r[0].isdigit()]


def test_dry_run_prints_what_is_kept_by_which_rule_and_what_would_go(
    emulators: list[ZomroEmulator],
) -> None:
    result = invoke(
        "rotate", str(A), str(C), str(DOOMED), "--keep-last", "1", "--keep-daily", "2",
        "--dry-run", "--emulator",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    (emulator,) = emulators
    assert all(emulator.calls[func] == 0 for func in MUTATIONS)
    assert emulator.calls["instances.snapshots"] == 3
    oldest_a, second_a, newest_a = seeded_auto(emulator, A)  # untouched, one a day
    _, second_c, newest_c = seeded_auto(emulator, C)  # the oldest of C is protected
    rows = plan_rows(result.stdout)
    assert [r[:2] + r[3:] for r in rows] == [
        [str(A), "-", "-", "create", "last, daily"],  # as a real run would
        [str(A), newest_a["id"], "active", "keep", "daily"],
        [str(A), oldest_a["id"], "active", "remove", "-"],
        [str(A), second_a["id"], "active", "remove", "-"],
        [str(C), "-", "-", "create", "last, daily"],  # as a real run would
        [str(C), newest_c["id"], "active", "keep", "daily"],
        [str(C), second_c["id"], "active", "remove", "-"],
        [str(DOOMED), "-", "-", "create", "last, daily"],  # as a real run would
    ]
    named = {r[1]: r[2] for r in rows}
    assert named[newest_a["id"]] == newest_a["name"]
    assert named[oldest_a["id"]] == oldest_a["name"]
    assert all(NEW_NAME.fullmatch(r[2]) for r in rows if r[1] == "-")
    assert "retention: last 1, daily 2" in result.stderr
    assert "dry run: nothing was created or deleted" in result.stderr
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
        assert row["resumed"] is False
        assert row["snapshot_id"] is None
        assert NEW_NAME.fullmatch(row["name"])
        assert row["created"] == [
            {"snapshot_id": None, "name": row["name"], "status": None, "created_date": None}
        ]
        check_snapshot_lists(row)
    old = [int(r["id"]) for r in seeded_auto(emulator, A)]
    assert [s["snapshot_id"] for s in row_a["deleted"]] == old[:2]
    assert [(s["snapshot_id"], s["rules"]) for s in row_a["kept"]] == [(old[2], ["last"])]
    assert [s["snapshot_id"] for s in row_c["deleted"]] == [int(seeded_auto(emulator, C)[1]["id"])]


def check_snapshot_lists(row: dict[str, Any]) -> None:
    for snapshot in row["created"] + row["deleted"]:
        assert set(snapshot) == {"snapshot_id", "name", "status", "created_date"}
        assert snapshot["snapshot_id"] is None or isinstance(snapshot["snapshot_id"], int)
        assert isinstance(snapshot["name"], str)
    for snapshot in row["kept"]:
        assert set(snapshot) == {"snapshot_id", "name", "status", "created_date", "rules"}
        assert isinstance(snapshot["snapshot_id"], int)
        assert snapshot["rules"]
        assert all(isinstance(rule, str) for rule in snapshot["rules"])


def test_keep_is_an_alias_of_keep_last(emulators: list[ZomroEmulator]) -> None:
    by_keep = document(invoke("rotate", str(A), "--keep", "2", "--dry-run", "--emulator", "--json"))
    by_last = document(
        invoke("rotate", str(A), "--keep-last", "2", "--dry-run", "--emulator", "--json")
    )

    def plan(doc: dict[str, Any]) -> Any:
        (row,) = doc["results"]
        return row["kept"], row["deleted"]

    assert plan(by_keep) == plan(by_last)
    assert [s["rules"] for s in plan(by_keep)[0]] == [["last"]]


def test_rotate_keeps_by_the_rules_and_leaves_a_failed_instance_alone(
    emulators: list[ZomroEmulator],
) -> None:
    result = invoke(
        "rotate", str(A), str(C), str(DOOMED), "--keep-daily", "2", "--emulator", "--json"
    )  # fmt: skip

    assert result.exit_code == 1
    doc = document(result)
    assert (doc["dry_run"], doc["ok"], doc["error"]) == (False, False, None)
    (emulator,) = emulators
    row_a, row_c, row_doomed = doc["results"]
    for row in (row_a, row_c, row_doomed):
        check_snapshot_lists(row)
        assert row["resumed"] is False
    # A: the new one and the newest seeded one are the last two days; two go
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
    kept_a = [(s["snapshot_id"], s["rules"]) for s in row_a["kept"]]
    assert kept_a[0] == (row_a["snapshot_id"], ["daily"])
    assert [rules for _, rules in kept_a] == [["daily"], ["daily"]]
    assert len(row_a["deleted"]) == 2
    assert {s["status"] for s in row_a["deleted"]} == {"deleted"}  # awaited gone
    assert names_on(emulator, A)[0] == "seed-1"
    assert [n for n in names_on(emulator, A) if n.startswith("auto-")][-1] == row_a["name"]
    assert len(seeded_auto(emulator, A)) == 2
    # C: the protected one is neither deleted nor counted
    (deleted_c,) = row_c["deleted"]
    assert len(seeded_auto(emulator, C)) == 3  # protected + the newest seeded + the new one
    assert deleted_c["snapshot_id"] not in ids_on(emulator, C)
    # the failed new snapshot deletes nothing good, and is reported
    assert not row_doomed["ok"]
    assert row_doomed["error"]["type"] == "SnapshotFailed"
    assert (row_doomed["deleted"], row_doomed["kept"]) == ([], [])
    assert row_doomed["status"] == "killed"
    assert names_on(emulator, DOOMED) == ["seed-1", row_doomed["name"]]
    assert emulator.calls["image.delete"] == 3
    assert f"error: instance {DOOMED} snapshot {row_doomed['snapshot_id']}" in result.stderr


def test_rotate_table_and_progress(emulators: list[ZomroEmulator]) -> None:
    before = document(invoke("snapshots", "list", str(A), "--emulator", "--json"))["results"]
    oldest = next(r for r in before if r["name"].startswith("auto-"))

    result = invoke("rotate", str(A), "--keep", "3", "--prefix", "auto-", "--emulator")

    assert result.exit_code == 0, result.output
    emulator = emulators[-1]
    new = ids_on(emulator, A)[-1]
    assert oldest["snapshot_id"] not in ids_on(emulator, A)
    lines = [m[1] for m in map(PROGRESS.match, result.stderr.splitlines()) if m]
    assert lines == [
        f"instance {A} snapshot {new} created",
        f"instance {A} snapshot {new} saving",
        f"instance {A} snapshot {new} active",
        f"instance {A} snapshot {oldest['snapshot_id']} deleting",
        f"instance {A} snapshot {oldest['snapshot_id']} deleted",
    ]
    first, *kept, gone = plan_rows(result.stdout)
    assert first == [str(A), str(new), names_on(emulator, A)[-1], "active", "created", "last"]
    assert [r[4:] for r in kept] == [["kept", "last"], ["kept", "last"]]
    assert gone == [str(A), str(oldest["snapshot_id"]), oldest["name"], "deleted", "deleted", "-"]


def an_earlier_run_left_saving(async_setup: list[AsyncSetup]) -> list[int]:
    """Before the command: today's snapshot of A made by a run cut short (still
    Saving); its id is in the list returned once the command ran."""
    made: list[int] = []

    async def earlier_run(emulator: ZomroEmulator) -> None:
        today = datetime.datetime.fromtimestamp(emulator.clock.time(), datetime.UTC)
        async with emulator.client() as client:
            snapshot = await client.snapshots.create(A, f"auto-{today:%Y-%m-%d}-000000")
            made.append(snapshot.id)

    async_setup.append(earlier_run)
    return made


def test_a_rerun_in_the_period_adopts_the_snapshot_there(
    async_setup: list[AsyncSetup], emulators: list[ZomroEmulator]
) -> None:
    made = an_earlier_run_left_saving(async_setup)

    result = invoke("rotate", str(A), "--keep-daily", "7", "--emulator", "--json")

    assert result.exit_code == 0, result.output
    (row,) = document(result)["results"]
    (emulator,) = emulators
    assert row["resumed"] is True
    assert (row["snapshot_id"], row["status"]) == (made[0], "active")
    assert row["created"][0]["snapshot_id"] == made[0]
    assert row["kept"][0] == {**row["created"][0], "rules": ["daily"]}
    assert emulator.calls["instances.snapshots.edit"] == 0
    assert row["deleted"] == []  # seven days keep all four


def test_a_resumed_rotation_says_so_in_its_table(
    async_setup: list[AsyncSetup], emulators: list[ZomroEmulator]
) -> None:
    async def earlier_run(emulator: ZomroEmulator) -> None:
        async with emulator.client() as client:
            await client.snapshots.rotate([A], keep=3)

    async_setup.append(earlier_run)

    result = invoke("rotate", str(A), "--keep", "3", "--emulator")
    dry = invoke("rotate", str(A), "--keep", "3", "--dry-run", "--emulator")

    assert result.exit_code == 0, result.output
    assert plan_rows(result.stdout)[0][4:] == ["resumed", "last"]
    assert plan_rows(dry.stdout)[0][4:] == ["resume", "last"]
    assert all(e.calls["instances.snapshots.edit"] == 0 for e in emulators)


def test_a_prefix_that_matches_nothing_deletes_nothing(emulators: list[ZomroEmulator]) -> None:
    result = invoke("rotate", str(B), "--keep", "1", "--prefix", "weekly-", "--emulator", "--json")

    assert result.exit_code == 0, result.output
    (row,) = document(result)["results"]
    assert row["deleted"] == []
    assert row["name"].startswith("weekly-")
    assert [s["name"] for s in row["kept"]] == [row["name"]]
    assert len(seeded_auto(emulators[0], B)) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([str(A)], "give at least one of --keep-last, --keep-hourly, --keep-daily"),
        ([str(A), "--keep", "0"], "0 is not in the range"),
        ([str(A), "--keep-daily", "-1"], "-1 is not in the range"),
        ([str(A), "--keep-last", "0"], "every --keep-* given is 0"),
        ([str(A), "--keep-last", "0", "--keep-weekly", "0"], "every --keep-* given is 0"),
        ([str(A), "--keep", "2", "--keep-last", "2"], "--keep is --keep-last"),
        ([str(A), "--keep-hourly", "6"], "5 manual snapshots of an instance a day"),
        ([str(A), "--keep", "2", "--prefix", " "], "non-empty prefix"),
        (["--all", "--keep-hourly", "6"], "5 manual snapshots of an instance a day"),
        (["--all", "--keep", "2", "--prefix", " "], "non-empty prefix"),
        ([str(A), str(A), "--keep", "2"], "duplicate instance id"),
        (["--keep", "2"], "Missing argument"),
    ],
)
def test_rotate_usage_errors(args: list[str], message: str, emulators: list[ZomroEmulator]) -> None:
    result = invoke("rotate", *args, "--emulator")

    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.output
    assert all(e.calls[func] == 0 for e in emulators for func in MUTATIONS)
    # Refused before anything is sent: with --all, not even the account's listing.
    assert all(not any(e.calls.values()) for e in emulators), [e.calls for e in emulators]


def test_five_hourly_snapshots_are_allowed(emulators: list[ZomroEmulator]) -> None:
    result = invoke("rotate", str(A), "--keep-hourly", "5", "--dry-run", "--emulator", "--json")
    assert result.exit_code == 0, result.output


def test_rotate_help_documents_its_rules_and_json() -> None:
    result = invoke("rotate", "--help")

    text = " ".join(result.output.split())
    assert result.exit_code == 0
    for flag in ("--keep-last", "--keep-hourly", "--keep-daily", "--keep-weekly", "--keep-yearly"):
        assert flag in text
    assert "The same as --keep-last N" in text
    assert "restic's forget --keep-*" in text
    assert "a rerun in the period adopts" in text
    assert "--keep-hourly is at most 5" in text
    assert '"dry_run" at the top level' in text
    assert '"resumed"' in text
    assert '"kept"' in text
    assert '"rules"' in text
    assert '"deleted"' in text
    assert f"{A} {B} {C}" in text


def test_ctrl_c_while_a_rerun_awaits_the_adopted_snapshot_prints_its_wait(
    async_setup: list[AsyncSetup], monkeypatch: pytest.MonkeyPatch
) -> None:
    made = an_earlier_run_left_saving(async_setup)
    real = _progress.Tracker.record

    def ctrl_c_once_saving(self: _progress.Tracker, event: z.ProgressEvent) -> None:
        real(self, event)
        if event.kind is z.ProgressKind.SAVING:
            signal.raise_signal(signal.SIGINT)  # as the terminal does on Ctrl-C

    monkeypatch.setattr(_progress.Tracker, "record", ctrl_c_once_saving)

    result = invoke("rotate", str(A), "--keep-daily", "7", "--emulator", "--json")

    assert result.exit_code == 130, result.output
    assert f"awaited when it stopped:\n  instance {A} snapshot {made[0]} auto-" in result.stderr
    # Nothing was created, but the adopted snapshot is still to await, and then the
    # retention to apply: its wait, then the rotation again (a rerun adopts it).
    assert document(result)["resume"] == [
        f"zomro-async snapshots wait --emulator {A} {made[0]}",
        f"zomro-async rotate --emulator {A} --keep-daily 7",
    ]


def test_a_dry_run_that_cannot_plan_an_instance_is_still_a_dry_run() -> None:
    result = invoke("rotate", "9999999", "--keep", "2", "--dry-run", "--emulator", "--json")

    assert result.exit_code == 1, result.output
    (row,) = document(result)["results"]
    assert (row["dry_run"], row["ok"], row["created"]) == (True, False, [])
    table = invoke("rotate", "9999999", "--keep", "2", "--dry-run", "--emulator")
    assert plan_rows(table.stdout)[0][3:5] == ["failed", "-"]  # no plan: nothing to create


def test_the_rerun_a_stopped_rotation_prints_repeats_its_arguments(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def ctrl_c_at_the_first_event(self: _progress.Tracker, event: z.ProgressEvent) -> None:
        signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(_progress.Tracker, "record", ctrl_c_at_the_first_event)
    args = ["--all", "--keep-daily", "7", "--keep-weekly", "4", "--prefix", "n-", "--timeout", "60"]

    result = invoke("rotate", *args, "--emulator", "--json")

    assert result.exit_code == 130, result.output
    rerun = "zomro-async rotate --emulator --all --keep-daily 7 --keep-weekly 4 --prefix n- "
    assert document(result)["resume"][-1] == rerun + "--timeout 60.0"
    assert f"  {rerun}--timeout 60.0" in result.stderr.splitlines()
