"""The bodies of `snapshots` and `backups` list|create|delete|wait, written once.

As `client.snapshots` and `client.backups` are one `z.InstanceImages` each, the
commands on them are one `ImageCommands` each: it knows the resource, its model,
what its items are called, and the columns of `list` that one kind has and
the other not. The command modules declare the click commands and call these.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import attrs

import zomro_async as z

from ._common import (
    Body,
    Kind,
    Outcome,
    Row,
    Run,
    Settings,
    by_id,
    image_fields,
    last_seen,
    new_table,
    or_error,
    result_row,
    run_command,
    status_text,
    unique_ids,
    usage,
)
from ._output import ResultTable
from ._progress import Items, follow

IM = TypeVar("IM", bound=z.InstanceImage)


@attrs.frozen(kw_only=True)
class Column(Generic[IM]):
    """A column of `list` beyond the common ones: its `title` in the table (after
    Name), its `key` in the JSON rows (after "status"), and its `value` for an
    image (None: unknown, `-` in the table)."""

    title: str
    key: str
    value: Callable[[IM], str | None]


@attrs.frozen(kw_only=True)
class ImageCommands(Generic[IM]):
    """The commands on one kind of an instance's images: `resource` picks it from
    the client (`client.snapshots`), `model` makes a stand-in from ids, `items`
    names the items (in tables, progress lines, JSON keys and resume commands)."""

    resource: Callable[[z.ZomroClient], z.InstanceImages[IM]]
    model: type[IM]
    items: Items
    columns: Sequence[Column[IM]] = ()

    def run(self, settings: Settings, command: str, body: Body, *, creates: bool = False) -> None:
        """`run_command` of `<group> <command>` (`snapshots list`), naming the items."""
        group = self.items.group
        run_command(settings, f"{group} {command}", body, creates=creates, items=self.items)

    def fields(self, image: z.InstanceImage | None, image_id: int | None = None) -> Row:
        """The id (`snapshot_id`, `backup_id`), `name` and `status` keys of a JSON row."""
        return image_fields(image, image_id, id_key=self.items.id_key)

    @property
    def _plural(self) -> str:
        return self.items.group  # snapshots, backups

    def _table(self, done: str, *more: str) -> ResultTable:
        """A table titled `Snapshots <done>` (`Snapshots` when `done` is empty), of
        Instance, Snapshot, Name, then `more`."""
        title = f"{self._plural.capitalize()} {done}".rstrip()
        return new_table(title, "Instance", self.items.second.capitalize(), "Name", *more)

    # -- list --------------------------------------------------------------------

    async def list(self, run: Run, instances: Sequence[int]) -> Outcome:
        """The images of each instance, one result an image; an instance that
        cannot be listed has one failed result. An id given twice is a usage error."""
        ids = usage(lambda: unique_ids(instances, "an instance id"))
        images = self.resource(run.client)
        found = await asyncio.gather(*(or_error(images.list(i)) for i in ids))
        titles = [c.title for c in self.columns]
        table = self._table("", *titles, "Status", "Created", "Protected")
        rows: list[Row] = []
        for instance_id, listing in zip(ids, found, strict=True):
            if isinstance(listing, z.ZomroError):
                unknown = dict.fromkeys(c.key for c in self.columns)
                rows.append(
                    result_row(
                        instance_id,
                        self.fields(None),
                        listing,
                        **unknown,
                        created_date=None,
                        protected=None,
                    )
                )
                failed = status_text("failed", ok=False)
                table.add_row(str(instance_id), "-", "-", *["-"] * len(titles), failed, "-", "-")
                continue
            if not listing:
                none = f"(no {self._plural})"
                table.add_row(str(instance_id), "-", none, placeholder=True)
            for image in listing:
                created = image.created.isoformat() if image.created else None
                more = {c.key: c.value(image) for c in self.columns}
                rows.append(
                    result_row(
                        instance_id,
                        self.fields(image),
                        None,
                        **more,
                        created_date=created,
                        protected=image.protected,
                    )
                )
                table.add_row(
                    str(instance_id),
                    str(image.id),
                    image.name,
                    *[value or "-" for value in more.values()],
                    status_text(image.status.value),
                    created or "-",
                    "yes" if image.protected else "",
                )
        errors = [f if isinstance(f, z.ZomroError) else None for f in found]
        return Outcome(rows=rows, errors=list(errors), table=table)

    # -- create ------------------------------------------------------------------

    async def create(
        self,
        run: Run,
        instances: Sequence[int],
        all_instances: bool,
        name: str,
        wait: bool,
        timeout: float,
    ) -> Outcome:
        """One image per instance (the ids, or `--all`), over `create_many`; with
        `wait`, each awaited until Active."""
        images = self.resource(run.client)
        results = await run.over_instances(
            instances,
            all_instances,
            lambda targets: images.create_many(
                targets, name, wait=wait, timeout=timeout, on_progress=run.tracker.record
            ),
            finish={Kind.ACTIVE if wait else Kind.CREATED},
            title=f"creating {self._plural}",
        )
        table = self._table("created", "Status")
        for r in results:
            fields = self.fields(r.snapshot, r.snapshot_id)
            table.add_row(
                str(r.instance_id),
                str(r.snapshot_id or "-"),
                fields["name"] or "-",
                status_text(fields["status"], r.ok),
            )
        return Outcome(
            rows=[result_row(r.instance_id, self.fields(r.snapshot), r.error) for r in results],
            errors=[r.error for r in results],
            table=table,
        )

    # -- delete ------------------------------------------------------------------

    async def delete(
        self, run: Run, instance: int, image_ids: Sequence[int], wait: bool, timeout: float
    ) -> Outcome:
        """Delete images of an instance, over `delete_many`; with `wait`, each
        awaited until gone."""
        images = self.resource(run.client)
        # Before the listing: a repeat is refused with nothing sent.
        usage(lambda: unique_ids(image_ids, f"a {self.items.second} id"))
        listed = await by_id(images.list(instance))  # for the names, and ids in the progress
        # Unlisted ids go too, so the API has its say; a stand-in gives their events an id.
        targets = [listed.get(i) or self.model(id=i, instance_id=instance) for i in image_ids]
        job = usage(
            lambda: images.delete_many(
                targets, wait=wait, timeout=timeout, on_progress=run.tracker.record
            )
        )
        view = run.progress(
            [(instance, i) for i in image_ids],
            finish={Kind.DELETED if wait else Kind.DELETING},
            title=f"deleting {self._plural}",
        )
        results = await follow(job, view)
        done = "deleted" if wait else "deleting"
        table = self._table("deleted", "Status")
        rows = []
        for r in results:
            fields = self.fields(listed.get(r.snapshot_id or 0), r.snapshot_id)
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

    # -- wait --------------------------------------------------------------------

    async def wait(
        self, run: Run, instance: int, image_ids: Sequence[int], deleted: bool, timeout: float
    ) -> Outcome:
        """Await images of an instance, by id: until Active, or gone with `deleted`."""
        images = self.resource(run.client)
        ids = usage(lambda: unique_ids(image_ids, f"a {self.items.second} id"))
        # Waits ride out an outage until their deadline; an API that cannot be reached
        # at all when the command starts is told at once instead.
        with contextlib.suppress(z.NotFoundError, z.InvalidRequestError):
            await images.list(instance)
        goal = Kind.DELETED if deleted else Kind.ACTIVE
        view = run.progress([(instance, i) for i in ids], finish={goal}, title="waiting")

        def emit(kind: Kind, image: z.InstanceImage, error: BaseException | None = None) -> None:
            event = run.event(kind, instance, image, error)
            run.tracker.record(event)
            view.show(event)

        async def one(image_id: int) -> tuple[Row, z.ZomroError | None]:
            placeholder = self.model(id=image_id, instance_id=instance)
            try:
                if deleted:
                    await images.wait_deleted(instance, image_id, timeout=timeout)
                    emit(Kind.DELETED, placeholder)
                    return {**self.fields(None, image_id), "status": "deleted"}, None
                active = await images.wait_active(
                    instance,
                    image_id,
                    timeout=timeout,
                    on_update=lambda image: emit(Kind.SAVING, image),
                )
                emit(Kind.ACTIVE, active)
                return self.fields(active), None
            except z.ZomroError as exc:
                last = last_seen(exc, self.model)
                emit(Kind.FAILED, last or placeholder, exc)
                return self.fields(last, image_id), exc

        for image_id in ids:  # every one, before any wait can be interrupted
            run.tracker.expect(instance, image_id, goal)
        with view:
            found = await asyncio.gather(*(one(i) for i in ids))
        table = self._table("awaited", "Status")
        for fields, error in found:
            table.add_row(
                str(instance),
                str(fields[self.items.id_key]),
                fields["name"] or "-",
                status_text(fields["status"], error is None),
            )
        return Outcome(
            rows=[result_row(instance, fields, error) for fields, error in found],
            errors=[error for _, error in found],
            table=table,
        )
