"""Results on stdout, everything else on stderr, in every output format; the table
as rich on a terminal, plain lines in a pipe, TSV."""

from __future__ import annotations

import json
import re
import sys

import pytest
from rich.text import Text

from zomro_async._cli import _output

from . import _process
from ._support import DOOMED, A, B, C, invoke

PROGRESS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (instance|image) \d+")
BOX_DRAWING = re.compile("[\u2500-\u257f]")
OUTPUTS = [[], ["--output", "table"], ["-o", "tsv"], ["--output", "json"], ["--json"]]
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="ptys and POSIX signals")


def progress_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if PROGRESS.match(line)]


# -- the streams, through CliRunner (neither is a terminal) -------------------------


@pytest.mark.parametrize("output", OUTPUTS)
def test_progress_and_errors_go_to_stderr_in_every_format(output: list[str]) -> None:
    result = invoke(
        "snapshots", "create", str(A), str(DOOMED), "--name", "n", "--wait", "--emulator", *output
    )

    assert result.exit_code == 1, result.output
    assert not progress_lines(result.stdout)
    assert "error:" not in result.stdout
    states = [line.rsplit(" ", 1)[-1] for line in progress_lines(result.stderr)]
    assert states.count("created") == 2
    assert f"error: instance {DOOMED} snapshot" in result.stderr
    if "json" in output or "--json" in output:
        json.loads(result.stdout)  # the document, alone


@pytest.mark.parametrize("output", OUTPUTS)
def test_notes_go_to_stderr_in_every_format(output: list[str]) -> None:
    result = invoke("backups", "create", str(A), "--name", "n", "--emulator", *output)

    assert result.exit_code == 0, result.output
    assert "awaits it" not in result.stdout
    (note,) = [line for line in result.stderr.splitlines() if "awaits it" in line]
    assert note.startswith("the backup is being made; `zomro-async backups wait --emulator ")


def test_stdout_holds_the_table_alone_and_stderr_the_rest() -> None:
    result = invoke("backups", "list", str(A), "--emulator")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "Backups",
        "Instance  Backup  Name          Type  Status  Created  Protected",
        f" {A}       -  (no backups)",
    ]
    assert result.stderr.startswith(f"instance {A}: manual backups today: 0 of 5")


# -- the formats of a table ----------------------------------------------------------


def test_a_table_in_a_pipe_is_plain_aligned_lines_one_per_row() -> None:
    result = invoke("snapshots", "list", str(A), str(B), "--emulator")

    assert result.exit_code == 0, result.output
    title, header, *rows = result.stdout.splitlines()
    assert title == "Snapshots"
    assert header.split() == ["Instance", "Snapshot", "Name", "Status", "Created", "Protected"]
    assert len(rows) == 8  # four snapshots each, a line each
    assert {len(row.split()) for row in rows} == {5}  # the unprotected: no Protected cell
    # aligned: the ids are right-aligned under their titles, the names left-aligned
    ends = {row.index("52042") + len("5204214") for row in rows}
    assert ends == {header.index("Snapshot") + len("Snapshot")}
    assert {row.index("seed-1") for row in rows if "seed-1" in row} == {header.index("Name")}
    assert not BOX_DRAWING.search(result.stdout)
    assert "\x1b" not in result.stdout


@pytest.mark.parametrize("variable", ["FORCE_COLOR", "TTY_COMPATIBLE"])
def test_rich_told_it_is_a_terminal_still_prints_plain_lines_in_a_pipe(
    variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, "1")  # as CI systems set it for every step

    result = invoke("snapshots", "create", str(A), "--name", "n", "--wait", "--emulator")

    assert result.exit_code == 0, result.output
    for stream in (result.stdout, result.stderr):
        assert not BOX_DRAWING.search(stream)
        assert "\x1b" not in stream
    assert progress_lines(result.stderr)  # one line per change, not live bars


def test_tsv_is_a_line_of_titles_then_one_line_per_row() -> None:
    result = invoke("snapshots", "list", str(A), str(B), "--emulator", "-o", "tsv")

    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header == "Instance\tSnapshot\tName\tStatus\tCreated\tProtected"
    assert len(rows) == 8
    assert all(len(row.split("\t")) == 6 for row in rows)
    first = rows[0].split("\t")
    assert (first[0], first[2], first[3]) == (str(A), "seed-1", "active")  # no colour
    assert "\x1b" not in result.stdout


def test_tsv_without_headers_is_the_rows_alone() -> None:
    with_titles = invoke("instances", "list", "--emulator", "-o", "tsv")
    rows_alone = invoke("instances", "list", "--emulator", "-o", "tsv", "--no-headers")

    assert rows_alone.exit_code == 0, rows_alone.output
    assert rows_alone.stdout.splitlines() == with_titles.stdout.splitlines()[1:]
    assert [line.split("\t")[0] for line in rows_alone.stdout.splitlines()] == [
        str(A),
        str(B),
        str(C),
        str(DOOMED),
    ]


