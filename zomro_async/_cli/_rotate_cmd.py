"""`zomro-async rotate`: the nightly snapshot with retention, over `client.snapshots.rotate`."""

from __future__ import annotations

from collections.abc import Callable

import click
from rich.text import Text

import zomro_async as z

from ._common import (
    ALL_OPTION,
    INSTANCE_ID,
    JSON_HELP,
    Outcome,
    Row,
    Run,
    Settings,
    check_targets,
    common_options,
    new_table,
    result_row,
    run_command,
    snapshot_fields,
    status_text,
    timeout_option,
)
from ._sandbox import SANDBOX_HELP

ROTATE_JSON_HELP = """\b
rotate's document also has "dry_run" at the top level, and in each result
"dry_run", "resumed" (this period's snapshot was there already, and adopted),
"created" (this period's snapshot: in a dry run, unless it would be adopted,
its planned name with a null id), "kept" (what the retention keeps, each with
its "rules") and "deleted" (the snapshots deleted, or to delete), lists of
{"snapshot_id", "name", "status", "created_date"}."""

RETENTION_HELP = """\b
Retention, as restic's forget --keep-*: newest first, each --keep-RULE N keeps
the most recent snapshot of each of the last N hours, days, ISO weeks, months
or years that have one (--keep-last N: the N most recent); a snapshot any rule
keeps is kept. Times come from the names (UTC). One snapshot is made per
period of the finest rule given (--keep-last alone: a day): a rerun in the
period adopts the one there, awaiting it if it is still Saving. --keep-hourly
is at most 5, the provider's limit of manual snapshots a day."""

DEFAULT_PREFIX = "auto-"
DELETED = z.ImageStatus.DELETED.value  # what a rotation's deleted snapshots are, once awaited
DEFAULT_TIMEOUT = 3600.0
# The CLI's flag of each rule of `z.Retention`, in its order.
RULE_FLAGS = {
    "last": "--keep-last",
    "hourly": "--keep-hourly",
    "daily": "--keep-daily",
    "weekly": "--keep-weekly",
    "monthly": "--keep-monthly",
    "yearly": "--keep-yearly",
}
_PERIODS = {
    "last": "snapshots",
    "hourly": "hours",
    "daily": "days",
    "weekly": "ISO weeks",
    "monthly": "months",
    "yearly": "years",
}


def _keep_options(func: Callable[..., None]) -> Callable[..., None]:
    for rule in reversed(RULE_FLAGS):
        what = _PERIODS[rule]
        func = click.option(
            RULE_FLAGS[rule],
            f"keep_{rule}",
            type=click.IntRange(min=0),
            metavar="N",
            help=(
                "Keep the N most recent PREFIX snapshots."
                if rule == "last"
                else f"Keep the most recent snapshot of each of the last N {what} that have one."
            ),
        )(func)
    return func


@click.command(epilog=f"{RETENTION_HELP}\n\n{JSON_HELP}\n\n{ROTATE_JSON_HELP}\n\n{SANDBOX_HELP}")
@click.argument("instances", metavar="[INSTANCE]...", nargs=-1, type=INSTANCE_ID)
@ALL_OPTION
@_keep_options
@click.option(
    "--keep",
    type=click.IntRange(min=1),
    metavar="N",
    help="The same as --keep-last N.",
)
@click.option(
    "--prefix", default=DEFAULT_PREFIX, show_default=True, help="The rotated snapshots' names."
)
@click.option(
    "--dry-run", is_flag=True, help="Print what would be kept, by which rule, and removed."
)
@timeout_option(DEFAULT_TIMEOUT)
@common_options
def rotate(
    settings: Settings,
    instances: tuple[int, ...],
    all_instances: bool,
    keep: int | None,
    prefix: str,
    dry_run: bool,
    timeout: float,
    **counts: int | None,
) -> None:
    """The scheduled snapshot job with retention, per instance (the INSTANCE ids,
    or --all of the account's): make this period's PREFIX<date>-<time> snapshot
    (or adopt the one an earlier run of the period made), await Active, and only
    then delete the PREFIX snapshots the --keep-* rules do not keep.

    Failed PREFIX snapshots (killed, error) count for no rule and are deleted,
    also when the new snapshot failed; good ones only once it is Active.
    Snapshots without the prefix, or protected, are never touched nor counted.
    One instance's failure does not stop the others.
    """
    check_targets(instances, all_instances)
    retention = _retention(keep, {rule: counts[f"keep_{rule}"] for rule in RULE_FLAGS})
    run_command(
        settings,
        "rotate",
        lambda run: _rotate(run, instances, all_instances, retention, prefix, dry_run, timeout),
        creates=not dry_run,
    )


def _retention(keep: int | None, counts: dict[str, int | None]) -> z.Retention:
    """The --keep-* options as a `Retention`; a usage error if they keep nothing."""
    if keep is not None:
        if counts["last"] is not None:
            raise click.UsageError("--keep is --keep-last: give one of them")
        counts["last"] = keep
    given = {rule: n for rule, n in counts.items() if n is not None}
    flags = ", ".join(RULE_FLAGS.values())
    if not given:
        raise click.UsageError(f"Missing option: give at least one of {flags} (or --keep N)")
    if not any(given.values()):
        raise click.UsageError(f"every --keep-* given is 0: set at least one of {flags} above 0")
    return z.Retention(**given)


