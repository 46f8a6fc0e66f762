"""zomro-async: an asyncio SDK for Zomro Cloud VPS instances, their snapshots and restores."""

from ._client import ZomroClient
from ._core._bulk import BulkJob, BulkResult, ProgressEvent, ProgressKind
from ._core._poller import PollPolicy
from ._core._retry import RetryPolicy
from ._core._rotation import RotationResult
from ._exceptions import (
    ApiError,
    AuthError,
    ConflictError,
    InstanceFailed,
    InvalidRequestError,
    NotFoundError,
    OutcomeUnknown,
    ResponseError,
    SnapshotFailed,
    TransportError,
    WaitTimeout,
    ZomroError,
)
from ._instances._client import InstancesManager
from ._instances._domain import Instance, InstanceStatus
from ._snapshots._client import SnapshotsManager
from ._snapshots._domain import Snapshot, SnapshotStatus

__version__ = "0.1.0"

__all__ = [
    "ApiError",
    "AuthError",
    "BulkJob",
    "BulkResult",
    "ConflictError",
    "Instance",
    "InstanceFailed",
    "InstanceStatus",
    "InstancesManager",
    "InvalidRequestError",
    "NotFoundError",
    "OutcomeUnknown",
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
