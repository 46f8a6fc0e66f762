"""The emulator's own images beyond the snapshot calls: backups and their schedules,
the rotation setting, the account's image list and copies to other regions.

Private: `ZomroEmulator` takes these handlers from `_ImagesMixin`; its public
helpers for them are on the class itself. Every guess made here is listed in
`_emulator`'s module docstring, naming the constant or function below.
"""

from __future__ import annotations

import itertools
import random
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from datetime import time as day_time
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from ._emulator_model import (
    _RUNNING_OPERATION,
    _STATIC_ROW,
    BACKUP,
    MAX_NAME,
    SNAPSHOT,
    Node,
    _addresses_of,
    _ApiError,
    _bad_value,
    _check_name,
    _date_of,
    _Image,
    _Instance,
    _int_field,
    _LostAnswer,
    _missed,
    _slist,
    _today,
    _wrap,
)
from ._ids import FIRST_SCHEDULE_ID

if TYPE_CHECKING:
    from zomro_async._clock import Clock

# `backup_type` of a backup made by `instances.fleio_bckps.edit` or by a schedule
# (*inferred*: the notes name the two kinds, not their exact values).
MANUAL, SCHEDULED = "manual", "scheduled"
BACKUP_TYPES = (MANUAL, SCHEDULED)
# A backup's or a schedule's name, and a copy's `image_name`: the panel's limit.
MAX_BACKUP_NAME = 100
# `doc.cost.stat_cost` of the backup listing: the price per GB per day (made up).
BACKUP_COST_PER_GB_DAY = "0.05"
# *Inferred*: how the server refuses a manual image beyond the panel's limits
# (whether it refuses at all is unknown): `doc.error` of this `$type`, with the
# `$object` of the limit, by the config field that sets the limit.
LIMIT_ERROR_TYPE = "limit"
LIMIT_OBJECTS = {
    "backups_per_day": "manual_backups_per_day",
    "backups_in_all": "backups_total",
    "snapshots_per_day": "manual_snapshots_per_day",
}
BACKUP_ROTATION_MIN, BACKUP_ROTATION_MAX = 1, 10
# *Inferred*: the schedule's time is the panel's wall clock, labelled GMT+3; taken
# as UTC+3 all year (no daylight saving), though the panel warns that it moves.
SCHEDULE_TZ = timezone(timedelta(hours=3), "GMT+3")
# By the panel's day number (Sunday = 0); listed Monday first.
DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_WEEK_ORDER = (1, 2, 3, 4, 5, 6, 0)
_DAY_NUMBER = re.compile(r"[0-6]")
_HH_MM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
# *Inferred*: the regions an image can be copied to, by the `$key` the copy form
# takes (not the label); an image is not offered its own region.
COPY_REGIONS = {"7": "Netherlands-1", "8": "Netherlands-2", "9": "Germany-1", "10": "USA-1"}


class _Config(Protocol):
    """The fields of `EmulatorConfig` read here (named so, not imported: `_emulator`
    imports this module)."""

    @property
    def time_to_active(self) -> float: ...
    @property
    def delete_linger(self) -> float: ...
    @property
    def ambiguous_create_rate(self) -> float: ...
    @property
    def create_returns_id(self) -> bool: ...
    @property
    def single_elem_as_object(self) -> bool: ...
    @property
    def backups_per_day(self) -> int | None: ...
    @property
    def backups_in_all(self) -> int | None: ...
    @property
    def snapshots_per_day(self) -> int | None: ...
    @property
    def copy_time(self) -> float: ...


@attrs.define
class _Schedule:
    id: int
    instance_id: int
    name: str
    days: frozenset[int]  # the panel's day numbers, Sunday = 0
    hour: int
    minute: int
    create_date: str
    # The clock's `time()` up to which its firings are made (no backfill before it).
    fired_until: float

    def row(self) -> dict[str, str]:
        return {
            "create_date": self.create_date,
            "id": str(self.id),
            "instance_id": str(self.instance_id),
            "name": self.name,
            "rotation_days": " ".join(DAY_NAMES[d] for d in _WEEK_ORDER if d in self.days),
            "rotation_time": f"{self.hour:02d}:{self.minute:02d}",
        }

    def form_days(self) -> str:
        """The days as the form takes them: numbers, Monday first."""
        return ",".join(str(d) for d in _WEEK_ORDER if d in self.days)


