"""Every error the SDK raises, under one root.

    ZomroError
    ├── ApiError                 the API answered with `doc.error`
    │   ├── AuthError            bad credentials, expired or invalid session, no rights
    │   ├── NotFoundError        the instance or snapshot an id names does not exist
    │   ├── ConflictError        another operation is running on that object
    │   └── InvalidRequestError  a missing, bad or duplicate value (`missed`, `value`, `exists`)
    ├── TransportError           the network failed, timed out, or answered with no usable document
    ├── ResponseError            a document came back that could not be turned into a model
    ├── SnapshotFailed           an awaited snapshot reached a failed state, or vanished
    └── WaitTimeout              a wait reached its deadline (also a built-in `TimeoutError`)

Errors from the API are told apart by `doc.error`'s `$type` and `$object`,
never by its (localised) message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._models import Snapshot


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


class TransportError(ZomroError):
    """No usable answer: a network failure, a timeout, a non-2xx status, or a body
    that is not a BILLmanager JSON document (an HTML page, XML, truncated JSON).

    `status` is the HTTP status when one arrived; `body_excerpt` the start of the
    body; `retry_after` the seconds a `Retry-After` header asked for.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body_excerpt: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.body_excerpt = body_excerpt
        self.retry_after = retry_after
        super().__init__(message)

    def __str__(self) -> str:
        text = super().__str__()
        if self.status is not None:
            text += f" (HTTP {self.status})"
        if self.body_excerpt:
            text += f": {self.body_excerpt!r}"
        return text


class ResponseError(ZomroError):
    """A document arrived but could not be structured: `field` held `value`."""

    def __init__(self, message: str, *, field: str = "", value: object = None) -> None:
        self.field = field
        self.value = value
        super().__init__(message)


class SnapshotFailed(ZomroError):
    """An awaited snapshot reached a failed state (Killed, Error) or disappeared.

    `snapshot` is the last state seen of it.
    """

    def __init__(self, message: str, *, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        super().__init__(message)


class WaitTimeout(ZomroError, TimeoutError):
    """A wait reached its deadline; `last` is the last snapshot seen (None if never seen)."""

    def __init__(self, message: str, *, last: Snapshot | None) -> None:
        self.last = last
        super().__init__(message)
