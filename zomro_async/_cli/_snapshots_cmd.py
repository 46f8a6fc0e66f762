"""`zomro-async snapshots list|create|delete|wait|protect|unprotect`."""

from __future__ import annotations

import asyncio

import click

import zomro_async as z

from ._common import (
    ALL_OPTION,
    API_ID,
    INSTANCE_ID,
    JSON_HELP,
    WAIT_OPTION,
    NameType,
    Outcome,
    Run,
    Settings,
    by_id,
    check_targets,
    common_options,
    new_table,
    or_error,
    result_row,
    snapshot_fields,
    status_text,
    timeout_option,
    unique_ids,
    usage,
)
from ._image_cmds import ImageCommands
from ._progress import SNAPSHOTS
from ._sandbox import SANDBOX_HELP

EPILOG = f"{JSON_HELP}\n\n{SANDBOX_HELP}"
COMMANDS = ImageCommands(
    resource=lambda client: client.snapshots, model=z.Snapshot, items=SNAPSHOTS
)


@click.group()
def snapshots() -> None:
    """List, create, delete, await and protect the snapshots of instances."""


# -- list ------------------------------------------------------------------------


@snapshots.command(
    "list",
    epilog=f'{EPILOG}\n\nOne result per snapshot, with "created_date" (YYYY-MM-DD or null) '
    'and "protected"; an instance that cannot be listed has one failed result.',
)
@click.argument("instances", nargs=-1, required=True, type=INSTANCE_ID)
@common_options
def list_(settings: Settings, instances: tuple[int, ...]) -> None:
    """The snapshots of one or more instances."""
    COMMANDS.run(settings, "list", lambda run: COMMANDS.list(run, instances))


# -- create ----------------------------------------------------------------------


@snapshots.command(epilog=EPILOG)
@click.argument("instances", metavar="[INSTANCE]...", nargs=-1, type=INSTANCE_ID)
@ALL_OPTION
@click.option(
    "--name",
    required=True,
    type=NameType("a snapshot name"),
    help="The snapshot's name; may use {instance_id}, {date} and {time} (UTC).",
)
@WAIT_OPTION
@timeout_option(3600.0)
@common_options
def create(
    settings: Settings,
    instances: tuple[int, ...],
    all_instances: bool,
    name: str,
    wait: bool,
    timeout: float,
) -> None:
    """One snapshot per instance (the INSTANCE ids, or --all of the account's),
    concurrently; --wait awaits each until Active.

    Ctrl-C cancels the job and prints what was created, with the command that
    resumes the wait.
    """
    check_targets(instances, all_instances)
    COMMANDS.run(
        settings,
        "create",
        lambda run: COMMANDS.create(run, instances, all_instances, name, wait, timeout),
        creates=True,
    )


# -- delete ----------------------------------------------------------------------


@snapshots.command(epilog=EPILOG)
@click.argument("instance", type=INSTANCE_ID)
@click.argument("snapshot_ids", metavar="SNAPSHOT...", nargs=-1, required=True, type=API_ID)
@WAIT_OPTION
@timeout_option(600.0)
@common_options
def delete(
    settings: Settings, instance: int, snapshot_ids: tuple[int, ...], wait: bool, timeout: float
) -> None:
    """Delete snapshots of an instance; --wait awaits their disappearance."""
    COMMANDS.run(
        settings,
        "delete",
        lambda run: COMMANDS.delete(run, instance, snapshot_ids, wait, timeout),
    )


# -- wait ------------------------------------------------------------------------


@snapshots.command(epilog=EPILOG)
@click.argument("instance", type=INSTANCE_ID)
@click.argument("snapshot_ids", metavar="SNAPSHOT...", nargs=-1, required=True, type=API_ID)
@click.option("--deleted", is_flag=True, help="Await their disappearance, not Active.")
@timeout_option(3600.0)
@common_options
def wait(
    settings: Settings, instance: int, snapshot_ids: tuple[int, ...], deleted: bool, timeout: float
) -> None:
    """Await snapshots of an instance, by id: until Active, or gone with --deleted.

    Resumes the waits of an earlier run, such as one stopped with Ctrl-C.
    """
    COMMANDS.run(
        settings,
        "wait",
        lambda run: COMMANDS.wait(run, instance, snapshot_ids, deleted, timeout),
    )


# -- protect, unprotect ----------------------------------------------------------

PROTECT_EPILOG = f'{EPILOG}\n\nEach result also has "protected" (bool; null when it failed).'


@snapshots.command(epilog=PROTECT_EPILOG)
@click.argument("instance", type=INSTANCE_ID)
@click.argument("snapshot_ids", metavar="SNAPSHOT...", nargs=-1, required=True, type=API_ID)
@common_options
def protect(settings: Settings, instance: int, snapshot_ids: tuple[int, ...]) -> None:
    """Protect snapshots of an instance from deletion: rotate never counts nor deletes
    them, and the API refuses to delete them. Protecting one twice is harmless.
    """
    COMMANDS.run(
        settings,
        "protect",
        lambda run: _set_protected(run, instance, snapshot_ids, protected=True),
    )


@snapshots.command(epilog=PROTECT_EPILOG)
@click.argument("instance", type=INSTANCE_ID)
@click.argument("snapshot_ids", metavar="SNAPSHOT...", nargs=-1, required=True, type=API_ID)
@common_options
def unprotect(settings: Settings, instance: int, snapshot_ids: tuple[int, ...]) -> None:
    """Lift the protection of snapshots of an instance: they can be deleted (and
    rotated) again."""
    COMMANDS.run(
        settings,
        "unprotect",
        lambda run: _set_protected(run, instance, snapshot_ids, protected=False),
    )


async def _set_protected(
    run: Run, instance: int, snapshot_ids: tuple[int, ...], *, protected: bool
) -> Outcome:
    ids = usage(lambda: unique_ids(snapshot_ids, "a snapshot id"))
    listed = await by_id(run.client.snapshots.list(instance))  # for the names
    change = run.client.snapshots.protect if protected else run.client.snapshots.unprotect
    errors = await asyncio.gather(*(or_error(change(instance, i)) for i in ids))
    title = "Snapshots protected" if protected else "Snapshots unprotected"
    table = new_table(title, "Instance", "Snapshot", "Name", "Protected")
    rows = []
    for snapshot_id, error in zip(ids, errors, strict=True):
        fields = snapshot_fields(listed.get(snapshot_id), snapshot_id)
        rows.append(result_row(instance, fields, error, protected=None if error else protected))
        shown = status_text("failed", ok=False) if error else ("yes" if protected else "no")
        table.add_row(str(instance), str(snapshot_id), fields["name"] or "-", shown)
    return Outcome(rows=rows, errors=list(errors), table=table)
