"""Rotation: a new snapshot per instance, and only once it is Active, the oldest let go."""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable, Sequence

import attrs

from .._images._domain import InstanceImage
from ._bulk import BulkJob, BulkTarget, Emit, JobSettings, ProgressKind, Step, failed_snapshot


@attrs.frozen(kw_only=True)
class RotationResult:
    """The outcome of a rotation on one instance.

    `snapshot` is the new snapshot (None in a dry run or when the create
    failed); `planned_name` its name; `deleted` the old snapshots deleted (in a
    dry run: those that would be); `error` what went wrong, None when `ok`.
    """

    instance_id: int
    planned_name: str
    snapshot: InstanceImage | None = None
    deleted: tuple[InstanceImage, ...] = ()
    dry_run: bool = False
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        """True when the rotation on this instance succeeded (`error` is None)."""
        return self.error is None


def rotation_victims(
    snapshots: Sequence[InstanceImage], *, prefix: str, keep: int, new_id: int | None
) -> list[InstanceImage]:
    """Which snapshots a rotation deletes so that `keep` remain, the new one included.

    Only unprotected snapshots whose names start with `prefix` take part; the
    oldest go first, failed ones before good ones. One already being deleted
    is no longer kept, so it does not count; one still being taken counts but
    is never chosen (it may be another run's new snapshot).
    """
    rotating = [
        s
        for s in snapshots
        if s.name.startswith(prefix)
        and not s.protected
        and s.id != new_id
        and not s.status.being_deleted
    ]
    rotating.sort(key=lambda s: (not s.status.failed, s.created or datetime.date.min, s.id))
    excess = len(rotating) + 1 - keep
    deletable = [s for s in rotating if not s.status.in_progress]
    return deletable[: max(0, excess)]


def rotate_job(
    manager: BulkTarget,
    names: dict[int, str],
    *,
    keep: int,
    prefix: str,
    dry_run: bool,
    settings: JobSettings,
) -> BulkJob[RotationResult]:
    timeout = settings.timeout

    def item(instance_id: int, name: str) -> Callable[[Emit], Awaitable[RotationResult]]:
        async def run(emit: Emit) -> RotationResult:
            step = Step(instance_id, emit, settings.stamp)
            deleted: list[InstanceImage] = []
            new: InstanceImage | None = None
            try:
                if dry_run:
                    current = await manager.list(instance_id)
                    victims = rotation_victims(current, prefix=prefix, keep=keep, new_id=None)
                    return RotationResult(
                        instance_id=instance_id,
                        planned_name=name,
                        deleted=tuple(victims),
                        dry_run=True,
                    )
                new = await step.create(manager, name, wait=True, timeout=timeout)
                # Only now that the new snapshot is Active is anything old let go.
                current = await manager.list(instance_id)
                for victim in rotation_victims(current, prefix=prefix, keep=keep, new_id=new.id):
                    await manager.delete(instance_id, victim.id)
                    step(ProgressKind.DELETING, victim)
                    await manager.wait_deleted(instance_id, victim.id, timeout=timeout)
                    deleted.append(victim)
                    step(ProgressKind.DELETED, victim)
            except Exception as exc:  # one instance's failure never costs the others
                step.failure(exc)
                return RotationResult(
                    instance_id=instance_id,
                    planned_name=name,
                    snapshot=new if new is not None else failed_snapshot(exc, step.last),
                    deleted=tuple(deleted),
                    error=exc,
                )
            return RotationResult(
                instance_id=instance_id, planned_name=name, snapshot=new, deleted=tuple(deleted)
            )

        return run

    return settings.job([item(i, n) for i, n in names.items()])
