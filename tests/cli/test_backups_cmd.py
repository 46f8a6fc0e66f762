"""`zomro-async backups list|create|delete|wait|schedule|rotation` against the seeded emulator."""

from __future__ import annotations

import datetime
import json
import re
import signal
import sys
from typing import Any

import pytest
from click.testing import Result

import zomro_async as z
from zomro_async._cli import _progress, _sandbox
from zomro_async.testing import ZomroEmulator

from ._support import DOOMED, A, AsyncSetup, B, C, Setup, document, invoke

Kind = z.ProgressKind
LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ instance (\d+)(?: backup (\d+))? (\w+)(?:: (.*))?$"
)
MANUAL_PER_DAY = 5  # the emulator's (and the panel's) daily limit


def progress(text: str) -> list[tuple[int, int | None, str]]:
    """The progress lines: (instance, backup, state); every other line is not one."""
    found = []
    for line in text.splitlines():
        if m := LINE.match(line):
            found.append((int(m[1]), int(m[2]) if m[2] else None, m[3]))
    return found


def table_rows(text: str, first: int) -> dict[int, list[str]]:
    """Table rows by their second cell (an id) whose first cell is `first`."""
    rows = (line.split() for line in text.splitlines())
    return {int(r[1]): r for r in rows if len(r) > 2 and r[0] == str(first) and r[1].isdigit()}


def backups_on(emulator: ZomroEmulator, instance_id: int) -> dict[int, dict[str, str]]:
    return {int(row["id"]): row for row in emulator.backups_of(instance_id)}


def loose_document(result: Result) -> dict[str, Any]:
    """The JSON document of a command whose results are not images (schedules, rotation)."""
    doc: dict[str, Any] = json.loads(result.stdout)
    assert doc["version"] == 1
    assert isinstance(doc["results"], list)
    assert doc["resume"] == []
    for row in doc["results"]:
        assert isinstance(row["instance_id"], int)
        assert (row["error"] is None) == row["ok"]
    return doc


def add_schedule(*args: str) -> Result:
    """`backups schedule add A ARGS --emulator`."""
    return invoke("backups", "schedule", "add", str(A), *args, "--emulator")


def no_traceback(result: Result) -> None:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.fixture
def backed_up(sandbox_setup: list[Setup]) -> dict[str, int]:
    """Instance A gets an Active manual backup, a scheduled one and a protected one;
    C one still Saving. Their ids by name, the same in every emulator (learnt by
    running a first command)."""
    made: dict[str, int] = {}

    def step(emulator: ZomroEmulator) -> None:
        made["manual"] = emulator.add_backup(A, "manual-1", active=True)
        made["scheduled"] = emulator.add_backup(
            A, "nightly-20261201-0230", backup_type="scheduled", active=True
        )
        made["kept"] = emulator.add_backup(A, "keep-me", active=True, protected=True)
        made["saving"] = emulator.add_backup(C, "in-progress")

    sandbox_setup.append(step)
    assert invoke("backups", "list", str(A), "--emulator").exit_code == 0
    return made


@pytest.fixture
def scheduled(async_setup: list[AsyncSetup]) -> list[int]:
    """Instance A gets two schedules: their ids, the same in every emulator (learnt
    by running a first command)."""
    ids: list[int] = []

    async def step(emulator: ZomroEmulator) -> None:
        async with emulator.client() as client:
            first = await client.backups.add_schedule(
                A, "nightly", days=set(z.Weekday), at=datetime.time(2, 30)
            )
            second = await client.backups.add_schedule(
                A, "weekend", days={z.Weekday.SAT, z.Weekday.SUN}, at=datetime.time(23, 5)
            )
        ids[:] = [first.id, second.id]

    async_setup.append(step)
    assert invoke("backups", "schedule", "list", str(A), "--emulator").exit_code == 0
    return ids


# -- list ------------------------------------------------------------------------


def test_list_shows_backups_with_their_type_and_the_usage_on_stderr(
    backed_up: dict[str, int], emulators: list[ZomroEmulator]
) -> None:
    result = invoke("backups", "list", str(A), "--emulator")

    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output
    rows = table_rows(result.stdout, A)
    assert sorted(rows) == sorted(backups_on(emulators[-1], A))
    assert rows[backed_up["manual"]][2:5] == ["manual-1", "manual", "active"]
    assert rows[backed_up["scheduled"]][3] == "scheduled"
    assert rows[backed_up["kept"]][-1] == "yes"
    assert rows[backed_up["manual"]][-1] != "yes"
    # two manual backups made today (the setup's), none past the limit
    assert result.stderr.splitlines() == [
        f"instance {A}: manual backups today: 2 of 5, in all: 2 of 100"
    ]
    assert "manual backups" not in result.stdout