def _parse_days(raw: str) -> frozenset[int]:
    """`rotation_days`: day numbers 0..6 (Sunday = 0), comma-separated, none twice
    (*inferred* strictness: no spaces, no names)."""
    if not raw:
        raise _missed("rotation_days")
    parts = raw.split(",")
    if not all(_DAY_NUMBER.fullmatch(p) for p in parts) or len(set(parts)) != len(parts):
        raise _bad_value("rotation_days", raw, "day numbers 0 to 6 (Sunday = 0), each once")
    return frozenset(int(p) for p in parts)


def _parse_time(raw: str) -> tuple[int, int]:
    """`rotation_time`: HH:MM, 00:00 to 23:59, two digits each (*inferred* strictness)."""
    if not raw:
        raise _missed("rotation_time")
    if (match := _HH_MM.fullmatch(raw)) is None:
        raise _bad_value("rotation_time", raw, "HH:MM from 00:00 to 23:59 is expected")
    return int(match[1]), int(match[2])


def _firings(schedule: _Schedule, after: float, until: float, limit: int) -> list[float]:
    """The newest `limit` moments (`time()` values, oldest first) in `(after, until]`
    at which `schedule` fires: a listed day at its time in `SCHEDULE_TZ`."""
    found: list[float] = []
    day = datetime.fromtimestamp(until, SCHEDULE_TZ).date()
    at = day_time(schedule.hour, schedule.minute)
    while len(found) < limit:
        moment = datetime.combine(day, at, SCHEDULE_TZ).timestamp()
        if moment <= after:
            break
        if moment <= until and day.isoweekday() % 7 in schedule.days:
            found.append(moment)
        day -= timedelta(days=1)
    return found[::-1]


def _scheduled_name(schedule: _Schedule, moment: float) -> str:
    """*Inferred*: a scheduled backup is named after its schedule and the moment it
    fired, on the panel's clock (`SCHEDULE_TZ`)."""
    return f"{schedule.name}-{datetime.fromtimestamp(moment, SCHEDULE_TZ):%Y%m%d-%H%M}"


def _limit_error(setting: str, limit: int) -> _ApiError:
    obj = LIMIT_OBJECTS[setting]
    return _ApiError(
        LIMIT_ERROR_TYPE,
        obj,
        "The limit of this kind of image is reached",
        f"{obj}: at most {limit}",
        {"object": obj, "value": str(limit)},
    )


def _rotation_value(raw: str) -> int:
    if not (raw.isascii() and raw.isdigit()) or not (
        BACKUP_ROTATION_MIN <= int(raw) <= BACKUP_ROTATION_MAX
    ):
        detail = f"an integer from {BACKUP_ROTATION_MIN} to {BACKUP_ROTATION_MAX} is expected"
        raise _bad_value("backup_rotation", raw, detail)
    return int(raw)


def _instance_uuid(instance_id: int) -> str:
    """An instance's made-up OpenStack uuid, derived from its id (no draw)."""
    bits = random.Random(f"zomro-emulator-instance-{instance_id}").getrandbits(128)
    return str(uuid.UUID(int=bits, version=4))


