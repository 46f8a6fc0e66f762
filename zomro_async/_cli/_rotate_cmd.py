"""`zomro-async rotate`: the nightly snapshot with retention, over `client.snapshots.rotate`."""

from __future__ import annotations

import click

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
"dry_run", "created" (the new snapshot: in a dry run its planned name, with
a null id) and "deleted" (the old snapshots deleted, or to delete), lists of
{"snapshot_id", "name", "status", "created_date"}."""


@click.command(epilog=f"{JSON_HELP}\n\n{ROTATE_JSON_HELP}\n\n{SANDBOX_HELP}")
@click.argument("instances", metavar="[INSTANCE]...", nargs=-1, type=INSTANCE_ID)
@ALL_OPTION
@click.option(
    "--keep",
    type=click.IntRange(min=1),
    required=True,
    help="How many PREFIX snapshots remain per instance, the new one included.",
)
@click.option("--prefix", default="auto-", show_default=True, help="The rotated snapshots' names.")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@timeout_option(3600.0)
@common_options
def rotate(
    settings: Settings,
    instances: tuple[int, ...],
    all_instances: bool,
    keep: int,
    prefix: str,
    dry_run: bool,
    timeout: float,
) -> None:
    """The scheduled snapshot job, per instance (the INSTANCE ids, or --all of the
    account's): create PREFIX<date>-<time>, await Active, and only then delete
    the oldest PREFIX snapshots until KEEP remain.

    Snapshots without the prefix, or protected, are never touched. Nothing is
    deleted on an instance whose new snapshot failed; one instance's failure
    does not stop the others.
    """
    check_targets(instances, all_instances)
    run_command(
        settings,
        "rotate",
        lambda run: _rotate(run, instances, all_instances, keep, prefix, dry_run, timeout),
        creates=not dry_run,
    )


async def _rotate(
    run: Run,
    instances: tuple[int, ...],
    all_instances: bool,
    keep: int,
    prefix: str,
    dry_run: bool,
    timeout: float,
) -> Outcome:
    results = await run.over_instances(
        instances,
        all_instances,
        lambda targets: run.client.snapshots.rotate(
            targets,
            keep=keep,
            prefix=prefix,
            dry_run=dry_run,
            timeout=timeout,
            on_progress=run.tracker.record,
        ),
        finish=(),
        title="rotating",
    )
    if dry_run:
        table = new_table("Rotation plan (dry run)", "Instance", "Would create", "Would delete")
        for r in results:
            table.add_row(str(r.instance_id), r.planned_name, _names(r.deleted) or "-")
    else:
        table = new_table("Rotation", "Instance", "New snapshot", "Name", "Status", "Deleted")
        for r in results:
            fields = snapshot_fields(r.snapshot)
            table.add_row(
                str(r.instance_id),
                str(fields["snapshot_id"] or "-"),
                r.planned_name,
                status_text(fields["status"], r.ok),
                " ".join(str(s.id) for s in r.deleted) or "-",
            )
    return Outcome(
        rows=[_row(r) for r in results],
        errors=[r.error for r in results],
        table=table,
        extra={"dry_run": dry_run},
        notes=["dry run: nothing was created or deleted"] if dry_run else [],
    )


def _row(result: z.RotationResult) -> Row:
    new = _snapshot(result.snapshot) if result.snapshot is not None else None
    if result.dry_run:
        planned = {"snapshot_id": None, "name": result.planned_name}
        new = {**planned, "status": None, "created_date": None}
    fields = snapshot_fields(result.snapshot)
    fields["name"] = result.planned_name
    return result_row(
        result.instance_id,
        fields,
        result.error,
        dry_run=result.dry_run,
        created=[new] if new is not None else [],
        deleted=[_snapshot(s) for s in result.deleted],
    )


def _snapshot(snapshot: z.InstanceImage) -> Row:
    created = snapshot.created.isoformat() if snapshot.created else None
    return {**snapshot_fields(snapshot), "created_date": created}


def _names(snapshots: tuple[z.InstanceImage, ...]) -> str:
    return "\n".join(f"{s.id} {s.name}" for s in snapshots)
