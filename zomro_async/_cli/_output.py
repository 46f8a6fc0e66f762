"""Result tables, built once and printed three ways: rich, plain aligned lines, TSV.

A command fills a `ResultTable` with cells (strings, or rich `Text` for a
coloured status); `print_table` prints it on stdout as `--output` asks: the
rich table on a terminal; in a pipe, one plain line per row, aligned, with no
box drawing and no wrapping; with `tsv`, a line of column titles, then one
tab-separated line per row.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import click
from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

# What --output (and a profile's `output`) takes.
FORMATS = ("table", "tsv", "json")
Cell = str | Text
# What joins the lines of a multi-line cell (a rotation's snapshots to delete)
# in one-line output.
LINE_JOINER = ", "
COLUMN_GAP = "  "
# Control characters (a tab, an escape sequence in an API name) would break a
# line or the alignment: each becomes a space.
_CONTROLS = {c: " " for c in (*range(0x20), 0x7F)}


@attrs.frozen
class Column:
    """A column's `title`; a `numeric` one (ids) is right-aligned and never folded."""

    title: str
    numeric: bool = False


@attrs.frozen
class Row:
    """One row's cells; a `placeholder` stands for no items (`(no snapshots)`)."""

    cells: tuple[Cell, ...]
    placeholder: bool = False


class ResultTable:
    """A command's table of results: a title, columns, rows of cells."""

    def __init__(self, title: str, columns: Sequence[Column]) -> None:
        self.title = title
        self.columns = tuple(columns)
        self.rows: list[Row] = []

    def add_row(self, *cells: Cell, placeholder: bool = False) -> None:
        """Add a row; missing cells at its end are empty. `placeholder`: a row that
        stands for no items, shown to people and left out of TSV."""
        if len(cells) > len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        padded = (*cells, *[""] * (len(self.columns) - len(cells)))
        self.rows.append(Row(padded, placeholder))


def one_line(cell: Cell) -> str:
    """A cell's text on one line, without markup, colour or control characters."""
    text = cell.plain if isinstance(cell, Text) else cell
    return LINE_JOINER.join(text.splitlines()).translate(_CONTROLS)


def rich_table(table: ResultTable) -> Table:
    """The table for a terminal: rich, coloured, folded to its width."""
    shown = Table(
        title=table.title or None, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False
    )
    for column in table.columns:
        # Names fold rather than lose their end (the date and time) to an ellipsis.
        shown.add_column(
            column.title,
            justify="right" if column.numeric else "left",
            no_wrap=column.numeric,
            overflow="fold",
        )
    for row in table.rows:
        # A plain string is text from the API, never markup.
        shown.add_row(*(c if isinstance(c, Text) else Text(c) for c in row.cells))
    return shown


def plain_lines(table: ResultTable) -> list[str]:
    """The table for a pipe or a log: its title, a line of column titles, then
    one line per row, columns aligned with spaces, as wide as they need."""
    grid = [[c.title for c in table.columns]]
    grid += [[one_line(c) for c in row.cells] for row in table.rows]
    widths = [max(cell_len(line[n]) for line in grid) for n in range(len(table.columns))]

    def aligned(cells: list[str]) -> str:
        padded = []
        for cell, width, column in zip(cells, widths, table.columns, strict=True):
            pad = " " * (width - cell_len(cell))
            padded.append(pad + cell if column.numeric else cell + pad)
        return COLUMN_GAP.join(padded).rstrip()

    lines = [table.title] if table.title else []
    return lines + [aligned(cells) for cells in grid]


def tsv_lines(table: ResultTable, *, headers: bool = True) -> list[str]:
    """The table as TSV: a line of column titles (unless not `headers`), then one
    line per row (not the placeholders), no title; a cell's tabs and line breaks
    become spaces and `, `."""
    lines = ["\t".join(one_line(c.title) for c in table.columns)] if headers else []
    for row in table.rows:
        if not row.placeholder:
            lines.append("\t".join(one_line(c) for c in row.cells))
    return lines


def print_table(table: ResultTable, output: str, console: Console, *, headers: bool = True) -> None:
    """Print `table` on stdout as `output` (`table` or `tsv`, with its titles'
    line unless not `headers`) asks; `console` is stdout's, and tells whether it
    is a terminal."""
    if output == "table" and console.is_terminal:
        console.print(rich_table(table))
        return
    for line in tsv_lines(table, headers=headers) if output == "tsv" else plain_lines(table):
        click.echo(line)
