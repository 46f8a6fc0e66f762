"""Bulk jobs: one create (or delete) per instance, results in input order, progress events."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime
import enum
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Sequence
from typing import Any, Generic, Protocol, TypeVar

import attrs

from .._checks import check_callback, check_concurrency, check_timeout
from .._exceptions import ImageFailed, OutcomeUnknown, WaitTimeout
from .._images._domain import InstanceImage


class BulkTarget(Protocol):
    """What a bulk job asks of a resource (`client.snapshots`, `client.backups`)."""

    async def list(self, instance_id: int, /) -> Any: ...
    async def create(self, instance_id: int, name: str, /) -> Any: ...
    async def delete(self, instance_id: int, image_id: int, /) -> None: ...
    async def wait_active(
        self,
        instance_id: int,
        image_id: int,
        /,
        *,
        timeout: float = ...,
        on_update: Callable[[Any], object] | None = ...,
    ) -> Any: ...
    async def wait_deleted(
        self, instance_id: int, image_id: int, /, *, timeout: float = ...
    ) -> None: ...


class ProgressKind(enum.Enum):
    """What happened to one item of a bulk job."""

    CREATED = "created"  # the API took the create; the snapshot is listed
    SAVING = "saving"  # a poll saw it still being taken
    ACTIVE = "active"  # it is Active: done
    DELETING = "deleting"  # the API took the delete
    DELETED = "deleted"  # it is no longer listed: done
    FAILED = "failed"  # this item ended in an error (see `error`)


@attrs.frozen(kw_only=True)
class ProgressEvent:
    """One step of one item of a bulk job, stamped with the client clock's wall time."""

    kind: ProgressKind
    instance_id: int
    at: datetime.datetime
    snapshot: InstanceImage | None = None
    error: BaseException | None = None
    # Known even when the snapshot is not (a delete given by ids).
    snapshot_id: int | None = attrs.field(
        default=attrs.Factory(
            lambda self: self.snapshot.id if self.snapshot is not None else None, takes_self=True
        )
    )


@attrs.frozen(kw_only=True)
class BulkResult:
    """The outcome for one instance of a bulk job.

    `snapshot` is the last state seen of the snapshot (a `Backup` in a job of
    `client.backups`), also on failure, so one that was made but failed to
    become Active is never lost; `snapshot_id` its id, also
    for a delete given by ids; `error` is what went wrong, None when `ok`.
    """

    instance_id: int
    snapshot: InstanceImage | None = None
    error: BaseException | None = None
    snapshot_id: int | None = attrs.field(
        default=attrs.Factory(
            lambda self: self.snapshot.id if self.snapshot is not None else None, takes_self=True
        )
    )

    @property
    def ok(self) -> bool:
        """True when this instance's work succeeded (`error` is None)."""
        return self.error is None


logger = logging.getLogger("zomro_async")

OnProgress = Callable[[ProgressEvent], Any]
Emit = Callable[[ProgressEvent], None]
R = TypeVar("R")
_END = object()


