"""`zomro-async demo`: a bulk snapshot job run against an in-process emulator."""

from __future__ import annotations

import asyncio
import random
import sys
from datetime import datetime

import attrs
import click
from rich import box
from rich.console import Console, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table

import zomro_async as z
from zomro_async._clock import Clock
from zomro_async.testing import VirtualClock, ZomroEmulator

FIRST_INSTANCE = 5_203_701
POLL = z.PollPolicy(initial=1.0, multiplier=1.5, maximum=5.0)
WAIT_TIMEOUT = 300.0


@attrs.define
class _Row:
    instance_id: int
    snapshot: z.Snapshot | None = None  # as create returned it: what the demo deletes
    status: str = "Pending"
    seconds: float | None = None
    error: str = ""


class _Board:
    """Each instance's progress: a live table on a terminal, timestamped lines elsewhere."""

    def __init__(self, instance_ids: list[int], clock: Clock, console: Console) -> None:
        self.rows = {i: _Row(i) for i in instance_ids}
        self._clock = clock
        self._console = console
        self._live: Live | None = None

    def __enter__(self) -> _Board:
        if self._console.is_terminal:
            self._live = Live(self._table(), console=self._console, transient=True)
            self._live.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._live is not None:
            self._live.stop()

    def record(
        self,
        instance_id: int,
        status: str,
        *,
        snapshot: z.Snapshot | None = None,
        seconds: float | None = None,
        error: str = "",
    ) -> None:
        row = self.rows[instance_id]
        row.status, row.seconds, row.error = status, seconds, error
        row.snapshot = row.snapshot or snapshot
        if self._live is not None:
            self._live.update(self._table())
            return
        stamp = datetime.fromtimestamp(self._clock.time()).isoformat(timespec="seconds")
        line = f"{stamp} instance {instance_id}"
        if row.snapshot is not None:
            line += f" snapshot {row.snapshot.id}"
        line += f" {status.lower()}"
        if seconds is not None:
            line += f" after {seconds:.1f} s"
        click.echo(line)  # errors are told after the summary

    def _table(self) -> Table:
        done = sum(r.status == "Active" for r in self.rows.values())
        table = Table(title=f"{done}/{len(self.rows)} Active", box=box.SIMPLE_HEAD)
        for column in ("Instance", "Snapshot", "Status", "Seconds"):
            table.add_column(column, justify="left" if column == "Status" else "right")
        for row in self.rows.values():
            status: RenderableType = row.status
            if row.status in {"Pending", "Saving"}:
                status = Spinner("dots", text=row.status, style="yellow")
            elif row.status != "Active":
                status = f"[red]{row.status}[/red]"
            table.add_row(str(row.instance_id), _snapshot_id(row), status, _seconds(row))
        return table


def _snapshot_id(row: _Row) -> str:
    return "-" if row.snapshot is None else str(row.snapshot.id)


def _seconds(row: _Row) -> str:
    return "-" if row.seconds is None else f"{row.seconds:.1f}"


def _show(board: _Board, event: z.ProgressEvent, began: float) -> None:
    """One event of the create job on the board: Saving once created, then the end."""
    if event.kind is z.ProgressKind.CREATED and event.snapshot is not None:
        board.record(
            event.instance_id, event.snapshot.status_text or "Saving", snapshot=event.snapshot
        )
    elif event.kind is z.ProgressKind.ACTIVE and event.snapshot is not None:
        seconds = event.at.timestamp() - began
        board.record(event.instance_id, event.snapshot.status_text or "Active", seconds=seconds)
    elif event.kind is z.ProgressKind.FAILED:
        error = event.error
        seen = error.snapshot.status_text if isinstance(error, z.SnapshotFailed) else ""
        board.record(event.instance_id, seen or "Failed", snapshot=event.snapshot, error=str(error))


async def _delete(client: z.ZomroClient, made: list[z.Snapshot]) -> int:
    """Delete the demo's snapshots, awaiting each; how many are gone."""
    results = await client.snapshots.delete_many(made, timeout=WAIT_TIMEOUT)
    for result in results:
        if not result.ok:
            click.echo(
                f"could not delete snapshot {result.snapshot_id} "
                f"of {result.instance_id}: {result.error}"
            )
    return sum(result.ok for result in results)


def _summary(rows: list[_Row]) -> Table:
    table = Table(title="Snapshots made", box=box.SIMPLE_HEAD, title_justify="left")
    for column in ("Instance", "Snapshot", "Name", "Status", "Seconds to Active"):
        table.add_column(column, justify="left" if column in {"Name", "Status"} else "right")
    for row in rows:
        name = "-" if row.snapshot is None else row.snapshot.name
        table.add_row(str(row.instance_id), _snapshot_id(row), name, row.status, _seconds(row))
    return table


async def run_demo(
    *, instances: int, fail: int, seed: int, virtual_time: bool, console: Console
) -> int:
    """Seed an emulator, snapshot every instance, report, clean up; the exit status."""
    rng = random.Random(seed)
    ids = [FIRST_INSTANCE + n for n in range(instances)]
    doomed = set(rng.sample(ids, fail))
    async with ZomroEmulator(clock=VirtualClock() if virtual_time else None, seed=seed) as emu:
        for instance_id in ids:
            delay = round(rng.uniform(3.0, 12.0), 1)
            emu.add_instance(instance_id, 1, time_to_active=delay, kill=instance_id in doomed)
        clock_kind = "a virtual clock" if virtual_time else "the real clock"
        click.echo(f"emulator at {emu.url} on {clock_kind}: instances {ids[0]}..{ids[-1]}")
        async with emu.client(poll=POLL) as client:
            began = client.clock.monotonic()
            started = client.clock.time()
            stamp = datetime.fromtimestamp(started).strftime("%Y%m%d-%H%M%S")
            job = client.snapshots.create_many(ids, f"demo-{stamp}", timeout=WAIT_TIMEOUT)
            board = _Board(ids, client.clock, console)
            with board:
                async for event in job:
                    _show(board, event, started)
                await job
            rows = list(board.rows.values())
            console.print(_summary(rows))
            for row in rows:
                if row.error:
                    click.echo(f"instance {row.instance_id} failed: {row.error}")
            made = [row.snapshot for row in rows if row.snapshot is not None]
            deleted = await _delete(client, made)
            click.echo(f"deleted {deleted} of the {len(made)} snapshots the demo made")
            elapsed = client.clock.monotonic() - began
        calls = ", ".join(f"{func} {n}" for func, n in sorted(emu.calls.items()))
        click.echo(f"emulator calls: {calls}")
    active = sum(row.status == "Active" for row in rows)
    click.echo(f"{active} of {instances} instances Active; finished in {elapsed:.1f} s")
    return 0 if active == instances and deleted == len(made) else 1


@click.command()
@click.option("--instances", type=click.IntRange(1, 500), default=20, show_default=True)
@click.option(
    "--fail",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="How many instances end their snapshot Killed.",
)
@click.option("--virtual-time", is_flag=True, help="Run on a virtual clock: done at once.")
@click.option("--seed", type=int, default=0, show_default=True)
def demo(instances: int, fail: int, virtual_time: bool, seed: int) -> None:
    """Snapshot N emulated instances at once with the SDK, live; no account needed."""
    if fail > instances:
        raise click.BadParameter(f"at most --instances ({instances})", param_hint="--fail")
    console = Console(force_terminal=sys.stdout.isatty())
    code = asyncio.run(
        run_demo(
            instances=instances, fail=fail, seed=seed, virtual_time=virtual_time, console=console
        )
    )
    sys.exit(code)
