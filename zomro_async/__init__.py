"""zomro-async: an asyncio SDK for snapshots of Zomro Cloud VPS instances."""

from ._bulk import BulkJob, BulkResult, ProgressEvent, ProgressKind, RotationResult
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
from ._poller import PollPolicy
from ._retry import RetryPolicy
from ._snapshots import SnapshotsManager

__version__ = "0.1.0"

__all__ = [
    "ApiError",
    "AuthError",
    "BulkJob",
    "BulkResult",
    "ConflictError",
    "InvalidRequestError",
    "NotFoundError",
    "PollPolicy",
    "ProgressEvent",
    "ProgressKind",
    "ResponseError",
    "RetryPolicy",
    "RotationResult",
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
