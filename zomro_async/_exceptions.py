"""Every error the SDK raises, under one root.

    ZomroError
    ├── ApiError                 the API answered with `doc.error`
    │   ├── AuthError            bad credentials, expired or invalid session, no rights
    │   ├── NotFoundError        the instance or snapshot an id names does not exist
    │   ├── ConflictError        another operation is running on that object
    │   └── InvalidRequestError  a missing, bad or duplicate value (`missed`, `value`, `exists`)
    │       └── LimitExceeded    a limit of the account refused it (five manual backups a day)
    ├── TransportError           the network failed, timed out, or answered with no usable document
    ├── OutcomeUnknown           a create may have acted, and the client could not tell if it did
    ├── ResponseError            a document came back that could not be turned into a model
    ├── ImageFailed              an awaited image (a copy) reached a failed state, or vanished
    │   ├── SnapshotFailed       ... and it was a snapshot
    │   └── BackupFailed         ... and it was a backup
    ├── InstanceFailed           an awaited instance reached `ERROR` (a failed rebuild), or vanished
    └── WaitTimeout              a wait reached its deadline (also a built-in `TimeoutError`)

Errors from the API are told apart by `doc.error`'s `$type` and `$object`,
never by its (localised) message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from ._backups._domain import Backup
    from ._images._domain import Image, InstanceImage
    from ._instances._domain import Instance
    from ._snapshots._domain import Snapshot

E = TypeVar("E", bound=BaseException)


class ZomroError(Exception):
    """The root of every error this SDK raises."""


class ApiError(ZomroError):
    """The API refused a call: the answer carried `doc.error`.

    `type` and `object` are BILLmanager's `$type` and `$object`; `message` and
    `detail` are its (localised) texts; `params` its `param` entries by name.
    `func` is the function that was called.
    """

    def __init__(
        self,
        message: str,
        *,
        type: str = "",
        object: str = "",
        detail: str = "",
        params: Mapping[str, str] | None = None,
        func: str = "",
    ) -> None:
        self.message = message
        self.type = type
        self.object = object
        self.detail = detail
        self.params: Mapping[str, str] = dict(params or {})
        self.func = func
        super().__init__(message)

    def __str__(self) -> str:
        where = f" in {self.func}" if self.func else ""
        return f"{self.message} (type={self.type!r}, object={self.object!r}{where})"


class AuthError(ApiError):
    """Bad credentials, an expired or invalid session, or no rights for the call."""


class NotFoundError(ApiError):
    """The instance or snapshot named by an id does not exist (or is not this account's)."""


class ConflictError(ApiError):
    """Another operation is running on that object (`$object` `runningoperation`)."""


class InvalidRequestError(ApiError):
    """The API found a value missing, wrong or already taken (`missed`, `value`, `exists`)."""


class LimitExceeded(InvalidRequestError):
    """A limit of the account refused the call: a sixth manual backup (or snapshot)
    of an instance in one day, or a backup past the total the panel allows.

    Which `$type` the server sends for it is a guess (`LIMIT_ERROR_TYPES` in
    `_core/_inferred.py`); nothing is made, and repeating the call the same day
    will not help.
    """


class TransportError(ZomroError):
    """No usable answer: a network failure, a timeout, a non-2xx status, or a body
    that is not a BILLmanager JSON document (an HTML page, XML, truncated JSON).

    `status` is the HTTP status when one arrived; `body_excerpt` the start of the
    body; `retry_after` the seconds a `Retry-After` header asked for (given in
    seconds or as an HTTP-date). `reached_server` is False only when no
    connection was ever opened (refused, unreachable, a failed TLS handshake):
    then the request certainly had no effect.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body_excerpt: str = "",
        retry_after: float | None = None,
        reached_server: bool = True,
    ) -> None:
        self.status = status
        self.body_excerpt = body_excerpt
        self.retry_after = retry_after
        self.reached_server = reached_server
        super().__init__(message)

    def __str__(self) -> str:
        text = super().__str__()
        if self.status is not None:
            text += f" (HTTP {self.status})"
        if self.body_excerpt:
            text += f": {self.body_excerpt!r}"
        return text


class OutcomeUnknown(ZomroError):
    """A create may have acted, and the client could not find out whether it did.

    Raised instead of retrying blindly (which could make a duplicate).
    `instance_id` and `name` say what was being created (`instance_id` is 0 for
    a change of the account, such as an image copy); `resource_id` is the
    new object's id when the answer carried one (`doc.id`), else None;
    `accepted` is True when the API answered the create with success and only
    the listing that confirms it failed. The cause (`__cause__`) is the last
    error seen. List the instance before creating the same thing again.
    """

    def __init__(
        self,
        message: str,
        *,
        instance_id: int,
        name: str,
        resource_id: int | None = None,
        accepted: bool = False,
    ) -> None:
        self.instance_id = instance_id
        self.name = name
        self.resource_id = resource_id
        self.accepted = accepted
        super().__init__(message)


class ResponseError(ZomroError):
    """A document arrived but could not be structured: `field` held `value`."""

    def __init__(self, message: str, *, field: str = "", value: object = None) -> None:
        self.field = field
        self.value = value
        super().__init__(message)


class ImageFailed(ZomroError):
    """An awaited image reached a failed state (Killed, Error) or disappeared.

    `image` is the last state seen of it (a `Snapshot`, a `Backup`, an `Image`).
    """

    def __init__(self, message: str, *, image: InstanceImage | Image) -> None:
        self.image = image
        super().__init__(message)


class SnapshotFailed(ImageFailed):
    """An awaited snapshot reached a failed state (Killed, Error) or disappeared.

    `snapshot` (also `image`) is the last state seen of it.
    """

    def __init__(self, message: str, *, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        super().__init__(message, image=snapshot)


class BackupFailed(ImageFailed):
    """An awaited backup reached a failed state (Killed, Error) or disappeared.

    `backup` (also `image`) is the last state seen of it.
    """

    def __init__(self, message: str, *, backup: Backup) -> None:
        self.backup = backup
        super().__init__(message, image=backup)


class InstanceFailed(ZomroError):
    """An awaited instance reached `ERROR` (a rebuild that failed), or disappeared.

    `instance` is the last state seen of it.
    """

    def __init__(self, message: str, *, instance: Instance) -> None:
        self.instance = instance
        super().__init__(message)


class WaitTimeout(ZomroError, TimeoutError):
    """A wait reached its deadline; `last` is the last state seen of what was
    awaited (a `Snapshot`, a `Backup`, an `Image` or an `Instance`; None if never seen).

    When the deadline passed while the API could not be reached, `__cause__` is
    the last error the polling met.
    """

    def __init__(self, message: str, *, last: InstanceImage | Image | Instance | None) -> None:
        self.last = last
        super().__init__(message)


def fresh_copy(error: E) -> E:
    """A copy of `error` for one more task to raise.

    Raising one exception object in several tasks grows one traceback across all
    of them, and a handler that changes it changes it for everyone.
    """
    copy = type(error).__new__(type(error), *error.args)
    copy.__dict__.update(error.__dict__)
    copy.__cause__ = error.__cause__
    copy.__suppress_context__ = error.__suppress_context__
    if "__notes__" in error.__dict__:
        copy.__notes__ = list(error.__notes__)  # its own list, not a shared one
    return copy
