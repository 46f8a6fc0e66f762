"""Snapshot operations, spoken in `func` names and models: list, get, create, delete, wait."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import datetime
import functools
import math
import unicodedata
from collections.abc import AsyncIterator, Callable, Iterable

from . import _document
from ._bulk import (
    BulkJob,
    BulkResult,
    OnProgress,
    RotationResult,
    create_job,
    delete_job,
    render_names,
    rotate_job,
    unique,
)
from ._clock import Clock
from ._converter import snapshot_from_row
from ._exceptions import (
    ConflictError,
    NotFoundError,
    ResponseError,
    SnapshotFailed,
    TransportError,
    WaitTimeout,
)
from ._models import Snapshot, SnapshotStatus
from ._poller import Poller, PollPolicy
from ._retry import RetryPolicy, is_retryable
from ._session import ApiSession

MAX_NAME_LENGTH = 255
_MAX_ID = 2**63 - 1
# Listing a paged instance again when its pages disagreed (rows moved meanwhile).
_MAX_RELISTS = 3


def check_id(value: object, what: str) -> int:
    """`value` as an API id: a positive int (a bool is not one).

    Raises `TypeError` or `ValueError` otherwise.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not 0 < value <= _MAX_ID:
        raise ValueError(f"{what} must be a positive integer, got {value}")
    return value


def check_name(value: object) -> str:
    """`value` as a snapshot name: non-empty, at most 255 characters, no control characters."""
    if not isinstance(value, str):
        raise TypeError(f"a snapshot name must be a str, not {type(value).__name__}")
    if not value.strip():
        raise ValueError("a snapshot name must not be empty")
    if len(value) > MAX_NAME_LENGTH:
        raise ValueError(
            f"a snapshot name is at most {MAX_NAME_LENGTH} characters, got {len(value)}"
        )
    if any(unicodedata.category(ch) in {"Cc", "Cs"} for ch in value):
        raise ValueError("a snapshot name must not contain control characters")
    return value


