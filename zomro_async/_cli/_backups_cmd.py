"""`zomro-async backups list|create|delete|wait|schedule|rotation`."""

from __future__ import annotations

import asyncio
import datetime
import re

import attrs
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
    Row,
    Run,
    Settings,
    asked,
    await_later,
    by_id,
    check_targets,
    common_options,
    new_table,
    or_error,
    result_row,
    status_text,
    timeout_option,
    unique_ids,
    usage,
)
from ._image_cmds import Column, ImageCommands
from ._output import ResultTable
from ._progress import BACKUPS
from ._sandbox import SANDBOX_HELP

BACKUP_JSON_HELP = """\b
A backup's result has "backup_id" where a snapshot's has "snapshot_id";
"status" is the backup's state in lower case (saving, active, killed, ...;
deleting or deleted for deletes), and "resume" lists the `backups wait`
commands that finish an interrupted run."""
EPILOG = f"{JSON_HELP}\n\n{BACKUP_JSON_HELP}\n\n{SANDBOX_HELP}"
CLOCK_HELP = "on the panel's clock, which the panel labels GMT+3"


@click.group()
def backups() -> None:
    """List, create, delete and await the backups of instances; their schedules and rotation."""


def _backup_type(backup: z.Backup) -> str | None:
    return None if backup.backup_type is z.BackupType.UNKNOWN else backup.backup_type.value


COMMANDS = ImageCommands(
    resource=lambda client: client.backups,
    model=z.Backup,
    items=BACKUPS,
    columns=(Column(title="Type", key="backup_type", value=_backup_type),),
)
_run = COMMANDS.run


# -- list ------------------------------------------------------------------------

LIST_EPILOG = f"""{EPILOG}

\b
One result per backup, with "backup_type" (manual, scheduled, or null),
"created_date" (YYYY-MM-DD or null) and "protected"; an instance that cannot
be listed has one failed result. With one INSTANCE, the top-level "usage"
tells its manual backups against the panel's limits: {{"instance_id",
"made_today", "daily_limit", "left_today", "made_in_all", "total_limit",
"left_in_all", "price_per_gb_day"}} (counts null when unknown; the price a
string); "usage" is null with several instances, or when it cannot be read."""


@backups.command("list", epilog=LIST_EPILOG)
@click.argument("instances", metavar="INSTANCE...", nargs=-1, required=True, type=INSTANCE_ID)
@common_options
def list_(settings: Settings, instances: tuple[int, ...]) -> None:
    """The backups of one or more instances; for one instance, also its use of the
    panel's limits on manual backups (on stderr)."""
    _run(settings, "list", lambda run: _list(run, instances))


async def _list(run: Run, instances: tuple[int, ...]) -> Outcome:
    ids = usage(lambda: unique_ids(instances, "an instance id"))
    listing = COMMANDS.list(run, ids)
    used: z.BackupUsage | z.ZomroError | None = None
    if len(ids) == 1:
        outcome, used = await asyncio.gather(listing, or_error(run.client.backups.usage(ids[0])))
    else:
        outcome = await listing
    remarks = []
    if isinstance(used, z.BackupUsage):
        remarks.append(usage_line(used))
    elif isinstance(used, z.ZomroError) and outcome.errors[0] is None:
        remarks.append(
            f"instance {ids[0]}: the backup usage could not be read: {type(used).__name__}: {used}"
        )
    return attrs.evolve(
        outcome,
        extra={"usage": _usage_json(used) if isinstance(used, z.BackupUsage) else None},
        remarks=remarks,
    )


def usage_line(used: z.BackupUsage) -> str:
    """`instance 5203773: manual backups today: 2 of 5, in all: 7 of 100`."""

    def count(n: int | None) -> str:
        return "?" if n is None else str(n)

    return (
        f"instance {used.instance_id}: manual backups today: "
        f"{count(used.made_today)} of {used.daily_limit}, "
        f"in all: {count(used.made_in_all)} of {used.total_limit}"
    )


def _usage_json(used: z.BackupUsage) -> Row:
    price = used.price_per_gb_day
    return {
        "instance_id": used.instance_id,
        "made_today": used.made_today,
        "daily_limit": used.daily_limit,
        "left_today": used.left_today,
        "made_in_all": used.made_in_all,
        "total_limit": used.total_limit,
        "left_in_all": used.left_in_all,
        "price_per_gb_day": None if price is None else str(price),
    }


