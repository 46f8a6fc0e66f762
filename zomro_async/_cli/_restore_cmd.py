"""`zomro-async restore`: rebuild an instance from a snapshot, over `client.instances.restore`.

The new root password is a secret like the account's: it comes from
`ZOMRO_REBUILD_PASSWORD` or a prompt without echo, never from a flag, and is
never printed, logged or put in a message.
"""

from __future__ import annotations

import asyncio
import os

import attrs
import click

import zomro_async as z
from zomro_async._checks import check_rebuild_password, check_ssh_key

from ._common import (
    API_ID,
    INSTANCE_ID,
    JSON_HELP,
    REBUILD_PASSWORD_ENV,
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
    stdin_is_tty,
    timeout_option,
)
from ._instances_cmd import INSTANCE_JSON_HELP
from ._sandbox import SANDBOX_HELP

PASSWORD_ATTEMPTS = 3

RESTORE_HELP = f"""\b
The new root password comes from {REBUILD_PASSWORD_ENV} or, at a terminal, a
prompt without echo (asked twice); never from a flag. With --ssh-key no
password is asked (and {REBUILD_PASSWORD_ENV} is ignored). Its rules: 8 to 48
printable ASCII characters, an upper-case letter, a lower-case letter and a
digit, no spaces, none of " # % & ' ( ) * ; < > ? @ |. A restore not
confirmed is exit status 1, with nothing sent.

\b
restore's result is the instance's (below), plus "snapshot_id", "snapshot_name"
and "waited" (true when the end of the rebuild was awaited)."""


class Declined(click.ClickException):
    """The restore was not confirmed: nothing was sent (exit status 1)."""

    exit_code = 1


@attrs.frozen
class _Access:
    """How the rebuilt instance is reached: an SSH key, or a root password (never shown)."""

    ssh_key: str | None = None
    password: str | None = attrs.field(default=None, repr=False)

    @property
    def ask(self) -> bool:
        return self.ssh_key is None and self.password is None


@attrs.frozen
class _Request:
    instance_id: int
    snapshot_id: int
    access: _Access = attrs.field(repr=False)
    yes: bool
    wait: bool
    timeout: float


@click.command(epilog=f"{RESTORE_HELP}\n\n{JSON_HELP}\n\n{INSTANCE_JSON_HELP}\n\n{SANDBOX_HELP}")
@click.argument("instance", type=INSTANCE_ID)
@click.argument("snapshot", type=API_ID)
@click.option(
    "--ssh-key",
    metavar="UUID",
    help="Give access by this SSH key of the account (its uuid), instead of a root password.",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (for scripts).")
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Await the end of the rebuild.",
)
@timeout_option(3600.0)
@common_options
def restore(
    settings: Settings,
    instance: int,
    snapshot: int,
    ssh_key: str | None,
    yes: bool,
    wait: bool,
    timeout: float,
) -> None:
    """Rebuild INSTANCE from the snapshot (image) id SNAPSHOT: the instance's disk is
    overwritten with it, and whatever was written since the snapshot is lost.

    Asks for confirmation, naming what is overwritten, unless --yes; without a
    terminal to ask on, --yes is required. SNAPSHOT may be a snapshot of
    another instance of the account.
    """
    if not yes and not stdin_is_tty():
        raise click.UsageError(
            "stdin is not a terminal to confirm on: pass --yes to restore without asking"
        )
    access = _access(ssh_key, os.environ.get(REBUILD_PASSWORD_ENV) or None)
    request = _Request(instance, snapshot, access, yes=yes, wait=wait, timeout=timeout)
    run_command(settings, "restore", lambda run: _restore(run, request))


def _access(ssh_key: str | None, password: str | None) -> _Access:
    """The access to give, checked before anything is sent (a usage error otherwise)."""
    if ssh_key is not None:
        try:
            return _Access(ssh_key=check_ssh_key(ssh_key))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--ssh-key") from None
    if password is not None:
        try:
            return _Access(password=check_rebuild_password(password))
        except ValueError as exc:  # the message never shows the password
            raise click.UsageError(f"{REBUILD_PASSWORD_ENV}: {exc}") from None
    if not stdin_is_tty():
        raise click.UsageError(
            f"no root password: set {REBUILD_PASSWORD_ENV}, or pass --ssh-key "
            "(stdin is not a terminal to ask for it; a password is never a flag)"
        )
    return _Access()  # asked once the restore is confirmed


def _ask_password(instance_id: int) -> str:
    for _ in range(PASSWORD_ATTEMPTS):
        answer: str = click.prompt(
            f"New root password for instance {instance_id}",
            hide_input=True,
            confirmation_prompt="Repeat it",
            err=True,
        )
        try:
            return check_rebuild_password(answer)
        except ValueError as exc:  # the message never shows the password
            click.echo(f"error: {exc}", err=True)
    raise click.UsageError(f"no acceptable root password in {PASSWORD_ATTEMPTS} attempts")


async def _snapshots_of(run: Run, instance_id: int) -> list[z.Snapshot]:
    try:
        return await run.client.snapshots.list(instance_id)
    except (z.AuthError, z.TransportError):
        raise
    except z.ZomroError:
        return []  # looked for elsewhere; the restore itself tells what is wrong


async def _find_snapshot(run: Run, instance_id: int, snapshot_id: int) -> z.Snapshot | None:
    """The snapshot, among the instance's own first, then every other instance's."""
    for s in await _snapshots_of(run, instance_id):
        if s.id == snapshot_id:
            return s
    others = [i.id for i in await run.all_instances() if i.id != instance_id]
    for listing in await asyncio.gather(*(_snapshots_of(run, i) for i in others)):
        for s in listing:
            if s.id == snapshot_id:
                return s
    return None