def check_timeout(value: object) -> float:
    """`value` as seconds to wait: a finite number, zero or more."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, not {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"timeout must be a finite number of seconds >= 0, got {value}")
    return float(value)


def _not_listed(instance_id: int, snapshot_id: int) -> NotFoundError:
    return NotFoundError(
        f"instance {instance_id} has no snapshot {snapshot_id}",
        type="missed",
        object="elid",
        func="instances.snapshots",
    )


def _judge_active(
    instance_id: int, snapshot_id: int, current: Snapshot | None, last: Snapshot | None
) -> tuple[bool, Snapshot | None]:
    if current is None:
        if last is None:
            raise _not_listed(instance_id, snapshot_id)
        raise SnapshotFailed(
            f"snapshot {snapshot_id} of instance {instance_id} disappeared while awaited",
            snapshot=last,
        )
    if current.status is SnapshotStatus.ACTIVE:
        return True, current
    if current.status.failed or current.status.being_deleted:
        raise SnapshotFailed(
            f"snapshot {current.id} of instance {current.instance_id} is "
            f"{current.status_text or current.status.value}",
            snapshot=current,
        )
    return False, None


def _judge_settled(current: Snapshot | None, last: Snapshot | None) -> tuple[bool, None]:
    return current is None or not current.status.in_progress, None


def _judge_deleted(current: Snapshot | None, last: Snapshot | None) -> tuple[bool, None]:
    return current is None, None


def _grace_for(error: TransportError, grace: float) -> float:
    """How long an ambiguous create may still land on the server: no time when the
    server answered in full (a 2xx with a bad body, a 4xx, a 503 refusal), else `grace`.
    """
    if error.status is None or error.status in (502, 504):
        return grace  # no answer, or a proxy gave up on a server that may still be working
    return 0.0


class SnapshotsManager:
    """`client.snapshots`: the snapshot calls of one client.

    Every wait joins the client's shared poller. Mutating calls (create,
    delete) on one instance run one at a time.
    """

    def __init__(
        self,
        api: ApiSession,
        *,
        clock: Clock,
        poll: PollPolicy,
        retry: RetryPolicy,
        conflict_timeout: float,
        ambiguous_grace: float = 0.0,
    ) -> None:
        self._api = api
        self._grace = ambiguous_grace
        self._clock = clock
        self._poll = poll
        self._retry = retry
        self._conflict_timeout = conflict_timeout
        self._locks: dict[int, asyncio.Lock] = {}
        self._lock_users: dict[int, int] = {}
        self.poller = Poller(self.list, clock=clock, poll=poll)

    def __repr__(self) -> str:
        return f"SnapshotsManager({self._api!r})"

    @contextlib.asynccontextmanager
    async def _instance_lock(self, instance_id: int) -> AsyncIterator[None]:
        lock = self._locks.setdefault(instance_id, asyncio.Lock())
        self._lock_users[instance_id] = self._lock_users.get(instance_id, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._lock_users[instance_id] -= 1
            if not self._lock_users[instance_id]:
                del self._lock_users[instance_id], self._locks[instance_id]

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
        rows = await self._listed_rows(instance_id)
        return [snapshot_from_row(row, instance_id, self) for row in rows]

    async def _listed_rows(self, instance_id: int) -> builtins.list[_document.Row]:
        # The server may page the listing at a size it remembers for the user;
        # follow the pages rather than send p_cnt, which would change that setting.
        fields = {"elid": str(instance_id)}
        seen: dict[str | None, _document.Row] = {}
        for _ in range(_MAX_RELISTS):
            doc = await self._api.call("instances.snapshots", fields)
            total = _document.listed_total(doc)
            rows = {row.get("id"): row for row in _document.rows(doc)}
            pages = _document.page_count(doc)
            steady = True
            for page in range(2, pages + 1):
                more = await self._api.call("instances.snapshots", {**fields, "p_num": str(page)})
                steady &= _document.listed_total(more) == total
                rows.update((row.get("id"), row) for row in _document.rows(more))
            if pages == 1 or (steady and len(rows) == total):
                return list(rows.values())
            # Rows moved between pages (a delete finished meanwhile): list again,
            # keeping what was seen, so that a row that moved is never taken as gone.
            seen = {**seen, **rows}
        return list(seen.values())

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
        for snapshot in await self.list(instance_id):
            if snapshot.id == snapshot_id:
                return snapshot
        raise _not_listed(instance_id, snapshot_id)

    async def create(self, instance_id: int, name: str) -> Snapshot:
        """Start a snapshot of an instance (`instances.snapshots.edit`).

        A snapshot of the instance still being taken is awaited first (the API
        refuses a second one meanwhile). The create is never blindly repeated:
        after an ambiguous failure the instance is listed (for up to the request
        timeout, in case the server is still working on the lost request), and a
        snapshot that appeared with this name is the result. A `ConflictError` is
        waited out for up to the client's `conflict_timeout`.

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
            TransportError: the API could not be reached; the instance was checked
                and holds no snapshot of this name made by this call.
            ResponseError: the API accepted the create but never listed the snapshot.
        """
        instance_id = check_id(instance_id, "instance_id")
        name = check_name(name)
        async with self._instance_lock(instance_id):
            # One bound on waiting for the instance to be free, however it is spent.
            deadline = self._clock.monotonic() + self._conflict_timeout
            before = await self.list(instance_id)
            busy = [s for s in before if s.status.in_progress]
            if busy:
                await self._settle(busy, deadline - self._clock.monotonic())
                before = await self.list(instance_id)
            return await self._create(instance_id, name, {s.id for s in before}, deadline)

    async def _settle(self, busy: builtins.list[Snapshot], timeout: float) -> None:
        # Queue behind snapshots still being taken rather than provoke a conflict;
        # a wait that runs out only means the create meets the conflict path.
        with contextlib.suppress(WaitTimeout):
            await asyncio.gather(
                *(
                    self.poller.wait(
                        s.instance_id,
                        s.id,
                        timeout=max(0.0, timeout),
                        judge=_judge_settled,
                        goal="settled",
                    )
                    for s in busy
                )
            )

    async def _create(
        self, instance_id: int, name: str, before: set[int], conflict_deadline: float
    ) -> Snapshot:
        fields = {"plid": str(instance_id), "name": name, "sok": "ok"}
        conflicts = failures = 0
        while True:
            try:
                doc = await self._api.call("instances.snapshots.edit", fields, retry=False)
            except ConflictError:
                # The operation in the way may be our own earlier request that the
                # server held and ran late: if so, that snapshot is the result.
                made = await self._made_since(instance_id, name, before)
                if made is not None:
                    return made
                remaining = conflict_deadline - self._clock.monotonic()
                if remaining <= 0:
                    raise
                await self._clock.sleep(min(self._poll.delay(conflicts), remaining))
                conflicts += 1
                continue
            except TransportError as exc:
                # The request may have reached the server: look before trying again.
                made, checked = await self._look_for(
                    instance_id, name, before, _grace_for(exc, self._grace)
                )
                if made is not None:
                    return made
                if not checked:
                    # Sending again unseen could duplicate: say the outcome is unknown.
                    raise TransportError(
                        f"could not tell whether the snapshot {name!r} of instance "
                        f"{instance_id} was made: the API stopped answering; list the "
                        "instance before creating it again",
                        status=exc.status,
                        body_excerpt=exc.body_excerpt,
                    ) from exc
                failures += 1
                if not is_retryable(exc) or failures >= self._retry.attempts:
                    raise
                await self._clock.sleep(self._retry.wait_before(failures, exc))
                continue
            return await self._confirm(instance_id, name, before, _document.created_id(doc))

    async def _look_for(
        self, instance_id: int, name: str, before: set[int], grace: float
    ) -> tuple[Snapshot | None, bool]:
        """The snapshot the lost create made, if any, and whether the instance
        could be listed at all to tell.
        """
        # A server still holding an abandoned request may create the snapshot late:
        # watch the listing for `grace` seconds before a re-send could duplicate it.
        deadline = self._clock.monotonic() + grace
        step = 0
        checked = last_look = False
        while True:
            try:
                made = await self._made_since(instance_id, name, before)
                checked = True
            except TransportError:
                made = None  # not seen yet; a listing that failed proves nothing
            remaining = deadline - self._clock.monotonic()
            if made is not None or (remaining <= 0 and checked) or last_look:
                return made, checked
            if remaining <= 0:
                last_look = True  # one more look past the grace: never give up unseen
                continue
            await self._clock.sleep(min(self._poll.delay(step), remaining))
            step += 1

    async def _confirm(
        self, instance_id: int, name: str, before: set[int], created_id: int | None
    ) -> Snapshot:
        # The answer to a create is undocumented: the listing is the proof.
        for step in range(self._retry.attempts):
            made = await self._made_since(instance_id, name, before, created_id)
            if made is not None:
                return made
            await self._clock.sleep(self._poll.delay(step))
        raise ResponseError(
            f"the API accepted the snapshot {name!r} of instance {instance_id} "
            "but does not list it",
            field="elem",
            value=None,
        )

    async def _made_since(
        self, instance_id: int, name: str, before: set[int], created_id: int | None = None
    ) -> Snapshot | None:
        """The snapshot named `name` that the instance lists now and did not before."""
        snapshots = await self.list(instance_id)
        fresh = [s for s in snapshots if s.id not in before and s.name == name]
        # doc.id is undocumented: trust it to pick among candidates, not to exclude.
        by_id = [s for s in fresh if s.id == created_id]
        candidates = by_id or fresh
        return max(candidates, key=lambda s: s.id) if candidates else None

    async def delete(self, instance_id: int, snapshot_id: int) -> None:
        """Ask the API to delete a snapshot (`image.delete`).

        The snapshot lingers while it is being deleted; `wait_deleted` awaits its
        disappearance. Transient faults are retried (a delete can be repeated).

        Args:
            instance_id: the instance the snapshot belongs to (`plid`).
            snapshot_id: the snapshot (`elid` and `elname`).

        Raises:
            NotFoundError: no such instance or snapshot.
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
        async with self._instance_lock(instance_id):
            await self._api.call("image.delete", fields)

    async def wait_active(
        self,
        instance_id: int,
        snapshot_id: int,
        *,
        timeout: float = 3600.0,
        on_update: Callable[[Snapshot], None] | None = None,
    ) -> Snapshot:
        """Await a snapshot's `ACTIVE` state, from ids alone (e.g. after a restart).

        The wait joins the client's shared poller: it is checked at once, then
        with the poll backoff; a last check lands at the deadline.

        Args:
            instance_id: the instance.
            snapshot_id: the snapshot.
            timeout: seconds to wait, on the client's clock.
            on_update: called with each observation while still in progress; an
                exception it raises is logged and ignored.

        Returns:
            The snapshot, refreshed and `ACTIVE`.

        Raises:
            SnapshotFailed: a failed state (Killed, Error), a delete, or the
                snapshot disappeared; `.snapshot` is the last state seen.
            WaitTimeout: the deadline passed; `.last` is the last state seen.
            NotFoundError: the snapshot was not there at the first check.
            TypeError, ValueError: bad ids or timeout (nothing is sent).
        """
        instance_id = check_id(instance_id, "instance_id")
        snapshot_id = check_id(snapshot_id, "snapshot_id")
        active = await self.poller.wait(
            instance_id,
            snapshot_id,
            timeout=check_timeout(timeout),
            judge=functools.partial(_judge_active, instance_id, snapshot_id),
            goal="Active",
            on_update=on_update,
        )
        assert active is not None  # the judge returns a snapshot whenever it is done
        return active

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
            instance_id,
            snapshot_id,
            timeout=check_timeout(timeout),
            judge=_judge_deleted,
            goal="deleted",
        )

    def create_many(
        self,
        instance_ids: Iterable[int],
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
            instance_ids: the instances, each once.
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
        ids = unique((check_id(i, "instance_id") for i in instance_ids), "instance id")
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        now = datetime.datetime.fromtimestamp(self._clock.time(), datetime.UTC)
        names = {i: check_name(n) for i, n in render_names(name, ids, now).items()}
        return create_job(
            self,
            names,
            wait=wait,
            timeout=check_timeout(timeout),
            concurrency=_check_concurrency(concurrency),
            on_progress=on_progress,
            stamp=self._clock.time,
        )

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
            self,
            targets,
            wait=wait,
            timeout=check_timeout(timeout),
            concurrency=_check_concurrency(concurrency),
            on_progress=on_progress,
            stamp=self._clock.time,
        )

    def rotate(
        self,
        instance_ids: Iterable[int],
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
            instance_ids: the instances, each once.
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
        ids = unique((check_id(i, "instance_id") for i in instance_ids), "instance id")
        now = datetime.datetime.fromtimestamp(self._clock.time(), datetime.UTC)
        template = prefix.replace("{", "{{").replace("}", "}}") + "{date}-{time}"
        names = {i: check_name(n) for i, n in render_names(template, ids, now).items()}
        return rotate_job(
            self,
            names,
            keep=keep,
            prefix=prefix,
            dry_run=bool(dry_run),
            timeout=check_timeout(timeout),
            concurrency=_check_concurrency(concurrency),
            on_progress=on_progress,
            stamp=self._clock.time,
        )


def _check_concurrency(value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("concurrency must be an int or None")
    if value < 1:
        raise ValueError("concurrency must be at least 1")
    return value