async def _rotate(
    run: Run,
    instances: tuple[int, ...],
    all_instances: bool,
    retention: z.Retention,
    prefix: str,
    dry_run: bool,
    timeout: float,
) -> Outcome:
    if not dry_run:
        run.tracker.rerun = _rerun(instances, all_instances, retention, prefix, timeout)
    results = await run.over_instances(
        instances,
        all_instances,
        lambda targets: run.client.snapshots.rotate(
            targets,
            keep=retention,
            prefix=prefix,
            dry_run=dry_run,
            timeout=timeout,
            on_progress=run.tracker.record,
        ),
        finish=(),
        title="rotating",
    )
    title = "Rotation plan (dry run)" if dry_run else "Rotation"
    table = new_table(title, "Instance", "Snapshot", "Name", "Status", "Action", "Rules")
    for r in results:
        for cells in _plan_rows(r):
            table.add_row(str(r.instance_id), *cells)
    notes = [f"retention: {retention}"]
    if dry_run:
        notes.append("dry run: nothing was created or deleted")
    return Outcome(
        rows=[_row(r) for r in results],
        errors=[r.error for r in results],
        table=table,
        extra={"dry_run": dry_run},
        notes=notes,
    )


def _rerun(
    instances: tuple[int, ...],
    all_instances: bool,
    retention: z.Retention,
    prefix: str,
    timeout: float,
) -> list[str]:
    """This rotation as a command to run again (without the connection flags): a
    rerun in the period adopts what this run made and finishes the rest."""
    words = ["rotate", *(["--all"] if all_instances else [str(i) for i in instances])]
    for rule, count in retention.rules:
        words += [RULE_FLAGS[rule], str(count)]
    if prefix != DEFAULT_PREFIX:
        words += ["--prefix", prefix]
    if timeout != DEFAULT_TIMEOUT:
        words += ["--timeout", repr(timeout)]
    return words


Cells = tuple[str | Text, ...]


def _plan_rows(result: z.RotationResult) -> list[Cells]:
    """One instance's lines, as `restic forget` shows them: this period's snapshot,
    what is kept and by which rules, what is (or would be) removed; a cell a line."""
    rules = {s.id: rules for s, rules in result.kept}
    own = result.snapshot
    if result.dry_run:
        action = "resume" if result.resumed else "create"
        keep, remove = "keep", "remove"
    else:
        action = "resumed" if result.resumed else "created" if own is not None else "not created"
        keep, remove = "kept", "deleted"
    if own is None:
        if not result.ok and result.dry_run:
            action = "-"  # the plan could not be made
        status = status_text(None if result.ok else "failed", result.ok)
        own_rules = (
            (", ".join(result.planned_rules) or "new") if result.dry_run and result.ok else "-"
        )
        lines: list[Cells] = [("-", result.planned_name, status, action, own_rules)]
    else:
        fields = snapshot_fields(own)
        own_rules = ", ".join(rules.get(own.id, ())) or "-"
        status = status_text(fields["status"], result.ok)
        lines = [(str(own.id), result.planned_name, status, action, own_rules)]
    for snapshot, kept_by in result.kept:
        if own is None or snapshot.id != own.id:
            lines.append((*_cells(snapshot), keep, ", ".join(kept_by)))
    for snapshot in result.deleted:
        cells = _cells(snapshot)
        if not result.dry_run:  # awaited gone: no longer the state it was listed in
            cells = (cells[0], cells[1], status_text(DELETED))
        lines.append((*cells, remove, "-"))
    return lines


def _cells(snapshot: z.InstanceImage) -> Cells:
    fields = snapshot_fields(snapshot)
    return (str(snapshot.id), snapshot.name, status_text(fields["status"]))


def _row(result: z.RotationResult) -> Row:
    new = _snapshot(result.snapshot) if result.snapshot is not None else None
    if result.dry_run and result.snapshot is None and result.ok:  # no plan, nothing planned
        planned = {"snapshot_id": None, "name": result.planned_name}
        new = {**planned, "status": None, "created_date": None}
    fields = snapshot_fields(result.snapshot)
    fields["name"] = result.planned_name
    return result_row(
        result.instance_id,
        fields,
        result.error,
        dry_run=result.dry_run,
        resumed=result.resumed,
        created=[new] if new is not None else [],
        kept=[{**_snapshot(s), "rules": list(rules)} for s, rules in result.kept],
        deleted=[
            _snapshot(s) if result.dry_run else {**_snapshot(s), "status": DELETED}
            for s in result.deleted
        ],
    )


def _snapshot(snapshot: z.InstanceImage) -> Row:
    created = snapshot.created.isoformat() if snapshot.created else None
    return {**snapshot_fields(snapshot), "created_date": created}