# -- create ----------------------------------------------------------------------


@backups.command(epilog=EPILOG)
@click.argument("instances", metavar="[INSTANCE]...", nargs=-1, type=INSTANCE_ID)
@ALL_OPTION
@click.option(
    "--name",
    required=True,
    type=NameType("a backup name"),
    help="The backup's name (at most 100 characters); may use {instance_id}, "
    "{date} and {time} (UTC).",
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
    """One manual backup per instance (the INSTANCE ids, or --all of the account's),
    concurrently; --wait awaits each until Active (else it prints the `backups
    wait` commands that do).

    The panel allows 5 manual backups an instance a day, and 100 in all: an
    instance past a limit fails alone (LimitExceeded), the others go on.
    Ctrl-C cancels the job and prints what was created, with the command that
    resumes the wait.
    """
    check_targets(instances, all_instances)
    _run(
        settings,
        "create",
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
    outcome = await COMMANDS.create(run, instances, all_instances, name, wait, timeout)
    remarks = []
    if any(isinstance(error, z.LimitExceeded) for error in outcome.errors):
        remarks.append(
            "a limit of the panel refused a backup: "
            "`zomro-async backups list INSTANCE` tells an instance's use of them"
        )
    notes = await_later(
        run, outcome.errors, "the backup is being made", "the backups are being made"
    )
    return attrs.evolve(outcome, remarks=remarks, notes=notes)


# -- delete ----------------------------------------------------------------------


@backups.command(epilog=EPILOG)
@click.argument("instance", type=INSTANCE_ID)
@click.argument("backup_ids", metavar="BACKUP...", nargs=-1, required=True, type=API_ID)
@WAIT_OPTION
@timeout_option(600.0)
@common_options
def delete(
    settings: Settings, instance: int, backup_ids: tuple[int, ...], wait: bool, timeout: float
) -> None:
    """Delete backups of an instance; --wait awaits their disappearance."""
    _run(settings, "delete", lambda run: COMMANDS.delete(run, instance, backup_ids, wait, timeout))


# -- wait ------------------------------------------------------------------------


@backups.command(epilog=EPILOG)
@click.argument("instance", type=INSTANCE_ID)
@click.argument("backup_ids", metavar="BACKUP...", nargs=-1, required=True, type=API_ID)
@click.option("--deleted", is_flag=True, help="Await their disappearance, not Active.")
@timeout_option(3600.0)
@common_options
def wait(
    settings: Settings, instance: int, backup_ids: tuple[int, ...], deleted: bool, timeout: float
) -> None:
    """Await backups of an instance, by id: until Active, or gone with --deleted.

    Resumes the waits of an earlier run, such as one stopped with Ctrl-C.
    """
    _run(settings, "wait", lambda run: COMMANDS.wait(run, instance, backup_ids, deleted, timeout))


# -- schedule list|add|remove ----------------------------------------------------

SCHEDULE_JSON_HELP = f"""\b
A schedule's result has, besides "instance_id", "ok" and "error":
"schedule_id", "name", "days" (a list of mon, tue, ..., sun), "at" ("HH:MM"
{CLOCK_HELP}) and "created_date" (YYYY-MM-DD); null when not known.
`schedule remove` adds "removed" (bool)."""
SCHEDULE_EPILOG = f"{JSON_HELP}\n\n{SCHEDULE_JSON_HELP}\n\n{SANDBOX_HELP}"
FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY_NAMES = {
    **{day.name.lower(): day for day in z.Weekday},
    **{name: z.Weekday(n) for n, name in enumerate(FULL_DAY_NAMES)},
}
EVERY_DAY = frozenset(z.Weekday)
_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})")


def parse_days(ctx: click.Context, param: click.Parameter, value: str) -> frozenset[z.Weekday]:
    """`--days`: weekdays, comma-separated (`mon,wed,fri`, `Monday,Friday`), or `daily`."""
    days: set[z.Weekday] = set()
    for word in value.split(","):
        word = word.strip().casefold()
        if word == "daily":
            days |= EVERY_DAY
        elif word in DAY_NAMES:
            days.add(DAY_NAMES[word])
        else:
            shown = f"{word!r} is not a day" if word else "an empty day"
            raise click.BadParameter(
                f"{shown}: give mon, tue, wed, thu, fri, sat, sun (or the full names), "
                "comma-separated, or daily",
                ctx,
                param,
            )
    return frozenset(days)