def test_list_json_has_the_usage_of_one_instance(backed_up: dict[str, int]) -> None:
    result = invoke("backups", "list", str(A), "--emulator", "--json")

    assert result.exit_code == 0, result.output
    # stderr says the same in every format
    assert result.stderr == f"instance {A}: manual backups today: 2 of 5, in all: 2 of 100\n"
    doc = document(result)
    assert (doc["command"], doc["ok"]) == ("backups list", True)
    assert doc["usage"] == {
        "instance_id": A,
        "made_today": 2,
        "daily_limit": 5,
        "left_today": 3,
        "made_in_all": 2,
        "total_limit": 100,
        "left_in_all": 98,
        "price_per_gb_day": doc["usage"]["price_per_gb_day"],
    }
    assert isinstance(doc["usage"]["price_per_gb_day"], str)
    by_id = {r["backup_id"]: r for r in doc["results"]}
    assert set(by_id) == set(backed_up.values()) - {backed_up["saving"]}
    for row in doc["results"]:
        assert set(row) == {
            "instance_id",
            "backup_id",
            "name",
            "status",
            "backup_type",
            "created_date",
            "protected",
            "ok",
            "error",
        }
        assert row["status"] == "active"
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", row["created_date"])
    assert by_id[backed_up["manual"]]["backup_type"] == "manual"
    assert by_id[backed_up["scheduled"]]["backup_type"] == "scheduled"
    assert by_id[backed_up["kept"]]["protected"] is True


def test_list_of_several_instances_has_no_usage(
    backed_up: dict[str, int], emulators: list[ZomroEmulator]
) -> None:
    result = invoke("backups", "list", str(A), str(B), str(C), "--emulator")

    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert "(no backups)" in result.stdout  # B has none
    assert table_rows(result.stdout, C)[backed_up["saving"]][4] == "saving"
    assert emulators[-1].calls["instances.fleio_bckps"] == 3  # one listing each, no usage

    doc = document(invoke("backups", "list", str(A), str(C), "--emulator", "--json"))
    assert doc["usage"] is None
    assert [r["instance_id"] for r in doc["results"]] == [A, A, A, C]


def test_an_unknown_instance_fails_alone() -> None:
    result = invoke("backups", "list", str(A), "999", "--emulator")

    assert result.exit_code == 1
    assert "(no backups)" in result.stdout
    assert "error: instance 999: NotFoundError" in result.stderr
    assert f"the emulator's instances are {A} {B} {C} {DOOMED}" in result.stderr

    doc = document(invoke("backups", "list", "999", "--emulator", "--json"))
    (row,) = doc["results"]
    assert (row["instance_id"], row["backup_id"], row["ok"]) == (999, None, False)
    assert row["error"]["type"] == "NotFoundError"
    assert doc["usage"] is None
    assert doc["error"] is None


# -- create ----------------------------------------------------------------------


def test_create_and_wait(emulators: list[ZomroEmulator]) -> None:
    result = invoke(
        "backups", "create", str(A), str(B), "--name", "b-{instance_id}", "--wait", "--emulator"
    )

    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output
    (emulator,) = emulators
    assert emulator.calls["instances.fleio_bckps.edit"] == 2
    for instance in (A, B):
        ((new, row),) = backups_on(emulator, instance).items()
        assert (row["name"], row["backup_type"]) == (f"b-{instance}", "manual")
        assert table_rows(result.stdout, instance)[new][1:] == [str(new), f"b-{instance}", "active"]
        seen = [(s, state) for i, s, state in progress(result.stderr) if i == instance]
        assert seen == [(new, "created"), (new, "saving"), (new, "active")]
    assert "snapshot" not in result.output


def test_create_without_wait_json_keeps_stdout_for_the_document(
    emulators: list[ZomroEmulator],
) -> None:
    result = invoke("backups", "create", str(A), "--name", "quick", "--emulator", "--json")

    assert result.exit_code == 0, result.output
    doc = document(result)  # stdout is the document alone
    assert doc["command"] == "backups create"
    (row,) = doc["results"]
    (new,) = backups_on(emulators[0], A)
    assert row == {
        "instance_id": A,
        "backup_id": new,
        "name": "quick",
        "status": "saving",
        "ok": True,
        "error": None,
    }
    assert progress(result.stderr) == [(A, new, "created")]


