"""Rotation: this period's snapshot per instance (made, or adopted on a rerun), then retention."""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable, Sequence

import attrs

from .._exceptions import ApiError, AuthError, ImageFailed
from .._images._domain import ImageStatus, InstanceImage
from ._bulk import (
    BulkJob,
    BulkTarget,
    Emit,
    JobSettings,
    ProgressKind,
    Step,
    failed_snapshot,
    logger,
)
from ._inferred import SNAPSHOTS_PER_DAY
from ._retention import Retention, Rule, period_of, plan_retention

# The `{date}-{time}` of a rotation's name, as `render_names` writes them (UTC).
NAME_TIME_FORMAT = "%Y-%m-%d-%H%M%S"
# The rule of a snapshot still being made that is not this run's: never deleted,
# and not counted (it may yet fail).
IN_PROGRESS = "in progress"
# The rule of one neither Active nor failed nor being made (deactivated, or in a
# state the SDK does not know): no backup to count on, and not the rotation's to
# delete.
NOT_ACTIVE = "not active"
# A snapshot with neither a time in its name nor a creation date is the oldest.
_EARLIEST = datetime.datetime.min.replace(tzinfo=datetime.UTC)

Kept = tuple[tuple[InstanceImage, tuple[str, ...]], ...]


@attrs.frozen(kw_only=True)
class RotationResult:
    """The outcome of a rotation on one instance.

    `snapshot` is this period's snapshot: the new one, or with `resumed` the
    one an earlier run of the period made and this one adopted (in a dry run:
    the one it would adopt, else None); on failure the last state seen of it,
    None when the create failed before one was seen. `planned_name` is its
    name. `kept` is what the retention keeps, newest first, each with the
    rules that keep it (in a dry run: the existing snapshots it would keep,
    the new one aside); empty when the rotation failed before its new snapshot
    was Active. `planned_rules` (a dry run that would create one) are the
    rules that would keep the new snapshot. `deleted` the snapshots deleted
    (in a dry run: those that would be), failed ones first; `error` what went wrong, None when `ok`.
    """

    instance_id: int
    planned_name: str
    snapshot: InstanceImage | None = None
    deleted: tuple[InstanceImage, ...] = ()
    kept: Kept = ()
    planned_rules: tuple[str, ...] = ()
    resumed: bool = False
    dry_run: bool = False
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        """True when the rotation on this instance succeeded (`error` is None)."""
        return self.error is None


def rotation_retention(keep: object) -> Retention:
    """`keep` as a rotation's `Retention` (an int N is `Retention(last=N)`), or
    `TypeError`/`ValueError` before anything is sent."""
    if isinstance(keep, Retention):
        retention = keep
    elif isinstance(keep, bool) or not isinstance(keep, int):
        raise TypeError(f"keep must be an int or a Retention, not {type(keep).__name__}")
    elif keep < 1:
        raise ValueError("keep must be at least 1: the new snapshot is always kept")
    else:
        retention = Retention(last=keep)
    if retention.hourly > SNAPSHOTS_PER_DAY:
        raise ValueError(
            f"hourly={retention.hourly} is refused: the provider allows {SNAPSHOTS_PER_DAY}"
            f" manual snapshots of an instance a day, so at most {SNAPSHOTS_PER_DAY} hourly"
            " ones can be kept (use daily for longer)"
        )
    return retention


def rotation_period(retention: Retention) -> Rule:
    """The rule whose period a rotation makes one snapshot in: the finest set
    (`last` alone: a day, the nightly job's)."""
    if retention.hourly:
        return "hourly"
    if retention.daily or retention.last:
        return "daily"
    if retention.weekly:
        return "weekly"
    return "monthly" if retention.monthly else "yearly"


def name_time(name: str, prefix: str) -> datetime.datetime | None:
    """The UTC time in a rotation's name (`{prefix}{date}-{time}`), None if it has none."""
    if not name.startswith(prefix):
        return None
    try:
        parsed = datetime.datetime.strptime(name[len(prefix) :], NAME_TIME_FORMAT)
    except ValueError:
        return None
    return parsed.replace(tzinfo=datetime.UTC)


def snapshot_time(snapshot: InstanceImage, prefix: str) -> datetime.datetime:
    """When a snapshot was taken, for retention: the time in its name, else the
    start (UTC) of its creation date (the listing gives no time of day)."""
    if (when := name_time(snapshot.name, prefix)) is not None:
        return when
    if snapshot.created is not None:
        return datetime.datetime.combine(snapshot.created, datetime.time(), datetime.UTC)
    return _EARLIEST


