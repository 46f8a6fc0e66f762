"""The plain attrs models of backups: a backup, its schedule, the account's use of them."""

from __future__ import annotations

import datetime
import decimal
import enum
from collections.abc import Mapping

import attrs

from .._images._domain import InstanceImage
from .._status import LenientStatus


class BackupType(LenientStatus):
    """How a backup was made: by hand (`create`) or by a schedule; else `UNKNOWN`."""

    MANUAL = "manual"
    SCHEDULED = "scheduled"
    UNKNOWN = "unknown"


@attrs.frozen(kw_only=True)
class Backup(InstanceImage):
    """One backup of a Cloud VPS instance, as `instances.fleio_bckps` lists it.

    It has a snapshot's fields and methods (see `InstanceImage`), and
    `backup_type`. The binding takes no part in equality or repr.
    """

    backup_type: BackupType = BackupType.UNKNOWN


class Weekday(enum.IntEnum):
    """A day of the week, numbered as Python's `date.weekday()` (Monday is 0)."""

    MON = 0
    TUE = 1
    WED = 2
    THU = 3
    FRI = 4
    SAT = 5
    SUN = 6


@attrs.frozen(kw_only=True)
class BackupSchedule:
    """A schedule of an instance's backups (`instances.fleio_bckps.schedule`).

    `at` is the time of day on the panel's clock, naive (see the backups docs:
    the panel labels it GMT+3); `days` the weekdays it runs on.
    """

    id: int
    instance_id: int
    name: str = ""
    days: frozenset[Weekday] = frozenset()
    at: datetime.time | None = None
    created: datetime.date | None = None
    extra: Mapping[str, str] = attrs.field(factory=dict, hash=False)


@attrs.frozen(kw_only=True)
class BackupUsage:
    """How many manual backups an instance has made, against the limits the panel
    enforces (`daily_limit` a day, `total_limit` in all).

    `made_today` and `made_in_all` are None when the listing did not say.
    `price_per_gb_day` is the listing's `cost.stat_cost`, when it carries one.
    """

    instance_id: int
    made_today: int | None
    made_in_all: int | None
    daily_limit: int
    total_limit: int
    price_per_gb_day: decimal.Decimal | None = None

    @property
    def left_today(self) -> int | None:
        """Manual backups the instance may still make today (None: unknown)."""
        if self.made_today is None:
            return None
        return max(0, self.daily_limit - self.made_today)

    @property
    def left_in_all(self) -> int | None:
        """Backups the instance may still add before the total limit (None: unknown)."""
        if self.made_in_all is None:
            return None
        return max(0, self.total_limit - self.made_in_all)
