"""The plain attrs models of an instance and its status. No I/O happens here."""

from __future__ import annotations

import datetime
import enum
import uuid
from collections.abc import Callable, Mapping
from typing import Protocol

import attrs

from .._binding import Bound
from .._status import LenientStatus


class InstanceStatus(LenientStatus):
    """An instance's `instance_status`, matched case-insensitively; anything else is `UNKNOWN`.

    Steady states are the ones an instance stays in until someone acts;
    `in_progress` ones pass by themselves (the panel re-lists while any is shown).
    """

    ACTIVE = "active"
    STOPPED = "stopped"
    RESIZED = "resized"
    RESCUED = "rescued"
    SUSPENDED = "suspended"
    BOOTED_FROM_ISO = "booted_from_iso"
    IMAGE_UPLOADING = "image_uploading"
    ERROR = "error"
    STOPPING = "stopping"
    STARTING = "starting"
    CREATING = "creating"
    BUILDING = "building"
    RESIZING = "resizing"
    PROCESSING = "processing"
    REBOOTING = "rebooting"
    RESCUING = "rescuing"
    UNRESCUING = "unrescuing"
    REBUILDING = "rebuilding"
    SUSPENDING = "suspending"
    BOOTING_FROM_ISO = "booting_from_iso"
    VERIFY_RESIZE = "verify_resize"
    SUSPEND = "suspend"
    UNKNOWN = "unknown"

    @property
    def in_progress(self) -> bool:
        """True while an operation is under way and the state will change by itself."""
        return self in _IN_PROGRESS

    @property
    def failed(self) -> bool:
        """True for `ERROR`: the instance needs someone to act."""
        return self is InstanceStatus.ERROR

    @property
    def being_deleted(self) -> bool:
        """Never true: an instance's end shows in billing, not in this status."""
        return False


_IN_PROGRESS = frozenset(
    {
        InstanceStatus.STOPPING,
        InstanceStatus.STARTING,
        InstanceStatus.CREATING,
        InstanceStatus.BUILDING,
        InstanceStatus.RESIZING,
        InstanceStatus.PROCESSING,
        InstanceStatus.REBOOTING,
        InstanceStatus.RESCUING,
        InstanceStatus.UNRESCUING,
        InstanceStatus.REBUILDING,
        InstanceStatus.SUSPENDING,
        InstanceStatus.BOOTING_FROM_ISO,
        InstanceStatus.VERIFY_RESIZE,
        InstanceStatus.SUSPEND,
    }
)


class RestorableImage(Protocol):
    """What a restore asks of an image of the account (a `Snapshot` is one)."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def fleio_id(self) -> uuid.UUID | None: ...
    @property
    def status(self) -> enum.Enum: ...


class InstanceCalls(Protocol):
    """What a bound instance asks of the client that returned it."""

    async def get(self, instance_id: int) -> Instance: ...
    async def wait_status(
        self,
        instance_id: int,
        status: InstanceStatus | str,
        *,
        timeout: float = ...,
        on_update: Callable[[Instance], object] | None = ...,
    ) -> Instance: ...
    async def wait_settled(
        self,
        instance_id: int,
        *,
        timeout: float = ...,
        on_update: Callable[[Instance], object] | None = ...,
    ) -> Instance: ...
    async def restore(
        self,
        instance_id: int,
        image: RestorableImage | int,
        *,
        password: str | None = ...,
        ssh_key: str | None = ...,
        wait: bool = ...,
        timeout: float = ...,
    ) -> Instance: ...


@attrs.frozen(kw_only=True)
class Instance(Bound["InstanceCalls"]):
    """One Cloud VPS instance of the account, as `instances` lists it.

    Returned by the client, it is bound to it: `refresh()`, `wait_status()`,
    `wait_settled()` and `restore()` work on it. The binding takes no part in
    equality or repr. Row fields not named here are kept in `extra`.
    """

    id: int
    name: str = ""
    status: InstanceStatus = InstanceStatus.UNKNOWN
    status_text: str = ""
    billing_status: str = ""
    ip: str | None = None
    ip_v6: str | None = None
    region: str | None = None
    os_distro: str | None = None
    os_version: str | None = None
    tariff: str | None = None
    cost: str | None = None
    created: datetime.date | None = None
    extra: Mapping[str, str] = attrs.field(factory=dict, hash=False)
    _client: InstanceCalls | None = attrs.field(default=None, eq=False, repr=False, alias="client")

    async def refresh(self) -> Instance:
        """The instance as the API lists it now.

        Raises:
            NotFoundError: it is no longer listed.
            RuntimeError: this instance is not bound to a client.
        """
        return await self._bound().get(self.id)

    async def wait_status(
        self,
        status: InstanceStatus | str,
        timeout: float = 1800.0,
        *,
        on_update: Callable[[Instance], object] | None = None,
    ) -> Instance:
        """Await `status` through the client's shared poller (see `InstancesManager`)."""
        return await self._bound().wait_status(
            self.id, status, timeout=timeout, on_update=on_update
        )

    async def wait_settled(
        self, timeout: float = 1800.0, *, on_update: Callable[[Instance], object] | None = None
    ) -> Instance:
        """Await the end of the operation under way: a steady state (see `InstancesManager`)."""
        return await self._bound().wait_settled(self.id, timeout=timeout, on_update=on_update)

    async def restore(
        self,
        image: RestorableImage | int,
        *,
        password: str | None = None,
        ssh_key: str | None = None,
        wait: bool = False,
        timeout: float = 3600.0,
    ) -> Instance:
        """Rebuild this instance from one of the account's images (see
        `InstancesManager.restore`): its disk is overwritten."""
        return await self._bound().restore(
            self.id, image, password=password, ssh_key=ssh_key, wait=wait, timeout=timeout
        )
