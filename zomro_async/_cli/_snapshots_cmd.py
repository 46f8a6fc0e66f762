"""`zomro-async snapshots list|create|delete|wait|protect|unprotect`."""

from __future__ import annotations

import asyncio
import contextlib

import click

import zomro_async as z

from ._common import (
    ALL_OPTION,
    INSTANCE_ID,
    JSON_HELP,
    WAIT_OPTION,
    Kind,
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
    usage,
)
from ._progress import follow
from ._sandbox import SANDBOX_HELP

EPILOG = f"{JSON_HELP}\n\n{SANDBOX_HELP}"


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
    run_command(settings, "snapshots list", lambda run: _list(run, instances))


async def _list(run: Run, instances: tuple[int, ...]) -> Outcome:
    async def one(instance_id: int) -> list[z.Snapshot] | z.ZomroError:
        try:
            return await run.client.snapshots.list(instance_id)
        except z.ZomroError as exc:
            return exc

    found = await asyncio.gather(*(one(i) for i in dict.fromkeys(instances)))
    table = new_table("Snapshots", "Instance", "Snapshot", "Name", "Status", "Created", "Protected")
    rows: list[Row] = []
    for instance_id, listing in zip(dict.fromkeys(instances), found, strict=True):
        if isinstance(listing, z.ZomroError):
            rows.append(
                result_row(
                    instance_id,
                    snapshot_fields(None),
                    listing,
                    created_date=None,
                    protected=None,
                )
            )
            table.add_row(str(instance_id), "-", "-", status_text("failed", ok=False), "-", "-")
            continue
        if not listing:
            table.add_row(str(instance_id), "-", "(no snapshots)", "", "", "")
        for s in listing:
            created = s.created.isoformat() if s.created else None
            rows.append(
                result_row(
                    instance_id,
                    snapshot_fields(s),
                    None,
                    created_date=created,
                    protected=s.protected,
                )
            )
            table.add_row(
                str(instance_id),
                str(s.id),
                s.name,
                status_text(s.status.value),
                created or "-",
                "yes" if s.protected else "",
            )
    errors = [f if isinstance(f, z.ZomroError) else None for f in found]
    return Outcome(rows=rows, errors=list(errors), table=table)


# -- create ----------------------------------------------------------------------