class BulkJob(Generic[R]):
    """A running bulk job: `await job` for the results in input order, or
    `async for event in job` for progress events as they happen (then await it).

    The job starts on the first await or iteration. Cancelling the task that
    awaits it (or iterates it) cancels every item cleanly; so does closing the
    client it came from. Each `events()` iterator queues the events it has not
    read yet: a few per item, plus one per poll while an item is still being
    awaited; a job holds nothing once it ended.
    """

    def __init__(
        self,
        items: Sequence[Callable[[Emit], Awaitable[R]]],
        *,
        concurrency: int | None,
        on_progress: OnProgress | None,
        context: contextvars.Context | None = None,
    ) -> None:
        self._items = items
        self._context = context
        self._limit = asyncio.Semaphore(concurrency) if concurrency else None
        self._on_progress = on_progress
        self._subscribers: list[asyncio.Queue[object]] = []
        self._task: asyncio.Task[list[R]] | None = None

    def _start(self) -> asyncio.Task[list[R]]:
        if self._task is None:
            # In the context of the call that made the job: bound to the client
            # as it was then, so that a close ends the job too.
            self._task = asyncio.get_running_loop().create_task(self._run(), context=self._context)
            # A task cancelled before its first step never runs its body: end the
            # event streams from here, however the task ends.
            self._task.add_done_callback(self._end_streams)
        return self._task

    def _end_streams(self, _: object) -> None:
        for queue in self._subscribers:
            queue.put_nowait(_END)

    def __await__(self) -> Generator[Any, None, list[R]]:
        return self._start().__await__()

    def cancel(self) -> None:
        """Cancel every item still running; awaiting the job then raises `CancelledError`.

        Results of items already finished are not lost with it: they went out
        as progress events (`CREATED` carries each new snapshot's id).
        """
        if self._task is not None:
            self._task.cancel()

    def __aiter__(self) -> AsyncIterator[ProgressEvent]:
        return self.events()

    async def events(self) -> AsyncIterator[ProgressEvent]:
        """Progress events from now until the job ends (starting the job if needed).

        Returns:
            An async iterator of `ProgressEvent`s. Cancelling the task that
            iterates also cancels the job.
        """
        queue: asyncio.Queue[object] = asyncio.Queue()
        self._subscribers.append(queue)
        task = self._start()
        if task.done():
            queue.put_nowait(_END)
        try:
            while (event := await queue.get()) is not _END:
                assert isinstance(event, ProgressEvent)
                yield event
        except asyncio.CancelledError:
            task.cancel()  # the consumer is the job's owner: it goes with it
            raise
        finally:
            self._subscribers.remove(queue)

    def _emit(self, event: ProgressEvent) -> None:
        for queue in self._subscribers:
            queue.put_nowait(event)
        if self._on_progress is not None:
            try:
                result = self._on_progress(event)
            except Exception:
                # A broken callback must not cost anyone their results.
                logger.exception("on_progress callback failed on %s", event.kind.value)
                return
            if asyncio.iscoroutine(result):
                result.close()
                logger.error("on_progress returned a coroutine, which is never awaited")

    async def _run(self) -> list[R]:
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(self._one(item)) for item in self._items]
        try:
            # gather, not a TaskGroup: a cancel reaches every item at once, in the
            # same step, so that none gets one more request in.
            return list(await asyncio.gather(*tasks))
        finally:
            # No item outlives the job, however it ends.
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks)

    async def _one(self, item: Callable[[Emit], Awaitable[R]]) -> R:
        async with self._limit if self._limit is not None else contextlib.nullcontext():
            return await item(self._emit)


@attrs.frozen(kw_only=True)
class JobSettings:
    """How a bulk job runs, checked once at the call that made it."""

    timeout: float
    concurrency: int | None
    on_progress: OnProgress | None
    stamp: Callable[[], float]
    context: contextvars.Context | None = None
    wait: bool = True

    @classmethod
    def checked(
        cls,
        *,
        timeout: object,
        concurrency: object,
        on_progress: OnProgress | None,
        stamp: Callable[[], float],
        context: contextvars.Context | None = None,
        wait: object = True,
    ) -> JobSettings:
        """The settings, or `TypeError`/`ValueError` before anything is sent."""
        return cls(
            timeout=check_timeout(timeout),
            concurrency=check_concurrency(concurrency),
            on_progress=check_callback(on_progress, "on_progress"),
            stamp=stamp,
            context=context,
            wait=bool(wait),
        )

    def job(self, items: Sequence[Callable[[Emit], Awaitable[R]]]) -> BulkJob[R]:
        return BulkJob(
            items,
            concurrency=self.concurrency,
            on_progress=self.on_progress,
            context=self.context,
        )


def render_names(
    template: str, instance_ids: Sequence[int], now: datetime.datetime
) -> dict[int, str]:
    """The name for each instance from a template with `{instance_id}`, `{date}`, `{time}`."""
    names = {}
    for instance_id in instance_ids:
        try:
            names[instance_id] = template.format(
                instance_id=instance_id,
                date=now.strftime("%Y-%m-%d"),
                time=now.strftime("%H%M%S"),
            )
        except (KeyError, IndexError, ValueError, AttributeError) as exc:
            raise ValueError(
                f"bad name template {template!r}: use {{instance_id}}, {{date}}, {{time}}"
            ) from exc
    return names