def _rotating(snapshots: Sequence[InstanceImage], prefix: str) -> list[InstanceImage]:
    # One being deleted is no longer kept: it takes no part.
    return [
        s
        for s in snapshots
        if s.name.startswith(prefix) and not s.protected and not s.status.being_deleted
    ]


def this_period(
    snapshots: Sequence[InstanceImage], *, prefix: str, period: Rule, now: datetime.datetime
) -> InstanceImage | None:
    """The snapshot an earlier run made in `now`'s period that a rerun adopts:
    named by a rotation of `prefix` with a time of the period, Active (preferred)
    or still being made, the newest of them; None when there is none."""
    current = period_of(period, now)

    def of_period(s: InstanceImage) -> bool:
        when = name_time(s.name, prefix)
        return when is not None and period_of(period, when) == current

    candidates = [s for s in _rotating(snapshots, prefix) if of_period(s)]
    for usable in (lambda s: s.status is ImageStatus.ACTIVE, lambda s: s.status.in_progress):
        found = [s for s in candidates if usable(s)]
        if found:
            return max(found, key=lambda s: (snapshot_time(s, prefix), s.id))
    return None


@attrs.frozen(kw_only=True)
class RotationPlan:
    """What a rotation keeps (newest first, with their rules) and lets go: the
    failed snapshots and those the retention expires (each oldest first);
    `planned_rules`, the rules that keep a new snapshot not made yet."""

    kept: Kept
    failed: tuple[InstanceImage, ...]
    expired: tuple[InstanceImage, ...]
    planned_rules: tuple[str, ...] = ()

    @property
    def victims(self) -> tuple[InstanceImage, ...]:
        """What to delete, in order: the failed ones, then the expired ones."""
        return self.failed + self.expired


def plan_rotation(
    snapshots: Sequence[InstanceImage],
    *,
    prefix: str,
    retention: Retention,
    own: InstanceImage | None,
    planned_at: datetime.datetime | None = None,
) -> RotationPlan:
    """The plan of a rotation over an instance's listing.

    Only unprotected snapshots named with `prefix` that are not being deleted
    take part. Failed ones (Killed, Error) count for no rule and all go, but
    `own` (this run's snapshot, always kept). One still being made that is not
    `own` counts for no rule and never goes (rule "in progress"), nor does one
    in any other state but Active (rule "not active"). The Active ones are
    planned by `retention`, their times from their names (or creation
    dates), ties by id. `planned_at` places a new snapshot not made yet (a dry
    run): it is always kept, and not in `kept`; `planned_rules` says by which rules.
    """
    rotating = _rotating(snapshots, prefix)
    own_id = own.id if own is not None else None
    if own is not None and own_id not in {s.id for s in rotating}:
        rotating.append(own)  # a listing that does not show it yet must not lose it

    def age(s: InstanceImage) -> tuple[datetime.datetime, int]:
        return (snapshot_time(s, prefix), s.id)

    failed = sorted((s for s in rotating if s.status.failed and s.id != own_id), key=age)
    counted = [s for s in rotating if s.id == own_id or s.status is ImageStatus.ACTIVE]
    left_alone = [
        (s, (IN_PROGRESS if s.status.in_progress else NOT_ACTIVE,))
        for s in rotating
        if s.id != own_id and not s.status.failed and s.status is not ImageStatus.ACTIVE
    ]
    # Plan over positions (-1: the planned new snapshot), newest id first for ties.
    counted.sort(key=lambda s: s.id, reverse=True)
    dated = [(i, snapshot_time(s, prefix)) for i, s in enumerate(counted)]
    always: int | None = None
    if planned_at is not None and own is None:
        dated.insert(0, (-1, planned_at))
        always = -1
    elif own is not None:
        always = next(i for i, s in enumerate(counted) if s.id == own_id)
    plan = plan_retention(retention, dated, always=always)
    kept = [(counted[i], rules) for i, rules in plan.kept if i >= 0]
    kept += left_alone
    kept.sort(key=lambda pair: age(pair[0]), reverse=True)
    expired = sorted((counted[i] for i in plan.removed), key=age)
    planned = next((rules for i, rules in plan.kept if i == -1), ())
    return RotationPlan(
        kept=tuple(kept), failed=tuple(failed), expired=tuple(expired), planned_rules=planned
    )


