"""The plain attrs models of images: status, kind, an instance's image, an account's image."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Protocol, Self, cast

import attrs

from .._awaiting import returns_a_wait
from .._binding import Bound
from .._status import LenientStatus

if TYPE_CHECKING:
    from .._instances._domain import Instance


class ImageStatus(LenientStatus):
    """An image's `fleio_status` (a snapshot's, a backup's, a copy's), matched
    case-insensitively; anything else is `UNKNOWN`. `SnapshotStatus` is this class."""

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
        """True for states an image never leaves to become usable (Killed, Error)."""
        return self in _FAILED

    @property
    def in_progress(self) -> bool:
        """True while the image is still being made (taken, copied, uploaded)."""
        return self in _IN_PROGRESS

    @property
    def being_deleted(self) -> bool:
        """True once a delete has taken hold (Deleting, pending delete, Deleted)."""
        return self in _BEING_DELETED


_FAILED = frozenset({ImageStatus.KILLED, ImageStatus.ERROR})
_BEING_DELETED = frozenset({ImageStatus.DELETING, ImageStatus.PENDING_DELETE, ImageStatus.DELETED})
_IN_PROGRESS = frozenset(
    {ImageStatus.QUEUED, ImageStatus.SAVING, ImageStatus.UPLOADING, ImageStatus.IMPORTING}
)


class ImageType(LenientStatus):
    """What an image of the account is (`image_type`): an uploaded image, a snapshot or a backup."""

    IMAGE = "image"
    SNAPSHOT = "snapshot"
    BACKUP = "backup"
    UNKNOWN = "unknown"


class InstanceImageCalls(Protocol):
    """What a bound snapshot or backup asks of the client resource that returned it."""

    async def get(self, instance_id: int, image_id: int, /) -> Any: ...
    async def delete(self, instance_id: int, image_id: int, /) -> None: ...
    async def wait_active(self, instance_id: int, image_id: int, /, *, timeout: float) -> Any: ...
    async def wait_deleted(self, instance_id: int, image_id: int, /, *, timeout: float) -> None: ...
    async def protect(self, instance_id: int, image_id: int, /) -> None: ...
    async def unprotect(self, instance_id: int, image_id: int, /) -> None: ...
    async def restore(
        self,
        image: Any,
        /,
        *,
        onto: int | Instance | None,
        password: str | None,
        ssh_key: str | None,
        wait: bool,
        timeout: float,
    ) -> Instance: ...


@attrs.frozen(kw_only=True)
class InstanceImage(Bound["InstanceImageCalls"]):
    """An image made of one instance: what a `Snapshot` and a `Backup` share.

    Returned by the client, it is bound to it: `refresh()`, `wait_active()`,
    `wait_deleted()`, `delete()`, `protect()`, `unprotect()` and `restore()`
    work on it. The binding takes no part in equality or repr. Fields the
    listing carries but no attribute names are kept in `extra`.
    """

    id: int
    instance_id: int
    name: str = ""
    status: ImageStatus = ImageStatus.UNKNOWN
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
    _client: InstanceImageCalls | None = attrs.field(
        default=None, eq=False, repr=False, alias="client"
    )

    async def refresh(self) -> Self:
        """The image as its instance's listing shows it now.

        Raises:
            NotFoundError: it is gone.
            RuntimeError: it is not bound to a client.
        """
        return cast(Self, await self._bound().get(self.instance_id, self.id))

    @returns_a_wait
    def wait_active(self, timeout: float = 3600.0) -> Coroutine[Any, Any, Self]:
        """Await `ACTIVE` through the client's shared poller (the wait starts at
        the call; see `client.snapshots.wait_active`).

        Args:
            timeout: seconds to wait.

        Returns:
            The refreshed, `ACTIVE` image.

        Raises:
            SnapshotFailed, BackupFailed: a failed state, or it disappeared.
            WaitTimeout: the deadline passed; `.last` is the last state seen.
            RuntimeError: it is not bound to a client.
        """
        wait = self._bound().wait_active(self.instance_id, self.id, timeout=timeout)
        return cast("Coroutine[Any, Any, Self]", wait)

    async def delete(self) -> None:
        """Ask the API to delete it; `wait_deleted()` awaits its disappearance.

        Raises:
            NotFoundError: it is already gone.
            InvalidRequestError: the API refused (for example, it is protected).
            RuntimeError: it is not bound to a client.
        """
        await self._bound().delete(self.instance_id, self.id)

    @returns_a_wait
    def wait_deleted(self, timeout: float = 600.0) -> Coroutine[Any, Any, None]:
        """Await the moment it is no longer listed (the wait starts at the call).

        Raises:
            WaitTimeout: still listed at the deadline.
            RuntimeError: it is not bound to a client.
        """
        return self._bound().wait_deleted(self.instance_id, self.id, timeout=timeout)

    async def protect(self) -> None:
        """Protect it from deletion (rotations never touch it then).

        Raises:
            NotFoundError: it is gone.
            RuntimeError: it is not bound to a client.
        """
        await self._bound().protect(self.instance_id, self.id)

    async def unprotect(self) -> None:
        """Lift its protection.

        Raises:
            NotFoundError: it is gone.
            RuntimeError: it is not bound to a client.
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
        """Rebuild its instance (or `onto` another) from it: **that instance's disk
        is overwritten**. See `InstancesManager.restore`.

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
            ValueError: it is not Active, or bad access arguments.
            RuntimeError: it is not bound to a client.
        """
        return await self._bound().restore(
            self, onto=onto, password=password, ssh_key=ssh_key, wait=wait, timeout=timeout
        )


