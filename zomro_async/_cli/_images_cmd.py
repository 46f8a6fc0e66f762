"""`zomro-async images list|copy|wait`: the account's images, and copies to another region."""

from __future__ import annotations

import asyncio
from typing import Protocol

import click

import zomro_async as z

from ._common import (
    API_ID,
    JSON_HELP,
    WAIT_OPTION,
    Body,
    NameType,
    Outcome,
    Row,
    Run,
    Settings,
    asked,
    await_later,
    common_options,
    error_json,
    image_fields,
    last_seen,
    must_list,
    new_table,
    run_command,
    status_text,
    timeout_option,
    unique_ids,
    usage,
)
from ._progress import IMAGES, Key
from ._sandbox import SANDBOX_HELP

IMAGE_ID = API_ID
COPY_TIMEOUT = 4 * 3600.0

IMAGE_JSON_HELP = """\b
An image's result has no "instance_id": "image_id", "name", "status" (its
state in lower case: saving, active, killed, ...; null when unknown),
"image_type" (image, snapshot, backup, or null), "region", "created_date"
(YYYY-MM-DD or null), "protected", "ok" and "error". A copy's result has
"image_id" (the image copied) and "copy_id" (the copy, null when none was
made); "name", "status", "image_type" and "region" are the copy's."""
EPILOG = f"{JSON_HELP}\n\n{IMAGE_JSON_HELP}\n\n{SANDBOX_HELP}"


@click.group()
def images() -> None:
    """List the account's images (snapshots, backups, copies), copy them to another
    region, and await the copies."""


def _run(settings: Settings, command: str, body: Body) -> None:
    run_command(settings, f"images {command}", body, items=IMAGES)


def _image_row(image: z.Image | None, image_id: int | None, error: BaseException | None) -> Row:
    """An image's JSON row (all null but its id when it was not seen)."""
    fields = image_fields(image, image_id, id_key="image_id")
    if image is None:
        more: Row = dict.fromkeys(("image_type", "region", "created_date", "protected"))
    else:
        more = {
            "image_type": _type_of(image),
            "region": image.region,
            "created_date": image.created.isoformat() if image.created else None,
            "protected": image.protected,
        }
    return {**fields, **more, "ok": error is None, "error": error_json(error)}


def _type_of(image: z.Image) -> str | None:
    return None if image.image_type is z.ImageType.UNKNOWN else image.image_type.value


# -- list ------------------------------------------------------------------------


@images.command("list", epilog=EPILOG)
@common_options
def list_(settings: Settings) -> None:
    """Every image of the account: id, name, type, region, status, protection."""
    _run(settings, "list", _list)


async def _list(run: Run) -> Outcome:
    listed = await must_list(run.client.images.list(), "the images of the account")
    table = new_table("Images", "Image", "Name", "Type", "Region", "Status", "Created", "Protected")
    for image in listed:
        fields = _image_row(image, None, None)
        table.add_row(
            str(image.id),
            image.name or "-",
            fields["image_type"] or "-",
            image.region or "-",
            status_text(fields["status"]),
            fields["created_date"] or "-",
            "yes" if image.protected else "",
        )
    if not listed:
        table.add_row("-", "(no images)", placeholder=True)
    return Outcome(
        rows=[_image_row(i, None, None) for i in listed], errors=[None] * len(listed), table=table
    )


# -- copy ------------------------------------------------------------------------


@images.command(
    epilog=f"{EPILOG}\n\nAn unknown REGION is a usage error (exit status 2) that names "
    "the regions offered; nothing is copied."
)
@click.argument("image_id", metavar="IMAGE", type=IMAGE_ID)
@click.option(
    "--region",
    required=True,
    metavar="REGION",
    help="The region to copy to, by name (e.g. Netherlands-1; any case) or key; "
    "not the image's own.",
)
@click.option(
    "--name",
    type=NameType("a copy's name"),
    help="The copy's name (at most 100 characters); default the image's.",
)
@WAIT_OPTION
@timeout_option(COPY_TIMEOUT)
@common_options
def copy(
    settings: Settings,
    image_id: int,
    region: str,
    name: str | None,
    wait: bool,
    timeout: float,
) -> None:
    """Copy an image of the account (a snapshot, a backup) to another region, e.g. for
    disaster recovery; --wait awaits the copy until Active (else it prints the
    `images wait` command that does).

    A copy may take hours (the default --timeout is 4 h). Ctrl-C stops the wait
    (not the copy) and prints the `images wait` command that resumes it.
    """
    _run(settings, "copy", lambda run: _copy(run, image_id, region, name, wait, timeout))