def _cleans_up_after(error: BaseException) -> bool:
    # After a failure the API answered (the snapshot failed, a limit or a conflict
    # refused it), failed snapshots are still let go; not when the API is out of
    # reach or refuses the session, nor after a timeout, whose time is spent.
    return isinstance(error, ImageFailed) or (
        isinstance(error, ApiError) and not isinstance(error, AuthError)
    )


def rotate_job(
    manager: BulkTarget,
    names: dict[int, str],
    *,
    retention: Retention,
    now: datetime.datetime,
    prefix: str,
    dry_run: bool,
    settings: JobSettings,
) -> BulkJob[RotationResult]:
    timeout = settings.timeout
    period = rotation_period(retention)

    def item(instance_id: int, name: str) -> Callable[[Emit], Awaitable[RotationResult]]:
        async def delete(step: Step, victim: InstanceImage, deleted: list[InstanceImage]) -> None:
            await manager.delete(instance_id, victim.id)
            step(ProgressKind.DELETING, victim)
            await manager.wait_deleted(instance_id, victim.id, timeout=timeout)
            deleted.append(victim)
            step(ProgressKind.DELETED, victim)

        async def adopt(step: Step, snapshot: InstanceImage) -> InstanceImage:
            if snapshot.status.in_progress:
                step(ProgressKind.SAVING, snapshot)
                snapshot = await manager.wait_active(
                    instance_id,
                    snapshot.id,
                    timeout=timeout,
                    on_update=lambda s: step(ProgressKind.SAVING, s),
                )
            step(ProgressKind.ACTIVE, snapshot)
            return snapshot

        async def clear_failed(emit: Emit, own: InstanceImage | None) -> list[InstanceImage]:
            # Best effort: the rotation's own error is the one its result reports.
            deleted: list[InstanceImage] = []
            cleaner = Step(instance_id, emit, settings.stamp)
            try:
                current = await manager.list(instance_id)
                plan = plan_rotation(current, prefix=prefix, retention=retention, own=own)
                for victim in plan.failed:
                    await delete(cleaner, victim, deleted)
            except Exception:
                logger.warning(
                    "rotation of instance %d: failed snapshots not all deleted",
                    instance_id,
                    exc_info=True,
                )
            return deleted

        async def run(emit: Emit) -> RotationResult:
            step = Step(instance_id, emit, settings.stamp)
            deleted: list[InstanceImage] = []
            new: InstanceImage | None = None
            adopted: InstanceImage | None = None
            kept: Kept = ()
            listed = False

            def outcome(
                snapshot: InstanceImage | None,
                error: BaseException | None = None,
                planned_rules: tuple[str, ...] = (),
            ) -> RotationResult:
                return RotationResult(
                    instance_id=instance_id,
                    planned_name=name if adopted is None else adopted.name,
                    snapshot=snapshot,
                    deleted=tuple(deleted),
                    kept=kept,
                    planned_rules=planned_rules,
                    resumed=adopted is not None,
                    dry_run=dry_run,
                    error=error,
                )

            try:
                current = await manager.list(instance_id)
                listed = True
                adopted = this_period(current, prefix=prefix, period=period, now=now)
                if dry_run:
                    plan = plan_rotation(
                        current,
                        prefix=prefix,
                        retention=retention,
                        own=adopted,
                        planned_at=now,
                    )
                    deleted, kept = list(plan.victims), plan.kept  # what would be
                    return outcome(adopted, planned_rules=plan.planned_rules)
                if adopted is None:
                    new = await step.create(manager, name, wait=True, timeout=timeout)
                else:
                    new = await adopt(step, adopted)
                # Only now that this period's snapshot is Active is anything good let go.
                current = await manager.list(instance_id)
                plan = plan_rotation(current, prefix=prefix, retention=retention, own=new)
                kept = plan.kept
                for victim in plan.victims:
                    await delete(step, victim, deleted)
            except Exception as exc:  # one instance's failure never costs the others
                reached = new if new is not None else failed_snapshot(exc, step.last)
                if listed and new is None and _cleans_up_after(exc):
                    deleted = await clear_failed(emit, reached)
                step.failure(exc)
                return outcome(reached, exc)
            return outcome(new)

        return run

    return settings.job([item(i, n) for i, n in names.items()])