def parse_time(ctx: click.Context, param: click.Parameter, value: str) -> datetime.time:
    """`--at`: a time of day to the minute, `HH:MM` (00:00 to 23:59)."""
    match = _TIME.fullmatch(value.strip())
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        raise click.BadParameter(
            f"{value!r} is not a time of day: give HH:MM, 00:00 to 23:59", ctx, param
        )
    return datetime.time(int(match[1]), int(match[2]))


def days_text(days: frozenset[z.Weekday]) -> str:
    if days == EVERY_DAY:
        return "daily"
    return ",".join(day.name.lower() for day in sorted(days)) or "-"


def _schedule_fields(schedule: z.BackupSchedule | None, schedule_id: int | None = None) -> Row:
    if schedule is None:
        return {"schedule_id": schedule_id, **dict.fromkeys(("name", "days", "at", "created_date"))}
    return {
        "schedule_id": schedule.id,
        "name": schedule.name or None,
        "days": [day.name.lower() for day in sorted(schedule.days)],
        "at": schedule.at.strftime("%H:%M") if schedule.at else None,
        "created_date": schedule.created.isoformat() if schedule.created else None,
    }


def _schedule_table(title: str) -> ResultTable:
    return new_table(title, "Instance", "Schedule", "Name", "Days", "At (GMT+3)", "Created")


def _add_schedule_row(table: ResultTable, instance: int, fields: Row) -> None:
    days = fields["days"]
    table.add_row(
        str(instance),
        str(fields["schedule_id"] or "-"),
        fields["name"] or "-",
        "-" if days is None else days_text(frozenset(DAY_NAMES[d] for d in days)),
        fields["at"] or "-",
        fields["created_date"] or "-",
    )


@backups.group()
def schedule() -> None:
    """List, add and remove the backup schedules of an instance: the server makes a
    backup on each listed day at a time of day, keeping the newest `backups
    rotation` of them."""


@schedule.command("list", epilog=SCHEDULE_EPILOG)
@click.argument("instance", type=INSTANCE_ID)
@common_options
def schedule_list(settings: Settings, instance: int) -> None:
    """The backup schedules of an instance, their times on the panel's clock (GMT+3)."""
    _run(settings, "schedule list", lambda run: _schedule_list(run, instance))


async def _schedule_list(run: Run, instance: int) -> Outcome:
    found = await or_error(run.client.backups.schedules(instance))
    table = _schedule_table("Backup schedules")
    if isinstance(found, z.ZomroError):
        table.add_row(str(instance), "-", "-", "-", "-", status_text("failed", ok=False))
        return Outcome(
            rows=[result_row(instance, _schedule_fields(None), found)],
            errors=[found],
            table=table,
        )
    rows = [result_row(instance, _schedule_fields(s), None) for s in found]
    for row in rows:
        _add_schedule_row(table, instance, row)
    if not found:
        table.add_row(str(instance), "-", "(no schedules)", placeholder=True)
    return Outcome(rows=rows, errors=[None] * len(rows), table=table)


@schedule.command("add", epilog=SCHEDULE_EPILOG)
@click.argument("instance", type=INSTANCE_ID)
@click.option(
    "--name",
    required=True,
    type=NameType("a schedule name"),
    help="The schedule's name (at most 100 characters).",
)
@click.option(
    "--days",
    required=True,
    metavar="DAYS",
    callback=parse_days,
    help="The days: mon, tue, wed, thu, fri, sat, sun or their full names, any case, "
    "comma-separated; or daily.",
)
@click.option(
    "--at",
    "at",
    required=True,
    metavar="HH:MM",
    callback=parse_time,
    help=f"The time of day, HH:MM {CLOCK_HELP} (not your local time).",
)
@common_options
def schedule_add(
    settings: Settings, instance: int, name: str, days: frozenset[z.Weekday], at: datetime.time
) -> None:
    """Add a backup schedule to an instance: a backup at --at on each of --days.

    --at is on the panel's clock, which the panel labels GMT+3 (and warns that
    it moves with daylight saving): it is sent as given, never converted from
    your time zone. A lost answer never makes a second schedule.
    """
    _run(settings, "schedule add", lambda run: _schedule_add(run, instance, name, days, at))


