"""The emulator's records and wire helpers, shared by `_emulator` and `_emulator_backups`.

Private: `ZomroEmulator` is the one public class. The guesses these carry are
listed in `_emulator`'s module docstring with the rest.
"""

from __future__ import annotations

import collections
import math
from datetime import UTC, datetime
from typing import Any

import attrs

from zomro_async._clock import Clock

Node = dict[str, Any]

MAX_NAME = 255
DEFAULT_REGION = "Netherlands-2"
# Fixed row values the page shows for every snapshot of Zomro's Ubuntu image
# (backups and copies show the same: they are images of the same servers).
_STATIC_ROW = {
    "architecture": "x86_64",
    "disk_format": "qcow2",
    "hypervisor_type": "any_hypervisor",
    "min_disk": "20",
    "min_ram": "0",
    "os_distro": "Ubuntu",
    "os_version": "22.04 x64",
    "region": "Netherlands-2",
    "visibility": "private",
}
# BILLmanager item statuses: 2 active, 4 deleted (a killed image is dead), 5 being processed.
_ITEM_STATUS = {"Saving": "5", "Deleting": "5", "Active": "2", "Killed": "4"}
_RUNNING_OPERATION = "Another operation is already running on this object"
# The `image_type` of each kind of own image (the notes' values).
SNAPSHOT, BACKUP = "Snapshot", "Backup"
# *Inferred*: the scheduled backups an instance keeps until one is set
# (`instances.edit backup_rotation`).
DEFAULT_BACKUP_ROTATION = 3


class _ApiError(Exception):
    """Answered as BILLmanager's `doc.error` (HTTP 200)."""

    def __init__(
        self, type_: str, obj: str, msg: str, detail: str = "", params: Node | None = None
    ) -> None:
        super().__init__(msg)
        self.type, self.obj, self.msg, self.detail = type_, obj, msg, detail or msg
        self.params = params or {}

    def node(self) -> Node:
        error: Node = {
            "$type": self.type,
            "$object": self.obj,
            "$lang": "en",
            "msg": {"$": self.msg},
            "detail": {"$": self.detail},
        }
        params = [{"$name": k, "$": v} for k, v in self.params.items()]
        if params:
            error["param"] = params[0] if len(params) == 1 else params
        return error


def _missed(field: str) -> _ApiError:
    return _ApiError(
        "missed", field, f"Missing value of the '{field}' field", params={"object": field}
    )


def _bad_value(field: str, value: str, detail: str = "") -> _ApiError:
    msg = f"Invalid value of the '{field}' field"
    return _ApiError("value", field, msg, detail, {"object": field, "value": value})


def _check_name(fields: dict[str, str], field: str, limit: int) -> str:
    """The non-blank `field` of at most `limit` characters, else `missed` / `value` on it."""
    name = fields.get(field, "")
    if not name.strip():
        raise _missed(field)
    if len(name) > limit:
        raise _bad_value(field, name, f"at most {limit} characters are allowed")
    return name


class _LostAnswer(Exception):
    """The call was carried out, but its answer is lost (`kind`: a LOST_ANSWER_KINDS)."""

    def __init__(self, kind: str = "html502") -> None:
        super().__init__(kind)
        self.kind = kind


@attrs.define
class _Image:
    """An own image of the account: a snapshot or a backup of an instance, or a
    copy of one (`instance_id` None) in another region."""

    id: int
    name: str
    fleio_id: str
    createdate: str
    ready_at: float
    killed: bool = False
    protected: bool = False
    deleted_at: float | None = None
    region: str = DEFAULT_REGION
    updated: str = ""
    kind: str = SNAPSHOT
    # A backup's `manual` or `scheduled` (a copy keeps its source's); "" for a snapshot.
    backup_type: str = ""
    instance_id: int | None = None
    # The clock's `time()` when it was made: scheduled backups rotate by it.
    created_at: float = 0.0

    def status(self, now: float, linger: float) -> str | None:
        """The Fleio status at `now`, or None once the deleted image is gone."""
        if self.deleted_at is not None:
            return None if now - self.deleted_at >= linger else "Deleting"
        if now < self.ready_at:
            return "Saving"
        return "Killed" if self.killed else "Active"


