"""Backup calls in `func` names and models: the shared image calls, usage, schedules, rotation."""

from __future__ import annotations

import builtins
import datetime
import decimal
from collections.abc import Iterable

from .._checks import check_id, check_name
from .._core import _document
from .._core._context import ResourceContext
from .._core._converter import schedule_from_row
from .._core._inferred import BACKUPS_IN_ALL, BACKUPS_PER_DAY
from .._core._reconcile import NewNamedChild
from .._core._session import filters_cleared_anew, one_operation
from .._exceptions import BackupFailed, NotFoundError
from .._images._client import ImagesManager
from .._images._instance_images import ImageKind, InstanceImages, Restorer
from ._domain import Backup, BackupSchedule, BackupUsage, Weekday

_LIST = "instances.fleio_bckps"
_SCHEDULES = "instances.fleio_bckps.schedule"
_SCHEDULE_EDIT = "instances.fleio_bckps.schedule.edit"
_SCHEDULE_DELETE = "instances.fleio_bckps.schedule.delete"
_INSTANCE_EDIT = "instances.edit"
# The panel's bounds on how many scheduled backups the server keeps.
ROTATION_RANGE = range(1, 11)
# The longest backup or schedule name the panel takes.
_MAX_NAME = 100

BACKUPS = ImageKind(
    model=Backup,
    what="backup",
    list_func=_LIST,
    create_func="instances.fleio_bckps.edit",
    stored_filter=None,
    max_name=_MAX_NAME,
    failure=lambda message, item: BackupFailed(message, backup=item),
    # What the panel sends with a manual backup: no schedule.
    create_fields={"rotation_days": "", "rotation_time": ""},
)


