"""`zomro-async demo` on a virtual clock, through click's CliRunner (not a TTY)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

from zomro_async._cli import main
from zomro_async.testing._ids import fleet_ids

IDS = [str(i) for i in fleet_ids(5)]
LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d instance (\d+) snapshot (\d+) (\w+)")
RESTORE_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d instance (\d+) (\w+)(?: after ([\d.]+) s)?$"
)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["demo", "--virtual-time", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def summary_rows(output: str) -> dict[str, list[str]]:
    """The summary table's rows by instance id."""
    table = output.split("Snapshots made", 1)[1]
    rows = (line.split() for line in table.splitlines())
    return {cells[0]: cells for cells in rows if cells and cells[0] in IDS}


def fleet_rows(output: str) -> dict[str, list[str]]:
    """The fleet table's rows by instance id."""
    table = output.split("Fleet: ", 1)[1].split("Snapshots made", 1)[0]
    rows = (line.split() for line in table.splitlines())
    return {cells[0]: cells for cells in rows if cells and cells[0] in IDS and len(cells) == 5}


def test_demo_snapshots_every_instance_and_cleans_up() -> None:
    code, output = run("--instances", "5")

    assert code == 0, output
    assert "\x1b" not in output  # plain text when stdout is not a terminal
    fleet = fleet_rows(output)  # the fleet is listed first
    assert sorted(fleet) == IDS
    assert all(cells[2] == "active" for cells in fleet.values())
    assert [fleet[i][1] for i in IDS] == [f"app-{n:02d}" for n in range(1, 6)]
    rows = summary_rows(output)
    assert sorted(rows) == IDS
    for cells in rows.values():
        _instance, _snapshot, name, status, seconds = cells
        assert (status, name[:5]) == ("Active", "demo-")
        assert 3.0 <= float(seconds) <= 20.0  # seeded 3-12 s, seen by polling
    events = [m.groups() for m in map(LINE.match, output.splitlines()) if m]
    assert sorted((i, s) for i, _, s in events) == sorted(
        [(i, "saving") for i in IDS] + [(i, "active") for i in IDS]
    )
    # each instance went Saving, then Active, with the snapshot in the summary
    for instance in IDS:
        seen = [(snapshot, status) for i, snapshot, status in events if i == instance]
        assert seen == [(rows[instance][1], "saving"), (rows[instance][1], "active")]
    # the first instance is restored from its new snapshot, which is then protected
    first, snapshot = IDS[0], rows[IDS[0]][1]
    assert f"restoring instance {first} from its new snapshot {snapshot}" in output
    restore = [m.groups() for m in map(RESTORE_LINE.match, output.splitlines()) if m]
    assert [(i, state) for i, state, _ in restore] == [(first, "rebuilding"), (first, "active")]
    assert float(restore[-1][2]) > 0
    assert f"protected snapshot {snapshot} of instance {first}" in output
    assert f"deleted 4 of the 4 other snapshots the demo made; kept snapshot {snapshot}" in output
    assert re.search(
        r"emulator calls: auth 1, image\.delete 4, image\.edit \d+, instances \d+, "
        r"instances\.filter \d+, instances\.fleio\.rebuild 1, instances\.snapshots \d+, "
        r"instances\.snapshots\.edit 5, instances\.snapshots\.filter \d+$",
        output,
        re.MULTILINE,
    )
    assert f"5 of 5 instances Active; instance {first} restored (active)" in output


def test_the_generated_root_password_is_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    from zomro_async._cli import _demo

    made: list[str] = []
    real = _demo._root_password

    def remember() -> str:
        made.append(real())
        return made[-1]

    monkeypatch.setattr(_demo, "_root_password", remember)
    code, output = run("--instances", "2")

    assert code == 0, output
    (password,) = made
    assert password not in output


def test_the_seed_picks_the_failing_instance() -> None:
    def killed(output: str) -> list[str]:
        return [i for i, cells in summary_rows(output).items() if cells[3] == "Killed"]

    first = run("--instances", "5", "--fail", "2", "--seed", "7")[1]
    again = run("--instances", "5", "--fail", "2", "--seed", "7")[1]
    assert len(killed(first)) == 2
    assert killed(first) == killed(again)


def test_a_failed_instance_is_reported_and_the_rest_complete() -> None:
    code, output = run("--instances", "5", "--fail", "1")

    assert code == 1
    rows = summary_rows(output)
    statuses = sorted(cells[3] for cells in rows.values())
    assert statuses == ["Active"] * 4 + ["Killed"]
    (dead,) = [i for i, cells in rows.items() if cells[3] == "Killed"]
    assert rows[dead][4] == "-"
    assert re.search(rf"instance {dead} failed: snapshot \d+ of instance {dead} is Killed", output)
    assert "deleted 4 of the 4 other snapshots the demo made" in output
    assert "4 of 5 instances Active" in output


def test_with_every_snapshot_killed_nothing_is_restored() -> None:
    code, output = run("--instances", "2", "--fail", "2")

    assert code == 1
    assert "no snapshot became Active: nothing to restore from" in output
    assert "deleted 2 of the 2 other snapshots the demo made" in output
    assert "0 of 2 instances Active; no instance was restored" in output


def test_fail_cannot_exceed_instances() -> None:
    result = CliRunner().invoke(main, ["demo", "--virtual-time", "--instances", "2", "--fail", "3"])
    assert result.exit_code == 2
    assert "--fail" in result.output


def test_the_core_package_does_not_import_click_or_rich() -> None:
    code = (
        "import sys, zomro_async, zomro_async.testing; "
        "assert not {'click', 'rich'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)  # noqa: S603 - our own code


@pytest.mark.parametrize("args", [["--help"], ["demo", "--help"], ["emulator", "--help"]])
def test_help(args: list[str]) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0
    assert "Usage: zomro-async" in result.output