class ImageCalls(Protocol):
    """What a bound account image asks of `client.images`."""

    async def get(self, image_id: int, /) -> Image: ...
    async def delete(self, image_id: int, /) -> None: ...
    async def wait_active(self, image_id: int, /, *, timeout: float) -> Image: ...
    async def wait_deleted(self, image_id: int, /, *, timeout: float) -> None: ...
    async def copy(self, image_id: int, /, *, region: str, name: str | None) -> Image: ...


@attrs.frozen(kw_only=True)
class Image(Bound["ImageCalls"]):
    """One image of the account as `image` lists it: an uploaded image, a snapshot,
    a backup, or a copy of one in another region.

    Bound to `client.images`: `refresh()`, `wait_active()`, `delete()`,
    `wait_deleted()` and `copy()` work on it; `client.instances.restore(id,
    image)` restores from it. Fields no attribute names are kept in `extra`.
    """

    id: int
    name: str = ""
    image_type: ImageType = ImageType.UNKNOWN
    status: ImageStatus = ImageStatus.UNKNOWN
    status_text: str = ""
    region: str | None = None
    created: datetime.date | None = None
    disk_format: str | None = None
    fleio_id: uuid.UUID | None = None
    image_size: int | None = None
    min_disk: int | None = None
    min_ram: int | None = None
    os_distro: str | None = None
    os_version: str | None = None
    protected: bool = False
    extra: Mapping[str, str] = attrs.field(factory=dict, hash=False)
    _client: ImageCalls | None = attrs.field(default=None, eq=False, repr=False, alias="client")

    async def refresh(self) -> Image:
        """The image as the account's listing shows it now.

        Raises:
            NotFoundError: it is gone.
            RuntimeError: it is not bound to a client.
        """
        return await self._bound().get(self.id)

    @returns_a_wait
    def wait_active(self, timeout: float = 4 * 3600.0) -> Coroutine[Any, Any, Image]:
        """Await `ACTIVE` (a copy can take hours: the default is four); the wait
        starts at the call.

        Raises:
            ImageFailed: a failed state, or it disappeared.
            WaitTimeout: the deadline passed; `.last` is the last state seen.
            RuntimeError: it is not bound to a client.
        """
        return self._bound().wait_active(self.id, timeout=timeout)

    async def delete(self) -> None:
        """Ask the API to delete it (`image.delete`); `wait_deleted()` awaits the end.

        Raises:
            NotFoundError: it is already gone.
            RuntimeError: it is not bound to a client.
        """
        await self._bound().delete(self.id)

    @returns_a_wait
    def wait_deleted(self, timeout: float = 600.0) -> Coroutine[Any, Any, None]:
        """Await the moment it is no longer listed (the wait starts at the call).

        Raises:
            WaitTimeout: still listed at the deadline.
            RuntimeError: it is not bound to a client.
        """
        return self._bound().wait_deleted(self.id, timeout=timeout)

    async def copy(self, *, region: str, name: str | None = None) -> Image:
        """Copy it to another region (see `ImagesManager.copy`).

        Returns:
            The copy, usually `SAVING`; `await copy.wait_active()` next.
        """
        return await self._bound().copy(self.id, region=region, name=name)
