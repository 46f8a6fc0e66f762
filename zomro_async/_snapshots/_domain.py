"""The plain attrs models: a snapshot and its status. No I/O happens here."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

import attrs

from .._binding import Bound
from .._status import LenientStatus

if TYPE_CHECKING:
    from .._instances._domain import Instance


class SnapshotStatus(LenientStatus):
    """A snapshot's `fleio_status`, matched case-insensitively; anything else is `UNKNOWN`."""

    QUEUED = "queued"
    SAVING = "saving"
    UPLOADING = "uploading"
    IMPORTING = "importing"
    ACTIVE = "active"
    DEACTIVATED = "deactivated"
    DELETING = "deleting"
    PENDING_DELETE = "pending_delete"
    DELETED = "deleted"
    KILLED = "killed"
    ERROR = "error"
    UNKNOWN = "unknown"

    @property
    def failed(self) -> bool:
        """True for states a snapshot never leaves to become usable (Killed, Error)."""
        return self in _FAILED

    @property
    def in_progress(self) -> bool:
        """True while the snapshot is still being taken."""
        return self in _IN_PROGRESS

    @property
    def being_deleted(self) -> bool:
        """True once a delete has taken hold (Deleting, pending delete, Deleted)."""
        return self in _BEING_DELETED


_FAILED = frozenset({SnapshotStatus.KILLED, SnapshotStatus.ERROR})
_BEING_DELETED = frozenset(
    {SnapshotStatus.DELETING, SnapshotStatus.PENDING_DELETE, SnapshotStatus.DELETED}
)
_IN_PROGRESS = frozenset(
    {
        SnapshotStatus.QUEUED,
        SnapshotStatus.SAVING,
        SnapshotStatus.UPLOADING,
        SnapshotStatus.IMPORTING,
    }
)


class SnapshotCalls(Protocol):
    """What a bound snapshot asks of the client that returned it."""

    async def get(self, instance_id: int, snapshot_id: int) -> Snapshot: ...
    async def delete(self, instance_id: int, snapshot_id: int) -> None: ...
    async def wait_active(
        self, instance_id: int, snapshot_id: int, *, timeout: float = ...
    ) -> Snapshot: ...
    async def wait_deleted(
        self, instance_id: int, snapshot_id: int, *, timeout: float = ...
    ) -> None: ...
    async def protect(self, instance_id: int, snapshot_id: int) -> None: ...
    async def unprotect(self, instance_id: int, snapshot_id: int) -> None: ...
    async def restore(
        self,
        snapshot: Snapshot,
        *,
        onto: int | Instance | None = ...,
        password: str | None = ...,
        ssh_key: str | None = ...,
        wait: bool = ...,
        timeout: float = ...,
    ) -> Instance: ...


@attrs.frozen(kw_only=True)
class Snapshot(Bound["SnapshotCalls"]):
    """One snapshot of a Cloud VPS instance, as `instances.snapshots` lists it.

    Returned by the client, it is bound to it: `refresh()`, `wait_active()`,
    `wait_deleted()`, `delete()`, `protect()`, `unprotect()` and `restore()`
    work on it. The binding takes no part in
    equality or repr. Fields the API page does not list are kept in `extra`.
    """

    id: int
    instance_id: int
    name: str = ""
    status: SnapshotStatus = SnapshotStatus.UNKNOWN
    status_text: str = ""
    created: datetime.date | None = None
    architecture: str | None = None
    disk_format: str | None = None
    fleio_id: uuid.UUID | None = None
    hypervisor_type: str | None = None
    image_size: int | None = None
    item_real_status: int | None = None
    min_disk: int | None = None
    min_ram: int | None = None
    os_distro: str | None = None
    os_version: str | None = None
    protected: bool = False
    region: str | None = None
    visibility: str | None = None
    # Out of the hash (a dict is not hashable) but not out of equality.
    extra: Mapping[str, str] = attrs.field(factory=dict, hash=False)
    _client: SnapshotCalls | None = attrs.field(default=None, eq=False, repr=False, alias="client")

    async def refresh(self) -> Snapshot:
        """The snapshot as the API lists it now.

        Returns:
            A fresh, bound `Snapshot`.

        Raises:
            NotFoundError: it is gone.
            RuntimeError: this snapshot is not bound to a client.
        """
        return await self._bound().get(self.instance_id, self.id)

    async def wait_active(self, timeout: float = 3600.0) -> Snapshot:
        """Await `ACTIVE` through the client's shared poller.

        Args:
            timeout: seconds to wait.

        Returns:
            The refreshed, `ACTIVE` snapshot.

        Raises:
            SnapshotFailed: a failed state, or the snapshot disappeared.
            WaitTimeout: the deadline passed; `.last` is the last state seen.
            RuntimeError: this snapshot is not bound to a client.
        """
        return await self._bound().wait_active(self.instance_id, self.id, timeout=timeout)

    async def delete(self) -> None:
        """Ask the API to delete this snapshot; `wait_deleted()` awaits its disappearance.

        Raises:
            NotFoundError: it is already gone.
            InvalidRequestError: the API refused (for example, it is protected).
            RuntimeError: this snapshot is not bound to a client.
        """
        await self._bound().delete(self.instance_id, self.id)

    async def wait_deleted(self, timeout: float = 600.0) -> None:
        """Await the moment the snapshot is no longer listed.

        Args:
            timeout: seconds to wait.

        Raises:
            WaitTimeout: still listed at the deadline.
            RuntimeError: this snapshot is not bound to a client.
        """
        await self._bound().wait_deleted(self.instance_id, self.id, timeout=timeout)

    async def protect(self) -> None:
        """Protect this snapshot from deletion (`rotate` never touches it then).

        Raises:
            NotFoundError: it is gone.
            RuntimeError: this snapshot is not bound to a client.
        """
        await self._bound().protect(self.instance_id, self.id)

    async def unprotect(self) -> None:
        """Lift this snapshot's protection.

        Raises:
            NotFoundError: it is gone.
            RuntimeError: this snapshot is not bound to a client.
        """
        await self._bound().unprotect(self.instance_id, self.id)

    async def restore(
        self,
        *,
        onto: int | Instance | None = None,
        password: str | None = None,
        ssh_key: str | None = None,
        wait: bool = False,
        timeout: float = 3600.0,
    ) -> Instance:
        """Rebuild its instance (or `onto` another) from this snapshot: **that
        instance's disk is overwritten**. See `InstancesManager.restore`.

        Args:
            onto: the instance to rebuild (id or `Instance`); default its own.
            password: the new root password (the panel's rules apply), or
            ssh_key: the uuid of one of the account's SSH keys; exactly one.
            wait: also await the end of the rebuild.
            timeout: seconds that wait may take.

        Returns:
            The instance, as listed after the rebuild was accepted (with `wait`:
            in the steady state it reached).

        Raises:
            ValueError: this snapshot is not Active, or bad access arguments.
            RuntimeError: this snapshot is not bound to a client.
        """
        return await self._bound().restore(
            self, onto=onto, password=password, ssh_key=ssh_key, wait=wait, timeout=timeout
        )
