"""Snapshot operations, spoken in `func` names and models: list, get, create, delete, wait."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import datetime
from collections.abc import Callable, Iterable
from typing import Protocol

from .._checks import (
    check_callback,
    check_id,
    check_name,
    check_timeout,
    unique,
)
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
from .._core._converter import snapshot_from_row
from .._core._inferred import SNAPSHOTS_FILTER
from .._core._poller import (
    Listing,
    judge_active,
    judge_deleted,
    judge_settled,
)
from .._core._reconcile import NewNamedChild, Reconciler
from .._core._rotation import RotationResult, rotate_job
from .._core._session import filters_cleared_anew, one_operation
from .._exceptions import NotFoundError, WaitTimeout
from .._images._client import ImagesManager
from .._instances._domain import Instance
from ._domain import Snapshot

_LIST = "instances.snapshots"
_CREATE = "instances.snapshots.edit"
_DELETE = "image.delete"


def instance_id_of(instance: int | Instance) -> int:
    """An instance's id, given the id or the `Instance` (never another model's id)."""
    if isinstance(instance, Instance):
        return instance.id
    return check_id(instance, "instance_id")


def _not_listed(instance_id: int, snapshot_id: int) -> NotFoundError:
    return NotFoundError(
        f"instance {instance_id} has no snapshot {snapshot_id}",
        type="missed",
        object="elid",
        func=_LIST,
    )


class Restorer(Protocol):
    """What a snapshot's restore asks of the client's instances."""

    async def restore(
        self,
        instance_id: int,
        image: Snapshot,
        *,
        password: str | None = ...,
        ssh_key: str | None = ...,
        wait: bool = ...,
        timeout: float = ...,
    ) -> Instance: ...


class SnapshotsManager(ResourceManager):
    """`client.snapshots`: the snapshot calls of one client.

    Every wait joins the client's shared poller. Mutating calls (create,
    delete, and restores through `client.instances`) on one instance run one
    at a time.
    """

    def __init__(
        self, context: ResourceContext, *, images: ImagesManager, restorer: Restorer
    ) -> None:
        super().__init__(context)
        self._images = images
        self._restorer = restorer

    @one_operation
    async def list(self, instance_id: int) -> builtins.list[Snapshot]:
        """Every snapshot of an instance (`instances.snapshots`), in the API's order.

        Args:
            instance_id: the Cloud VPS instance (BILLmanager `elid`).

        Returns:
            The snapshots, bound to this client. Pages the server imposes are followed.

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

    async def _listed(self, instance_id: int) -> builtins.list[Snapshot]:
        # The poll's listing: it may reuse a recent clear (the poller proves absences).
        rows = await self._api.list_rows(
            _LIST, {"elid": str(instance_id)}, stored_filter=SNAPSHOTS_FILTER
        )
        return [snapshot_from_row(row, instance_id, self) for row in rows]

    def _listing(self, instance_id: int) -> Listing[Snapshot]:
        return Listing(_LIST, instance_id, lambda: self._listed(instance_id), what="snapshot")

    @one_operation
    async def get(self, instance_id: int, snapshot_id: int) -> Snapshot:
        """One snapshot of an instance, as listed now.

        Args:
            instance_id: the instance.
            snapshot_id: the snapshot (BILLmanager id, the `id` field).

        Returns:
            The snapshot, bound to this client.

        Raises:
            NotFoundError: the snapshot (or the instance) is not listed.
            TypeError, ValueError: an id is not a positive int (nothing is sent).
            ZomroError: as for `list`.
        """
        snapshot_id = check_id(snapshot_id, "snapshot_id")
        for snapshot in await self.list(instance_id):  # whole: an absence raises
            if snapshot.id == snapshot_id:
                return snapshot
        raise _not_listed(instance_id, snapshot_id)

    @one_operation
    async def create(self, instance_id: int, name: str) -> Snapshot:
        """Start a snapshot of an instance (`instances.snapshots.edit`).

        A snapshot of the instance still being taken is awaited first (the API
        refuses a second one meanwhile). The create is never blindly repeated:
        after a failure that may have acted, the instance is listed (for a
        grace, in case the server is still working on the lost request), and a
        snapshot that appeared with this name is the result; a snapshot of this
        name counts as this call's only once one of its own requests may have
        reached the server. Re-sends honour the client's `RetryPolicy`
        (`attempts` and `give_up_after`, the grace included). A
        `ConflictError` is waited out for up to the client's `conflict_timeout`.

        Args:
            instance_id: the instance to snapshot (`plid`).
            name: the snapshot's name: non-empty, at most 255 characters, no
                control characters.

        Returns:
            The new snapshot, usually `SAVING`; `await snapshot.wait_active()` next.

        Raises:
            TypeError, ValueError: bad id or name, raised before anything is sent.
            ConflictError: the instance stayed busy past `conflict_timeout`.
            NotFoundError: the instance does not exist.
            TransportError: the API could not be reached, and this call made no
                snapshot of this name: no request of it reached the server, or
                the instance was listed after the last one that may have, and
                holds none.
            OutcomeUnknown: a request may have acted and the instance could not
                be listed to tell, or the API accepted the create and the listing
                that confirms it failed or never showed it.
        """
        instance_id = check_id(instance_id, "instance_id")
        name = check_name(name)
        # What its listings do not show decides (which snapshots were there
        # before, whether the lost create made one): each clears the filter itself.
        with filters_cleared_anew():
            return await self._create(instance_id, name)

    async def _create(self, instance_id: int, name: str) -> Snapshot:
        async with self._locks.held(instance_id):
            # One bound on waiting for the instance to be free, however it is spent.
            deadline = self._clock.monotonic() + self._conflict_timeout
            before = await self.list(instance_id)
            busy = [s for s in before if s.status.in_progress]
            if busy:
                await self._settle(instance_id, busy, deadline - self._clock.monotonic())
                before = await self.list(instance_id)
            return await Reconciler(
                self._api,
                func=_CREATE,
                fields={"plid": str(instance_id), "name": name, "sok": "ok"},
                list_children=lambda: self.list(instance_id),
                parent_id=instance_id,
                evidence=NewNamedChild(
                    name=name,
                    before={s.id for s in before},
                    what="snapshot",
                    parent_id=instance_id,
                ),
                clock=self._clock,
                retry=self._retry,
                poll=self._poll,
                grace=self._grace,
                conflict_deadline=deadline,
            ).run()

    async def _settle(
        self, instance_id: int, busy: builtins.list[Snapshot], timeout: float
    ) -> None:
        # Queue behind snapshots still being taken rather than provoke a conflict;
        # a wait that runs out only means the create meets the conflict path.
        listing = self._listing(instance_id)

        async def settled(snapshot_id: int) -> None:
            with contextlib.suppress(WaitTimeout):
                await self.poller.wait(
                    listing,
                    snapshot_id,
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
    async def delete(self, instance_id: int, snapshot_id: int) -> None:
        """Ask the API to delete a snapshot (`image.delete`).

        The snapshot lingers while it is being deleted; `wait_deleted` awaits its
        disappearance. Transient faults are retried (a delete can be repeated):
        a repeat that finds the snapshot gone after an attempt whose answer was
        lost is a success, the lost attempt having done the work.

        Args:
            instance_id: the instance the snapshot belongs to (`plid`).
            snapshot_id: the snapshot (`elid` and `elname`).

        Raises:
            NotFoundError: no such instance or snapshot (on the first attempt).
            InvalidRequestError: the API refused, e.g. the snapshot is protected.
            TypeError, ValueError: an id is not a positive int (nothing is sent).
            ZomroError: as for `list`.
        """
        instance_id = check_id(instance_id, "instance_id")
        snapshot_id = check_id(snapshot_id, "snapshot_id")
        fields = {
            "plid": str(instance_id),
            "elid": str(snapshot_id),
            "elname": str(snapshot_id),
            "sok": "ok",
        }
        async with self._locks.held(instance_id):
            # A repeat that finds it gone means the attempt whose answer was lost did it.
            await self._api.call(_DELETE, fields, done_if_gone=True)

    @one_operation
    async def protect(self, instance_id: int, snapshot_id: int) -> None:
        """Protect a snapshot from deletion (`image.edit protected=on`).

        The panel's way: the edit preview, then the commit with every preview
        field sent back. `rotate` never touches a protected snapshot (whether
        the API refuses to delete one, and how, is not documented; the
        emulator refuses). Protecting one that is protected already is harmless.

        Raises:
            NotFoundError: no such snapshot, or it is not one of this instance's.
            TypeError, ValueError: an id is not a positive int (nothing is sent).
            ZomroError: as for `list`.
        """
        await self._set_protected(instance_id, snapshot_id, True)

    @one_operation
    async def unprotect(self, instance_id: int, snapshot_id: int) -> None:
        """Lift a snapshot's protection (`image.edit protected=off`); as `protect`."""
        await self._set_protected(instance_id, snapshot_id, False)

    async def _set_protected(self, instance_id: int, snapshot_id: int, protected: bool) -> None:
        instance_id = check_id(instance_id, "instance_id")
        snapshot_id = check_id(snapshot_id, "snapshot_id")
        await self._images.set_protected(snapshot_id, protected, instance_id=instance_id)

    async def restore(
        self,
        snapshot: Snapshot,
        *,
        onto: int | Instance | None = None,
        password: str | None = None,
        ssh_key: str | None = None,
        wait: bool = False,
        timeout: float = 3600.0,
    ) -> Instance:
        """Rebuild an instance from this snapshot: its own instance, or `onto` another.

        The same call as `client.instances.restore` (which see): **the
        instance's disk is overwritten**, and the snapshot must be Active.

        Args:
            snapshot: the snapshot to restore.
            onto: the instance to rebuild (an id or an `Instance`); default the
                snapshot's own.
            password: the new root password, or
            ssh_key: the uuid of one of the account's SSH keys (exactly one).
            wait: also await the end of the rebuild.
            timeout: seconds that wait may take.

        Returns:
            The rebuilt instance, as `client.instances.restore` returns it.
        """
        if not isinstance(snapshot, Snapshot):
            raise TypeError(f"snapshot must be a Snapshot, not {type(snapshot).__name__}")
        target = snapshot.instance_id if onto is None else instance_id_of(onto)
        return await self._restorer.restore(
            target, snapshot, password=password, ssh_key=ssh_key, wait=wait, timeout=timeout
        )

    @one_operation
    async def wait_active(
        self,
        instance_id: int,
        snapshot_id: int,
        *,
        timeout: float = 3600.0,
        on_update: Callable[[Snapshot], object] | None = None,
    ) -> Snapshot:
        """Await a snapshot's `ACTIVE` state, from ids alone (e.g. after a restart).

        The wait joins the client's shared poller: it is checked at once, then
        with the poll backoff; the last check starts `PollPolicy.final_lead`
        before the deadline, which is hard. A listing that fails transiently
        does not end the wait: it polls on until the deadline.

        Args:
            instance_id: the instance.
            snapshot_id: the snapshot.
            timeout: seconds to wait, on the client's clock; 0 checks once.
            on_update: a plain function, called with each observation while
                still in progress; an exception it raises is logged and ignored.

        Returns:
            The snapshot, refreshed and `ACTIVE`.

        Raises:
            SnapshotFailed: a failed state (Killed, Error), a delete, or the
                snapshot disappeared; `.snapshot` is the last state seen.
            WaitTimeout: the deadline passed; `.last` is the last state seen,
                and `__cause__` the last error when the API could not be reached.
            NotFoundError: the snapshot (or the instance) was not there.
            AuthError: the session is refused and cannot be renewed.
            TypeError, ValueError: bad ids, timeout or callback (nothing is sent).
        """
        instance_id = check_id(instance_id, "instance_id")
        snapshot_id = check_id(snapshot_id, "snapshot_id")
        listing = self._listing(instance_id)
        return await self.poller.wait(
            listing,
            snapshot_id,
            timeout=check_timeout(timeout),
            judge=judge_active(listing, snapshot_id),
            goal="Active",
            on_update=check_callback(on_update, "on_update"),
        )

    @one_operation
    async def wait_deleted(
        self, instance_id: int, snapshot_id: int, *, timeout: float = 600.0
    ) -> None:
        """Await the moment a snapshot is no longer listed (after `delete`).

        Args:
            instance_id: the instance.
            snapshot_id: the snapshot.
            timeout: seconds to wait, on the client's clock.

        Raises:
            WaitTimeout: still listed at the deadline; `.last` is its last state.
            TypeError, ValueError: bad ids or timeout (nothing is sent).
        """
        instance_id = check_id(instance_id, "instance_id")
        snapshot_id = check_id(snapshot_id, "snapshot_id")
        await self.poller.wait(
            self._listing(instance_id),
            snapshot_id,
            timeout=check_timeout(timeout),
            judge=judge_deleted,
            goal="deleted",
        )

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
        """One snapshot per instance, concurrently, as a `BulkJob`.

        One instance's failure never stops the others and never raises: it is
        that result's `error`, with the snapshot it reached (if any) kept.

        Args:
            instance_ids: the instances (ids or `Instance`s, e.g. all of
                `await client.instances.list()`), each once.
            name: the name, or a template with `{instance_id}`, `{date}` and
                `{time}` (UTC, fixed at the call).
            wait: also await each snapshot until Active.
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
        now = datetime.datetime.fromtimestamp(self._clock.time(), datetime.UTC)
        names = {i: check_name(n) for i, n in render_names(name, ids, now).items()}
        return create_job(self, names, self._job_settings(timeout, concurrency, on_progress, wait))

    def delete_many(
        self,
        snapshots: Iterable[Snapshot | tuple[int, int]],
        *,
        wait: bool = True,
        concurrency: int | None = None,
        timeout: float = 600.0,
        on_progress: OnProgress | None = None,
    ) -> BulkJob[BulkResult]:
        """Delete snapshots concurrently, as a `BulkJob`.

        Args:
            snapshots: `Snapshot`s or `(instance_id, snapshot_id)` pairs, each once.
            wait: also await each deletion until the snapshot is gone.
            concurrency: at most this many deletions at once (None: all).
            timeout: seconds each wait may take.
            on_progress: called with each `ProgressEvent`.

        Returns:
            A `BulkJob` of `BulkResult`s in input order.

        Raises:
            ValueError, TypeError: duplicate or invalid items, before anything is sent.
        """
        targets: builtins.list[tuple[int, int, Snapshot | None]] = []
        for item in snapshots:
            if isinstance(item, Snapshot):
                targets.append((item.instance_id, item.id, item))
            elif isinstance(item, tuple) and len(item) == 2:
                targets.append(
                    (check_id(item[0], "instance_id"), check_id(item[1], "snapshot_id"), None)
                )
            else:
                raise TypeError("delete_many takes Snapshots or (instance_id, snapshot_id) pairs")
        unique(((i, s) for i, s, _ in targets), "snapshot")
        return delete_job(
            self, targets, self._job_settings(timeout, concurrency, on_progress, wait)
        )

    def rotate(
        self,
        instance_ids: Iterable[int | Instance],
        *,
        keep: int,
        prefix: str = "auto-",
        dry_run: bool = False,
        timeout: float = 3600.0,
        concurrency: int | None = None,
        on_progress: OnProgress | None = None,
    ) -> BulkJob[RotationResult]:
        """The scheduled-snapshot job, as a `BulkJob`.

        Per instance: create `{prefix}{date}-{time}`, await Active, and only then
        delete the oldest snapshots named with `prefix` (failed ones first) until
        `keep` remain, the new one included; await the deletes. Snapshots without
        the prefix, or `protected`, are never touched nor counted. Nothing is
        deleted on an instance whose new snapshot failed. One instance's failure
        never stops the others.

        Args:
            instance_ids: the instances (ids or `Instance`s), each once.
            keep: how many prefixed snapshots remain, the new one included (>= 1).
            prefix: the name prefix that marks rotated snapshots (non-empty).
            dry_run: change nothing; each result shows the plan.
            timeout: seconds each wait may take.
            concurrency: at most this many instances at once (None: all).
            on_progress: called with each `ProgressEvent`.

        Returns:
            A `BulkJob` of `RotationResult`s, one per instance, in input order.

        Raises:
            ValueError, TypeError: bad ids, keep or prefix, before anything is sent.
        """
        if isinstance(keep, bool) or not isinstance(keep, int):
            raise TypeError("keep must be an int")
        if keep < 1:
            raise ValueError("keep must be at least 1: the new snapshot is always kept")
        if not isinstance(prefix, str) or not prefix.strip():
            raise ValueError("a rotation needs a non-empty prefix, or it would touch everything")
        ids = unique((instance_id_of(i) for i in instance_ids), "instance id")
        now = datetime.datetime.fromtimestamp(self._clock.time(), datetime.UTC)
        template = prefix.replace("{", "{{").replace("}", "}}") + "{date}-{time}"
        names = {i: check_name(n) for i, n in render_names(template, ids, now).items()}
        return rotate_job(
            self,
            names,
            keep=keep,
            prefix=prefix,
            dry_run=bool(dry_run),
            settings=self._job_settings(timeout, concurrency, on_progress),
        )

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