@attrs.define
class _Instance:
    time_to_active: float | None
    kill: bool
    name: str = ""
    region: str = DEFAULT_REGION
    createdate: str = ""
    fail_rebuild: bool = False
    # (since, status) by time: the status at t is the last one since at or before t.
    timeline: list[tuple[float, str]] = attrs.Factory(lambda: [(-math.inf, "active")])
    # When the rebuild under way (its lag included) ends.
    rebuild_until: float | None = None
    snapshots: list[_Image] = attrs.Factory(list)
    backups: list[_Image] = attrs.Factory(list)
    backup_rotation: int = DEFAULT_BACKUP_ROTATION
    # Manual images made, deleted ones included, by (image_type, UTC date).
    made: collections.Counter[tuple[str, str]] = attrs.Factory(collections.Counter)

    def status(self, now: float) -> str:
        current = self.timeline[0][1]
        for since, status in self.timeline:
            if since > now:
                break
            current = status
        return current

    def set_status(self, now: float, status: str, then: str | None, after: float) -> None:
        self.timeline = [(-math.inf, status)]
        if then is not None:
            self.timeline.append((now + after, then))
        self.rebuild_until = None

    def rebuilding(self, now: float) -> bool:
        return self.rebuild_until is not None and now < self.rebuild_until

    def start_rebuild(self, now: float, lag: float, duration: float) -> None:
        """Read the status of `now` for `lag` (*inferred*), `rebuilding` for
        `duration`, then `active`, or `error` with `fail_rebuild`; whatever
        else was scheduled is dropped."""
        end = now + lag + duration
        self.timeline = [
            (-math.inf, self.status(now)),
            (now + lag, "rebuilding"),
            (end, "error" if self.fail_rebuild else "active"),
        ]
        self.rebuild_until = end

    def delay(self, default: float) -> float:
        """How long a new image of this instance stays `Saving`."""
        return default if self.time_to_active is None else self.time_to_active


def _wrap(value: str) -> Node:
    return {"$": value} if value else {}


def _int_field(fields: dict[str, str], name: str) -> int:
    raw = fields.get(name, "")
    if not raw:
        raise _missed(name)
    if not (raw.isascii() and raw.isdigit()) or int(raw) <= 0:
        raise _bad_value(name, raw, "a positive integer is expected")
    return int(raw)


def _nodes(items: list[Node], single_as_object: bool) -> Node | list[Node] | None:
    """A list node as BILLmanager sends it: none when empty, and (*inferred*, as
    `single_elem_as_object` asks) one object for a list of one."""
    if not items:
        return None
    return items[0] if single_as_object and len(items) == 1 else items


def _slist(name: str, vals: list[Node], single: bool) -> Node:
    """BILLmanager's `<slist name=...>` of choices, as JSON."""
    node: Node = {"$name": name}
    if (val := _nodes(vals, single)) is not None:
        node["val"] = val
    return node


def _addresses_of(instance_id: int) -> tuple[str, str]:
    """An instance's made-up IPv4 and IPv6 addresses, derived from its id."""
    v4 = f"185.0.{(instance_id >> 8) & 0xFF}.{instance_id & 0xFF}"
    groups = [(instance_id >> shift) & 0xFFFF for shift in (48, 32, 16, 0)]
    while len(groups) > 1 and groups[0] == 0:
        groups.pop(0)
    return v4, "2a01:db8::" + ":".join(f"{g:x}" for g in groups)


def _date_of(seconds: float) -> str:
    """The UTC date (YYYY-MM-DD) of a `time()` value: every `createdate` is one."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d")


def _today(clock: Clock) -> str:
    return _date_of(clock.time())
