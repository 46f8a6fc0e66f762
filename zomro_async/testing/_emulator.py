"""An in-process emulator of Zomro's snapshot API (BILLmanager form posts) for tests.

Its guesses about the real service, in one place. Zomro's page documents the
three snapshot calls and one sample row (see docs/wire-format.md); the rest
is *inferred*, each guess living in the constant or function named (here,
or in the private `_emulator_model` and `_emulator_images`):

- a listing of no snapshots has no `elem` key (`_list`); a create while the
  instance's last snapshot is still `Saving` is refused `exists` /
  `runningoperation`, as OpenStack refuses a second image of a server
  (`_create_image`); a deleted snapshot is listed `Deleting` for a while, a failed
  one `Killed` (`_ITEM_STATUS`); an unknown snapshot or instance is `missed`
  on the id's field;
- the front proxy is nginx, answering its stock error pages for 429, 502, 503
  and 504 (`_PAGES`); a rate-limited login is answered 429 by that proxy
  before BILLmanager sees it (`LOGIN_FAULT_KINDS`);
- `Retry-After` comes only with a 429 or a 503 (`_RETRY_AFTER_STATUSES`);
- an answer lost after the server acted (`lose_answers`, `lost_delete_rate`,
  `ambiguous_create_rate`) comes back as the proxy's 502 page by default: the
  backend finished, the proxy gave up on it; a delete whose answer was lost
  has still happened, so a repeat finds the snapshot `Deleting`, or, once it
  is gone, answers `missed` on `elid`.
- an ended session refuses every call but `auth` with `access`, `whoami` and
  `keepalive` included; a live one answers them `doc.ok` (`_dispatch`).

Beyond snapshots (instances, stored filters, `image.edit`, rebuilds: see the
Cloud VPS notes), the guesses are:

- an instance row's fixed values (tariff, cost, OS, `item_status` "Active",
  `status` "2") are made up (`_STATIC_INSTANCE_ROW`), its addresses derived
  from its id (`_addresses_of`); a snapshot is in its instance's region;
- `verify_resize` and `suspend` (offered only by the panel's filter) are
  statuses an instance may have, and neither is steady (`FILTER_ONLY_STATUSES`);
- a stored filter is kept per user and per list function, whatever `elid` or
  `plid` the post or the listing carries (`_filter_key`,
  `FILTER_IGNORED_FIELDS`): one snapshot filter hides rows of every
  instance's listing; a filter post replaces the whole filter; how the server
  matches each field (`_row_matches`, `_EQUAL_FILTER_FIELDS`) is a guess,
  and a field the rows lack (`cost_from`, `datacenter`, ...) filters nothing;
- `image.edit` with `sok=ok` must send back every preview field the panel
  sends (`IMAGE_EDIT_REQUIRED`; `url` may be left out), their values are not
  applied, an absent `protected` leaves the flag as it was
  (`_image_edit_commit`); `updated` is the date of the last edit; a
  snapshot that is `Deleting` can still be edited;
- BILLmanager's XML `<slist name=...><val key=...>` comes as
  `{"$name": ..., "val": [{"$key": ..., "$": ...}]}` in JSON, and a list of one
  (`elem`, `slist`, `val`) is an object under `single_elem_as_object`
  (`_nodes`); the labels of the choices are made up (`_ZONES`,
  `_DISK_FORMATS`);
- the server checks a rebuild's password by the panel's rules
  (`_password_problem`), and echoes the refused password back in its error
  (the hostile case: the SDK must scrub it);
- a rebuild is refused `exists` / `runningoperation` while the instance is
  not in a steady state, is being rebuilt, or has a snapshot or a backup
  `Saving` (Nova refuses a rebuild during `image_snapshot` and
  `image_backup`), and a snapshot or a backup is refused the same way while
  the instance is being rebuilt (`_busy_reason`, `_create_image`); an empty
  `zone`, `select_rebuild`, `enablessh`, `password` or `ssh_keys` is `missed`,
  a wrong one `value`;
- after a rebuild is accepted the instance reads its old status for
  `rebuild_lag` seconds, then `rebuilding` for `rebuild_time`, then `active`
  (whatever it was before) or `error` (`_Instance.start_rebuild`); a rebuild
  may use a snapshot of another instance of the account.

Backups, their schedules, the image list and copies (the Cloud VPS notes'
"Images" and "Backups"), the guesses are:

- a backup's `backup_type` is `manual` or `scheduled` (`BACKUP_TYPES`); image
  ids are one sequence for snapshots, backups and copies, so `image.edit`,
  `image.delete` and `image.copy` take `elid` alone; a backup is in its
  instance's region and shows the snapshots' fixed values (`_STATIC_ROW`);
- a backup listing's `manual_created_today` counts the manual backups made
  on the clock's UTC date, deleted ones included, and
  `manual_created_total` the manual ones listed now (`_list_backups`); its
  `cost.stat_cost` is made up (`BACKUP_COST_PER_GB_DAY`); no stored filter
  applies to it;
- beyond the panel's limits the server refuses a manual image with
  `$type` `limit` and the limit's `$object` (`LIMIT_ERROR_TYPE`,
  `LIMIT_OBJECTS`): a day's manual backups (or snapshots, off by default)
  counted by the clock's UTC date, deleted ones and seeded ones included,
  and the backups listed now (Deleting and scheduled ones included); the
  limits are checked before the one-image-at-a-time rule (`_check_limits`);
- `image.delete`'s snapshot-page form (`plid`, `elname`, `sok=ok`) is all or
  nothing: with any of the three, each is required; its `plid` must be the
  image's instance (a copy has none), else `missed` on `elid` (`_delete`);
- an instance keeps 3 scheduled backups until told otherwise
  (`DEFAULT_BACKUP_ROTATION`); `instances.edit` shows a made-up
  `instances_uuid` and an empty `rdns_record` (`_instance_uuid`,
  `_instance_edit`); its commit without `backup_rotation` changes nothing;
- a schedule's time is UTC+3 all year, no daylight saving (`SCHEDULE_TZ`);
  `rotation_days` takes bare day numbers, `rotation_time` two-digit HH:MM,
  nothing else (`_parse_days`, `_parse_time`); a schedule has no id in the
  answer of its create, and its own id sequence (`FIRST_SCHEDULE_ID`, in `_ids`);
- a schedule fires at each listed day's time after it was made or last
  edited (no backfill), whatever the instance is doing (a busy instance or
  a limit never stops it); its backup is named `<schedule>-YYYYMMDD-HHMM` of
  the panel's clock (`_scheduled_name`) and is `Saving` from the moment it
  fired; then only the newest `backup_rotation` scheduled backups not
  protected are kept, older ones vanishing at once (no `Deleting`);
  protected ones are never overwritten nor counted, manual ones never
  touched; lowering the rotation overwrites nothing until the next firing
  (`_fire_schedules`, `_rotate`); after a long pause only the firings that
  would survive the rotation are made;
- `image` lists the snapshots, backups and copies of the account by id, and
  the stored `image.filter` compares `image_type`, `region` and
  `disk_format` whole (`_EQUAL_FILTER_FIELDS`), `name` within `image_name`;
- the copy regions and their keys are made up (`COPY_REGIONS`); a copy has
  its source's `image_type` and `backup_type`, belongs to no instance (it is
  listed only by `image`, `instances_id` is empty), is `Saving` for
  `copy_time` then `Active` (or `Killed`), and only an `Active` source is
  copied, else `exists` / `runningoperation` (`_copy`); a rebuild may restore
  any `Active` snapshot, backup or copy of the account, whatever its region
  (`_active_images`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import math
import os
import random
import socket
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import attrs
from aiohttp import web

from zomro_async._client import ZomroClient
from zomro_async._clock import Clock, SystemClock

from ._emulator_images import BACKUP_TYPES, _ImagesMixin
from ._emulator_model import (
    _ITEM_STATUS,
    _RUNNING_OPERATION,
    _STATIC_ROW,
    BACKUP,
    DEFAULT_REGION,
    MAX_NAME,
    SNAPSHOT,
    Node,
    _addresses_of,
    _ApiError,
    _bad_value,
    _check_name,
    _Image,
    _Instance,
    _int_field,
    _LostAnswer,
    _missed,
    _nodes,
    _slist,
    _today,
    _wrap,
)
from ._ids import FIRST_IMAGE_ID

FAULT_KINDS = ("html502", "html503", "reset", "truncated", "slow")
# How an answer is lost after the server acted: the proxy gave up on the backend
# (502), timed out waiting for it (504), or the connection dropped.
LOST_ANSWER_KINDS = ("html502", "html504", "reset")
# How a login fails without a session. *Inferred*: a rate limit in front of
# BILLmanager answers 429 (nginx `limit_req_status 429`), an overloaded or
# restarting backend 503 or 502.
LOGIN_FAULT_KINDS = ("http429", "html503", "html502", "reset")
OUTAGE_MODES = ("refuse", "html503", "reset")
RETRY_AFTER_STYLES = ("seconds", "date")
# Loop turns a refusing outage lets pass after aborting the open connections.
_DROP_TURNS = 5
ACCESS_MSG = "Insufficient privileges to perform this operation"
DEFAULT_PAGE_SIZE = 20
# `instance_status` values from the notes: steady ones, ones in progress, and two
# the panel's filter offers besides (*inferred*: an instance may have them, and
# neither is steady, so a rebuild is refused meanwhile).
STEADY_STATUSES = (
    "active",
    "stopped",
    "resized",
    "rescued",
    "suspended",
    "booted_from_iso",
    "image_uploading",
    "error",
)
IN_PROGRESS_STATUSES = (
    "stopping",
    "starting",
    "creating",
    "building",
    "resizing",
    "processing",
    "rebooting",
    "rescuing",
    "unrescuing",
    "rebuilding",
    "suspending",
    "booting_from_iso",
)
FILTER_ONLY_STATUSES = ("verify_resize", "suspend")
INSTANCE_STATUSES = STEADY_STATUSES + IN_PROGRESS_STATUSES + FILTER_ONLY_STATUSES
# An instance row's values that the emulator does not vary (*inferred*: made up
# in the shapes the notes name).
_STATIC_INSTANCE_ROW = {
    "change_pricelist": "on",
    "cost": "0.15 EUR / Day",
    "instances_os": "Ubuntu 22.04",
    "item_status": "Active",
    "os_distro": "Ubuntu",
    "os_version": "22.04 x64",
    "pricelist": "Cloud-2 (2 vCPU, 4 GB RAM, 40 GB NVMe)",
    "status": "2",
}

# The fields each `*.filter` function stores (the notes' lists), by its name.
FILTER_FIELDS: dict[str, tuple[str, ...]] = {
    "instances.filter": (
        "autoprolong",
        "cost_from",
        "cost_to",
        "datacenter",
        "domain",
        "expiredate",
        "id",
        "ip",
        "opendate",
        "orderdatefrom",
        "orderdateto",
        "period",
        "pricelist",
        "instance_status",
        "name",
    ),
    "instances.snapshots.filter": ("name", "id", "fleio_status", "os_distro", "protected"),
    "image.filter": (
        "name",
        "id",
        "fleio_status",
        "os_distro",
        "image_type",
        "region",
        "disk_format",
    ),
}
# The listing each stored filter applies to.
_FILTERED_LISTS = {
    "instances": "instances.filter",
    "instances.snapshots": "instances.snapshots.filter",
    "image": "image.filter",
}
# *Inferred*: a filter is the user's for the whole list function; these fields of
# a filter post or of a listing do not scope it (see `_filter_key`).
FILTER_IGNORED_FIELDS = ("elid", "plid")
# Stored filter fields compared whole (case-insensitive) with the row's field;
# `id` is compared exactly, `name` and any other field as a substring (*inferred*).
_EQUAL_FILTER_FIELDS = (
    "instance_status",
    "fleio_status",
    "protected",
    "os_distro",
    "image_type",
    "region",
    "disk_format",
)

# *Inferred* strictness: the fields the panel sends back with an `image.edit`
# commit, each of which a commit must carry (`url` may be left out).
IMAGE_EDIT_REQUIRED = (
    "region",
    "min_disk",
    "min_ram",
    "disk_format",
    "os_distro",
    "os_version",
    "architecture",
)
_DISK_FORMATS = ("qcow2", "raw", "vmdk", "vdi", "iso")
# The rebuild form's image zones (the notes' keys; the labels are made up).
_ZONES = {"pub": "Public images", "own": "My images", "shr": "Shared images"}
# The panel's password rules for a rebuild (*inferred*: the server checks the same).
PASSWORD_MIN, PASSWORD_MAX = 8, 48
PASSWORD_FORBIDDEN = "\"#%&'()*;<>?@|"  # noqa: S105 - the characters refused


def _nginx_page(status: int, reason: str) -> str:
    return (
        f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    )


# nginx's stock pages, by the fault kind that answers with them (*inferred*: the
# proxy in front of api.zomro.com is nginx with its default error pages).
_PAGES = {
    "http429": (429, _nginx_page(429, "Too Many Requests")),
    "html502": (502, _nginx_page(502, "Bad Gateway")),
    "html503": (503, _nginx_page(503, "Service Temporarily Unavailable")),
    "html504": (504, _nginx_page(504, "Gateway Time-out")),
}
# The statuses that carry `Retry-After` (RFC 9110 allows it on 3xx too; *inferred*:
# nothing else in front of the API sends it).
_RETRY_AFTER_STATUSES = (429, 503)


@attrs.frozen
class EmulatorConfig:
    """How the emulator behaves; every field can also be passed to `ZomroEmulator` by name."""

    username: str = "demo"
    password: str = "demo-password"  # noqa: S105 - the emulator's made-up account
    session_ttl: float = 3600.0
    time_to_active: float = 8.0
    delete_linger: float = 2.0
    fault_rate: float = 0.0
    fault_kinds: tuple[str, ...] = FAULT_KINDS
    slow_seconds: float = 0.05
    ambiguous_create_rate: float = 0.0
    # The fraction of successful deletes whose answer is lost (a 502 page) after
    # the snapshot was deleted; drawn from the same seeded stream as the faults.
    lost_delete_rate: float = 0.0
    # How `Retry-After` renders a delay: "seconds" (delay-seconds) or "date" (an
    # IMF-fixdate of the emulator clock's `time()` plus the delay).
    retry_after_style: str = "seconds"
    single_elem_as_object: bool = False
    create_returns_id: bool = False
    # The page size the server remembers for the user (BILLmanager keeps p_cnt per
    # user): lists come back paged at this size even when the client asks no page.
    page_size: int | None = None
    # Instance rows carry `createdate` as a list of one `{"$": ...}`, as seen on the wire.
    createdate_as_list: bool = False
    # `image.edit`'s preview gives `protected` as `{"$orig": ...}`, with no `$`.
    protected_as_orig: bool = False
    # Whether `instances.snapshots` rows carry `fleio_id` (else: ask `image.edit`).
    snapshot_rows_have_fleio_id: bool = True
    # After a rebuild is accepted: seconds the instance still reads its old status
    # (*inferred*), then seconds it reads `rebuilding`.
    rebuild_lag: float = 3.0
    rebuild_time: float = 20.0
    # The panel's limits on manual images of one instance (*inferred*: the server
    # refuses beyond them, see LIMIT_OBJECTS); None: no limit. Backups a day
    # (the clock's UTC date, deleted ones included), backups listed at once
    # (scheduled ones included), snapshots a day.
    backups_per_day: int | None = 5
    backups_in_all: int | None = 100
    snapshots_per_day: int | None = None
    # Seconds an `image.copy` stays `Saving` before it is `Active` (or `Killed`).
    copy_time: float = 60.0
    seed: int = 0


@attrs.define
class _Session:
    username: str
    last_use: float


@attrs.frozen
class Rebuild:
    """A rebuild the emulator accepted (the password, if one was sent, is not kept)."""

    instance_id: int
    image_id: int  # the image's id: a snapshot's, a backup's or a copy's
    fleio_id: str
    ssh_key: str | None
    with_password: bool


@attrs.define
class _Hold:
    seconds: float
    count: int | None


@attrs.define
class _Outage:
    mode: str
    until: float
    retry_after: float | str | None
    # The clock sleep a refusing outage waits out; cancelled to end it early.
    sleeper: asyncio.Task[None] | None = None


def _listening_socket(address: tuple[Any, ...]) -> socket.socket:
    """A TCP socket bound to `address` (a `getsockname()`), not yet listening."""
    family = socket.AF_INET6 if len(address) == 4 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # As asyncio's create_server does: on POSIX, so that the connections just
        # dropped (TIME_WAIT) do not keep the port; never on Windows, where it
        # would let another socket take a port in use.
        if os.name == "posix":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


def _xml(tag: str, node: Any) -> list[ET.Element]:
    """The XML elements a JSON node of BILLmanager's encoding stands for."""
    if isinstance(node, list):
        return [el for item in node for el in _xml(tag, item)]
    element = ET.Element(tag)
    for key, value in node.items():
        if key == "$":
            element.text = value
        elif key.startswith("$"):
            element.set(key[1:], value)
        else:
            element.extend(_xml(key, value))
    return [element]