class BackupsManager(InstanceImages[Backup]):
    """`client.backups`: an instance's backups (`instances.fleio_bckps`), their
    schedules and the server's rotation of scheduled ones.

    Creating, listing, waiting, deleting, protecting, restoring and the bulk
    jobs are the very calls of `client.snapshots` (`InstanceImages`): a backup
    create is never duplicated, a lost delete answer is a success. The panel
    allows five manual backups an instance a day and a hundred in all; a
    refusal past them is a `LimitExceeded` (see `usage`).
    """

    def __init__(
        self, context: ResourceContext, *, images: ImagesManager, restorer: Restorer
    ) -> None:
        super().__init__(context, kind=BACKUPS, images=images, restorer=restorer)

    @one_operation
    async def usage(self, instance_id: int) -> BackupUsage:
        """How many manual backups the instance made today and has in all, against
        the limits the panel enforces: a bulk job can check before it starts.

        Raises:
            NotFoundError: no such instance.
            TypeError, ValueError: a bad id (nothing is sent).
        """
        instance_id = check_id(instance_id, "instance_id")
        doc = await self._api.call(_LIST, {"elid": str(instance_id)})
        price = _document.nested_value(doc, "cost", "stat_cost")
        return BackupUsage(
            instance_id=instance_id,
            made_today=_document.count_value(doc, "manual_created_today"),
            made_in_all=_document.count_value(doc, "manual_created_total"),
            daily_limit=BACKUPS_PER_DAY,
            total_limit=BACKUPS_IN_ALL,
            price_per_gb_day=_decimal(price),
        )

    @one_operation
    async def schedules(self, instance_id: int) -> builtins.list[BackupSchedule]:
        """The instance's backup schedules (`instances.fleio_bckps.schedule`).

        Raises:
            NotFoundError: no such instance.
            ResponseError: a row's days or time could not be read.
        """
        instance_id = check_id(instance_id, "instance_id")
        rows = await self._api.list_rows(_SCHEDULES, {"elid": str(instance_id)})
        return [schedule_from_row(row, instance_id) for row in rows]

    @one_operation
    async def add_schedule(
        self,
        instance_id: int,
        name: str,
        *,
        days: Iterable[Weekday],
        at: datetime.time,
    ) -> BackupSchedule:
        """Add a backup schedule: the server makes a backup at `at` on each of `days`,
        keeping the newest `rotation()` of them.

        `at` is on the panel's clock (labelled GMT+3; see the backups docs): a
        naive time is taken as that clock's, an aware one is moved to it, and
        its days with it when the move crosses midnight. The
        answer carries no id, so the schedule is found by listing, and a lost
        answer never makes a second one (as for a backup create).

        Args:
            instance_id: the instance (`plid`).
            name: the schedule's name (at most 100 characters).
            days: the weekdays (`Weekday` members), at least one.
            at: the time of day, to the minute.

        Returns:
            The new schedule, as listed.

        Raises:
            TypeError, ValueError: a bad id, name, day or time (nothing is sent).
            NotFoundError: no such instance.
            OutcomeUnknown, TransportError: as for a create.
        """
        instance_id = check_id(instance_id, "instance_id")
        name = check_name(name, "a schedule name", limit=_MAX_NAME)
        days = _check_days(days)
        # An aware time may land on the next (or the previous) day of the panel's clock.
        time_text, shift = _document.schedule_time_form(_check_time(at))
        fields = {
            "plid": str(instance_id),
            "name": name,
            "rotation_days": _document.weekdays_form(days, shift=shift),
            "rotation_time": time_text,
            "sok": "ok",
        }
        async with self._locks.held(instance_id):
            with filters_cleared_anew():
                before = await self.schedules(instance_id)
                return await self._reconciler(
                    func=_SCHEDULE_EDIT,
                    fields=fields,
                    list_children=lambda: self.schedules(instance_id),
                    parent_id=instance_id,
                    evidence=NewNamedChild(
                        name=name,
                        before={s.id for s in before},
                        describe=f"the backup schedule {name!r} of instance {instance_id}",
                    ),
                ).run()

    @one_operation
    async def remove_schedule(self, instance_id: int, schedule_id: int) -> None:
        """Remove a backup schedule (its backups stay).

        A repeat that finds it gone after an attempt whose answer was lost is a success.

        Raises:
            NotFoundError: the instance has no such schedule.
            TypeError, ValueError: bad ids (nothing is sent).
        """
        instance_id = check_id(instance_id, "instance_id")
        schedule_id = check_id(schedule_id, "schedule_id")
        async with self._locks.held(instance_id):
            # The delete names the schedule alone: make sure it is this instance's.
            if all(s.id != schedule_id for s in await self.schedules(instance_id)):
                raise NotFoundError(
                    f"instance {instance_id} has no backup schedule {schedule_id}",
                    type="missed",
                    object="elid",
                    func=_SCHEDULES,
                )
            await self._api.call(_SCHEDULE_DELETE, {"elid": str(schedule_id)}, done_if_gone=True)

    @one_operation
    async def rotation(self, instance_id: int) -> int | None:
        """How many scheduled backups the server keeps for the instance (older
        ones are overwritten); None when the answer does not say.

        Raises:
            NotFoundError: no such instance.
        """
        instance_id = check_id(instance_id, "instance_id")
        doc = await self._api.call(_SCHEDULES, {"elid": str(instance_id)})
        return _document.count_value(doc, "backup_rotation")

    @one_operation
    async def set_rotation(self, instance_id: int, keep: int) -> None:
        """Set how many scheduled backups the server keeps (`instances.edit
        backup_rotation`), 1 to 10. Setting it again is harmless, so a lost
        answer is simply retried.

        Raises:
            ValueError, TypeError: `keep` outside 1..10, or a bad id (nothing is sent).
            NotFoundError: no such instance.
        """
        instance_id = check_id(instance_id, "instance_id")
        if isinstance(keep, bool) or not isinstance(keep, int):
            raise TypeError(f"keep must be an int, not {type(keep).__name__}")
        if keep not in ROTATION_RANGE:
            raise ValueError(f"the server keeps 1 to 10 scheduled backups, not {keep}")
        fields = {
            "elid": str(instance_id),
            "backup_rotation": str(keep),
            "clicked_button": "ok",
            "sok": "ok",
        }
        async with self._locks.held(instance_id):
            await self._api.call(_INSTANCE_EDIT, fields)


def _check_days(days: object) -> frozenset[Weekday]:
    if isinstance(days, (str, bytes)) or not isinstance(days, Iterable):
        raise TypeError("days must be a set of Weekday members, e.g. {Weekday.MON}")
    found = frozenset(days)
    if not found:
        raise ValueError("a schedule needs at least one day")
    for day in found:
        if not isinstance(day, Weekday):
            raise TypeError(f"days must be Weekday members, not {type(day).__name__}")
    return found


def _check_time(at: object) -> datetime.time:
    if not isinstance(at, datetime.time):
        raise TypeError(f"at must be a datetime.time, not {type(at).__name__}")
    return at


def _decimal(text: str | None) -> decimal.Decimal | None:
    if text is None:
        return None
    try:
        value = decimal.Decimal(text.strip().replace(",", "."))
    except decimal.InvalidOperation:
        return None
    return value if value.is_finite() else None