async def _copy(
    run: Run, image_id: int, region: str, name: str | None, wait: bool, timeout: float
) -> Outcome:
    key: Key = (image_id, None)
    view = run.progress([key], finish=(), title="copying")
    made: z.Image | None = None
    error: z.ZomroError | None = None

    def show(image: z.Image, *, done: bool = False, failure: BaseException | None = None) -> None:
        state = "failed" if failure else image_fields(image)["status"] or "unknown"
        view.state(key, state, at=run.now(), label=(image_id, image.id), error=failure, done=done)

    with view:
        run.tracker.notes[key] = (
            f"a copy of image {image_id} sent just before the interruption may yet appear "
            f"in {region}: see images list"
        )
        try:
            made = await asked(run.client.images.copy(image_id, region=region, name=name))
        except z.ZomroError as exc:
            error = exc
            view.state(key, "failed", at=run.now(), error=exc, done=True)
        if made is not None:
            run.tracker.notes[key] = (
                f"the copy {made.id} of image {image_id} was made in {made.region or region}"
            )
            run.tracker.awaited[key] = made.id  # to resume, after Ctrl-C or without --wait
            show(made, done=not wait)
            if wait:
                made, error = await _await(run, made.id, timeout, show)
                run.tracker.stop_awaiting(key, error)  # a timeout: still awaited
        run.tracker.notes.pop(key, None)
    fields = _image_row(made, None, error)
    row = {
        "image_id": image_id,
        "copy_id": fields.pop("image_id"),
        **fields,
    }
    if made is None:
        row["name"] = name
        row["region"] = region
    table = new_table("Image copied", "Image", "Copy", "Name", "Region", "Status")
    table.add_row(
        str(image_id),
        str(row["copy_id"] or "-"),
        row["name"] or "-",
        row["region"] or "-",
        status_text(row["status"], error is None),
    )
    notes = await_later(run, [error], "the copy is being made", "the copies are being made")
    return Outcome(rows=[row], errors=[error], table=table, notes=notes)


class _Show(Protocol):
    """How an image's state is shown: `show(image, done=..., failure=...)`."""

    def __call__(
        self, image: z.Image, *, done: bool = False, failure: BaseException | None = None
    ) -> None: ...


async def _await(
    run: Run, image_id: int, timeout: float, show: _Show
) -> tuple[z.Image | None, z.ZomroError | None]:
    """Await an image until Active: the last state seen of it, and the error if it failed."""
    try:
        active = await run.client.images.wait_active(image_id, timeout=timeout, on_update=show)
    except z.ZomroError as exc:
        last = last_seen(exc, z.Image)
        show(last or z.Image(id=image_id), done=True, failure=exc)
        return last, exc
    show(active, done=True)
    return active, None


# -- wait ------------------------------------------------------------------------


@images.command(epilog=EPILOG)
@click.argument("image_ids", metavar="IMAGE...", nargs=-1, required=True, type=IMAGE_ID)
@timeout_option(COPY_TIMEOUT)
@common_options
def wait(settings: Settings, image_ids: tuple[int, ...], timeout: float) -> None:
    """Await images of the account, by id, until Active: copies made by `images copy`
    without --wait, or one whose wait was stopped with Ctrl-C."""
    _run(settings, "wait", lambda run: _wait(run, image_ids, timeout))


async def _wait(run: Run, image_ids: tuple[int, ...], timeout: float) -> Outcome:
    ids = usage(lambda: unique_ids(image_ids, "an image id"))
    # Waits ride out an outage until their deadline; an API that cannot be reached
    # at all when the command starts is told at once instead.
    await _listed_once(run)
    view = run.progress([(i, None) for i in ids], finish=(), title="waiting")

    async def one(image_id: int) -> tuple[z.Image | None, z.ZomroError | None]:
        key: Key = (image_id, None)

        def show(
            image: z.Image, *, done: bool = False, failure: BaseException | None = None
        ) -> None:
            state = "failed" if failure else image_fields(image)["status"] or "unknown"
            view.state(key, state, at=run.now(), error=failure, done=done)

        run.tracker.awaited[key] = image_id
        found = await _await(run, image_id, timeout, show)
        # Still awaited after Ctrl-C, a timeout or an outage: to resume.
        run.tracker.stop_awaiting(key, found[1])
        return found

    with view:
        found = await asyncio.gather(*(one(i) for i in ids))
    table = new_table("Images awaited", "Image", "Name", "Region", "Status")
    rows = []
    for image_id, (image, error) in zip(ids, found, strict=True):
        row = _image_row(image, image_id, error)
        rows.append(row)
        table.add_row(
            str(image_id),
            row["name"] or "-",
            row["region"] or "-",
            status_text(row["status"], error is None),
        )
    return Outcome(rows=rows, errors=[e for _, e in found], table=table)


async def _listed_once(run: Run) -> None:
    try:
        await run.client.images.list()
    except (z.AuthError, z.TransportError):
        raise
    except z.ZomroError:
        pass  # each wait then tells what is wrong