def test_tsv_leaves_out_the_rows_that_stand_for_none() -> None:
    result = invoke("backups", "list", str(A), "--emulator", "-o", "tsv")

    assert result.exit_code == 0, result.output
    assert result.stdout == "Instance\tBackup\tName\tType\tStatus\tCreated\tProtected\n"


def test_json_and_output_tsv_exclude_each_other() -> None:
    result = invoke("instances", "list", "--emulator", "--json", "-o", "tsv")
    assert result.exit_code == 2
    assert "exclude each other" in result.stderr


def test_the_renderers_keep_a_row_on_one_line() -> None:
    table = _output.ResultTable(
        "Plan", [_output.Column("Instance", numeric=True), _output.Column("Deletes")]
    )
    table.add_row("7", "5204218 auto-1\n5204221 auto-2")
    table.add_row("12", Text("tab\there", style="red"))
    table.add_row("-", "(none)", placeholder=True)

    assert _output.plain_lines(table) == [
        "Plan",
        "Instance  Deletes",
        "       7  5204218 auto-1, 5204221 auto-2",
        "      12  tab here",
        "       -  (none)",
    ]
    assert _output.tsv_lines(table) == [
        "Instance\tDeletes",
        "7\t5204218 auto-1, 5204221 auto-2",
        "12\ttab here",
    ]


def test_an_api_name_is_never_markup_nor_a_control_sequence() -> None:
    table = _output.ResultTable("", [_output.Column("Name")])
    table.add_row("[bold]x\x1b[31m")

    assert _output.plain_lines(table)[1] == "[bold]x [31m"
    (cell,) = _output.rich_table(table).columns[0].cells
    assert isinstance(cell, Text)
    assert cell.plain.startswith("[bold]x")  # as given, not read as markup


def test_a_row_with_more_cells_than_columns_is_refused() -> None:
    table = _output.ResultTable("", [_output.Column("Name")])
    with pytest.raises(ValueError, match="2 cells for 1 columns"):
        table.add_row("a", "b")


# -- real terminals: a process with its streams on ptys --------------------------------

CREATE = ("snapshots", "create", str(A), str(B), "--name", "n", "--wait", "--emulator")


@posix_only
def test_on_terminals_the_table_is_rich_on_stdout_and_the_bars_live_on_stderr() -> None:
    done = _process.run(*CREATE, tty_out=True, tty_err=True)

    assert done.code == 0, done
    assert BOX_DRAWING.search(done.stdout)  # the rich table's rule
    assert "Snapshots created" in done.stdout
    assert "instance" not in done.stdout  # no progress there
    assert "\x1b[" in done.stderr  # the bars, drawn and cleared
    assert f"instance {A} snapshot" in done.stderr
    assert not progress_lines(done.stderr.replace("\r", "\n"))  # no plain lines


@posix_only
def test_a_piped_stdout_gets_plain_lines_while_the_terminal_keeps_the_bars() -> None:
    done = _process.run(*CREATE, tty_err=True)

    assert done.code == 0, done
    title, header, *rows = done.stdout.splitlines()
    assert (title, header.split()) == (
        "Snapshots created",
        ["Instance", "Snapshot", "Name", "Status"],
    )
    assert [row.split()[0] for row in rows] == [str(A), str(B)]
    assert not BOX_DRAWING.search(done.stdout)
    assert "\x1b" not in done.stdout
    assert "\x1b[" in done.stderr
    assert not progress_lines(done.stderr.replace("\r", "\n"))


@posix_only
def test_a_piped_stderr_gets_one_line_per_change_while_the_terminal_keeps_the_table() -> None:
    done = _process.run(*CREATE, tty_out=True)

    assert done.code == 0, done
    assert BOX_DRAWING.search(done.stdout)
    assert "\x1b" not in done.stderr
    assert not BOX_DRAWING.search(done.stderr)
    lines = done.stderr.splitlines()
    assert lines == progress_lines(done.stderr)  # progress alone, a line each
    assert (
        sorted(line.rsplit(" ", 1)[1] for line in lines)
        == ["active"] * 2 + ["created"] * 2 + ["saving"] * 2
    )


@posix_only
def test_tsv_on_a_terminal_is_tsv() -> None:
    done = _process.run("snapshots", "list", str(A), "--emulator", "-o", "tsv", tty_out=True)

    assert done.code == 0, done
    header, *rows = done.stdout.splitlines()  # a pty ends lines with \r\n
    assert header.rstrip("\r") == "Instance\tSnapshot\tName\tStatus\tCreated\tProtected"
    assert len(rows) == 4
    assert not BOX_DRAWING.search(done.stdout)
    assert "\x1b" not in done.stdout