def test_create_without_wait_tells_how_to_await_the_backups(
    emulators: list[ZomroEmulator],
) -> None:
    result = invoke("backups", "create", str(A), "--name", "quick", "--emulator")

    assert result.exit_code == 0, result.output
    (new,) = backups_on(emulators[0], A)
    assert table_rows(result.stdout, A)[new][-1] == "saving"
    assert f"`zomro-async backups wait --emulator {A} {new}` awaits it" in result.stderr

    result = invoke("backups", "create", str(A), str(B), "--name", "quick", "--emulator")

    assert result.exit_code == 0, result.output
    ((a_new, _),) = backups_on(emulators[1], A).items()
    ((b_new, _),) = backups_on(emulators[1], B).items()
    out = result.stderr[result.stderr.index("the backups are being made") :]
    assert out.splitlines() == [
        "the backups are being made; to await them, run:",
        f"  zomro-async backups wait --emulator {A} {a_new}",
        f"  zomro-async backups wait --emulator {B} {b_new}",
    ]


def test_a_killed_backup_is_reported_with_its_instance(emulators: list[ZomroEmulator]) -> None:
    result = invoke("backups", "create", str(A), str(DOOMED), "--name", "n", "--wait", "--emulator")

    assert result.exit_code == 1
    (killed,) = backups_on(emulators[0], DOOMED)
    assert re.search(
        rf"^error: instance {DOOMED} backup {killed}: BackupFailed: .* is Killed$",
        result.stderr,
        re.MULTILINE,
    )
    assert table_rows(result.stdout, DOOMED)[killed][-1] == "killed"
    assert "error:" not in result.stdout


def test_the_daily_limit_refuses_one_instance_alone(
    sandbox_setup: list[Setup], emulators: list[ZomroEmulator]
) -> None:
    def five_today(emulator: ZomroEmulator) -> None:
        for n in range(MANUAL_PER_DAY):
            emulator.add_backup(A, f"early-{n}", active=True)

    sandbox_setup.append(five_today)

    result = invoke("backups", "create", str(A), str(B), "--name", "n", "--wait", "--emulator")

    assert result.exit_code == 1
    assert re.search(rf"^error: instance {A}: LimitExceeded: ", result.stderr, re.MULTILINE)
    assert "`zomro-async backups list INSTANCE`" in result.stderr
    assert table_rows(result.stdout, B)  # B's backup was made and awaited
    assert [r[-1] for r in table_rows(result.stdout, B).values()] == ["active"]
    failed = [line.split() for line in result.stdout.splitlines() if line.split()[:1] == [str(A)]]
    assert failed == [[str(A), "-", "-", "failed"]]
    assert len(backups_on(emulators[0], A)) == MANUAL_PER_DAY  # nothing more made

    doc = document(
        invoke("backups", "create", str(A), str(B), "--name", "n", "--wait", "--emulator", "--json")
    )
    refused, made = doc["results"]
    assert (refused["instance_id"], refused["backup_id"], refused["ok"]) == (A, None, False)
    assert refused["error"]["type"] == "LimitExceeded"
    assert (made["instance_id"], made["status"], made["ok"]) == (B, "active", True)
    assert (doc["ok"], doc["error"]) == (False, None)


def test_create_all(emulators: list[ZomroEmulator]) -> None:
    result = invoke("backups", "create", "--all", "--name", "all", "--emulator", "--json")

    assert result.exit_code == 0, result.output
    rows = document(result)["results"]
    assert [(r["instance_id"], r["status"]) for r in rows] == [
        (i, "saving") for i in _sandbox.INSTANCES
    ]
    assert emulators[0].calls["instances"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([str(A), str(A), "--name", "n"], "duplicate instance id"),
        ([str(A), "--name", "{nope}"], "bad name template"),
        ([str(A), "--name", "x" * 101], "100"),
        ([str(A)], "Missing option '--name'"),
        (["--name", "n"], "Missing argument"),
        ([str(A), "--all", "--name", "n"], "not both"),
        (["0", "--name", "n"], "0 is not in the range"),
    ],
)
def test_create_usage_errors(args: list[str], message: str, emulators: list[ZomroEmulator]) -> None:
    result = invoke("backups", "create", *args, "--emulator")

    assert result.exit_code == 2
    assert message in result.stderr
    no_traceback(result)
    assert all(e.calls["instances.fleio_bckps.edit"] == 0 for e in emulators)


