"""Progress of bulk work, on stderr: live bars on a terminal, timestamped lines
elsewhere; and the record of what a job touched, which Ctrl-C (or SIGTERM, a
timeout, an outage) reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import shlex
import sys
from collections.abc import Iterable, Sequence
from typing import TypeVar

import attrs
import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

import zomro_async as z

Kind = z.ProgressKind
T = TypeVar("T")


def make_console(*, err: bool = False) -> Console:
    """A console on stdout (or stderr); wide when not a terminal, so logs do not wrap.

    A terminal is a stream that is one: rich's FORCE_COLOR or TTY_COMPATIBLE
    (which CI systems set) would otherwise put box drawing, colour codes and
    live bars into a pipe or a log file.
    """
    stream = sys.stderr if err else sys.stdout
    terminal = stream.isatty()
    wide = not terminal and "COLUMNS" not in os.environ
    return Console(
        file=stream, highlight=False, width=160 if wide else None, force_terminal=terminal
    )


def left_unfinished(error: BaseException | None) -> bool:
    """Whether `error` stopped an item short rather than failed it: a wait that ran
    out of time (`WaitTimeout`) or an API out of reach (`TransportError`). What
    it awaited may still get there; `<group> wait` resumes it."""
    return isinstance(error, (z.WaitTimeout, z.TransportError))


def stamp(at: datetime.datetime) -> str:
    return at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Key = tuple[int, int | None]


@attrs.frozen
class Items:
    """What a command's items are called: `first` and `second` name the two ids of
    a progress key (`instance 5203773 backup 5204230 saving`); `group` is the
    command group whose `wait` resumes them after Ctrl-C."""

    first: str = "instance"
    second: str = "snapshot"
    group: str = "snapshots"

    @property
    def id_key(self) -> str:
        """The JSON key of the second id: `snapshot_id`, `backup_id`."""
        return f"{self.second}_id"

    def describe(self, key: Key, state: str) -> str:
        """`instance 5203773 snapshot 5204214 active`, `instance 5203773 running`."""
        first, second = key
        about = "" if second is None else f" {self.second} {second}"
        return f"{self.first} {first}{about} {state}"


SNAPSHOTS = Items()
BACKUPS = Items(second="backup", group="backups")
IMAGES = Items(first="image", second="copy", group="images")


class Tracker:
    """Every snapshot (backup, copy: as `items` names them) a job touched, as
    `on_progress` saw it: what Ctrl-C reports, and what is left to await after
    a timeout or an outage (`resume`).

    A command that tracks its items itself (no bulk job) keeps `notes` up to
    date, what to tell if it is interrupted now, and `awaited`, the ids still
    awaited that `zomro-async <group> wait` takes, by key. A command that a
    rerun finishes (rotate: a rerun adopts the period's snapshots and applies
    the retention) sets `rerun`, its own words after `zomro-async`.
    """

    def __init__(self, *, creates: bool = False, items: Items = SNAPSHOTS) -> None:
        self.creates = creates
        self.items = items
        self.notes: dict[Key, str] = {}
        self.awaited: dict[Key, int] = {}
        self.made: dict[tuple[int, int], z.InstanceImage] = {}  # from CREATED events
        self.last: dict[tuple[int, int], z.ProgressEvent] = {}  # each snapshot's latest event
        self.goals: dict[tuple[int, int], Kind] = {}  # still awaited: ACTIVE or DELETED
        # Instances still awaited, with the `instances wait` flags that await them.
        self.instance_goals: dict[int, tuple[str, ...]] = {}
        # Instances whose restore was sent and not yet seen accepted.
        self.restoring: set[int] = set()
        self.rerun: Sequence[str] | None = None

    def expect_instance(self, instance_id: int, flags: Sequence[str] = ()) -> None:
        """`instance_id` is awaited (`flags`: `instances wait` ones, e.g. `--status stopped`)."""
        self.instance_goals[instance_id] = tuple(flags)

    def instance_done(self, instance_id: int, error: BaseException | None = None) -> None:
        """`instance_id` is no longer awaited: it got there, or failed with `error`
        (one that only stopped the wait short leaves it awaited, to resume)."""
        if not left_unfinished(error):
            self.instance_goals.pop(instance_id, None)

    def stop_awaiting(self, key: Key, error: BaseException | None = None) -> None:
        """The id `awaited` under `key` got there, or failed with `error` (as
        `instance_done`, one that stopped the wait short leaves it awaited)."""
        if not left_unfinished(error):
            self.awaited.pop(key, None)

    def expect(self, instance_id: int, snapshot_id: int, goal: Kind) -> None:
        self.goals[instance_id, snapshot_id] = goal

    def record(self, event: z.ProgressEvent) -> None:
        if event.snapshot is None:
            return
        key = (event.instance_id, event.snapshot.id)
        self.last[key] = event
        if event.kind is Kind.CREATED:
            self.made[key] = event.snapshot
            self.goals[key] = Kind.ACTIVE
        elif event.kind is Kind.SAVING:
            # One this run did not create (a rotation's rerun adopts the period's) is
            # awaited all the same: a stop before it is Active leaves its wait to resume.
            self.goals.setdefault(key, Kind.ACTIVE)
        elif event.kind is Kind.DELETING:
            self.goals[key] = Kind.DELETED
        elif event.kind in {Kind.ACTIVE, Kind.DELETED}:
            self.goals.pop(key, None)
        elif event.kind is Kind.FAILED and not left_unfinished(event.error):
            self.goals.pop(key, None)  # a wait stopped short stays to resume

    def resume(self, flags: Sequence[str]) -> list[str]:
        """The `snapshots wait` (`backups wait`, `images wait`) and `instances wait`
        commands (with `flags`) that finish what is still awaited, then the
        `rerun` that finishes the rest."""
        commands = []
        for goal, flag in ((Kind.ACTIVE, []), (Kind.DELETED, ["--deleted"])):
            by_instance: dict[int, list[str]] = {}
            for (instance_id, snapshot_id), wanted in self.goals.items():
                if wanted is goal:
                    by_instance.setdefault(instance_id, []).append(str(snapshot_id))
            for instance_id, ids in by_instance.items():
                words = ["zomro-async", self.items.group, "wait", *flag, *flags]
                commands.append(shlex.join([*words, str(instance_id), *ids]))
        by_flags: dict[tuple[str, ...], list[str]] = {}
        for instance_id, wait_flags in self.instance_goals.items():
            by_flags.setdefault(wait_flags, []).append(str(instance_id))
        for wait_flags, instance_ids in by_flags.items():
            words = ["zomro-async", "instances", "wait", *wait_flags, *flags]
            commands.append(shlex.join([*words, *instance_ids]))
        if self.awaited:
            ids = [str(i) for i in self.awaited.values()]
            commands.append(shlex.join(["zomro-async", self.items.group, "wait", *flags, *ids]))
        if self.rerun is not None:
            command, *arguments = self.rerun
            commands.append(shlex.join(["zomro-async", command, *flags, *arguments]))
        return commands


class ProgressView:
    """A job's progress, on stderr (whatever the output format, so that stdout holds
    results alone): live bars when stderr is a terminal; else one timestamped line
    per change (`2026-11-28T18:00:00Z instance 5203773 snapshot 5204214 active`),
    no control codes, never wrapped.

    `keys` are the items: `(instance_id, None)` when an instance is one item,
    `(instance_id, snapshot_id)` otherwise, named as `items` says (`image
    5204227 copy 5204230 active`). An item is done at a `finish` kind or
    FAILED, or at `close()`.
    """

    def __init__(
        self,
        keys: Sequence[Key],
        *,
        finish: Iterable[Kind],
        title: str,
        items: Items = SNAPSHOTS,
    ) -> None:
        self._items = items
        self._finish = frozenset(finish) | {Kind.FAILED}
        self._keys = frozenset(keys)
        self._printed: dict[Key, tuple[int | None, str]] = {}
        self._done: set[Key] = set()
        self._tasks: dict[Key, TaskID] = {}
        console = make_console(err=True)
        self._bars: Progress | None = None
        if console.is_terminal:
            self._bars = Progress(
                SpinnerColumn(finished_text="[green]✓"),
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed:.0f}/{task.total:.0f}"),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            )
            self._overall = self._bars.add_task(title, total=len(keys))
            for key in keys:
                self._tasks[key] = self._bars.add_task(items.describe(key, "waiting"), total=1)

    def __enter__(self) -> ProgressView:
        if self._bars is not None:
            self._bars.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._bars is not None:
            self._bars.stop()

    def show(self, event: z.ProgressEvent) -> None:
        key: Key = (event.instance_id, None)
        if key not in self._keys:
            key = (event.instance_id, event.snapshot_id)
        self.state(
            key,
            event.kind.value,
            at=event.at,
            error=event.error,
            label=(event.instance_id, event.snapshot_id),
            done=event.kind in self._finish,
        )

    def state(
        self,
        key: Key,
        state: str,
        *,
        at: datetime.datetime,
        error: BaseException | None = None,
        label: Key | None = None,
        done: bool = False,
    ) -> None:
        """Show item `key` in `state` (a snapshot's progress kind, an instance's status),
        labelled as `label` (default `key`); `done` completes the item.
        """
        label = key if label is None else label
        if self._bars is None:
            self._line(key, label, state, at, error)
        elif key in self._tasks:
            self._bars.update(self._tasks[key], description=self._items.describe(label, state))
        if done:
            self._complete(key)

    def close(self) -> None:
        for key in list(self._tasks):
            self._complete(key)

    def _line(
        self,
        key: Key,
        label: Key,
        state: str,
        at: datetime.datetime,
        error: BaseException | None,
    ) -> None:
        if self._printed.get(key) == (label[1], state):
            return  # one line per change, not one per poll
        self._printed[key] = (label[1], state)
        line = f"{stamp(at)} {self._items.describe(label, state)}"
        if error is not None:
            line += f": {type(error).__name__}: {error}"
        click.echo(line, err=True)

    def _complete(self, key: Key) -> None:
        if key in self._done:
            return
        self._done.add(key)
        if self._bars is not None and key in self._tasks:
            self._bars.update(self._tasks[key], completed=1)
            self._bars.advance(self._overall)


async def follow(job: z.BulkJob[T], view: ProgressView) -> list[T]:
    """Run `job`, showing its events as they come; its results in input order.

    Cancelled (Ctrl-C, SIGTERM) or broken, it cancels the job and lets every item wind
    down before the client and the emulator close under them.
    """
    with view:
        try:
            async for event in job:
                view.show(event)
        except BaseException:
            job.cancel()
            # A second Ctrl-C may have ended the job with KeyboardInterrupt: it is
            # being handled already.
            with contextlib.suppress(asyncio.CancelledError, KeyboardInterrupt):
                await job
            raise
        results = await job
        view.close()
    return results