class _ImagesMixin:
    """Backups, schedules, `image`, `image.copy`, `instances.edit`, and what the
    snapshot calls share with them (finding, listing, creating an own image)."""

    if TYPE_CHECKING:
        config: _Config
        clock: Clock
        ambiguous_creates: int
        _instances: dict[int, _Instance]
        _ids: Iterator[int]
        _data_rng: random.Random
        _fault_rng: random.Random

        def _instance(self, fields: dict[str, str], field: str) -> _Instance: ...

        def _paged(
            self,
            doc: Node,
            fields: dict[str, str],
            rows: list[Any],
            wrap: Callable[[Any], Node] | None = None,
        ) -> Node: ...

        def _filtered(
            self, user: str, listing: str, rows: list[dict[str, str]], name_field: str
        ) -> list[dict[str, str]]: ...

    def _init_images(self) -> None:
        self._schedules: dict[int, _Schedule] = {}
        self._schedule_ids = itertools.count(FIRST_SCHEDULE_ID)
        self._copies: list[_Image] = []
        self._copies_to_fail = 0

    def _image_funcs(self) -> dict[str, Callable[[dict[str, str], str], Node]]:
        return {
            "instances.fleio_bckps": self._list_backups,
            "instances.fleio_bckps.edit": lambda fields, user: self._create_image(fields, BACKUP),
            "instances.fleio_bckps.schedule": self._list_schedules,
            "instances.fleio_bckps.schedule.edit": self._edit_schedule,
            "instances.fleio_bckps.schedule.delete": self._delete_schedule,
            "instances.edit": self._instance_edit,
            "image": self._list_images,
            "image.copy": self._copy,
        }

    # -- own images, whatever their kind -------------------------------------------

    def _prune(self, images: list[_Image], now: float) -> list[_Image]:
        """`images` in place without the deleted ones gone by `now`."""
        linger = self.config.delete_linger
        images[:] = [i for i in images if i.status(now, linger) is not None]
        return images

    def _live(self, instance: _Instance, now: float) -> list[_Image]:
        return self._prune(instance.snapshots, now)

    def _live_backups(self, instance: _Instance, now: float) -> list[_Image]:
        return self._prune(instance.backups, now)

    def _every_image(self, now: float) -> list[_Image]:
        """Every own image of the account still listed, by id."""
        every = [*self._prune(self._copies, now)]
        for instance in self._instances.values():
            every += self._live(instance, now) + self._live_backups(instance, now)
        return sorted(every, key=lambda i: i.id)

    def _find_image(self, image_id: int, now: float) -> _Image | None:
        for instance in self._instances.values():
            for image in self._live(instance, now) + self._live_backups(instance, now):
                if image.id == image_id:
                    return image
        return next((c for c in self._prune(self._copies, now) if c.id == image_id), None)

    def _active_images(self, now: float) -> list[_Image]:
        """Every `Active` own image (snapshots, backups, copies), by id: what a
        rebuild may restore."""
        linger = self.config.delete_linger
        return [i for i in self._every_image(now) if i.status(now, linger) == "Active"]

    def _taking_image(self, instance: _Instance, now: float) -> bool:
        """Whether a snapshot or a backup of `instance` is `Saving`."""
        linger = self.config.delete_linger
        taking = self._live(instance, now) + self._live_backups(instance, now)
        return any(i.status(now, linger) == "Saving" for i in taking)

    def _status_and_size(self, image: _Image, now: float) -> tuple[str, str]:
        status = image.status(now, self.config.delete_linger) or "Deleting"
        # The size is known once the image finished, and stays known while it is deleted.
        end = now if image.deleted_at is None else image.deleted_at
        finished = not image.killed and end >= image.ready_at
        return status, "3" if finished else ""

    def _new_image(
        self,
        name: str,
        ready_at: float,
        killed: bool,
        *,
        kind: str,
        region: str,
        instance_id: int | None,
        backup_type: str = "",
        created_at: float | None = None,
    ) -> _Image:
        created = self.clock.time() if created_at is None else created_at
        return _Image(
            id=next(self._ids),
            name=name,
            fleio_id=str(uuid.UUID(int=self._data_rng.getrandbits(128), version=4)),
            createdate=_date_of(created),
            ready_at=ready_at,
            killed=killed,
            region=region,
            updated=_date_of(created),
            kind=kind,
            backup_type=backup_type,
            instance_id=instance_id,
            created_at=created,
        )

    def _add_image(
        self,
        instance_id: int,
        name: str,
        ready_at: float,
        killed: bool,
        *,
        kind: str,
        backup_type: str = "",
        created_at: float | None = None,
    ) -> _Image:
        """A new snapshot or backup of the instance, counted by its day when manual."""
        instance = self._instances[instance_id]
        image = self._new_image(
            name,
            ready_at,
            killed,
            kind=kind,
            region=instance.region,
            instance_id=instance_id,
            backup_type=backup_type,
            created_at=created_at,
        )
        (instance.snapshots if kind == SNAPSHOT else instance.backups).append(image)
        if backup_type != SCHEDULED:
            instance.made[kind, image.createdate] += 1
        return image

    def _check_limits(self, instance: _Instance, kind: str, now: float) -> None:
        """*Inferred*: refuse a manual image beyond the panel's limits
        (`LIMIT_OBJECTS`): per day (the UTC date), deleted ones included, and
        (backups) in all, of those listed now, scheduled ones included."""
        config, today = self.config, _today(self.clock)
        per_day = ("snapshots_per_day", config.snapshots_per_day)
        if kind == BACKUP:
            per_day = ("backups_per_day", config.backups_per_day)
            in_all = config.backups_in_all
            if in_all is not None and len(self._live_backups(instance, now)) >= in_all:
                raise _limit_error("backups_in_all", in_all)
        setting, limit = per_day
        if limit is not None and instance.made[kind, today] >= limit:
            raise _limit_error(setting, limit)

    def _create_image(self, fields: dict[str, str], kind: str) -> Node:
        """`instances.snapshots.edit` or `instances.fleio_bckps.edit` (the panel's
        empty `rotation_days` and `rotation_time` are ignored)."""
        instance = self._instance(fields, "plid")
        if fields.get("sok") != "ok":
            return {"plid": {"$": fields["plid"]}, "name": _wrap(fields.get("name", ""))}
        name = _check_name(fields, "name", MAX_NAME if kind == SNAPSHOT else MAX_BACKUP_NAME)
        now = self.clock.monotonic()
        self._check_limits(instance, kind, now)
        # *Inferred*: OpenStack takes one image of a server at a time, and none
        # while it is being rebuilt.
        busy = instance.rebuilding(now) or instance.status(now) == "rebuilding"
        if busy or self._taking_image(instance, now):
            raise _ApiError("exists", "runningoperation", _RUNNING_OPERATION)
        image = self._add_image(
            int(fields["plid"]),
            name,
            now + instance.delay(self.config.time_to_active),
            instance.kill,
            kind=kind,
            backup_type=MANUAL if kind == BACKUP else "",
        )
        self._maybe_ambiguous()
        doc: Node = {"ok": {}}
        if self.config.create_returns_id:
            doc["id"] = {"$": str(image.id)}
        return doc

    def _maybe_ambiguous(self) -> None:
        """Lose the answer of a create just done, at `ambiguous_create_rate`."""
        rate = self.config.ambiguous_create_rate
        if rate > 0 and self._fault_rng.random() < rate:
            self.ambiguous_creates += 1
            raise _LostAnswer("html502")

    # -- backups -------------------------------------------------------------------

    def _backup_row(self, backup: _Image, now: float) -> dict[str, str]:
        status, size = self._status_and_size(backup, now)
        return {
            "backup_type": backup.backup_type,
            "createdate": backup.createdate,
            "fleio_status": status,
            "id": str(backup.id),
            "image_size": size,
            "name": backup.name,
            "os_distro": _STATIC_ROW["os_distro"],
            "os_version": _STATIC_ROW["os_version"],
            "protected": "on" if backup.protected else "off",
        }

    def _list_backups(self, fields: dict[str, str], user: str) -> Node:
        """`instances.fleio_bckps`: no stored filter applies. *Inferred*:
        `manual_created_total` counts the manual backups listed now."""
        instance = self._instance(fields, "elid")
        now = self.clock.monotonic()
        backups = self._live_backups(instance, now)
        doc: Node = {
            "elid": {"$": fields["elid"]},
            "manual_created_today": {"$": str(instance.made[BACKUP, _today(self.clock)])},
            "manual_created_total": {"$": str(sum(b.backup_type == MANUAL for b in backups))},
            "cost": {"stat_cost": {"$": BACKUP_COST_PER_GB_DAY}},
        }
        rows = [self._backup_row(b, now) for b in backups]
        return self._paged(doc, fields, rows, lambda r: {k: _wrap(v) for k, v in r.items()})

    # -- schedules and their firing ---------------------------------------------------

    def _fire_schedules(self) -> None:
        """Make the scheduled backups due by now (the server's rotation, read lazily):
        for each instance, its schedules' newest `backup_rotation` firings since
        they were last looked at, then `_rotate`. Older firings would be
        overwritten at once, so they are not made."""
        if not self._schedules:
            return
        wall, now = self.clock.time(), self.clock.monotonic()
        due: dict[int, list[tuple[float, int]]] = {}
        for schedule in self._schedules.values():
            if schedule.fired_until >= wall:
                continue
            keep = self._instances[schedule.instance_id].backup_rotation
            moments = _firings(schedule, schedule.fired_until, wall, keep)
            schedule.fired_until = wall
            due.setdefault(schedule.instance_id, []).extend((t, schedule.id) for t in moments)
        for instance_id, fired in due.items():
            instance = self._instances[instance_id]
            for moment, schedule_id in sorted(fired)[-instance.backup_rotation :]:
                # Made at that moment: its Saving period runs from then.
                ready_at = now - (wall - moment) + instance.delay(self.config.time_to_active)
                schedule = self._schedules[schedule_id]
                self._add_image(
                    instance_id,
                    _scheduled_name(schedule, moment),
                    ready_at,
                    instance.kill,
                    kind=BACKUP,
                    backup_type=SCHEDULED,
                    created_at=moment,
                )
            if fired:
                self._rotate(instance, now)

    def _rotate(self, instance: _Instance, now: float) -> None:
        """*Inferred*: keep the newest `backup_rotation` scheduled backups that are
        not protected (Deleting ones aside); older ones vanish at once. Protected
        ones are never overwritten nor counted; manual ones are never touched."""
        rotating = [
            b
            for b in self._live_backups(instance, now)
            if b.backup_type == SCHEDULED and not b.protected and b.deleted_at is None
        ]
        rotating.sort(key=lambda b: (b.created_at, b.id))
        overwritten = {b.id for b in rotating[: -instance.backup_rotation]}
        instance.backups[:] = [b for b in instance.backups if b.id not in overwritten]

    def _schedule_of(self, fields: dict[str, str], instance_id: int | None) -> _Schedule:
        schedule = self._schedules.get(_int_field(fields, "elid"))
        if schedule is None or instance_id not in (None, schedule.instance_id):
            raise _ApiError("missed", "elid", "Schedule not found")
        return schedule

    def _list_schedules(self, fields: dict[str, str], user: str) -> Node:
        instance = self._instance(fields, "elid")
        instance_id = int(fields["elid"])
        rows = [s.row() for s in self._schedules.values() if s.instance_id == instance_id]
        doc: Node = {
            "elid": {"$": str(instance_id)},
            "backup_rotation": {"$": str(instance.backup_rotation)},
        }
        return self._paged(doc, fields, rows, lambda r: {k: _wrap(v) for k, v in r.items()})

    def _edit_schedule(self, fields: dict[str, str], user: str) -> Node:
        """Create a schedule (`plid`), or with `elid` replace one's name, days and time."""
        self._instance(fields, "plid")
        instance_id = int(fields["plid"])
        schedule = self._schedule_of(fields, instance_id) if fields.get("elid") else None
        if fields.get("sok") != "ok":
            return self._schedule_preview(fields, schedule)
        name = _check_name(fields, "name", MAX_BACKUP_NAME)
        days = _parse_days(fields.get("rotation_days", ""))
        hour, minute = _parse_time(fields.get("rotation_time", ""))
        wall = self.clock.time()
        if schedule is None:
            schedule_id = next(self._schedule_ids)
            self._schedules[schedule_id] = _Schedule(
                schedule_id, instance_id, name, days, hour, minute, _date_of(wall), wall
            )
        else:
            # Its firings up to now were made (`_fire_schedules`) on the old terms.
            schedule.name, schedule.days = name, days
            schedule.hour, schedule.minute = hour, minute
            schedule.fired_until = wall
        return {"ok": {}}

    def _schedule_preview(self, fields: dict[str, str], schedule: _Schedule | None) -> Node:
        doc: Node = {"plid": {"$": fields["plid"]}}
        if schedule is None:
            for field in ("name", "rotation_days", "rotation_time"):
                doc[field] = _wrap(fields.get(field, ""))
        else:
            doc["elid"] = {"$": str(schedule.id)}
            doc["name"] = _wrap(schedule.name)
            doc["rotation_days"] = _wrap(schedule.form_days())
            doc["rotation_time"] = {"$": schedule.row()["rotation_time"]}
        days = [{"$key": str(d), "$": DAY_NAMES[d]} for d in _WEEK_ORDER]
        doc["slist"] = [_slist("rotation_days", days, self.config.single_elem_as_object)]
        return doc

    def _delete_schedule(self, fields: dict[str, str], user: str) -> Node:
        """`elid` alone; a `plid` sent along must be the schedule's instance."""
        plid = _int_field(fields, "plid") if fields.get("plid") else None
        del self._schedules[self._schedule_of(fields, plid).id]
        return {"ok": {}}

    # -- one instance's settings -------------------------------------------------------

    def _instance_edit(self, fields: dict[str, str], user: str) -> Node:
        """`instances.edit`: the details, or (`sok=ok`) set `backup_rotation` if sent
        (`clicked_button` accepted, not required). *Inferred*: `instances_uuid`
        and `rdns_record` (empty) are made up; lowering the rotation overwrites
        nothing until a schedule fires."""
        instance = self._instance(fields, "elid")
        instance_id = int(fields["elid"])
        if fields.get("sok") == "ok":
            if "backup_rotation" in fields:
                instance.backup_rotation = _rotation_value(fields["backup_rotation"])
            return {"ok": {}}
        ip, ip_v6 = _addresses_of(instance_id)
        details = {
            "backup_rotation": str(instance.backup_rotation),
            "createdate": instance.createdate,
            "datacentername": instance.region,
            "id": str(instance_id),
            "instances_uuid": _instance_uuid(instance_id),
            "ip": ip,
            "ip_v6": ip_v6,
            "rdns_record": "",
            "servername": instance.name,
        }
        doc: Node = {"elid": {"$": str(instance_id)}}
        doc.update({k: _wrap(v) for k, v in details.items()})
        choices = range(BACKUP_ROTATION_MIN, BACKUP_ROTATION_MAX + 1)
        rotation = [{"$key": str(n), "$": str(n)} for n in choices]
        doc["slist"] = [_slist("backup_rotation", rotation, self.config.single_elem_as_object)]
        return doc

    # -- the image list and copies ---------------------------------------------------

    def _image_row(self, image: _Image, now: float) -> dict[str, str]:
        status, size = self._status_and_size(image, now)
        return {
            "createdate": image.createdate,
            "disk_format": _STATIC_ROW["disk_format"],
            "fleio_id": image.fleio_id,
            "fleio_status": status,
            "id": str(image.id),
            "image_name": image.name,
            "image_size": size,
            "image_type": image.kind,
            "min_disk": _STATIC_ROW["min_disk"],
            "min_ram": _STATIC_ROW["min_ram"],
            "os_distro": _STATIC_ROW["os_distro"],
            "os_version": _STATIC_ROW["os_version"],
            "protected": "on" if image.protected else "off",
            "region": image.region,
        }

    def _list_images(self, fields: dict[str, str], user: str) -> Node:
        """`image`: every own image by id, through the stored `image.filter`."""
        now = self.clock.monotonic()
        rows = [self._image_row(i, now) for i in self._every_image(now)]
        rows = self._filtered(user, "image", rows, "image_name")
        return self._paged({}, fields, rows, lambda r: {k: _wrap(v) for k, v in r.items()})

    def _copy(self, fields: dict[str, str], user: str) -> Node:
        """`image.copy`: the preview, or a copy in another region (`COPY_REGIONS`).
        *Inferred*: a copy has its source's `image_type` (and `backup_type`),
        belongs to no instance, is `Saving` for `copy_time`; only an `Active`
        source is copied (else `runningoperation`)."""
        now = self.clock.monotonic()
        source = self._find_image(_int_field(fields, "elid"), now)
        if source is None:
            raise _ApiError("missed", "elid", "Image not found")
        offered = {k: v for k, v in COPY_REGIONS.items() if v != source.region}
        if fields.get("sok") != "ok":
            regions = [{"$key": k, "$": v} for k, v in offered.items()]
            return {
                "elid": {"$": str(source.id)},
                "image_name": _wrap(source.name),
                "region": _wrap(source.region),
                "slist": [_slist("region", regions, self.config.single_elem_as_object)],
            }
        name = _check_name(fields, "image_name", MAX_BACKUP_NAME)
        region = fields.get("region", "")
        if not region:
            raise _missed("region")
        if region not in offered:
            raise _bad_value("region", region, "a region key of the form, not the image's own")
        if source.status(now, self.config.delete_linger) != "Active":
            raise _ApiError("exists", "runningoperation", _RUNNING_OPERATION)
        killed = self._copies_to_fail > 0
        self._copies_to_fail -= killed
        copy = self._new_image(
            name,
            now + self.config.copy_time,
            killed,
            kind=source.kind,
            region=offered[region],
            instance_id=None,
            backup_type=source.backup_type,
        )
        self._copies.append(copy)
        self._maybe_ambiguous()
        return {"ok": {}}