# -- delete ----------------------------------------------------------------------


def test_delete_awaits_the_disappearance(
    backed_up: dict[str, int], emulators: list[ZomroEmulator]
) -> None:
    target = backed_up["manual"]
    result = invoke("backups", "delete", str(A), str(target), "--wait", "--emulator", "--json")

    assert result.exit_code == 0, result.output
    (row,) = document(result)["results"]
    assert (row["backup_id"], row["name"], row["status"], row["ok"]) == (
        target,
        "manual-1",
        "deleted",
        True,
    )
    assert target not in backups_on(emulators[-1], A)
    assert emulators[-1].calls["image.delete"] == 1
    assert (A, target, "deleted") in progress(result.stderr)


def test_delete_without_wait_and_an_unknown_backup(
    backed_up: dict[str, int], emulators: list[ZomroEmulator]
) -> None:
    target = backed_up["scheduled"]
    result = invoke("backups", "delete", str(A), str(target), "77", "--emulator")

    assert result.exit_code == 1
    rows = table_rows(result.stdout, A)
    assert rows[target][-1] == "deleting"
    assert rows[77][-1] == "failed"
    assert f"error: instance {A} backup 77: NotFoundError" in result.stderr
    assert {(s, state) for _, s, state in progress(result.stderr)} == {
        (target, "deleting"),
        (77, "failed"),
    }


def test_a_protected_backup_is_not_deleted(
    backed_up: dict[str, int], emulators: list[ZomroEmulator]
) -> None:
    result = invoke("backups", "delete", str(A), str(backed_up["kept"]), "--emulator")

    assert result.exit_code == 1
    assert f"error: instance {A} backup {backed_up['kept']}: " in result.stderr
    assert backed_up["kept"] in backups_on(emulators[-1], A)


def test_delete_needs_a_backup() -> None:
    result = invoke("backups", "delete", str(A), "--emulator")
    assert result.exit_code == 2
    assert "Missing argument 'BACKUP...'" in result.stderr


# -- wait ------------------------------------------------------------------------


def test_wait_for_a_saving_backup(backed_up: dict[str, int]) -> None:
    saving = backed_up["saving"]
    result = invoke("backups", "wait", str(C), str(saving), "--emulator")

    assert result.exit_code == 0, result.output
    assert table_rows(result.stdout, C)[saving][2:] == ["in-progress", "active"]
    assert [s for _, _, s in progress(result.stderr)] == ["saving", "active"]


def test_wait_reports_each_item(backed_up: dict[str, int]) -> None:
    result = invoke(
        "backups", "wait", str(A), str(backed_up["manual"]), "42", "--emulator", "--json"
    )

    assert result.exit_code == 1
    rows = document(result)["results"]
    assert [(r["backup_id"], r["status"], r["ok"]) for r in rows] == [
        (backed_up["manual"], "active", True),
        (42, None, False),
    ]
    assert rows[1]["error"]["type"] == "NotFoundError"


def test_wait_deleted_and_a_repeated_id() -> None:
    result = invoke("backups", "wait", "--deleted", str(A), "42", "--emulator", "--json")

    assert result.exit_code == 0, result.output
    (row,) = document(result)["results"]
    assert (row["backup_id"], row["status"], row["ok"]) == (42, "deleted", True)

    result = invoke("backups", "wait", str(A), "5", "5", "--emulator")
    assert result.exit_code == 2
    assert "a backup id is given twice" in result.stderr


def test_a_killed_backup_fails_its_wait(sandbox_setup: list[Setup]) -> None:
    made: list[int] = []
    sandbox_setup.append(lambda emulator: made.append(emulator.add_backup(DOOMED, "doomed")))
    invoke("backups", "list", str(DOOMED), "--emulator")  # to learn its id

    result = invoke("backups", "wait", str(DOOMED), str(made[0]), "--emulator")

    assert result.exit_code == 1
    assert f"error: instance {DOOMED} backup {made[0]}: BackupFailed" in result.stderr
    assert table_rows(result.stdout, DOOMED)[made[0]][-1] == "killed"


