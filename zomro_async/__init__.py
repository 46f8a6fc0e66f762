"""zomro-async: an asyncio SDK for snapshots of Zomro Cloud VPS instances."""

from ._client import ZomroClient
from ._exceptions import (
    ApiError,
    AuthError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    ResponseError,
    SnapshotFailed,
    TransportError,
    WaitTimeout,
    ZomroError,
)
from ._models import Snapshot, SnapshotStatus
from ._retry import RetryPolicy
from ._snapshots import PollPolicy, SnapshotsManager

__version__ = "0.1.0"

__all__ = [
    "ApiError",
    "AuthError",
    "ConflictError",
    "InvalidRequestError",
    "NotFoundError",
    "PollPolicy",
    "ResponseError",
    "RetryPolicy",
    "Snapshot",
    "SnapshotFailed",
    "SnapshotStatus",
    "SnapshotsManager",
    "TransportError",
    "WaitTimeout",
    "ZomroClient",
    "ZomroError",
    "__version__",
]