def _render(doc: Node, as_json: bool) -> web.Response:
    if as_json:
        return web.Response(text=json.dumps({"doc": doc}), content_type="application/json")
    body = ET.tostring(_xml("doc", doc)[0], encoding="unicode")
    return web.Response(
        text=f'<?xml version="1.0" encoding="UTF-8"?>\n{body}', content_type="text/xml"
    )


def _password_problem(password: str) -> str | None:
    """Why the panel's rules refuse `password` (*inferred*: so does the server), or None."""
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        return f"{PASSWORD_MIN} to {PASSWORD_MAX} characters are required"
    if any(not (c.isascii() and c.isprintable()) for c in password):
        return "only printable ASCII characters are allowed"
    if " " in password:
        return "spaces are not allowed"
    if any(c in PASSWORD_FORBIDDEN for c in password):
        return f"none of {' '.join(PASSWORD_FORBIDDEN)} is allowed"
    for test, what in ((str.isupper, "an upper-case letter"), (str.islower, "a lower-case letter")):
        if not any(test(c) for c in password):
            return f"at least {what} is required"
    if not any(c.isdigit() for c in password):
        return "at least a digit is required"
    return None


def _filter_key(user: str, func: str) -> tuple[str, str]:
    """Where a stored filter is kept: per user and per filter function, and
    (*inferred*) not per `elid` or `plid` (`FILTER_IGNORED_FIELDS`)."""
    return user, func