# -- Ctrl-C ----------------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_during_create_resumes_with_backups_wait(
    monkeypatch: pytest.MonkeyPatch, emulators: list[ZomroEmulator]
) -> None:
    real = _progress.Tracker.record

    def then_interrupt(self: _progress.Tracker, event: z.ProgressEvent) -> None:
        real(self, event)
        if event.kind is Kind.CREATED:
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(_progress.Tracker, "record", then_interrupt)

    result = invoke("backups", "create", str(A), "--name", "n", "--wait", "--emulator")

    assert result.exit_code == 130, result.output
    assert "Traceback" not in result.output
    (made,) = backups_on(emulators[0], A)
    out = result.stderr[result.stderr.index("interrupted") :]
    assert out.splitlines() == [
        "interrupted: the job was cancelled",
        "created before the interruption:",
        f"  instance {A} backup {made} n (created)",
        "a create sent just before the interruption may yet appear: see backups list",
        "to resume, run:",
        f"  zomro-async backups wait --emulator {A} {made}",
    ]

    result = invoke("backups", "create", str(A), "--name", "n", "--wait", "--emulator", "--json")
    assert result.exit_code == 130
    doc = document(result)
    assert doc["error"]["type"] == "KeyboardInterrupt"
    (row,) = doc["results"]
    assert (row["instance_id"], row["status"]) == (A, "created")
    assert row["backup_id"] == next(iter(backups_on(emulators[1], A)))
    assert doc["resume"] == [f"zomro-async backups wait --emulator {A} {row['backup_id']}"]


# -- schedule --------------------------------------------------------------------


def test_schedule_list(scheduled: list[int]) -> None:
    result = invoke("backups", "schedule", "list", str(A), "--emulator")

    assert result.exit_code == 0, result.output
    nightly, weekend = scheduled
    rows = table_rows(result.stdout, A)
    assert rows[nightly][2:5] == ["nightly", "daily", "02:30"]
    assert rows[weekend][2:5] == ["weekend", "sat,sun", "23:05"]
    assert "GMT+3" in result.stdout

    doc = loose_document(invoke("backups", "schedule", "list", str(A), "--emulator", "--json"))
    assert doc["command"] == "backups schedule list"
    first, second = doc["results"]
    assert set(first) == {
        "instance_id",
        "schedule_id",
        "name",
        "days",
        "at",
        "created_date",
        "ok",
        "error",
    }
    assert (first["schedule_id"], first["days"], first["at"]) == (
        nightly,
        ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        "02:30",
    )
    assert (second["days"], second["at"]) == (["sat", "sun"], "23:05")


def test_schedule_list_of_none_and_of_an_unknown_instance() -> None:
    result = invoke("backups", "schedule", "list", str(B), "--emulator")
    assert result.exit_code == 0, result.output
    assert "(no schedules)" in result.stdout

    result = invoke("backups", "schedule", "list", "999", "--emulator")
    assert result.exit_code == 1
    assert "error: instance 999: NotFoundError" in result.stderr


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        ("mon,wed,fri", "Monday Wednesday Friday"),
        ("Monday, FRIDAY,sun", "Monday Friday Sunday"),
        ("daily", "Monday Tuesday Wednesday Thursday Friday Saturday Sunday"),
        ("SAT", "Saturday"),
    ],
)
def test_schedule_add(days: str, expected: str, emulators: list[ZomroEmulator]) -> None:
    result = add_schedule("--name", "nightly", "--days", days, "--at", "2:30", "--json")

    assert result.exit_code == 0, result.output
    (row,) = loose_document(result)["results"]
    (added,) = emulators[0].schedules_of(A)
    assert row["schedule_id"] == int(added["id"])
    assert (row["name"], row["at"]) == ("nightly", "02:30")
    assert added["rotation_time"] == "02:30"  # the panel's clock, as given
    assert added["rotation_days"] == expected
    assert row["days"] == [day[:3].lower() for day in expected.split()]


