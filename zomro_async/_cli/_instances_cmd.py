"""`zomro-async instances list|wait`."""

from __future__ import annotations

import asyncio

import click

import zomro_async as z

from ._common import (
    INSTANCE_ID,
    JSON_HELP,
    Outcome,
    Row,
    Run,
    Settings,
    common_options,
    instance_fields,
    new_table,
    result_row,
    run_command,
    status_text,
    timeout_option,
    unique_ids,
    usage,
)
from ._sandbox import SANDBOX_HELP

INSTANCE_JSON_HELP = """\b
An instance's result has, besides "instance_id", "ok" and "error": "name",
"status" (its instance_status in lower case: active, stopped, rebuilding,
error, ..., as last seen; null if never seen), "region", "ip", "ip_v6" and "tariff"; no
snapshot keys."""
EPILOG = f"{JSON_HELP}\n\n{INSTANCE_JSON_HELP}\n\n{SANDBOX_HELP}"
# Every status that can be awaited (UNKNOWN is no state of the API's).
STATUSES = [s.value for s in z.InstanceStatus if s is not z.InstanceStatus.UNKNOWN]


@click.group()
def instances() -> None:
    """List the instances of the account, and await their states."""


# -- list ------------------------------------------------------------------------


@instances.command("list", epilog=EPILOG)
@common_options
def list_(settings: Settings) -> None:
    """Every instance of the account: id, name, status, region, address, tariff."""
    run_command(settings, "instances list", _list)


async def _list(run: Run) -> Outcome:
    listed = await run.all_instances()
    table = new_table("Instances", "Instance", "Name", "Status", "Region", "IP", "Tariff")
    rows: list[Row] = []
    for instance in listed:
        fields = instance_fields(instance)
        rows.append(result_row(instance.id, fields, None))
        table.add_row(
            str(instance.id),
            fields["name"] or "-",
            status_text(fields["status"]),
            fields["region"] or "-",
            fields["ip"] or "-",
            fields["tariff"] or "-",
        )
    if not listed:
        table.add_row("-", "(no instances)", placeholder=True)
    return Outcome(rows=rows, errors=[None] * len(rows), table=table)


# -- wait ------------------------------------------------------------------------


@instances.command(epilog=EPILOG)
@click.argument("instance_ids", metavar="INSTANCE...", nargs=-1, required=True, type=INSTANCE_ID)
@click.option(
    "--status",
    type=click.Choice(STATUSES, case_sensitive=False),
    help="Await this state (e.g. stopped) instead of the end of the operation under way.",
)
@click.option(
    "--settled",
    is_flag=True,
    help="Await a steady state: the end of the operation under way (the default).",
)
@timeout_option(1800.0)
@common_options
def wait(
    settings: Settings,
    instance_ids: tuple[int, ...],
    status: str | None,
    settled: bool,
    timeout: float,
) -> None:
    """Await instances, concurrently: until settled (a steady state such as active or
    stopped), or until --status. One listing of the account serves every wait.

    An instance that reaches error (when that is not the status awaited) or
    disappears fails, as does one still not there at --timeout.
    """
    if status is not None and settled:
        raise click.UsageError("give --status or --settled, not both")
    goal = None if status is None else z.InstanceStatus(status.lower())
    run_command(settings, "instances wait", lambda run: _wait(run, instance_ids, goal, timeout))


async def _wait(
    run: Run, instance_ids: tuple[int, ...], goal: z.InstanceStatus | None, timeout: float
) -> Outcome:
    ids = usage(lambda: unique_ids(instance_ids, "an instance id"))
    # The waits ride out an outage until their deadline; an API that cannot be
    # reached at all when the command starts is told at once instead.
    known = {i.id: i for i in await run.all_instances()}
    flags = () if goal is None else ("--status", goal.value)
    view = run.progress([(i, None) for i in ids], finish=(), title="waiting")

    def show(instance: z.Instance, *, error: BaseException | None = None) -> None:
        state = instance_fields(instance)["status"] or "unknown"
        view.state((instance.id, None), state, at=run.now(), error=error)

    async def one(instance_id: int) -> tuple[Row, BaseException | None]:
        try:
            if goal is None:
                done = await run.client.instances.wait_settled(
                    instance_id, timeout=timeout, on_update=show
                )
            else:
                done = await run.client.instances.wait_status(
                    instance_id, goal, timeout=timeout, on_update=show
                )
        except z.ZomroError as exc:
            last = exc.instance if isinstance(exc, z.InstanceFailed) else None
            if isinstance(exc, z.WaitTimeout) and isinstance(exc.last, z.Instance):
                last = exc.last
            last = last or known.get(instance_id)
            view.state((instance_id, None), "failed", at=run.now(), error=exc, done=True)
            run.tracker.instance_done(instance_id, exc)  # a timeout: still awaited
            return instance_fields(last), exc
        view.state(
            (instance_id, None), instance_fields(done)["status"] or "", at=run.now(), done=True
        )
        run.tracker.instance_done(instance_id)
        return instance_fields(done), None

    for instance_id in ids:  # every one, before any wait can be interrupted
        run.tracker.expect_instance(instance_id, flags)
    with view:
        found = await asyncio.gather(*(one(i) for i in ids))
    table = new_table("Instances awaited", "Instance", "Name", "Status")
    for instance_id, (fields, error) in zip(ids, found, strict=True):
        table.add_row(
            str(instance_id),
            fields["name"] or "-",
            status_text(fields["status"], error is None),
        )
    return Outcome(
        rows=[result_row(i, fields, error) for i, (fields, error) in zip(ids, found, strict=True)],
        errors=[error for _, error in found],
        table=table,
    )