def _row_matches(row: dict[str, str], stored: dict[str, str], name_field: str) -> bool:
    """Whether a listing row passes a stored filter (*inferred* matching): `id`
    exactly; `name` as a case-insensitive substring of `name_field`; the
    `_EQUAL_FILTER_FIELDS` case-insensitively whole; any other field as a
    case-insensitive substring of the row's field of that name, if it has one."""
    for field, wanted in stored.items():
        want = wanted.casefold()
        if field == "id":
            ok = row.get("id") == wanted
        elif field == "name":
            ok = want in row.get(name_field, "").casefold()
        elif field not in row:
            continue
        elif field in _EQUAL_FILTER_FIELDS:
            ok = row[field].casefold() == want
        else:
            ok = want in row[field].casefold()
        if not ok:
            return False
    return True


def _check_status(status: str) -> None:
    if status not in INSTANCE_STATUSES:
        raise ValueError(f"status must be one of {INSTANCE_STATUSES}, got {status!r}")


def _filter_fields(func: str) -> tuple[str, ...]:
    if func not in FILTER_FIELDS:
        raise ValueError(f"func must be one of {tuple(FILTER_FIELDS)}, got {func!r}")
    return FILTER_FIELDS[func]


class ZomroEmulator(_ImagesMixin):
    """Zomro's snapshot API on a loopback port (or mounted via `app`), with state read
    lazily from `clock`, seeded opt-in transient faults, and scripted ones:
    `lose_answers`, `fail_logins`, `outage` and `hold`, all timed on `clock`.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        **overrides: Any,
    ) -> None:
        self.config: EmulatorConfig = attrs.evolve(config or EmulatorConfig(), **overrides)
        unknown = set(self.config.fault_kinds) - set(FAULT_KINDS)
        if unknown or (self.config.fault_rate > 0 and not self.config.fault_kinds):
            raise ValueError(f"fault_kinds must be a non-empty subset of {FAULT_KINDS}")
        if self.config.retry_after_style not in RETRY_AFTER_STYLES:
            raise ValueError(f"retry_after_style must be one of {RETRY_AFTER_STYLES}")
        self.clock: Clock = clock or SystemClock()
        self.calls: collections.Counter[str] = collections.Counter()
        self.faults: collections.Counter[str] = collections.Counter()
        self.ambiguous_creates = 0
        self.lost_answers: collections.Counter[str] = collections.Counter()
        self.held_answers: collections.Counter[str] = collections.Counter()
        # Calls answered with a fault at once and carried out later (`act_late`).
        self.late_acts: collections.Counter[str] = collections.Counter()
        self.late_acts_pending = 0
        self.failed_logins = 0
        self.outage_answers = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._host, self._port = host, port
        # Two streams, so the fault draws do not shift when requests create sessions
        # or snapshots (which draw ids), and ids do not shift with faults.
        self._fault_rng = random.Random(self.config.seed)
        self._data_rng = random.Random(f"zomro-emulator-data-{self.config.seed}")
        self._ids = itertools.count(FIRST_IMAGE_ID)
        self._instances: dict[int, _Instance] = {}
        self._init_images()
        self._ssh_keys: dict[str, str] = {}
        self._filters: dict[tuple[str, str], dict[str, str]] = {}
        self.rebuilds: list[Rebuild] = []
        self._sessions: dict[str, _Session] = {}
        self._token = self._new_session(self.config.username)
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._addresses: list[tuple[Any, ...]] = []
        self._lost: dict[str, collections.deque[str]] = collections.defaultdict(collections.deque)
        self._late: dict[str, collections.deque[tuple[float, str]]] = collections.defaultdict(
            collections.deque
        )
        self._login_faults: collections.deque[tuple[str, float | str | None]] = collections.deque()
        self._holds: dict[str, _Hold] = {}
        self._held_tasks: set[asyncio.Task[Any]] = set()
        self._outage: _Outage | None = None
        self._outage_task: asyncio.Task[None] | None = None
        self._placeholders: dict[tuple[Any, ...], socket.socket] = {}
        self._relisten_error: RuntimeError | None = None
        self._app = web.Application()
        for path in ("/", "/billmgr"):
            self._app.router.add_post(path, self._handle)
        self._funcs: dict[str, Callable[[dict[str, str], str], Node]] = {
            "instances.snapshots": self._list,
            "instances.snapshots.edit": lambda fields, user: self._create_image(fields, SNAPSHOT),
            "image.delete": self._delete,
            "image.edit": self._image_edit,
            "instances": self._list_instances,
            "instances.fleio.rebuild": self._rebuild,
            **self._image_funcs(),
            **{name: self._filter_handler(name) for name in FILTER_FIELDS},
            "keepalive": lambda fields, user: {"ok": {}},
            "whoami": lambda fields, user: {"ok": {}, "user": {"$": user}},
        }

    # -- lifecycle ---------------------------------------------------------------

    async def __aenter__(self) -> ZomroEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Serve on the host and port given (port 0: a free one); `url` tells which."""
        if self._runner is not None:
            return
        if (session := self._sessions.get(self._token)) is not None:
            session.last_use = self.clock.monotonic()
        runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._addresses = list(runner.addresses)
        host, port = self._addresses[0][:2]
        netloc = f"[{host}]" if ":" in str(host) else host
        self._url = f"http://{netloc}:{port}/"

    async def close(self) -> None:
        """Stop serving; the emulator's state stays readable.

        An outage in progress ends with it; answers being held are dropped.

        Raises:
            RuntimeError: after a refusing outage the emulator could not listen
                on its port again, and `wait_outage_end` did not report it.
        """
        runner, self._runner, self._url = self._runner, None, None
        task, self._outage_task, self._outage = self._outage_task, None, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        self._close_placeholders()
        # Cancelled as aiohttp's own shutdown would cancel them, only without
        # first waiting its shutdown timeout in real time for answers the clock holds.
        for held in list(self._held_tasks):
            held.cancel()
        if runner is not None:
            await runner.cleanup()
        error, self._relisten_error = self._relisten_error, None
        if error is not None:
            raise error

    @property
    def url(self) -> str:
        """The base URL to point a client at (after `start`); an outage keeps it.

        Raises:
            RuntimeError: the emulator is not serving.
        """
        if self._url is None:
            raise RuntimeError("the emulator is not started")
        return self._url

    @property
    def token(self) -> str:
        """A session id logged in as `config.username`."""
        return self._token

    @property
    def app(self) -> web.Application:
        """The `aiohttp.web` application, to mount or serve some other way."""
        return self._app

    def client(self, **settings: Any) -> ZomroClient:
        """A `ZomroClient` pointed at this emulator, on its clock.

        Args:
            **settings: constructor arguments; by default the client logs in as
                the emulator's user (pass `token=` for a token client).

        Returns:
            A new client; close it (or use `async with`).
        """
        if "token" not in settings:
            settings.setdefault("username", self.config.username)
            settings.setdefault("password", self.config.password)
        settings.setdefault("base_url", self.url)
        settings.setdefault("clock", self.clock)
        return ZomroClient(**settings)

    # -- seeding and inspection --------------------------------------------------

    def add_instance(
        self,
        instance_id: int,
        snapshots: int = 0,
        *,
        time_to_active: float | None = None,
        kill: bool = False,
        saving: int = 0,
        name: str | None = None,
        status: str = "active",
        region: str = DEFAULT_REGION,
        fail_rebuild: bool = False,
    ) -> None:
        """Add an instance to the account.

        Args:
            instance_id: its id.
            snapshots: how many Active snapshots it starts with (named seed-1, ...).
            time_to_active: its own Saving period (default: the config's).
            kill: every snapshot made on it later ends Killed, not Active.
            saving: how many more start still Saving, as if just created (named
                on from the Active ones); seeding skips the API's
                one-in-progress rule.
            name: its `servername` (default `vps-<id>`).
            status: its `instance_status`, one of `INSTANCE_STATUSES`.
            region: its `datacentername`, and the region of its snapshots.
            fail_rebuild: every rebuild of it ends in `error`.

        Raises:
            ValueError: the instance exists already, `saving` is negative, or
                `status` is not one of `INSTANCE_STATUSES`.
        """
        if instance_id in self._instances:
            raise ValueError(f"instance {instance_id} already exists")
        if saving < 0:
            raise ValueError(f"saving must be >= 0, got {saving}")
        _check_status(status)
        instance = _Instance(
            time_to_active,
            kill,
            name=f"vps-{instance_id}" if name is None else name,
            region=region,
            createdate=_today(self.clock),
            fail_rebuild=fail_rebuild,
            timeline=[(-math.inf, status)],
        )
        self._instances[instance_id] = instance
        now = self.clock.monotonic()
        for n in range(1, snapshots + 1):
            self._add_image(instance_id, f"seed-{n}", now, False, kind=SNAPSHOT)
        ready_at = now + instance.delay(self.config.time_to_active)
        for n in range(snapshots + 1, snapshots + saving + 1):
            self._add_image(instance_id, f"seed-{n}", ready_at, kill, kind=SNAPSHOT)

    def set_instance_status(
        self, instance_id: int, status: str, *, then: str | None = None, after: float = 0.0
    ) -> None:
        """Set an instance's `instance_status` now, and optionally `then` after
        `after` seconds of the clock. This replaces whatever was scheduled, a
        rebuild under way included (it is no longer under way).

        Raises:
            KeyError: no such instance.
            ValueError: `status` or `then` is not one of `INSTANCE_STATUSES`,
                or `after` is negative.
        """
        instance = self._instances[instance_id]
        _check_status(status)
        if then is not None:
            _check_status(then)
        if after < 0:
            raise ValueError(f"after must be >= 0, got {after}")
        instance.set_status(self.clock.monotonic(), status, then, after)

    def instance_status(self, instance_id: int) -> str:
        """The instance's `instance_status` now.

        Raises:
            KeyError: no such instance.
        """
        return self._instances[instance_id].status(self.clock.monotonic())

    def add_ssh_key(self, name: str = "default") -> str:
        """Add an SSH key to the account; returns its uuid, which rebuilds accept."""
        key = str(uuid.UUID(int=self._data_rng.getrandbits(128), version=4))
        self._ssh_keys[key] = name
        return key

    def set_stored_filter(self, func: str, **fields: str) -> None:
        """Leave a stored filter for the configured user, as the web panel would:
        it replaces the one before; empty values are not kept (none: cleared).

        Args:
            func: the filter function, e.g. `"instances.snapshots.filter"`.
            **fields: its fields (`FILTER_FIELDS[func]`), e.g. `name="nightly"`.

        Raises:
            ValueError: an unknown `func`, or a field it does not have.
        """
        allowed = _filter_fields(func)
        unknown = set(fields) - set(allowed)
        if unknown:
            raise ValueError(f"{func} has no field {sorted(unknown)}; it has {allowed}")
        self._store_filter(self.config.username, func, fields)

    def stored_filter(self, func: str) -> dict[str, str]:
        """The configured user's stored filter of `func` (empty: none).

        Raises:
            ValueError: an unknown `func`.
        """
        _filter_fields(func)
        return dict(self._filters.get(_filter_key(self.config.username, func), {}))

    def snapshots_of(self, instance_id: int) -> list[dict[str, str]]:
        """The instance's rows as `instances.snapshots` would list them now, unwrapped
        (no stored filter applied).

        Raises:
            KeyError: no such instance.
        """
        now = self.clock.monotonic()
        return [self._row(s, now) for s in self._live(self._instances[instance_id], now)]

    def snapshot_details(self, snapshot_id: int) -> dict[str, str]:
        """What `image.edit` would show of the snapshot now, unwrapped, `slist` left out
        (`fleio_id` included whatever `snapshot_rows_have_fleio_id` says); the
        same as `image_details`, which finds backups and copies too.

        Raises:
            KeyError: no such image (or it is gone).
        """
        return self.image_details(snapshot_id)

    def image_details(self, image_id: int) -> dict[str, str]:
        """What `image.edit` would show now of any own image (a snapshot, a backup,
        a copy), unwrapped, `slist` left out.

        Raises:
            KeyError: no such image (or it is gone).
        """
        self._fire_schedules()
        image = self._find_image(image_id, self.clock.monotonic())
        if image is None:
            raise KeyError(image_id)
        return self._image_details(image)

    def backups_of(self, instance_id: int) -> list[dict[str, str]]:
        """The instance's rows as `instances.fleio_bckps` would list them now
        (the scheduled backups due by now made first), unwrapped.

        Raises:
            KeyError: no such instance.
        """
        instance = self._instances[instance_id]
        self._fire_schedules()
        now = self.clock.monotonic()
        return [self._backup_row(b, now) for b in self._live_backups(instance, now)]

    def add_backup(
        self,
        instance_id: int,
        name: str,
        *,
        backup_type: str = "manual",
        active: bool = False,
        protected: bool = False,
    ) -> int:
        """Add a backup of the instance, skipping the API's rules (one image at a
        time, the limits, rotation); a manual one counts in the day's
        `manual_created_today` all the same.

        Args:
            instance_id: the instance.
            name: its name.
            backup_type: `"manual"` or `"scheduled"` (a scheduled one is
                overwritten by the rotation like one a schedule made).
            active: start `Active`, as if made earlier; else `Saving` for the
                instance's `time_to_active`, then `Active` (`Killed` on an
                instance added with `kill`).
            protected: start protected from deletion (and from the rotation).

        Returns:
            The new backup's id.

        Raises:
            KeyError: no such instance.
            ValueError: `backup_type` is not one of `BACKUP_TYPES`.
        """
        instance = self._instances[instance_id]
        if backup_type not in BACKUP_TYPES:
            raise ValueError(f"backup_type must be one of {BACKUP_TYPES}, got {backup_type!r}")
        self._fire_schedules()
        now = self.clock.monotonic()
        ready_at = now if active else now + instance.delay(self.config.time_to_active)
        killed = not active and instance.kill
        backup = self._add_image(
            instance_id, name, ready_at, killed, kind=BACKUP, backup_type=backup_type
        )
        backup.protected = protected
        return backup.id

    def schedules_of(self, instance_id: int) -> list[dict[str, str]]:
        """The instance's backup schedules as `instances.fleio_bckps.schedule` would
        list them, unwrapped.

        Raises:
            KeyError: no such instance.
        """
        if instance_id not in self._instances:
            raise KeyError(instance_id)
        return [s.row() for s in self._schedules.values() if s.instance_id == instance_id]

    def backup_rotation(self, instance_id: int) -> int:
        """How many scheduled backups the instance keeps (`instances.edit`'s
        `backup_rotation`).

        Raises:
            KeyError: no such instance.
        """
        return self._instances[instance_id].backup_rotation

    def images(self) -> list[dict[str, str]]:
        """Every own image as `image` would list it now (snapshots, backups, copies,
        by id), unwrapped, with no stored filter applied."""
        self._fire_schedules()
        now = self.clock.monotonic()
        return [self._image_row(i, now) for i in self._every_image(now)]

    def fail_copies(self, count: int = 1) -> None:
        """Make the next `count` copies (`image.copy`) end `Killed`, not `Active`.
        Calls add up.

        Raises:
            ValueError: `count` is negative.
        """
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        self._copies_to_fail += count

    def expire_sessions(self) -> None:
        """End every session, `token` included, as if each had outlived its TTL."""
        self._sessions.clear()

    def set_protected(self, instance_id: int, snapshot_id: int, protected: bool = True) -> None:
        """Turn the `protected` flag of a snapshot or a backup of the instance on
        (deletes are refused, the rotation leaves it) or off.

        Raises:
            KeyError: no such instance, or no such snapshot or backup of it.
        """
        instance = self._instances[instance_id]
        self._fire_schedules()
        for image in instance.snapshots + instance.backups:
            if image.id == snapshot_id:
                image.protected = protected
                return
        raise KeyError(snapshot_id)

    # -- scripted faults -----------------------------------------------------------

    def lose_answers(self, func: str, count: int = 1, *, kind: str = "html502") -> None:
        """Carry out the next `count` calls of `func` in full, then lose their answers.

        What the call did stays done: a create made its snapshot, a delete put
        the snapshot in its `Deleting` linger, a login made a session. Whatever
        the answer was (an error document too) is replaced by the fault. A call
        failed before it is acted on (by an outage, a failed login, a drawn
        fault) does not use up `count`. Calls add up: two calls of one make the
        next two answers lost. Each lost answer counts in `lost_answers[func]`.

        Args:
            func: the `func` field, e.g. `"image.delete"`,
                `"instances.snapshots.edit"`.
            count: how many calls, from the next one on.
            kind: `"html502"` or `"html504"` (nginx's error page with that
                status) or `"reset"` (the connection is aborted).

        Raises:
            ValueError: `count` is negative, or `kind` is not one of
                `LOST_ANSWER_KINDS`.
        """
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        if kind not in LOST_ANSWER_KINDS:
            raise ValueError(f"kind must be one of {LOST_ANSWER_KINDS}, got {kind!r}")
        self._lost[func].extend([kind] * count)

    def act_late(self, func: str, seconds: float, count: int = 1, *, kind: str = "html504") -> None:
        """Answer the next `count` calls of `func` with a fault at once, and carry
        each out `seconds` later on the emulator's clock.

        The proxy gave up on the request (its 504 page, by default) while the
        backend still had it: what the call does happens after the client was
        told it failed, possibly after the client sent it again. Its real
        answer goes nowhere. Each counts in `late_acts[func]` once carried out;
        `late_acts_pending` is how many are still to come. `close()` drops them.

        Args:
            func: the `func` field, e.g. `"instances.snapshots.edit"`.
            seconds: how long after its arrival the call is carried out.
            count: how many calls, from the next one on.
            kind: the fault answered at once: one of `LOST_ANSWER_KINDS`.

        Raises:
            ValueError: a negative `seconds` or `count`, or an unknown `kind`.
        """
        if seconds < 0 or count < 0:
            raise ValueError(f"seconds and count must be >= 0, got {seconds}, {count}")
        if kind not in LOST_ANSWER_KINDS:
            raise ValueError(f"kind must be one of {LOST_ANSWER_KINDS}, got {kind!r}")
        self._late[func].extend([(seconds, kind)] * count)

    async def _carry_out_later(self, func: str, fields: dict[str, str], seconds: float) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._held_tasks.add(task)
        try:
            await self.clock.sleep(seconds)
            with contextlib.suppress(_ApiError, _LostAnswer):
                self._dispatch(func, fields)  # its answer goes nowhere
            self.late_acts[func] += 1
        finally:
            self.late_acts_pending -= 1
            self._held_tasks.discard(task)

    def fail_logins(
        self, count: int, *, kind: str = "http429", retry_after: float | str | None = None
    ) -> None:
        """Fail the next `count` `func=auth` posts without making a session.

        The credentials are not looked at. Failed logins count in `calls["auth"]`
        and in `failed_logins`. Calls add up, each failure with its own kind.

        Args:
            count: how many logins, from the next one on.
            kind: `"http429"` (nginx's 429 page), `"html503"`, `"html502"`, or
                `"reset"` (the connection is aborted).
            retry_after: a `Retry-After` header for a 429 or 503: seconds (a
                number, rendered in the config's `retry_after_style` when each
                answer is sent), or a string sent as it is.

        Raises:
            ValueError: `count` is negative, `kind` is not one of
                `LOGIN_FAULT_KINDS`, `retry_after` is negative, or it is given
                for a kind that has no 429 or 503 status.
        """
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        if kind not in LOGIN_FAULT_KINDS:
            raise ValueError(f"kind must be one of {LOGIN_FAULT_KINDS}, got {kind!r}")
        self._check_retry_after(kind, retry_after)
        self._login_faults.extend([(kind, retry_after)] * count)

    def hold(self, func: str, seconds: float, count: int | None = None) -> None:
        """Hold answers to `func` for `seconds` on the emulator's clock.

        A held call is acted on and answered after the hold, so a held listing
        reports the state at the end of the hold, not at its arrival. A new
        `hold` of the same `func` replaces the old one; `hold(func, 0)` ends
        it (calls already held stay held). Each held call counts in
        `held_answers[func]`. `close()` drops the calls still held.

        Args:
            func: the `func` field, e.g. `"instances.snapshots"`.
            seconds: how long, in the clock's seconds; 0 stops holding.
            count: how many calls to hold, from the next one on; None: every
                call until `hold(func, 0)`.

        Raises:
            ValueError: `seconds` is negative, or `count` is below 1.
        """
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds}")
        if count is not None and count < 1:
            raise ValueError(f"count must be None or >= 1, got {count}")
        if seconds == 0:
            self._holds.pop(func, None)
        else:
            self._holds[func] = _Hold(seconds, count)

    async def outage(
        self, seconds: float, *, mode: str = "refuse", retry_after: float | str | None = None
    ) -> None:
        """Fail every request from now for `seconds` of the emulator's clock.

        Returns once the outage has begun. With `mode="refuse"` the emulator
        stops listening, so connections are refused (which nothing counts: the
        kernel refuses them), and the connections already open are aborted;
        when the time is up a task the emulator owns listens again on the same
        port (`url` does not change); `wait_outage_end()` waits for that. The
        other modes answer each request that arrives while the outage lasts
        (counted in `outage_answers`, and in `calls`): `"html503"` with nginx's
        503 page, `"reset"` by aborting the connection. A request held by
        `hold` when the outage begins is not acted on if the outage is still
        on when its hold ends.

        Args:
            seconds: how long, in the clock's seconds.
            mode: `"refuse"`, `"html503"` or `"reset"`.
            retry_after: with `"html503"`, a `Retry-After` header: seconds (a
                number, rendered in the config's `retry_after_style` when each
                answer is sent; it does not count down to the outage's end),
                or a string sent as it is.

        Raises:
            ValueError: `seconds` or `retry_after` is negative, `mode` is not
                one of `OUTAGE_MODES`, or `retry_after` is given to a mode
                other than `"html503"`.
            RuntimeError: an outage is on already, or `mode="refuse"` and the
                emulator is not serving (a mounted `app` cannot refuse).
        """
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds}")
        if mode not in OUTAGE_MODES:
            raise ValueError(f"mode must be one of {OUTAGE_MODES}, got {mode!r}")
        self._check_retry_after(mode, retry_after)
        if self.outage_active:
            raise RuntimeError("an outage is on already: end_outage() or wait_outage_end() first")
        if mode == "refuse" and self._runner is None:
            raise RuntimeError("only a started emulator can refuse connections")
        outage = _Outage(mode, self.clock.monotonic() + seconds, retry_after)
        self._outage = outage
        if mode == "refuse":
            await self._stop_listening()
            self._outage_task = asyncio.get_running_loop().create_task(
                self._refuse_until_end(outage), name="zomro-emulator-outage"
            )

    @property
    def outage_active(self) -> bool:
        """Whether an outage is on: its time is not up, or (refusing) the emulator
        does not listen again yet."""
        if self._outage_now() is not None:
            return True
        return self._outage_task is not None and not self._outage_task.done()

    async def end_outage(self) -> None:
        """End the outage now (nothing happens if none is on), listening again
        first if it refused connections.

        Raises:
            RuntimeError: the emulator could not listen on its port again.
        """
        outage = self._outage
        if outage is None:
            return
        outage.until = min(outage.until, self.clock.monotonic())
        if outage.sleeper is not None:
            outage.sleeper.cancel()
        await self.wait_outage_end()

    async def wait_outage_end(self) -> None:
        """Return once no outage is on: its time is up on the clock and, after a
        refusing one, the emulator listens again (at once if none is on).

        Raises:
            RuntimeError: the emulator could not listen on its port again
                after a refusing outage (raised once; `url` refuses connections).
        """
        while (outage := self._outage_now()) is not None and outage.mode != "refuse":
            await self.clock.sleep(outage.until - self.clock.monotonic())
        if (task := self._outage_task) is not None:
            # Shielded: a waiter given up on must not cancel the emulator's task.
            await asyncio.shield(task)
        error, self._relisten_error = self._relisten_error, None
        if error is not None:
            raise error

    def _check_retry_after(self, kind: str, retry_after: float | str | None) -> None:
        if retry_after is None:
            return
        if _PAGES.get(kind, (0, ""))[0] not in _RETRY_AFTER_STATUSES:
            raise ValueError(f"retry_after comes only with a 429 or a 503, not with {kind!r}")
        if not isinstance(retry_after, str) and retry_after < 0:
            raise ValueError(f"retry_after must be >= 0, got {retry_after}")

    def _retry_after(self, retry_after: float | str) -> str:
        """The `Retry-After` value for a delay from now, in the configured style."""
        if isinstance(retry_after, str):
            return retry_after
        # Rounded up, so a client that waits exactly as told is never early; and
        # first to the microsecond, so float noise does not add a second.
        if self.config.retry_after_style == "seconds":
            return str(math.ceil(round(retry_after, 6)))
        at = math.ceil(round(self.clock.time() + retry_after, 6))
        return format_datetime(datetime.fromtimestamp(at, UTC), usegmt=True)

    def _outage_now(self) -> _Outage | None:
        outage = self._outage
        if outage is None or self.clock.monotonic() >= outage.until:
            return None
        return outage

    async def _stop_listening(self) -> None:
        runner = self._runner
        assert runner is not None
        for site in list(runner.sites):
            await site.stop()
        if runner.server is not None:
            for handler in runner.server.connections:
                if handler.transport is not None:
                    handler.transport.abort()
            # A few loop turns, for clients on this loop to see their kept-alive
            # connections drop, and to connect anew (and be refused) next time.
            for _ in range(_DROP_TURNS):
                await asyncio.sleep(0)
        # Holding the port bound but not listening: connections are still refused,
        # and a socket that does not ask to reuse the address cannot take the port.
        for address in self._addresses:
            with contextlib.suppress(OSError):
                self._placeholders[address] = _listening_socket(address)

    def _close_placeholders(self) -> None:
        placeholders, self._placeholders = self._placeholders, {}
        for placeholder in placeholders.values():
            placeholder.close()

    async def _refuse_until_end(self, outage: _Outage) -> None:
        outage.sleeper = asyncio.get_running_loop().create_task(
            self._sleep(outage.until - self.clock.monotonic())
        )
        try:
            # Returns when the sleep ends or is cancelled by `end_outage`; raises
            # only when this task is cancelled, by `close`.
            await asyncio.wait([outage.sleeper])
        finally:
            outage.sleeper.cancel()
        outage.until = min(outage.until, self.clock.monotonic())
        try:
            await self._listen_again()
        except OSError as exc:
            # Kept for `wait_outage_end` or `close` to raise: an exception of this
            # task would go unseen until the task is awaited.
            error = RuntimeError(f"the emulator could not listen on {self._url} again: {exc}")
            error.__cause__ = exc
            self._relisten_error = error

    async def _sleep(self, seconds: float) -> None:
        # A coroutine of this module, so `pending_sdk_tasks` does not take the
        # outage's sleep on the client's SystemClock for one of the SDK's tasks.
        await self.clock.sleep(seconds)

    async def _listen_again(self) -> None:
        runner = self._runner
        assert runner is not None
        socks: list[socket.socket] = []
        try:
            for address in self._addresses:
                socks.append(self._bind_again(address))
        except BaseException:
            for sock in socks:
                sock.close()
            raise
        finally:
            self._close_placeholders()
        for n, sock in enumerate(socks):
            try:
                await web.SockSite(runner, sock).start()
            except BaseException:
                for rest in socks[n:]:
                    rest.close()
                raise

    def _bind_again(self, address: tuple[Any, ...]) -> socket.socket:
        placeholder = self._placeholders.pop(address, None)
        try:
            # Bound beside the placeholder where the system allows it (Linux does,
            # for sockets that do not listen), so the port is never free meanwhile.
            return _listening_socket(address)
        except OSError:
            if placeholder is None:
                raise
            placeholder.close()
            return _listening_socket(address)
        finally:
            if placeholder is not None:
                placeholder.close()

    # -- HTTP --------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._serve(request)
        finally:
            self.in_flight -= 1

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        try:
            form = await request.post()
            # First occurrence wins; uploaded files are not form values here.
            fields = {k: v for k, v in reversed(list(form.items())) if isinstance(v, str)}
        except Exception:  # a malformed body is answered like an empty form
            fields = {}
        func = fields.get("func", "")
        self.calls[func] += 1

        if (outage := self._outage_now()) is not None:
            return self._outage_response(request, outage)
        if (hold := self._take_hold(func)) is not None:
            await self._hold_answer(hold)
            if (outage := self._outage_now()) is not None:
                return self._outage_response(request, outage)
        if func == "auth" and self._login_faults:
            kind, retry_after = self._login_faults.popleft()
            self.failed_logins += 1
            return self._fault_response(request, kind, retry_after)

        if late := self._late.get(func):
            seconds, kind = late.popleft()
            self.late_acts_pending += 1
            asyncio.get_running_loop().create_task(self._carry_out_later(func, fields, seconds))
            return self._fault_response(request, kind)

        fault = self._draw_fault()
        if fault == "slow":
            await asyncio.sleep(self.config.slow_seconds)
        elif fault is not None:
            return self._fault_response(request, fault)

        lost: str | None = None
        try:
            doc = self._dispatch(func, fields)
        except _LostAnswer as exc:
            lost, doc = exc.kind, {}
        except _ApiError as exc:
            doc = {"error": exc.node()}
        except Exception as exc:  # answer, never a 500 with a traceback
            doc = {"error": _ApiError("value", "", "Invalid request", repr(exc)).node()}
        if queued := self._lost.get(func):
            lost = queued.popleft()
        if lost is not None:
            self.lost_answers[func] += 1
            return self._fault_response(request, lost)
        return _render(doc, fields.get("out") == "json")

    def _take_hold(self, func: str) -> float | None:
        hold = self._holds.get(func)
        if hold is None:
            return None
        if hold.count is not None:
            hold.count -= 1
            if hold.count == 0:
                del self._holds[func]
        self.held_answers[func] += 1
        return hold.seconds

    async def _hold_answer(self, seconds: float) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._held_tasks.add(task)
        try:
            await self.clock.sleep(seconds)
        finally:
            self._held_tasks.discard(task)

    def _outage_response(self, request: web.Request, outage: _Outage) -> web.Response:
        self.outage_answers += 1
        # A refusing outage aborted the open connections, but a request may have
        # been read from one already: it is dropped as a reset.
        kind = "html503" if outage.mode == "html503" else "reset"
        return self._fault_response(request, kind, outage.retry_after)

    def _draw_fault(self) -> str | None:
        if self.config.fault_rate <= 0 or self._fault_rng.random() >= self.config.fault_rate:
            return None
        kind = self._fault_rng.choice(self.config.fault_kinds)
        self.faults[kind] += 1
        return kind

    def _fault_response(
        self, request: web.Request, kind: str, retry_after: float | str | None = None
    ) -> web.Response:
        if kind in _PAGES:
            status, page = _PAGES[kind]
            headers = {}
            if retry_after is not None and status in _RETRY_AFTER_STATUSES:
                headers["Retry-After"] = self._retry_after(retry_after)
            return web.Response(status=status, text=page, content_type="text/html", headers=headers)
        if kind == "reset":
            # With the transport gone aiohttp fails to write this response and drops
            # it quietly as a premature client disconnection.
            if request.transport is not None:
                request.transport.abort()
            return web.Response()
        # truncated: a plausible document cut in half, Content-Length matching the cut.
        sample = self._row(_Image(0, "MySnapshot", "", "", 0.0), 0.0)
        body = json.dumps({"doc": {"elem": [{k: _wrap(v) for k, v in sample.items()}]}})
        return web.Response(text=body[: len(body) // 2], content_type="application/json")

    def _dispatch(self, func: str, fields: dict[str, str]) -> Node:
        if func == "auth":
            return self._auth(fields)
        handler = self._funcs.get(func)
        if handler is None:
            raise _ApiError("missed", "func", f"Function '{func}' not found")
        user = self._user_of(fields.get("auth", ""))
        # The server's schedules, caught up before any call can see their backups.
        self._fire_schedules()
        return handler(fields, user)

    # -- sessions ----------------------------------------------------------------

    def _new_session(self, username: str) -> str:
        sid = f"{self._data_rng.getrandbits(96):024x}"
        self._sessions[sid] = _Session(username, self.clock.monotonic())
        return sid

    def _user_of(self, sid: str) -> str:
        now = self.clock.monotonic()
        session = self._sessions.get(sid)
        if session is None or now - session.last_use > self.config.session_ttl:
            self._sessions.pop(sid, None)
            raise _ApiError("access", "", ACCESS_MSG)
        session.last_use = now
        return session.username

    def _auth(self, fields: dict[str, str]) -> Node:
        for name in ("username", "password"):
            if not fields.get(name):
                raise _missed(name)
        if (fields["username"], fields["password"]) != (
            self.config.username,
            self.config.password,
        ):
            raise _ApiError("auth", "badpassword", "Invalid username or password")
        sid = self._new_session(fields["username"])
        return {"auth": {"$id": sid, "$": sid}, "ok": {}}

    # -- snapshots ---------------------------------------------------------------

    def _instance(self, fields: dict[str, str], field: str) -> _Instance:
        instance = self._instances.get(_int_field(fields, field))
        if instance is None:
            raise _ApiError("missed", field, "Instance not found")
        return instance

    def _row(self, snapshot: _Image, now: float) -> dict[str, str]:
        status, size = self._status_and_size(snapshot, now)
        row = {
            **_STATIC_ROW,
            "createdate": snapshot.createdate,
            "fleio_id": snapshot.fleio_id,
            "fleio_status": status,
            "id": str(snapshot.id),
            "image_size": size,
            "item_real_status": _ITEM_STATUS[status],
            "name": snapshot.name,
            "protected": "on" if snapshot.protected else "off",
            "region": snapshot.region,
        }
        if not self.config.snapshot_rows_have_fleio_id:
            del row["fleio_id"]
        return dict(sorted(row.items()))

    def _list(self, fields: dict[str, str], user: str) -> Node:
        instance = self._instance(fields, "elid")
        now = self.clock.monotonic()
        rows = [self._row(s, now) for s in self._live(instance, now)]
        rows = self._filtered(user, "instances.snapshots", rows, "name")
        doc: Node = {"elid": {"$": fields["elid"]}}
        return self._paged(doc, fields, [{k: _wrap(v) for k, v in r.items()} for r in rows])

    def _paged(
        self,
        doc: Node,
        fields: dict[str, str],
        rows: list[Any],
        wrap: Callable[[Any], Node] | None = None,
    ) -> Node:
        """`doc` with the page of `rows` the fields ask (BILLmanager's paging),
        each turned into its node by `wrap` when given."""
        if fields.get("p_num") or fields.get("p_cnt") or self.config.page_size:
            p_num = _int_field(fields, "p_num") if fields.get("p_num") else 1
            p_cnt = (
                _int_field(fields, "p_cnt")
                if fields.get("p_cnt")
                else self.config.page_size or DEFAULT_PAGE_SIZE
            )
            p_num = min(p_num, max(1, -(-len(rows) // p_cnt)))
            doc.update(p_num={"$": str(p_num)}, p_cnt={"$": str(p_cnt)})
            doc["p_elems"] = {"$": str(len(rows))}
            rows = rows[(p_num - 1) * p_cnt : p_num * p_cnt]
        if wrap is not None:
            rows = [wrap(row) for row in rows]
        if (elem := _nodes(rows, self.config.single_elem_as_object)) is not None:
            doc["elem"] = elem
        return doc

    def _delete(self, fields: dict[str, str], user: str) -> Node:
        """`image.delete` of any own image: `elid` alone (the panel's form), or
        with `plid`, `elname` and `sok=ok` (the snapshot page's form); *inferred*:
        the second form is all or nothing, its `plid` must be the image's
        instance (a copy has none) and its `elname` repeat `elid`."""
        if not any(fields.get(k) for k in ("plid", "elname", "sok")):
            image_id, instance_id = _int_field(fields, "elid"), None
        else:
            _int_field(fields, "plid")
            image_id = _int_field(fields, "elid")
            elname = fields.get("elname", "")
            if not elname:
                raise _missed("elname")
            if elname != fields["elid"]:
                raise _bad_value("elname", elname, "elname must repeat the image id in elid")
            if fields.get("sok") != "ok":
                raise _missed("sok")
            self._instance(fields, "plid")
            instance_id = int(fields["plid"])
        now = self.clock.monotonic()
        image = self._find_image(image_id, now)
        if image is None or instance_id not in (None, image.instance_id):
            raise _ApiError("missed", "elid", "Image not found")
        if image.protected:
            what = f"The {image.kind.lower()} is protected from deletion"
            raise _ApiError("value", "protected", what)
        if image.deleted_at is None:
            image.deleted_at = now
        rate = self.config.lost_delete_rate
        if rate > 0 and self._fault_rng.random() < rate:
            raise _LostAnswer("html502")
        return {"ok": {}}

    # -- instances ---------------------------------------------------------------

    def _instance_row(self, instance_id: int, instance: _Instance, now: float) -> dict[str, str]:
        ip, ip_v6 = _addresses_of(instance_id)
        row = {
            **_STATIC_INSTANCE_ROW,
            "createdate": instance.createdate,
            "datacentername": instance.region,
            "id": str(instance_id),
            "instance_status": instance.status(now),
            "ip": ip,
            "ip_v6": ip_v6,
            "name": instance.name,
            "servername": instance.name,
        }
        return dict(sorted(row.items()))

    def _list_instances(self, fields: dict[str, str], user: str) -> Node:
        now = self.clock.monotonic()
        # Sorted by id, descending for `p_col=-id`; other columns are not emulated.
        ids = sorted(self._instances, reverse=fields.get("p_col") == "-id")
        rows = [self._instance_row(i, self._instances[i], now) for i in ids]
        rows = self._filtered(user, "instances", rows, "servername")

        def wrapped(row: dict[str, str]) -> Node:
            node: Node = {k: _wrap(v) for k, v in row.items()}
            if self.config.createdate_as_list:
                node["createdate"] = [node["createdate"]]
            return node

        # Only the page's rows are wrapped: a fleet of thousands is listed in pages.
        return self._paged({}, fields, rows, wrapped)

    # -- stored filters ----------------------------------------------------------

    def _filter_handler(self, func: str) -> Callable[[dict[str, str], str], Node]:
        allowed = FILTER_FIELDS[func]

        def handle(fields: dict[str, str], user: str) -> Node:
            if fields.get("sok") == "ok":
                # Only the filter's own fields: an `elid` or `plid` sent along
                # neither is stored nor scopes it (FILTER_IGNORED_FIELDS).
                kept = {k: v for k, v in fields.items() if k in allowed}
                self._store_filter(user, func, kept)
                return {"ok": {}}
            stored = self._filters.get(_filter_key(user, func), {})
            return {k: {"$": v} for k, v in stored.items()}

        return handle

    def _store_filter(self, user: str, func: str, fields: dict[str, str]) -> None:
        kept = {k: v for k, v in fields.items() if v}
        key = _filter_key(user, func)
        if kept:
            self._filters[key] = kept
        else:
            self._filters.pop(key, None)

    def _filtered(
        self, user: str, listing: str, rows: list[dict[str, str]], name_field: str
    ) -> list[dict[str, str]]:
        stored = self._filters.get(_filter_key(user, _FILTERED_LISTS[listing]))
        if not stored:
            return rows
        return [row for row in rows if _row_matches(row, stored, name_field)]

    # -- images ------------------------------------------------------------------

    def _image_details(self, image: _Image) -> dict[str, str]:
        status, size = self._status_and_size(image, self.clock.monotonic())
        instance_id = "" if image.instance_id is None else str(image.instance_id)
        details = {
            "architecture": _STATIC_ROW["architecture"],
            "backup_type": image.backup_type,
            "created": image.createdate,
            "disk_format": _STATIC_ROW["disk_format"],
            "fleio_id": image.fleio_id,
            "fleio_status": status,
            "id": str(image.id),
            "image_name": image.name,
            "image_size": size,
            "image_type": image.kind,
            "instances_id": instance_id,
            "min_disk": _STATIC_ROW["min_disk"],
            "min_ram": _STATIC_ROW["min_ram"],
            "os_distro": _STATIC_ROW["os_distro"],
            "os_version": _STATIC_ROW["os_version"],
            "protected": "on" if image.protected else "off",
            "region": image.region,
            "updated": image.updated,
            "url": "",
        }
        return details

    def _image_edit(self, fields: dict[str, str], user: str) -> Node:
        """`image.edit` of any own image (a snapshot, a backup, a copy) by `elid` alone."""
        image = self._find_image(_int_field(fields, "elid"), self.clock.monotonic())
        if image is None:
            raise _ApiError("missed", "elid", "Image not found")
        if fields.get("sok") == "ok":
            return self._image_edit_commit(fields, image)
        details = self._image_details(image)
        doc: Node = {"elid": {"$": str(image.id)}}
        doc.update({k: _wrap(v) for k, v in details.items()})
        if self.config.protected_as_orig:
            doc["protected"] = {"$orig": details["protected"]}
        single = self.config.single_elem_as_object
        choices = {
            "disk_format": [{"$key": f, "$": f} for f in _DISK_FORMATS],
            "architecture": [{"$key": "x86_64", "$": "x86_64"}],
        }
        doc["slist"] = [_slist(name, vals, single) for name, vals in choices.items()]
        return doc

    def _image_edit_commit(self, fields: dict[str, str], image: _Image) -> Node:
        """Rename and (un)protect. *Inferred*: every `IMAGE_EDIT_REQUIRED` field must
        be sent back (their values are not applied); an absent `protected` keeps
        the flag."""
        if fields.get("clicked_button") != "ok":
            raise _missed("clicked_button")
        name = _check_name(fields, "image_name", MAX_NAME)
        for field in IMAGE_EDIT_REQUIRED:
            if not fields.get(field):
                raise _missed(field)
        protected = fields.get("protected")
        if protected is not None and protected not in ("on", "off"):
            raise _bad_value("protected", protected, "on or off is expected")
        image.name = name
        if protected is not None:
            image.protected = protected == "on"
        image.updated = _today(self.clock)
        return {"ok": {}}

    # -- rebuild -----------------------------------------------------------------

    def _busy_reason(self, instance: _Instance, now: float) -> str | None:
        """Why a rebuild of `instance` is refused as a running operation (*inferred*:
        not in a steady state, a rebuild under way, a snapshot or a backup
        `Saving`), or None."""
        if instance.rebuilding(now):
            return "a rebuild is under way"
        if (status := instance.status(now)) not in STEADY_STATUSES:
            return f"the instance is {status}"
        if self._taking_image(instance, now):
            return "a snapshot or a backup is being taken"
        return None

    def _rebuild(self, fields: dict[str, str], user: str) -> Node:
        instance = self._instance(fields, "elid")
        instance_id = int(fields["elid"])
        now = self.clock.monotonic()
        active = self._active_images(now)
        if fields.get("sok") != "ok":
            single = self.config.single_elem_as_object
            zones = [{"$key": k, "$": v} for k, v in _ZONES.items()]
            images = [{"$key": s.fleio_id, "$": s.name, "$depend": "own"} for s in active]
            keys = [{"$key": k, "$": v} for k, v in self._ssh_keys.items()]
            return {
                "elid": {"$": str(instance_id)},
                "slist": [
                    _slist("zone", zones, single),
                    _slist("select_rebuild", images, single),
                    _slist("ssh_keys", keys, single),
                ],
            }
        zone = fields.get("zone", "")
        if not zone:
            raise _missed("zone")
        if zone != "own":
            raise _bad_value("zone", zone, "only own images can be restored here")
        wanted = fields.get("select_rebuild", "")
        if not wanted:
            raise _missed("select_rebuild")
        image = next((s for s in active if s.fleio_id == wanted), None)
        if image is None:
            raise _bad_value("select_rebuild", wanted, "no such image ready in the account")
        enablessh = fields.get("enablessh", "")
        if not enablessh:
            raise _missed("enablessh")
        if enablessh not in ("on", "off"):
            raise _bad_value("enablessh", enablessh, "on or off is expected")
        ssh_key: str | None = None
        if enablessh == "off":
            password = fields.get("password", "")
            if not password:
                raise _missed("password")
            if (problem := _password_problem(password)) is not None:
                # Hostile on purpose: the refused password comes back in the
                # error's `value` param and in its detail.
                detail = f"The password '{password}' is refused: {problem}"
                raise _bad_value("password", password, detail)
        else:
            ssh_key = fields.get("ssh_keys", "")
            if not ssh_key:
                raise _missed("ssh_keys")
            if ssh_key not in self._ssh_keys:
                raise _bad_value("ssh_keys", ssh_key, "no such SSH key")
        if (reason := self._busy_reason(instance, now)) is not None:
            raise _ApiError("exists", "runningoperation", _RUNNING_OPERATION, reason)
        instance.start_rebuild(now, self.config.rebuild_lag, self.config.rebuild_time)
        self.rebuilds.append(
            Rebuild(instance_id, image.id, image.fleio_id, ssh_key, with_password=ssh_key is None)
        )
        return {"ok": {}}