def test_schedule_add_text(emulators: list[ZomroEmulator]) -> None:
    result = add_schedule("--name", "n", "--days", "tue,thu", "--at", "04:00")

    assert result.exit_code == 0, result.output
    ((added_id, row),) = table_rows(result.stdout, A).items()
    assert row[2:5] == ["n", "tue,thu", "04:00"]
    assert added_id == int(emulators[0].schedules_of(A)[0]["id"])
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--days", "mon,funday", "--at", "02:30"], "'funday' is not a day"),
        (["--days", "mon,,tue", "--at", "02:30"], "an empty day"),
        (["--days", "", "--at", "02:30"], "an empty day"),
        (["--days", "weekdays", "--at", "02:30"], "is not a day"),
        (["--days", "mon", "--at", "24:00"], "is not a time of day"),
        (["--days", "mon", "--at", "02:60"], "is not a time of day"),
        (["--days", "mon", "--at", "2pm"], "is not a time of day"),
        (["--days", "mon", "--at", "02:30:00"], "is not a time of day"),
        (["--at", "02:30"], "Missing option '--days'"),
        (["--days", "mon"], "Missing option '--at'"),
    ],
)
def test_schedule_add_usage_errors(
    args: list[str], message: str, emulators: list[ZomroEmulator]
) -> None:
    result = add_schedule("--name", "n", *args)

    assert result.exit_code == 2
    assert message in result.stderr
    no_traceback(result)
    assert all(e.calls["instances.fleio_bckps.schedule.edit"] == 0 for e in emulators)


def test_schedule_add_refuses_an_empty_name(emulators: list[ZomroEmulator]) -> None:
    result = add_schedule("--name", " ", "--days", "mon", "--at", "02:30")

    assert result.exit_code == 2
    assert "must not be empty" in result.stderr
    no_traceback(result)
    assert not emulators  # refused before anything ran


def test_schedule_remove(scheduled: list[int], emulators: list[ZomroEmulator]) -> None:
    nightly, weekend = scheduled
    result = invoke("backups", "schedule", "remove", str(A), str(nightly), "77", "--emulator")

    assert result.exit_code == 1
    rows = table_rows(result.stdout, A)
    assert rows[nightly][2:] == ["nightly", "removed"]
    assert rows[77][2:] == ["-", "failed"]
    assert f"error: instance {A} schedule 77: NotFoundError" in result.stderr
    assert [int(s["id"]) for s in emulators[-1].schedules_of(A)] == [weekend]

    result = invoke("backups", "schedule", "remove", str(A), str(weekend), "--emulator", "--json")
    assert result.exit_code == 0, result.output
    (row,) = loose_document(result)["results"]
    assert (row["schedule_id"], row["name"], row["removed"]) == (weekend, "weekend", True)
    assert (row["days"], row["at"]) == (["sat", "sun"], "23:05")
    assert [int(s["id"]) for s in emulators[-1].schedules_of(A)] == [nightly]


# -- rotation --------------------------------------------------------------------


def test_rotation_tells_and_sets(emulators: list[ZomroEmulator]) -> None:
    result = invoke("backups", "rotation", str(A), "--emulator")

    assert result.exit_code == 0, result.output
    kept = emulators[0].backup_rotation(A)
    assert [
        line.split() for line in result.stdout.splitlines() if line.split()[:1] == [str(A)]
    ] == [[str(A), str(kept)]]
    assert f"keeps the newest {kept} scheduled backups of instance {A}" in result.stderr

    result = invoke("backups", "rotation", str(A), "7", "--emulator", "--json")

    assert result.exit_code == 0, result.output
    doc = loose_document(result)
    assert doc["command"] == "backups rotation"
    assert doc["results"] == [{"instance_id": A, "rotation": 7, "ok": True, "error": None}]
    assert emulators[1].backup_rotation(A) == 7


@pytest.mark.parametrize("keep", ["0", "11", "three"])
def test_rotation_out_of_range_is_a_usage_error(keep: str, emulators: list[ZomroEmulator]) -> None:
    result = invoke("backups", "rotation", str(A), keep, "--emulator")

    assert result.exit_code == 2
    assert "Invalid value for '[N]'" in result.stderr
    no_traceback(result)
    assert all(e.calls["instances.edit"] == 0 for e in emulators)


def test_rotation_of_an_unknown_instance() -> None:
    result = invoke("backups", "rotation", "999", "--emulator", "--json")

    assert result.exit_code == 1
    (row,) = loose_document(result)["results"]
    assert (row["rotation"], row["error"]["type"]) == (None, "NotFoundError")


# -- help ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [["list"], ["create"], ["delete"], ["wait"], ["schedule", "list"], ["schedule", "add"]],
)
def test_help_documents_the_json_schema_and_the_emulator(command: list[str]) -> None:
    result = invoke("backups", *command, "--help")

    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert '"version": 1' in text
    assert f"{A} {B} {C}" in text
    assert "--password" not in text


def test_schedule_add_help_names_the_panels_clock() -> None:
    text = " ".join(invoke("backups", "schedule", "add", "--help").output.split())
    assert "GMT+3" in text
    assert "daily" in text