def _what(instance: z.Instance, snapshot_id: int, snapshot: z.Snapshot | None) -> str:
    """What is overwritten, with what: the confirmation's text."""
    target = f"instance {instance.id}" + (f" ({instance.name})" if instance.name else "")
    if snapshot is None:
        source = (
            f"image {snapshot_id} (no instance of the account lists it as a snapshot; "
            "the API tells whether it exists)"
        )
    else:
        about = [snapshot.name or "unnamed"]
        if snapshot.created is not None:
            about.append(f"taken {snapshot.created.isoformat()}")
        if snapshot.instance_id != instance.id:
            about.append(f"of instance {snapshot.instance_id}")
        source = f"snapshot {snapshot_id} ({', '.join(about)})"
    return (
        f"The disk of {target} will be overwritten with {source}: "
        "whatever was written to it since is lost."
    )


async def _restore(run: Run, request: _Request) -> Outcome:
    instance_id, snapshot_id = request.instance_id, request.snapshot_id
    try:
        target = await run.client.instances.get(instance_id)
    except (z.AuthError, z.TransportError):
        raise
    except z.ZomroError as exc:
        return _outcome(request, None, None, exc, waited=False)
    snapshot = await _find_snapshot(run, instance_id, snapshot_id)
    if snapshot is not None and snapshot.status is not z.SnapshotStatus.ACTIVE:
        error = ValueError(
            f"snapshot {snapshot_id} is {snapshot.status_text or snapshot.status.value}, "
            f"not Active: await it first (zomro-async snapshots wait "
            f"{snapshot.instance_id} {snapshot_id})"
        )
        return _outcome(request, target, snapshot, error, waited=False)
    if not request.yes:
        click.echo(_what(target, snapshot_id, snapshot), err=True)
        source = "snapshot" if snapshot is not None else "image"
        question = f"Restore instance {instance_id} from {source} {snapshot_id}?"
        if not click.confirm(question, default=False, err=True):
            raise Declined("not confirmed: nothing was changed")
    access = request.access
    password = _ask_password(instance_id) if access.ask else access.password
    return await _run_restore(run, request, target, snapshot, password)


async def _run_restore(
    run: Run,
    request: _Request,
    target: z.Instance,
    snapshot: z.Snapshot | None,
    password: str | None,
) -> Outcome:
    instance_id, snapshot_id = request.instance_id, request.snapshot_id
    key = (instance_id, None)
    view = run.progress([key], finish=(), title="restoring")

    def show(instance: z.Instance) -> None:
        # A steady state read before the rebuild showed is the old one: not told.
        if instance.status.in_progress or instance.status.failed:
            view.state(key, instance_fields(instance)["status"] or "", at=run.now())

    last: z.Instance | None = target
    with view:
        view.state(key, f"restoring from snapshot {snapshot_id}", at=run.now())
        run.tracker.restoring.add(instance_id)
        try:
            last = await run.client.instances.restore(
                instance_id,
                snapshot_id,
                password=password,
                ssh_key=request.access.ssh_key,
                wait=False,
            )
            run.tracker.restoring.discard(instance_id)
            if request.wait:
                run.tracker.expect_instance(instance_id)
                view.state(key, "restore accepted", at=run.now())
                last = await run.client.instances.wait_settled(
                    instance_id, timeout=request.timeout, on_update=show
                )
                run.tracker.instance_done(instance_id)
        except (z.ZomroError, ValueError, TypeError) as exc:
            run.tracker.restoring.discard(instance_id)
            run.tracker.instance_done(instance_id, exc)  # a timeout: still awaited
            if isinstance(exc, z.InstanceFailed):
                last = exc.instance
            elif isinstance(exc, z.WaitTimeout) and isinstance(exc.last, z.Instance):
                last = exc.last
            view.state(key, "failed", at=run.now(), error=exc, done=True)
            return _outcome(request, last, snapshot, exc, waited=request.wait)
        final = instance_fields(last)["status"] if request.wait else "restore accepted"
        view.state(key, final or "unknown", at=run.now(), done=True)
    return _outcome(request, last, snapshot, None, waited=request.wait)


def _outcome(
    request: _Request,
    instance: z.Instance | None,
    snapshot: z.Snapshot | None,
    error: BaseException | None,
    *,
    waited: bool,
) -> Outcome:
    instance_id, snapshot_id = request.instance_id, request.snapshot_id
    fields: Row = {
        **instance_fields(instance),
        "snapshot_id": snapshot_id,
        "snapshot_name": snapshot.name if snapshot is not None else None,
        "waited": waited,
    }
    table = new_table("Restore", "Instance", "Name", "Snapshot", "Snapshot name", "Status")
    shown = fields["status"]
    if error is None and not waited:
        shown = "accepted"
    table.add_row(
        str(instance_id),
        fields["name"] or "-",
        str(snapshot_id),
        fields["snapshot_name"] or "-",
        status_text(shown, error is None),
    )
    notes = []
    if error is None and not waited:
        notes.append(
            f"the rebuild was accepted; `zomro-async instances wait {instance_id}` awaits "
            "its end (for a while the instance may still read its old status)"
        )
    return Outcome(
        rows=[result_row(instance_id, fields, error)],
        errors=[error],
        table=table,
        notes=notes,
    )
