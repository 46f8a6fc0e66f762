"""Snapshot operations, spoken in `func` names and models: the shared image calls, and rotation."""

from __future__ import annotations

from collections.abc import Iterable

from .._checks import check_name, unique
from .._core._bulk import BulkJob, OnProgress, render_names
from .._core._context import ResourceContext
from .._core._inferred import SNAPSHOTS_FILTER
from .._core._retention import Retention
from .._core._rotation import RotationResult, rotate_job, rotation_retention
from .._exceptions import SnapshotFailed
from .._images._client import ImagesManager
from .._images._instance_images import ImageKind, InstanceImages, Restorer, instance_id_of
from .._instances._domain import Instance
from ._domain import Snapshot

SNAPSHOTS = ImageKind(
    model=Snapshot,
    what="snapshot",
    list_func="instances.snapshots",
    create_func="instances.snapshots.edit",
    stored_filter=SNAPSHOTS_FILTER,
    max_name=255,
    failure=lambda message, item: SnapshotFailed(message, snapshot=item),
)


class SnapshotsManager(InstanceImages[Snapshot]):
    """`client.snapshots`: the snapshot calls of one client (`instances.snapshots`).

    Every wait joins the client's shared poller. Changes of one instance
    (snapshot and backup creates, deletes, restores through `client.instances`)
    run one at a time. The calls it shares with `client.backups` are
    `InstanceImages`'.
    """

    def __init__(
        self, context: ResourceContext, *, images: ImagesManager, restorer: Restorer
    ) -> None:
        super().__init__(context, kind=SNAPSHOTS, images=images, restorer=restorer)

    def rotate(
        self,
        instance_ids: Iterable[int | Instance],
        *,
        keep: int | Retention,
        prefix: str = "auto-",
        dry_run: bool = False,
        timeout: float = 3600.0,
        concurrency: int | None = None,
        on_progress: OnProgress | None = None,
    ) -> BulkJob[RotationResult]:
        """The scheduled-snapshot job with retention, as a `BulkJob` (see the Retention guide).

        Per instance, one snapshot per period: the period is the finest rule
        of `keep` that is set (hourly: an hour; daily, or `last` alone: a day;
        weekly: an ISO week; monthly; yearly), in UTC. If this period already
        has a `{prefix}{date}-{time}` snapshot Saving or Active (a rerun), it
        is adopted (awaited if Saving) and the result is `resumed`; otherwise
        `{prefix}{date}-{time}` is created and awaited until Active (one of
        the period that failed does not stop that). Only then is the listing
        planned by the retention (times from the names, else the creation
        dates) and what it does not keep deleted, awaiting each delete.

        Failed snapshots (Killed, Error) named with `prefix` count for no rule
        and are deleted, also when the new snapshot failed (that one is left
        for the next run, and reported); good ones only once the new one is
        Active. Snapshots without the prefix, or `protected`, are never
        touched nor counted; one being deleted does not count; one still
        being made that is not this run's is never deleted. One instance's
        failure never stops the others.

        Args:
            instance_ids: the instances (ids or `Instance`s), each once.
            keep: a `Retention`, or an int N, which is `Retention(last=N)`
                (>= 1). `hourly` may be at most 5, the provider's limit of
                manual snapshots a day.
            prefix: the name prefix that marks rotated snapshots (non-empty).
            dry_run: change nothing; each result shows the plan.
            timeout: seconds each wait may take.
            concurrency: at most this many instances at once (None: all).
            on_progress: called with each `ProgressEvent`.

        Returns:
            A `BulkJob` of `RotationResult`s, one per instance, in input order.

        Raises:
            ValueError, TypeError: bad ids, keep or prefix, or more hourly
                snapshots than a day allows, before anything is sent.
        """
        retention = rotation_retention(keep)
        if not isinstance(prefix, str) or not prefix.strip():
            raise ValueError("a rotation needs a non-empty prefix, or it would touch everything")
        ids = unique((instance_id_of(i) for i in instance_ids), "instance id")
        now = self._now()
        template = prefix.replace("{", "{{").replace("}", "}}") + "{date}-{time}"
        names = {i: check_name(n) for i, n in render_names(template, ids, now).items()}
        return rotate_job(
            self,
            names,
            retention=retention,
            now=now,
            prefix=prefix,
            dry_run=bool(dry_run),
            settings=self._job_settings(timeout, concurrency, on_progress),
        )
