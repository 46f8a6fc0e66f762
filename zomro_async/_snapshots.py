"""Snapshot operations, spoken in `func` names and models: list, get, create, delete, wait."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import math
import random
import unicodedata
from collections.abc import AsyncIterator

import attrs

from . import _document
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
from ._retry import RetryPolicy, is_retryable
from ._session import ApiSession

MAX_NAME_LENGTH = 255
_MAX_ID = 2**63 - 1
# States an awaited snapshot never leaves to become Active.
_GONE = frozenset({SnapshotStatus.DELETING, SnapshotStatus.PENDING_DELETE, SnapshotStatus.DELETED})


@attrs.frozen(kw_only=True)
class PollPolicy:
    """How waits poll: at once, then `initial` seconds growing by `multiplier` up
    to `maximum`, each delay stretched by up to `jitter` (a fraction) at random.
    """

    initial: float = attrs.field(default=2.0, validator=attrs.validators.ge(0))
    multiplier: float = attrs.field(default=1.5, validator=attrs.validators.ge(1))
    maximum: float = attrs.field(default=30.0, validator=attrs.validators.ge(0))
    jitter: float = attrs.field(default=0.1, validator=attrs.validators.ge(0))

    def delay(self, step: int) -> float:
        """The pause before poll number `step + 1` (step 0 is the pause after the first)."""
        base = min(self.maximum, self.initial * self.multiplier**step)
        return base * (1 + random.uniform(0, self.jitter))


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
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"timeout must be a number of seconds, not {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"timeout must be a finite number of seconds >= 0, got {value}")
    return float(value)


class SnapshotsManager:
    """`client.snapshots`: the snapshot calls of one client.

    Mutating calls (create, delete) on one instance run one at a time.
    """

    def __init__(
        self,
        api: ApiSession,
        *,
        clock: Clock,
        poll: PollPolicy,
        retry: RetryPolicy,
        conflict_timeout: float,
    ) -> None:
        self._api = api
        self._clock = clock
        self._poll = poll
        self._retry = retry
        self._conflict_timeout = conflict_timeout
        self._locks: dict[int, asyncio.Lock] = {}
        self._lock_users: dict[int, int] = {}

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

    async def list(self, instance_id: int) -> list[Snapshot]:
        """Every snapshot of an instance (`instances.snapshots`), in the API's order.

        Raises `NotFoundError` for an unknown instance, `TransportError` when the
        API cannot be reached after retries, `ResponseError` for a row that
        cannot be read.
        """
        instance_id = check_id(instance_id, "instance_id")
        doc = await self._api.call("instances.snapshots", {"elid": str(instance_id)})
        return [snapshot_from_row(row, instance_id).bind(self) for row in _document.rows(doc)]

    async def get(self, instance_id: int, snapshot_id: int) -> Snapshot:
        """One snapshot of an instance; `NotFoundError` when it is not listed."""
        snapshot_id = check_id(snapshot_id, "snapshot_id")
        found = await self._find(instance_id, snapshot_id)
        if found is None:
            raise NotFoundError(
                f"instance {instance_id} has no snapshot {snapshot_id}",
                type="missed",
                object="elid",
                func="instances.snapshots",
            )
        return found

    async def _find(self, instance_id: int, snapshot_id: int) -> Snapshot | None:
        for snapshot in await self.list(instance_id):
            if snapshot.id == snapshot_id:
                return snapshot
        return None

    async def create(self, instance_id: int, name: str) -> Snapshot:
        """Start a snapshot of an instance and return it (status `SAVING`).

        The create is never blindly repeated: after an ambiguous failure the
        instance is listed, and a snapshot that appeared with this name is the
        result. A `ConflictError` (a previous snapshot still being taken) is
        waited out for up to the client's `conflict_timeout`. Bad input raises
        `TypeError` or `ValueError` before anything is sent.
        """
        instance_id = check_id(instance_id, "instance_id")
        name = check_name(name)
        async with self._instance_lock(instance_id):
            before = {s.id for s in await self.list(instance_id)}
            return await self._create(instance_id, name, before)

    async def _create(self, instance_id: int, name: str, before: set[int]) -> Snapshot:
        fields = {"plid": str(instance_id), "name": name, "sok": "ok"}
        conflict_deadline = self._clock.monotonic() + self._conflict_timeout
        conflicts = failures = 0
        while True:
            try:
                doc = await self._api.call("instances.snapshots.edit", fields, retry=False)
            except ConflictError:
                remaining = conflict_deadline - self._clock.monotonic()
                if remaining <= 0:
                    raise
                await self._clock.sleep(min(self._poll.delay(conflicts), remaining))
                conflicts += 1
                continue
            except TransportError as exc:
                # The request may have reached the server: look before trying again.
                made = self._new_snapshot(await self.list(instance_id), name, before, None)
                if made is not None:
                    return made
                failures += 1
                if not is_retryable(exc) or failures >= self._retry.attempts:
                    raise
                await self._clock.sleep(self._retry.wait_before(failures, exc))
                continue
            return await self._confirm(instance_id, name, before, _document.created_id(doc))

    async def _confirm(
        self, instance_id: int, name: str, before: set[int], created_id: int | None
    ) -> Snapshot:
        # The answer to a create is undocumented: the listing is the proof.
        for step in range(self._retry.attempts):
            made = self._new_snapshot(await self.list(instance_id), name, before, created_id)
            if made is not None:
                return made
            await self._clock.sleep(self._poll.delay(step))
        raise ResponseError(
            f"the API accepted the snapshot {name!r} of instance {instance_id} "
            "but does not list it",
            field="elem",
            value=None,
        )

    @staticmethod
    def _new_snapshot(
        snapshots: builtins.list[Snapshot], name: str, before: set[int], created_id: int | None
    ) -> Snapshot | None:
        fresh = [s for s in snapshots if s.id not in before]
        if created_id is not None:
            fresh = [s for s in fresh if s.id == created_id]
        named = [s for s in fresh if s.name == name]
        return max(named, key=lambda s: s.id) if named else None

    async def delete(self, instance_id: int, snapshot_id: int) -> None:
        """Ask the API to delete a snapshot (`image.delete`).

        The snapshot lingers while it is being deleted; `wait_deleted` awaits its
        disappearance. `NotFoundError` for an unknown instance or snapshot.
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
        self, instance_id: int, snapshot_id: int, *, timeout: float = 3600.0
    ) -> Snapshot:
        """Await a snapshot's `ACTIVE` state and return it, refreshed.

        Checks at once, then polls with backoff; a last check lands at the
        deadline. Raises `SnapshotFailed` as soon as a failed state is seen or
        the snapshot disappears, `NotFoundError` if it was never there, and
        `WaitTimeout` (with `.last`) at the deadline.
        """
        instance_id = check_id(instance_id, "instance_id")
        snapshot_id = check_id(snapshot_id, "snapshot_id")
        deadline = self._clock.monotonic() + check_timeout(timeout)
        last: Snapshot | None = None
        step = 0
        while True:
            current = await self._find(instance_id, snapshot_id)
            if current is None:
                if last is None:
                    raise NotFoundError(
                        f"instance {instance_id} has no snapshot {snapshot_id}",
                        type="missed",
                        object="elid",
                        func="instances.snapshots",
                    )
                raise SnapshotFailed(
                    f"snapshot {snapshot_id} of instance {instance_id} disappeared while awaited",
                    snapshot=last,
                )
            last = current
            if current.status is SnapshotStatus.ACTIVE:
                return current
            if current.status.failed or current.status in _GONE:
                raise SnapshotFailed(
                    f"snapshot {snapshot_id} of instance {instance_id} is "
                    f"{current.status_text or current.status.value}",
                    snapshot=current,
                )
            step = await self._pause(deadline, step, last, "Active")

    async def wait_deleted(
        self, instance_id: int, snapshot_id: int, *, timeout: float = 600.0
    ) -> None:
        """Await the moment a snapshot is no longer listed; `WaitTimeout` at the deadline."""
        instance_id = check_id(instance_id, "instance_id")
        snapshot_id = check_id(snapshot_id, "snapshot_id")
        deadline = self._clock.monotonic() + check_timeout(timeout)
        step = 0
        while True:
            current = await self._find(instance_id, snapshot_id)
            if current is None:
                return
            step = await self._pause(deadline, step, current, "deleted")

    async def _pause(self, deadline: float, step: int, last: Snapshot, goal: str) -> int:
        remaining = deadline - self._clock.monotonic()
        if remaining <= 0:
            raise WaitTimeout(
                f"snapshot {last.id} of instance {last.instance_id} was not {goal} "
                f"by the deadline (last status {last.status_text or last.status.value!r})",
                last=last,
            )
        await self._clock.sleep(min(self._poll.delay(step), remaining))
        return step + 1
