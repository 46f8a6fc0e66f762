"""zomro-async: an asyncio SDK for Zomro Cloud VPS: instances, snapshots, backups, restores."""

from ._backups._client import BackupsManager
from ._backups._domain import Backup, BackupSchedule, BackupType, BackupUsage, Weekday
from ._client import ZomroClient
from ._core._bulk import BulkJob, BulkResult, ProgressEvent, ProgressKind
from ._core._poller import PollPolicy
from ._core._retention import Retention
from ._core._retry import RetryPolicy
from ._core._rotation import RotationResult
from ._exceptions import (
    ApiError,
    AuthError,
    BackupFailed,
    ConflictError,
    ImageFailed,
    InstanceFailed,
    InvalidRequestError,
    LimitExceeded,
    NotFoundError,
    OutcomeUnknown,
    ResponseError,
    SnapshotFailed,
    TransportError,
    WaitTimeout,
    ZomroError,
)
from ._images._client import ImagesManager
from ._images._domain import Image, ImageStatus, ImageType, InstanceImage
from ._images._instance_images import InstanceImages
from ._instances._client import InstancesManager
from ._instances._domain import Instance, InstanceStatus
from ._snapshots._client import SnapshotsManager
from ._snapshots._domain import Snapshot, SnapshotStatus

__version__ = "0.1.0"

__all__ = [
    "ApiError",
    "AuthError",
    "Backup",
    "BackupFailed",
    "BackupSchedule",
    "BackupType",
    "BackupUsage",
    "BackupsManager",
    "BulkJob",
    "BulkResult",
    "ConflictError",
    "Image",
    "ImageFailed",
    "ImageStatus",
    "ImageType",
    "ImagesManager",
    "Instance",
    "InstanceFailed",
    "InstanceImage",
    "InstanceImages",
    "InstanceStatus",
    "InstancesManager",
    "InvalidRequestError",
    "LimitExceeded",
    "NotFoundError",
    "OutcomeUnknown",
    "PollPolicy",
    "ProgressEvent",
    "ProgressKind",
    "ResponseError",
    "Retention",
    "RetryPolicy",
    "RotationResult",
    "Snapshot",
    "SnapshotFailed",
    "SnapshotStatus",
    "SnapshotsManager",
    "TransportError",
    "WaitTimeout",
    "Weekday",
    "ZomroClient",
    "ZomroError",
    "__version__",
]