@snapshots.command(epilog=EPILOG)
@click.argument("instances", metavar="[INSTANCE]...", nargs=-1, type=INSTANCE_ID)
@ALL_OPTION
@click.option(
    "--name",
    required=True,
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
    run_command(
        settings,
        "snapshots create",
        lambda run: _create(run, instances, all_instances, name, wait, timeout),
        creates=True,
    )


async def _create(
    run: Run,
    instances: tuple[int, ...],
    all_instances: bool,
    name: str,
    wait: bool,
    timeout: float,
) -> Outcome:
    targets = await run.targets(instances, all_instances)
    job = usage(
        lambda: run.client.snapshots.create_many(
            targets, name, wait=wait, timeout=timeout, on_progress=run.tracker.record
        )
    )
    view = run.progress(
        [(i if isinstance(i, int) else i.id, None) for i in targets],
        finish={Kind.ACTIVE if wait else Kind.CREATED},
        title="creating snapshots",
    )
    results = await follow(job, view)
    table = new_table("Snapshots created", "Instance", "Snapshot", "Name", "Status")
    for r in results:
        fields = snapshot_fields(r.snapshot, r.snapshot_id)
        table.add_row(
            str(r.instance_id),
            str(r.snapshot_id or "-"),
            fields["name"] or "-",
            status_text(fields["status"], r.ok),
        )
    return Outcome(
        rows=[result_row(r.instance_id, snapshot_fields(r.snapshot), r.error) for r in results],
        errors=[r.error for r in results],
        table=table,
    )


# -- delete ----------------------------------------------------------------------


@snapshots.command(epilog=EPILOG)
@click.argument("instance", type=INSTANCE_ID)
@click.argument("snapshot_ids", metavar="SNAPSHOT...", nargs=-1, required=True, type=INSTANCE_ID)
@WAIT_OPTION
@timeout_option(600.0)
@common_options
def delete(
    settings: Settings, instance: int, snapshot_ids: tuple[int, ...], wait: bool, timeout: float
) -> None:
    """Delete snapshots of an instance; --wait awaits their disappearance."""
    run_command(
        settings,
        "snapshots delete",
        lambda run: _delete(run, instance, snapshot_ids, wait, timeout),
    )


async def _delete(
    run: Run, instance: int, snapshot_ids: tuple[int, ...], wait: bool, timeout: float
) -> Outcome:
    listed: dict[int, z.Snapshot] = {}
    try:  # for the names, and so that the progress shows ids
        listed = {s.id: s for s in await run.client.snapshots.list(instance)}
    except (z.AuthError, z.TransportError):
        raise
    except z.ZomroError:
        pass  # each delete then tells what is wrong
    # Unlisted ids go too, so the API has its say; a stand-in gives their events an id.
    targets = [listed.get(i) or z.Snapshot(id=i, instance_id=instance) for i in snapshot_ids]
    job = usage(
        lambda: run.client.snapshots.delete_many(
            targets, wait=wait, timeout=timeout, on_progress=run.tracker.record
        )
    )
    view = run.progress(
        [(instance, i) for i in snapshot_ids],
        finish={Kind.DELETED if wait else Kind.DELETING},
        title="deleting snapshots",
    )
    results = await follow(job, view)
    done = "deleted" if wait else "deleting"
    table = new_table("Snapshots deleted", "Instance", "Snapshot", "Name", "Status")
    rows = []
    for r in results:
        fields = snapshot_fields(listed.get(r.snapshot_id or 0), r.snapshot_id)
        if r.ok:
            fields["status"] = done
        rows.append(result_row(r.instance_id, fields, r.error))
        table.add_row(
            str(r.instance_id),
            str(r.snapshot_id),
            fields["name"] or "-",
            status_text(fields["status"], r.ok),
        )
    return Outcome(rows=rows, errors=[r.error for r in results], table=table)


# -- wait ------------------------------------------------------------------------


@snapshots.command(epilog=EPILOG)
@click.argument("instance", type=INSTANCE_ID)
@click.argument("snapshot_ids", metavar="SNAPSHOT...", nargs=-1, required=True, type=INSTANCE_ID)
@click.option("--deleted", is_flag=True, help="Await their disappearance, not Active.")
@timeout_option(3600.0)
@common_options
def wait(
    settings: Settings, instance: int, snapshot_ids: tuple[int, ...], deleted: bool, timeout: float
) -> None:
    """Await snapshots of an instance, by id: until Active, or gone with --deleted.

    Resumes the waits of an earlier run, such as one stopped with Ctrl-C.
    """
    run_command(
        settings,
        "snapshots wait",
        lambda run: _wait(run, instance, snapshot_ids, deleted, timeout),
    )


async def _wait(
    run: Run, instance: int, snapshot_ids: tuple[int, ...], deleted: bool, timeout: float
) -> Outcome:
    ids = usage(lambda: _unique(snapshot_ids))
    # Waits ride out an outage until their deadline; an API that cannot be reached
    # at all when the command starts is told at once instead.
    with contextlib.suppress(z.NotFoundError, z.InvalidRequestError):
        await run.client.snapshots.list(instance)
    goal = Kind.DELETED if deleted else Kind.ACTIVE
    view = run.progress([(instance, i) for i in ids], finish={goal}, title="waiting")

    def emit(kind: Kind, snapshot: z.Snapshot, error: BaseException | None = None) -> None:
        event = run.event(kind, instance, snapshot, error)
        run.tracker.record(event)
        view.show(event)

    async def one(snapshot_id: int) -> tuple[Row, z.ZomroError | None]:
        placeholder = z.Snapshot(id=snapshot_id, instance_id=instance)
        try:
            if deleted:
                await run.client.snapshots.wait_deleted(instance, snapshot_id, timeout=timeout)
                emit(Kind.DELETED, placeholder)
                return {**snapshot_fields(None, snapshot_id), "status": "deleted"}, None
            active = await run.client.snapshots.wait_active(
                instance,
                snapshot_id,
                timeout=timeout,
                on_update=lambda s: emit(Kind.SAVING, s),
            )
            emit(Kind.ACTIVE, active)
            return snapshot_fields(active), None
        except z.ZomroError as exc:
            last = exc.snapshot if isinstance(exc, z.SnapshotFailed) else None
            if isinstance(exc, z.WaitTimeout) and isinstance(exc.last, z.Snapshot):
                last = exc.last
            emit(Kind.FAILED, last or placeholder, exc)
            return snapshot_fields(last, snapshot_id), exc

    for snapshot_id in ids:  # every one, before any wait can be interrupted
        run.tracker.expect(instance, snapshot_id, goal)
    with view:
        found = await asyncio.gather(*(one(i) for i in ids))
    table = new_table("Snapshots awaited", "Instance", "Snapshot", "Name", "Status")
    for fields, error in found:
        table.add_row(
            str(instance),
            str(fields["snapshot_id"]),
            fields["name"] or "-",
            status_text(fields["status"], error is None),
        )
    return Outcome(
        rows=[result_row(instance, fields, error) for fields, error in found],
        errors=[error for _, error in found],
        table=table,
    )


def _unique(snapshot_ids: tuple[int, ...]) -> list[int]:
    if len(set(snapshot_ids)) != len(snapshot_ids):
        raise ValueError("a snapshot id is given twice")
    return list(snapshot_ids)


# -- protect, unprotect ----------------------------------------------------------

PROTECT_EPILOG = f'{EPILOG}\n\nEach result also has "protected" (bool; null when it failed).'


@snapshots.command(epilog=PROTECT_EPILOG)
@click.argument("instance", type=INSTANCE_ID)
@click.argument("snapshot_ids", metavar="SNAPSHOT...", nargs=-1, required=True, type=INSTANCE_ID)
@common_options
def protect(settings: Settings, instance: int, snapshot_ids: tuple[int, ...]) -> None:
    """Protect snapshots of an instance from deletion: rotate never counts nor deletes
    them, and the API refuses to delete them. Protecting one twice is harmless.
    """
    run_command(
        settings,
        "snapshots protect",
        lambda run: _set_protected(run, instance, snapshot_ids, protected=True),
    )


@snapshots.command(epilog=PROTECT_EPILOG)
@click.argument("instance", type=INSTANCE_ID)
@click.argument("snapshot_ids", metavar="SNAPSHOT...", nargs=-1, required=True, type=INSTANCE_ID)
@common_options
def unprotect(settings: Settings, instance: int, snapshot_ids: tuple[int, ...]) -> None:
    """Lift the protection of snapshots of an instance: they can be deleted (and
    rotated) again."""
    run_command(
        settings,
        "snapshots unprotect",
        lambda run: _set_protected(run, instance, snapshot_ids, protected=False),
    )


async def _set_protected(
    run: Run, instance: int, snapshot_ids: tuple[int, ...], *, protected: bool
) -> Outcome:
    ids = usage(lambda: _unique(snapshot_ids))
    listed: dict[int, z.Snapshot] = {}
    try:  # for the names
        listed = {s.id: s for s in await run.client.snapshots.list(instance)}
    except (z.AuthError, z.TransportError):
        raise
    except z.ZomroError:
        pass  # each call then tells what is wrong
    change = run.client.snapshots.protect if protected else run.client.snapshots.unprotect

    async def one(snapshot_id: int) -> z.ZomroError | None:
        try:
            await change(instance, snapshot_id)
        except z.ZomroError as exc:
            return exc
        return None

    errors = await asyncio.gather(*(one(i) for i in ids))
    title = "Snapshots protected" if protected else "Snapshots unprotected"
    table = new_table(title, "Instance", "Snapshot", "Name", "Protected")
    rows = []
    for snapshot_id, error in zip(ids, errors, strict=True):
        fields = snapshot_fields(listed.get(snapshot_id), snapshot_id)
        rows.append(result_row(instance, fields, error, protected=None if error else protected))
        shown = status_text("failed", ok=False) if error else ("yes" if protected else "no")
        table.add_row(str(instance), str(snapshot_id), fields["name"] or "-", shown)
    return Outcome(rows=rows, errors=list(errors), table=table)