async def _schedule_add(
    run: Run, instance: int, name: str, days: frozenset[z.Weekday], at: datetime.time
) -> Outcome:
    added = await or_error(asked(run.client.backups.add_schedule(instance, name, days=days, at=at)))
    if isinstance(added, z.ZomroError):
        # What was asked, with no id: nothing was added (or it could not be told).
        fields = {
            **_schedule_fields(None),
            "name": name,
            "days": [day.name.lower() for day in sorted(days)],
            "at": at.strftime("%H:%M"),
        }
        table = new_table("Backup schedule added", "Instance", "Name", "Days", "At", "Status")
        table.add_row(
            str(instance),
            name,
            days_text(days),
            fields["at"],
            status_text("failed", ok=False),
        )
        return Outcome(rows=[result_row(instance, fields, added)], errors=[added], table=table)
    row = result_row(instance, _schedule_fields(added), None)
    table = _schedule_table("Backup schedule added")
    _add_schedule_row(table, instance, row)
    return Outcome(rows=[row], errors=[None], table=table)


@schedule.command("remove", epilog=SCHEDULE_EPILOG)
@click.argument("instance", type=INSTANCE_ID)
@click.argument("schedule_ids", metavar="SCHEDULE...", nargs=-1, required=True, type=API_ID)
@common_options
def schedule_remove(settings: Settings, instance: int, schedule_ids: tuple[int, ...]) -> None:
    """Remove backup schedules of an instance, by id (see `backups schedule list`).
    The backups they made stay."""
    _run(settings, "schedule remove", lambda run: _schedule_remove(run, instance, schedule_ids))


async def _schedule_remove(run: Run, instance: int, schedule_ids: tuple[int, ...]) -> Outcome:
    ids = usage(lambda: unique_ids(schedule_ids, "a schedule id"))
    listed = await by_id(run.client.backups.schedules(instance))  # for the names
    errors = await asyncio.gather(
        *(or_error(run.client.backups.remove_schedule(instance, i)) for i in ids)
    )
    table = new_table("Backup schedules removed", "Instance", "Schedule", "Name", "Status")
    rows = []
    for schedule_id, error in zip(ids, errors, strict=True):
        fields = _schedule_fields(listed.get(schedule_id), schedule_id)
        rows.append(result_row(instance, fields, error, removed=error is None))
        shown = status_text("failed", ok=False) if error else status_text("removed")
        table.add_row(str(instance), str(schedule_id), fields["name"] or "-", shown)
    return Outcome(rows=rows, errors=list(errors), table=table)


# -- rotation --------------------------------------------------------------------

ROTATION_EPILOG = f"""{JSON_HELP}

\b
rotation's result has, besides "instance_id", "ok" and "error": "rotation",
how many scheduled backups the server keeps (an int, or null when unknown
or when it failed).

{SANDBOX_HELP}"""


@backups.command(epilog=ROTATION_EPILOG)
@click.argument("instance", type=INSTANCE_ID)
@click.argument("keep", metavar="[N]", required=False, type=click.IntRange(1, 10))
@common_options
def rotation(settings: Settings, instance: int, keep: int | None) -> None:
    """How many scheduled backups the server keeps for INSTANCE (older ones are
    overwritten by the next); with N (1 to 10), set it.

    Manual and protected backups are never overwritten nor counted.
    """
    _run(settings, "rotation", lambda run: _rotation(run, instance, keep))


async def _rotation(run: Run, instance: int, keep: int | None) -> Outcome:
    kept: int | None
    if keep is None:
        found = await or_error(run.client.backups.rotation(instance))
        error, kept = (found, None) if isinstance(found, z.ZomroError) else (None, found)
    else:
        error = await or_error(asked(run.client.backups.set_rotation(instance, keep)))
        kept = None if error else keep
    table = new_table("Backup rotation", "Instance", "Keeps")
    shown = status_text("failed", ok=False) if error else (str(kept) if kept else "unknown")
    table.add_row(str(instance), shown)
    notes = []
    if error is None and kept is not None:
        done = "now keeps" if keep is not None else "keeps"
        notes.append(
            f"the server {done} the newest {kept} scheduled backups of instance {instance}"
        )
    return Outcome(
        rows=[result_row(instance, {"rotation": kept}, error)],
        errors=[error],
        table=table,
        notes=notes,
    )