def failed_snapshot(error: BaseException, last: InstanceImage | None) -> InstanceImage | None:
    """The last state known of an item that ended in `error`."""
    if isinstance(error, ImageFailed) and isinstance(error.image, InstanceImage):
        return error.image
    if isinstance(error, WaitTimeout) and isinstance(error.last, InstanceImage):
        return error.last
    return last


class Step:
    """Emits one item's events and remembers the last snapshot seen."""

    def __init__(
        self,
        instance_id: int,
        emit: Emit,
        stamp: Callable[[], float],
        snapshot_id: int | None = None,
    ) -> None:
        self.instance_id = instance_id
        self.snapshot_id = snapshot_id
        self._emit = emit
        self._stamp = stamp
        self.last: InstanceImage | None = None

    def __call__(
        self,
        kind: ProgressKind,
        snapshot: InstanceImage | None = None,
        error: BaseException | None = None,
    ) -> None:
        if snapshot is not None:
            self.last = snapshot
        shown = snapshot if snapshot is not None else self.last
        self._emit(
            ProgressEvent(
                kind=kind,
                instance_id=self.instance_id,
                at=datetime.datetime.fromtimestamp(self._stamp(), datetime.UTC),
                snapshot=shown,
                error=error,
                snapshot_id=shown.id if shown is not None else self.snapshot_id,
            )
        )

    async def create(
        self, manager: BulkTarget, name: str, *, wait: bool, timeout: float
    ) -> InstanceImage:
        """Create the snapshot and, with `wait`, await Active, telling each step."""
        snapshot: InstanceImage = await manager.create(self.instance_id, name)
        self(ProgressKind.CREATED, snapshot)
        if wait:
            snapshot = await manager.wait_active(
                self.instance_id,
                snapshot.id,
                timeout=timeout,
                on_update=lambda s: self(ProgressKind.SAVING, s),
            )
            self(ProgressKind.ACTIVE, snapshot)
        return snapshot

    def failure(self, error: BaseException) -> BulkResult:
        snapshot = failed_snapshot(error, self.last)
        if snapshot is None and isinstance(error, OutcomeUnknown):
            # The create may have acted: keep the id its answer carried, if any.
            self.snapshot_id = self.snapshot_id or error.resource_id
        self(ProgressKind.FAILED, snapshot, error)
        return BulkResult(
            instance_id=self.instance_id,
            snapshot=snapshot,
            error=error,
            snapshot_id=snapshot.id if snapshot is not None else self.snapshot_id,
        )


def create_job(
    manager: BulkTarget, names: dict[int, str], settings: JobSettings
) -> BulkJob[BulkResult]:
    def item(instance_id: int, name: str) -> Callable[[Emit], Awaitable[BulkResult]]:
        async def run(emit: Emit) -> BulkResult:
            step = Step(instance_id, emit, settings.stamp)
            try:
                snapshot = await step.create(
                    manager, name, wait=settings.wait, timeout=settings.timeout
                )
            except Exception as exc:  # one item's failure never costs the others
                return step.failure(exc)
            return BulkResult(instance_id=instance_id, snapshot=snapshot)

        return run

    return settings.job([item(i, n) for i, n in names.items()])


def delete_job(
    manager: BulkTarget,
    targets: list[tuple[int, int, InstanceImage | None]],
    settings: JobSettings,
) -> BulkJob[BulkResult]:
    def item(
        instance_id: int, snapshot_id: int, known: InstanceImage | None
    ) -> Callable[[Emit], Awaitable[BulkResult]]:
        async def run(emit: Emit) -> BulkResult:
            step = Step(instance_id, emit, settings.stamp, snapshot_id)
            step.last = known
            try:
                await manager.delete(instance_id, snapshot_id)
                step(ProgressKind.DELETING, known)
                if settings.wait:
                    await manager.wait_deleted(instance_id, snapshot_id, timeout=settings.timeout)
                    step(ProgressKind.DELETED, known)
            except Exception as exc:  # one item's failure never costs the others
                return step.failure(exc)
            return BulkResult(instance_id=instance_id, snapshot=known, snapshot_id=snapshot_id)

        return run

    return settings.job([item(*t) for t in targets])
