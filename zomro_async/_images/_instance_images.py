"""What snapshots and backups share, written once: list, create, delete, protect, wait, bulk."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import datetime
import functools
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any, Generic, Protocol, TypeVar

import attrs

from .._awaiting import returns_a_wait
from .._checks import check_id, check_name, unique
from .._core._bulk import (
    BulkJob,
    BulkResult,
    JobSettings,
    OnProgress,
    create_job,
    delete_job,
    render_names,
)
from .._core._context import ResourceContext, ResourceManager
from .._core._converter import instance_image_from_row
from .._core._inferred import StoredFilter
from .._core._poller import Listing, judge_settled
from .._core._reconcile import NewNamedChild
from .._core._row_models import MAX_LISTINGS, RowModels
from .._core._session import filters_cleared_anew, one_operation
from .._exceptions import NotFoundError, WaitTimeout, ZomroError
from .._instances._domain import Instance
from ._client import ImagesManager
from ._domain import InstanceImage

IM = TypeVar("IM", bound=InstanceImage)

_DELETE = "image.delete"


def instance_id_of(instance: int | Instance) -> int:
    """An instance's id, given the id or the `Instance` (never another model's id)."""
    if isinstance(instance, Instance):
        return instance.id
    return check_id(instance, "instance_id")


@attrs.frozen(kw_only=True)
class ImageKind(Generic[IM]):
    """One kind of an instance's images: its model, its list and create functions.

    `what` names one in messages; `create_fields` are sent with each create
    besides `plid`, `name` and `sok` (what the panel sends); `max_name` is the
    longest name the panel takes; `failure` builds the error of one that failed.
    """

    model: type[IM]
    what: str
    list_func: str
    create_func: str
    stored_filter: StoredFilter | None
    max_name: int
    failure: Callable[[str, Any], ZomroError]
    create_fields: Mapping[str, str] = attrs.field(factory=dict)


class Restorer(Protocol):
    """What an image's restore asks of the client's instances."""

    async def restore(
        self,
        instance_id: int,
        image: InstanceImage,
        *,
        password: str | None = ...,
        ssh_key: str | None = ...,
        wait: bool = ...,
        timeout: float = ...,
    ) -> Instance: ...


class InstanceImages(ResourceManager, Generic[IM]):
    """The calls on one kind of an instance's images (`client.snapshots`,
    `client.backups`), written once for both.

    Every wait joins the client's shared poller. Changes of one instance
    (creates, deletes, restores through `client.instances`, of either kind)
    run one at a time.
    """

    def __init__(
        self,
        context: ResourceContext,
        *,
        kind: ImageKind[IM],
        images: ImagesManager,
        restorer: Restorer,
    ) -> None:
        super().__init__(context)
        self._kind = kind
        self._images = images
        self._restorer = restorer
        self._models: RowModels[IM] = RowModels()
        # One listing per instance (the latest ones kept), not one per wait: ten
        # thousand waits on a thousand instances make a thousand.
        self._listing = functools.lru_cache(maxsize=MAX_LISTINGS)(self._new_listing)

    @one_operation
    async def list(self, instance_id: int) -> builtins.list[IM]:
        """Every one of an instance's images of this kind, in the API's order.

        Args:
            instance_id: the Cloud VPS instance (BILLmanager `elid`).

        Returns:
            The models, bound to this client. Pages the server imposes are followed.

        Raises:
            NotFoundError: the instance does not exist (or is not this account's).
            AuthError: the session is refused and cannot be renewed.
            TransportError: the API could not be reached, after retries.
            ResponseError: a row could not be read.
            TypeError, ValueError: `instance_id` is not a positive int (nothing is sent).
        """
        instance_id = check_id(instance_id, "instance_id")
        with filters_cleared_anew():  # a listing the caller reads must be whole
            return await self._listed(instance_id)

    async def _listed(self, instance_id: int) -> builtins.list[IM]:
        # The poll's listing: it may reuse a recent clear (the poller proves absences).
        kind = self._kind
        rows = await self._api.list_rows(
            kind.list_func, {"elid": str(instance_id)}, stored_filter=kind.stored_filter
        )
        return self._models.models(
            instance_id,
            rows,
            lambda row: instance_image_from_row(kind.model, row, instance_id, self),
        )

    def _new_listing(self, instance_id: int) -> Listing[IM]:
        return Listing(
            self._kind.list_func,
            instance_id,
            lambda: self._listed(instance_id),
            what=self._kind.what,
            failure=self._kind.failure,
        )

    @one_operation
    async def get(self, instance_id: int, image_id: int) -> IM:
        """One of an instance's images, as listed now.

        Args:
            instance_id: the instance.
            image_id: the snapshot's or backup's id (the `id` field).

        Raises:
            NotFoundError: it (or the instance) is not listed.
            TypeError, ValueError: an id is not a positive int (nothing is sent).
            ZomroError: as for `list`.
        """
        image_id = check_id(image_id, f"{self._kind.what}_id")
        for image in await self.list(instance_id):  # whole: an absence raises
            if image.id == image_id:
                return image
        raise NotFoundError(
            f"instance {instance_id} has no {self._kind.what} {image_id}",
            type="missed",
            object="elid",
            func=self._kind.list_func,
        )

    @one_operation
    async def create(self, instance_id: int, name: str) -> IM:
        """Start a snapshot (or a backup) of an instance.

        One of the instance's images of this kind still being made is awaited
        first (the API refuses a second one meanwhile). The create is never
        blindly repeated: after a failure that may have acted, the instance is
        listed (for a grace, in case the server is still working on the lost
        request), and an image that appeared with this name is the result; one
        of this name counts as this call's only once one of its own requests
        may have reached the server. Re-sends honour the client's
        `RetryPolicy` (`attempts` and `give_up_after`, the grace included). A
        `ConflictError` is waited out for up to the client's `conflict_timeout`.

        Args:
            instance_id: the instance (`plid`).
            name: the name: non-empty, no control characters, at most 255
                characters for a snapshot and 100 for a backup.

        Returns:
            The new snapshot or backup, usually `SAVING`; `await x.wait_active()` next.

        Raises:
            TypeError, ValueError: bad id or name, raised before anything is sent.
            LimitExceeded: the account's daily (or total) limit refused it.
            ConflictError: the instance stayed busy past `conflict_timeout`.
            NotFoundError: the instance does not exist.
            TransportError: the API could not be reached, and this call made
                nothing of this name: no request of it reached the server, or the
                instance was listed after the last one that may have, and holds none.
            OutcomeUnknown: a request may have acted and the instance could not
                be listed to tell, or the API accepted the create and the listing
                that confirms it failed or never showed it.
        """
        instance_id = check_id(instance_id, "instance_id")
        name = check_name(name, f"a {self._kind.what} name", limit=self._kind.max_name)
        # What its listings do not show decides (which images were there before,
        # whether the lost create made one): each clears the filter itself.
        with filters_cleared_anew():
            return await self._create(instance_id, name)

    async def _create(self, instance_id: int, name: str) -> IM:
        async with self._locks.held(instance_id):
            # One bound on waiting for the instance to be free, however it is spent.
            deadline = self._clock.monotonic() + self._conflict_timeout
            before = await self.list(instance_id)
            busy = [s for s in before if s.status.in_progress]
            if busy:
                await self._settle(instance_id, busy, deadline - self._clock.monotonic())
                before = await self.list(instance_id)
            return await self._reconciler(
                func=self._kind.create_func,
                fields={
                    "plid": str(instance_id),
                    "name": name,
                    **self._kind.create_fields,
                    "sok": "ok",
                },
                list_children=lambda: self.list(instance_id),
                parent_id=instance_id,
                evidence=NewNamedChild(
                    name=name,
                    before={s.id for s in before},
                    describe=f"the {self._kind.what} {name!r} of instance {instance_id}",
                ),
                conflict_deadline=deadline,
            ).run()

    async def _settle(self, instance_id: int, busy: builtins.list[IM], timeout: float) -> None:
        # Queue behind images still being made rather than provoke a conflict;
        # a wait that runs out only means the create meets the conflict path.
        listing = self._listing(instance_id)

        async def settled(image_id: int) -> None:
            with contextlib.suppress(WaitTimeout):
                await self.poller.wait(
                    listing,
                    image_id,
                    timeout=max(0.0, timeout),
                    judge=judge_settled,
                    goal="settled",
                )

        try:
            # A group: a wait that fails ends the others with it.
            async with asyncio.TaskGroup() as group:
                for s in busy:
                    group.create_task(settled(s.id))
        except BaseExceptionGroup as failed:
            first = failed.exceptions[0]
            raise first from first.__cause__

    @one_operation
    async def delete(self, instance_id: int, image_id: int) -> None:
        """Ask the API to delete a snapshot or a backup (`image.delete`).

        It lingers while it is being deleted; `wait_deleted` awaits its
        disappearance. Transient faults are retried (a delete can be repeated):
        a repeat that finds it gone after an attempt whose answer was lost is a
        success, the lost attempt having done the work; so is a delete whose
        retries ran out while the listing shows it being deleted.

        Args:
            instance_id: the instance it belongs to (`plid`).
            image_id: its id (`elid` and `elname`).

        Raises:
            NotFoundError: no such instance or image (on the first attempt).
            InvalidRequestError: the API refused, e.g. it is protected.
            TypeError, ValueError: an id is not a positive int (nothing is sent).
            ZomroError: as for `list`.
        """
        instance_id = check_id(instance_id, "instance_id")
        image_id = check_id(image_id, f"{self._kind.what}_id")
        fields = {
            "plid": str(instance_id),
            "elid": str(image_id),
            "elname": str(image_id),
            "sok": "ok",
        }
        async with self._locks.held(instance_id):
            await self._delete(_DELETE, fields, lambda: self._listed(instance_id), image_id)

    @one_operation
    async def protect(self, instance_id: int, image_id: int) -> None:
        """Protect a snapshot or backup from deletion (`image.edit protected=on`).

        The panel's way: the edit preview, then the commit with every preview
        field sent back. Rotations never touch a protected image (whether the
        API refuses to delete one, and how, is not documented; the emulator
        refuses). Protecting one that is protected already is harmless.

        Raises:
            NotFoundError: no such image, or it is not one of this instance's.
            TypeError, ValueError: an id is not a positive int (nothing is sent).
            ZomroError: as for `list`.
        """
        await self._set_protected(instance_id, image_id, True)

    @one_operation
    async def unprotect(self, instance_id: int, image_id: int) -> None:
        """Lift the protection (`image.edit protected=off`); as `protect`."""
        await self._set_protected(instance_id, image_id, False)

    async def _set_protected(self, instance_id: int, image_id: int, protected: bool) -> None:
        instance_id = check_id(instance_id, "instance_id")
        image_id = check_id(image_id, f"{self._kind.what}_id")
        await self._images.set_protected(image_id, protected, instance_id=instance_id)

    async def restore(
        self,
        image: IM,
        *,
        onto: int | Instance | None = None,
        password: str | None = None,
        ssh_key: str | None = None,
        wait: bool = False,
        timeout: float = 3600.0,
    ) -> Instance:
        """Rebuild an instance from this snapshot or backup: its own instance, or
        `onto` another.

        The same call as `client.instances.restore` (which see): **the
        instance's disk is overwritten**, and the image must be Active.

        Args:
            image: the snapshot or backup to restore.
            onto: the instance to rebuild (an id or an `Instance`); default its own.
            password: the new root password, or
            ssh_key: the uuid of one of the account's SSH keys (exactly one).
            wait: also await the end of the rebuild.
            timeout: seconds that wait may take.

        Returns:
            The rebuilt instance, as `client.instances.restore` returns it.
        """
        model = self._kind.model
        if not isinstance(image, model):
            raise TypeError(f"expected a {model.__name__}, not {type(image).__name__}")
        target = image.instance_id if onto is None else instance_id_of(onto)
        return await self._restorer.restore(
            target, image, password=password, ssh_key=ssh_key, wait=wait, timeout=timeout
        )

    # No operation of its own: it sends nothing, the client's poller lists, and
    # aclose() ends the poller (and its waits). No coroutine at all: the wait is
    # what the caller awaits, and gather() of ten thousand makes no task.
    @returns_a_wait
    def wait_active(
        self,
        instance_id: int,
        image_id: int,
        *,
        timeout: float = 3600.0,
        on_update: Callable[[IM], object] | None = None,
    ) -> Coroutine[Any, Any, IM]:
        """Await a snapshot's (or backup's) `ACTIVE` state, from ids alone (e.g. after a restart).

        The wait joins the client's shared poller: it is checked at once, then
        with the poll backoff; the last check starts `PollPolicy.final_lead`
        before the deadline, which is hard. A listing that fails transiently
        does not end the wait: it polls on until the deadline.

        Inside a running event loop the wait starts at the call, as with
        `asyncio.ensure_future`, and bad arguments raise at once: await it,
        gather it, or hand it to `create_task`; cancelling it ends it.

        Args:
            instance_id: the instance.
            image_id: the snapshot or backup.
            timeout: seconds to wait, on the client's clock; 0 checks once.
            on_update: a plain function, called with each observation while
                still in progress; an exception it raises is logged and ignored.

        Returns:
            It, refreshed and `ACTIVE`.

        Raises:
            SnapshotFailed, BackupFailed: a failed state (Killed, Error), a
                delete, or it disappeared; `.image` is the last state seen.
            WaitTimeout: the deadline passed; `.last` is the last state seen,
                and `__cause__` the last error when the API could not be reached.
            NotFoundError: it (or the instance) was not there.
            AuthError: the session is refused and cannot be renewed.
            TypeError, ValueError: bad ids, timeout or callback (nothing is sent).
        """
        instance_id = check_id(instance_id, "instance_id")
        image_id = check_id(image_id, f"{self._kind.what}_id")
        return self._await_active(self._listing(instance_id), image_id, timeout, on_update)

    # As wait_active: the poller lists, aclose() ends it, the wait starts at the call.
    @returns_a_wait
    def wait_deleted(
        self, instance_id: int, image_id: int, *, timeout: float = 600.0
    ) -> Coroutine[Any, Any, None]:
        """Await the moment a snapshot or backup is no longer listed (after `delete`).

        Raises:
            WaitTimeout: still listed at the deadline; `.last` is its last state.
            TypeError, ValueError: bad ids or timeout (nothing is sent).
        """
        instance_id = check_id(instance_id, "instance_id")
        image_id = check_id(image_id, f"{self._kind.what}_id")
        return self._await_gone(self._listing(instance_id), image_id, timeout)

    def create_many(
        self,
        instance_ids: Iterable[int | Instance],
        name: str,
        *,
        wait: bool = True,
        concurrency: int | None = None,
        timeout: float = 3600.0,
        on_progress: OnProgress | None = None,
    ) -> BulkJob[BulkResult]:
        """One snapshot (or backup) per instance, concurrently, as a `BulkJob`.

        One instance's failure never stops the others and never raises: it is
        that result's `error` (a `LimitExceeded` for an instance past its daily
        limit), with what it reached (if anything) kept in `snapshot`.

        Args:
            instance_ids: the instances (ids or `Instance`s, e.g. all of
                `await client.instances.list()`), each once.
            name: the name, or a template with `{instance_id}`, `{date}` and
                `{time}` (UTC, fixed at the call).
            wait: also await each one until Active.
            concurrency: at most this many instances worked on at once (None:
                all; requests are capped by the client's budget anyway).
            timeout: seconds each wait may take.
            on_progress: called with each `ProgressEvent`.

        Returns:
            A `BulkJob`: `await` it for one `BulkResult` per instance id, in input
            order, or `async for` its progress events first.

        Raises:
            ValueError, TypeError: at the call, before anything is sent: duplicate
                or invalid ids, a bad template, or a name it renders badly.
        """
        ids = unique((instance_id_of(i) for i in instance_ids), "instance id")
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        names = {
            i: check_name(n, f"a {self._kind.what} name", limit=self._kind.max_name)
            for i, n in render_names(name, ids, self._now()).items()
        }
        return create_job(self, names, self._job_settings(timeout, concurrency, on_progress, wait))

    def delete_many(
        self,
        images: Iterable[InstanceImage | tuple[int, int]],
        *,
        wait: bool = True,
        concurrency: int | None = None,
        timeout: float = 600.0,
        on_progress: OnProgress | None = None,
    ) -> BulkJob[BulkResult]:
        """Delete snapshots (or backups) concurrently, as a `BulkJob`.

        Args:
            images: models or `(instance_id, id)` pairs, each once.
            wait: also await each deletion until it is gone.
            concurrency: at most this many deletions at once (None: all).
            timeout: seconds each wait may take.
            on_progress: called with each `ProgressEvent`.

        Returns:
            A `BulkJob` of `BulkResult`s in input order.

        Raises:
            ValueError, TypeError: duplicate or invalid items, before anything is sent.
        """
        model, what = self._kind.model, self._kind.what
        targets: builtins.list[tuple[int, int, InstanceImage | None]] = []
        for item in images:
            if isinstance(item, model):
                targets.append((item.instance_id, item.id, item))
            elif isinstance(item, tuple) and len(item) == 2:
                targets.append(
                    (check_id(item[0], "instance_id"), check_id(item[1], f"{what}_id"), None)
                )
            else:
                raise TypeError(
                    f"delete_many takes {model.__name__}s or (instance_id, {what}_id) pairs"
                )
        unique(((i, s) for i, s, _ in targets), what)
        return delete_job(
            self, targets, self._job_settings(timeout, concurrency, on_progress, wait)
        )

    def _now(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self._clock.time(), datetime.UTC)

    def _job_settings(
        self,
        timeout: float,
        concurrency: int | None,
        on_progress: OnProgress | None,
        wait: bool = True,
    ) -> JobSettings:
        return JobSettings.checked(
            timeout=timeout,
            concurrency=concurrency,
            on_progress=on_progress,
            stamp=self._clock.time,
            context=self._api.operation_context(),
            wait=wait,
        )
