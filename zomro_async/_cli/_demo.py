"""`zomro-async demo`: the fleet, snapshotted, one instance restored, run against an
in-process emulator."""

from __future__ import annotations

import asyncio
import random
import secrets
import string
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
from zomro_async.testing._ids import FIRST_INSTANCE_ID, MAX_FLEET, fleet_ids

POLL = z.PollPolicy(initial=1.0, multiplier=1.5, maximum=5.0)
WAIT_TIMEOUT = 300.0
# A rebuild's timings on the emulator: it still reads its old status for
# REBUILD_LAG seconds, then `rebuilding` for REBUILD_TIME (short, on the real clock).
REBUILD_LAG = 0.5
REBUILD_TIME = 3.0
_PASSWORD_ALPHABET = string.ascii_letters + string.digits + "-_.+="


@attrs.define
class _Row:
    instance_id: int
    snapshot: z.InstanceImage | None = None  # as create returned it: what the demo deletes
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
        snapshot: z.InstanceImage | None = None,
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
        click.echo(line, err=True)  # progress; errors are told after the summary

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


async def _delete(client: z.ZomroClient, made: list[z.InstanceImage]) -> int:
    """Delete the demo's snapshots, awaiting each; how many are gone."""
    results = await client.snapshots.delete_many(made, timeout=WAIT_TIMEOUT)
    for result in results:
        if not result.ok:
            click.echo(
                f"could not delete snapshot {result.snapshot_id} "
                f"of {result.instance_id}: {result.error}",
                err=True,
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


def _fleet(fleet: list[z.Instance]) -> Table:
    table = Table(title=f"Fleet: {len(fleet)} instances", box=box.SIMPLE_HEAD, title_justify="left")
    for column in ("Instance", "Name", "Status", "Region", "IP"):
        table.add_column(column, justify="right" if column == "Instance" else "left")
    for i in fleet:
        table.add_row(str(i.id), i.name, i.status.value, i.region or "-", i.ip or "-")
    return table


def _root_password() -> str:
    """A fresh root password the panel's rules accept; it goes to the SDK, never to output."""
    while True:
        password = "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(20))
        if all(any(test(c) for c in password) for test in (str.isupper, str.islower, str.isdigit)):
            return password


async def _restore(client: z.ZomroClient, snapshot: z.InstanceImage) -> z.Instance | None:
    """Restore the snapshot's instance from it, awaited, with progress lines."""
    instance_id, snapshot_id = snapshot.instance_id, snapshot.id
    click.echo(
        f"restoring instance {instance_id} from its new snapshot {snapshot_id} "
        "(a generated root password goes to the SDK, never to the screen)",
        err=True,
    )
    began = client.clock.monotonic()
    seen: set[str] = set()

    def show(instance: z.Instance) -> None:
        if instance.status.in_progress and instance.status.value not in seen:
            seen.add(instance.status.value)
            line = f"{_stamp(client.clock)} instance {instance_id} {instance.status.value}"
            click.echo(line, err=True)

    try:
        await client.instances.restore(instance_id, snapshot_id, password=_root_password())
        done = await client.instances.wait_settled(
            instance_id, timeout=WAIT_TIMEOUT, on_update=show
        )
    except z.ZomroError as exc:
        click.echo(f"the restore of instance {instance_id} failed: {exc}", err=True)
        return None
    seconds = client.clock.monotonic() - began
    click.echo(
        f"{_stamp(client.clock)} instance {instance_id} {done.status.value} after {seconds:.1f} s",
        err=True,
    )
    return done


def _stamp(clock: Clock) -> str:
    return datetime.fromtimestamp(clock.time()).isoformat(timespec="seconds")


async def _protect(client: z.ZomroClient, snapshot: z.InstanceImage) -> bool:
    try:
        await client.snapshots.protect(snapshot.instance_id, snapshot.id)
    except z.ZomroError as exc:
        click.echo(f"could not protect snapshot {snapshot.id}: {exc}", err=True)
        return False
    click.echo(
        f"protected snapshot {snapshot.id} of instance {snapshot.instance_id}: "
        "deletes and rotations leave it alone"
    )
    return True


async def run_demo(
    *, instances: int, fail: int, seed: int, virtual_time: bool, console: Console
) -> int:
    """Seed an emulator, list the fleet, snapshot it, restore one instance from its
    new snapshot and protect that snapshot, report, clean up; the exit status."""
    rng = random.Random(seed)
    ids = list(fleet_ids(instances))
    doomed = set(rng.sample(ids, fail))
    clock = VirtualClock() if virtual_time else None
    async with ZomroEmulator(
        clock=clock, seed=seed, rebuild_lag=REBUILD_LAG, rebuild_time=REBUILD_TIME
    ) as emu:
        for n, instance_id in enumerate(ids, 1):
            delay = round(rng.uniform(3.0, 12.0), 1)
            emu.add_instance(
                instance_id,
                1,
                time_to_active=delay,
                kill=instance_id in doomed,
                name=f"app-{n:02d}",
            )
        clock_kind = "a virtual clock" if virtual_time else "the real clock"
        click.echo(
            f"emulator at {emu.url} on {clock_kind}: instances {ids[0]}..{ids[-1]}", err=True
        )
        async with emu.client(poll=POLL) as client:
            began = client.clock.monotonic()
            fleet = await client.instances.list()
            console.print(_fleet(fleet))
            started = client.clock.time()
            stamp = datetime.fromtimestamp(started).strftime("%Y%m%d-%H%M%S")
            job = client.snapshots.create_many(fleet, f"demo-{stamp}", timeout=WAIT_TIMEOUT)
            # The live board is progress: on stderr, live when that is a terminal.
            progress = Console(stderr=True, force_terminal=sys.stderr.isatty())
            board = _Board([i.id for i in fleet], client.clock, progress)
            with board:
                async for event in job:
                    _show(board, event, started)
                await job
            rows = list(board.rows.values())
            console.print(_summary(rows))
            for row in rows:
                if row.error:
                    click.echo(f"instance {row.instance_id} failed: {row.error}", err=True)
            # The first instance whose new snapshot is Active is restored from it.
            active_ones = [r.snapshot for r in rows if r.status == "Active"]
            chosen = next((s for s in active_ones if s is not None), None)
            restored = kept = None
            if chosen is None:
                click.echo("no snapshot became Active: nothing to restore from", err=True)
            elif (restored := await _restore(client, chosen)) is not None:
                kept = chosen if await _protect(client, chosen) else None
            made = [row.snapshot for row in rows if row.snapshot is not None]
            others = [s for s in made if s is not kept]
            deleted = await _delete(client, others)
            tail = f"; kept snapshot {kept.id}, protected" if kept is not None else ""
            click.echo(
                f"deleted {deleted} of the {len(others)} other snapshots the demo made{tail}"
            )
            elapsed = client.clock.monotonic() - began
        calls = ", ".join(f"{func} {n}" for func, n in sorted(emu.calls.items()))
        click.echo(f"emulator calls: {calls}")
    active = sum(row.status == "Active" for row in rows)
    story = "no instance was restored"
    if restored is not None:
        story = f"instance {restored.id} restored ({restored.status.value})"
    click.echo(f"{active} of {instances} instances Active; {story}; finished in {elapsed:.1f} s")
    ok = restored is not None and restored.status is z.InstanceStatus.ACTIVE and kept is not None
    return 0 if active == instances and ok and deleted == len(others) else 1


@click.command()
@click.option(
    "--instances",
    type=click.IntRange(1, MAX_FLEET),
    default=20,
    show_default=True,
    help=f"How many instances, ids from {FIRST_INSTANCE_ID} up.",
)
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
    """The SDK's story on N emulated instances, live; no account needed: list the
    fleet, snapshot every instance at once, restore one from its new snapshot,
    protect that snapshot, and delete the others."""
    if fail > instances:
        raise click.BadParameter(f"at most --instances ({instances})", param_hint="--fail")
    console = Console(force_terminal=sys.stdout.isatty())
    code = asyncio.run(
        run_demo(
            instances=instances, fail=fail, seed=seed, virtual_time=virtual_time, console=console
        )
    )
    sys.exit(code)
