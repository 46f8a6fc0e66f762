"""An in-process emulator of Zomro's snapshot API (BILLmanager form posts) for tests."""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import random
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import attrs
from aiohttp import web

from zomro_async._client import ZomroClient
from zomro_async._clock import Clock, SystemClock

Node = dict[str, Any]

FAULT_KINDS = ("html502", "html503", "reset", "truncated", "slow")
ACCESS_MSG = "Insufficient privileges to perform this operation"
MAX_NAME = 255
DEFAULT_PAGE_SIZE = 20
FIRST_SNAPSHOT_ID = 5_204_214
# Fixed row values the page shows for every snapshot of Zomro's Ubuntu image.
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


def _nginx_page(status: int, reason: str) -> str:
    return (
        f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    )


_HTML_FAULTS = {
    "html502": (502, _nginx_page(502, "Bad Gateway")),
    "html503": (503, _nginx_page(503, "Service Temporarily Unavailable")),
}


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
    single_elem_as_object: bool = False
    create_returns_id: bool = False
    # The page size the server remembers for the user (BILLmanager keeps p_cnt per
    # user): lists come back paged at this size even when the client asks no page.
    page_size: int | None = None
    seed: int = 0


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


class _AmbiguousCreate(Exception):
    """The snapshot was created but the answer is lost behind a proxy error page."""


@attrs.define
class _Session:
    username: str
    last_use: float


@attrs.define
class _Snapshot:
    id: int
    name: str
    fleio_id: str
    createdate: str
    ready_at: float
    killed: bool = False
    protected: bool = False
    deleted_at: float | None = None

    def status(self, now: float, linger: float) -> str | None:
        """The Fleio status at `now`, or None once the deleted snapshot is gone."""
        if self.deleted_at is not None:
            return None if now - self.deleted_at >= linger else "Deleting"
        if now < self.ready_at:
            return "Saving"
        return "Killed" if self.killed else "Active"


@attrs.define
class _Instance:
    time_to_active: float | None
    kill: bool
    snapshots: list[_Snapshot] = attrs.Factory(list)


def _wrap(value: str) -> Node:
    return {"$": value} if value else {}


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


def _int_field(fields: dict[str, str], name: str) -> int:
    raw = fields.get(name, "")
    if not raw:
        raise _missed(name)
    if not (raw.isascii() and raw.isdigit()) or int(raw) <= 0:
        raise _bad_value(name, raw, "a positive integer is expected")
    return int(raw)


class ZomroEmulator:
    """Zomro's snapshot API on a loopback port (or mounted via `app`), with state read
    lazily from `clock` and seeded, opt-in transient faults.
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
        self.config = attrs.evolve(config or EmulatorConfig(), **overrides)
        unknown = set(self.config.fault_kinds) - set(FAULT_KINDS)
        if unknown or (self.config.fault_rate > 0 and not self.config.fault_kinds):
            raise ValueError(f"fault_kinds must be a non-empty subset of {FAULT_KINDS}")
        self.clock: Clock = clock or SystemClock()
        self.calls: collections.Counter[str] = collections.Counter()
        self.faults: collections.Counter[str] = collections.Counter()
        self.ambiguous_creates = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._host, self._port = host, port
        # Two streams, so the fault draws do not shift when requests create sessions
        # or snapshots (which draw ids), and ids do not shift with faults.
        self._fault_rng = random.Random(self.config.seed)
        self._data_rng = random.Random(f"zomro-emulator-data-{self.config.seed}")
        self._ids = itertools.count(FIRST_SNAPSHOT_ID)
        self._instances: dict[int, _Instance] = {}
        self._sessions: dict[str, _Session] = {}
        self._token = self._new_session(self.config.username)
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._app = web.Application()
        for path in ("/", "/billmgr"):
            self._app.router.add_post(path, self._handle)
        self._funcs: dict[str, Callable[[dict[str, str], str], Node]] = {
            "instances.snapshots": self._list,
            "instances.snapshots.edit": self._create,
            "image.delete": self._delete,
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
        host, port = runner.addresses[0][:2]
        netloc = f"[{host}]" if ":" in str(host) else host
        self._url = f"http://{netloc}:{port}/"

    async def close(self) -> None:
        """Stop serving; the emulator's state stays readable."""
        runner, self._runner, self._url = self._runner, None, None
        if runner is not None:
            await runner.cleanup()

    @property
    def url(self) -> str:
        """The base URL to point a client at (after `start`).

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

        Raises:
            ValueError: the instance exists already, or `saving` is negative.
        """
        if instance_id in self._instances:
            raise ValueError(f"instance {instance_id} already exists")
        if saving < 0:
            raise ValueError(f"saving must be >= 0, got {saving}")
        instance = _Instance(time_to_active, kill)
        self._instances[instance_id] = instance
        now = self.clock.monotonic()
        for n in range(1, snapshots + 1):
            instance.snapshots.append(self._new_snapshot(f"seed-{n}", now, killed=False))
        ready_at = now + (self.config.time_to_active if time_to_active is None else time_to_active)
        for n in range(snapshots + 1, snapshots + saving + 1):
            instance.snapshots.append(self._new_snapshot(f"seed-{n}", ready_at, killed=kill))

    def snapshots_of(self, instance_id: int) -> list[dict[str, str]]:
        """The instance's rows as `instances.snapshots` would list them now, unwrapped.

        Raises:
            KeyError: no such instance.
        """
        now = self.clock.monotonic()
        return [self._row(s, now) for s in self._live(self._instances[instance_id], now)]

    def expire_sessions(self) -> None:
        """End every session, `token` included, as if each had outlived its TTL."""
        self._sessions.clear()

    def set_protected(self, instance_id: int, snapshot_id: int, protected: bool = True) -> None:
        """Turn a snapshot's `protected` flag on (deletes are refused) or off.

        Raises:
            KeyError: no such instance or snapshot.
        """
        for snapshot in self._instances[instance_id].snapshots:
            if snapshot.id == snapshot_id:
                snapshot.protected = protected
                return
        raise KeyError(snapshot_id)

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

        fault = self._draw_fault()
        if fault == "slow":
            await asyncio.sleep(self.config.slow_seconds)
        elif fault is not None:
            return self._fault_response(request, fault)

        try:
            doc = self._dispatch(func, fields)
        except _AmbiguousCreate:
            return self._fault_response(request, "html502")
        except _ApiError as exc:
            doc = {"error": exc.node()}
        except Exception as exc:  # answer, never a 500 with a traceback
            doc = {"error": _ApiError("value", "", "Invalid request", repr(exc)).node()}
        return _render(doc, fields.get("out") == "json")

    def _draw_fault(self) -> str | None:
        if self.config.fault_rate <= 0 or self._fault_rng.random() >= self.config.fault_rate:
            return None
        kind = self._fault_rng.choice(self.config.fault_kinds)
        self.faults[kind] += 1
        return kind

    def _fault_response(self, request: web.Request, kind: str) -> web.Response:
        if kind in _HTML_FAULTS:
            status, page = _HTML_FAULTS[kind]
            return web.Response(status=status, text=page, content_type="text/html")
        if kind == "reset":
            # With the transport gone aiohttp fails to write this response and drops
            # it quietly as a premature client disconnection.
            if request.transport is not None:
                request.transport.abort()
            return web.Response()
        # truncated: a plausible document cut in half, Content-Length matching the cut.
        sample = self._row(_Snapshot(0, "MySnapshot", "", "", 0.0), 0.0)
        body = json.dumps({"doc": {"elem": [{k: _wrap(v) for k, v in sample.items()}]}})
        return web.Response(text=body[: len(body) // 2], content_type="application/json")

    def _dispatch(self, func: str, fields: dict[str, str]) -> Node:
        if func == "auth":
            return self._auth(fields)
        handler = self._funcs.get(func)
        if handler is None:
            raise _ApiError("missed", "func", f"Function '{func}' not found")
        return handler(fields, self._user_of(fields.get("auth", "")))

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

    def _live(self, instance: _Instance, now: float) -> list[_Snapshot]:
        linger = self.config.delete_linger
        instance.snapshots = [s for s in instance.snapshots if s.status(now, linger) is not None]
        return instance.snapshots

    def _new_snapshot(self, name: str, ready_at: float, killed: bool) -> _Snapshot:
        return _Snapshot(
            id=next(self._ids),
            name=name,
            fleio_id=str(uuid.UUID(int=self._data_rng.getrandbits(128), version=4)),
            createdate=datetime.fromtimestamp(self.clock.time(), UTC).strftime("%Y-%m-%d"),
            ready_at=ready_at,
            killed=killed,
        )

    def _row(self, snapshot: _Snapshot, now: float) -> dict[str, str]:
        status = snapshot.status(now, self.config.delete_linger) or "Deleting"
        # The size is known once the image finished, and stays known while it is deleted.
        end = now if snapshot.deleted_at is None else snapshot.deleted_at
        finished = not snapshot.killed and end >= snapshot.ready_at
        row = {
            **_STATIC_ROW,
            "createdate": snapshot.createdate,
            "fleio_id": snapshot.fleio_id,
            "fleio_status": status,
            "id": str(snapshot.id),
            "image_size": "3" if finished else "",
            "item_real_status": _ITEM_STATUS[status],
            "name": snapshot.name,
            "protected": "on" if snapshot.protected else "off",
        }
        return dict(sorted(row.items()))

    def _list(self, fields: dict[str, str], user: str) -> Node:
        instance = self._instance(fields, "elid")
        now = self.clock.monotonic()
        live = self._live(instance, now)
        rows = [{k: _wrap(v) for k, v in self._row(s, now).items()} for s in live]
        doc: Node = {"elid": {"$": fields["elid"]}}
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
        if rows:
            single = self.config.single_elem_as_object and len(rows) == 1
            doc["elem"] = rows[0] if single else rows
        return doc

    def _create(self, fields: dict[str, str], user: str) -> Node:
        instance = self._instance(fields, "plid")
        name = fields.get("name", "")
        if fields.get("sok") != "ok":
            return {"plid": {"$": fields["plid"]}, "name": _wrap(name)}
        if not name.strip():
            raise _missed("name")
        if len(name) > MAX_NAME:
            raise _bad_value("name", name, f"at most {MAX_NAME} characters are allowed")
        now = self.clock.monotonic()
        linger = self.config.delete_linger
        if any(s.status(now, linger) == "Saving" for s in self._live(instance, now)):
            raise _ApiError(
                "exists", "runningoperation", "Another operation is already running on this object"
            )
        delay = instance.time_to_active
        ready_at = now + (self.config.time_to_active if delay is None else delay)
        snapshot = self._new_snapshot(name, ready_at, instance.kill)
        instance.snapshots.append(snapshot)
        rate = self.config.ambiguous_create_rate
        if rate > 0 and self._fault_rng.random() < rate:
            self.ambiguous_creates += 1
            raise _AmbiguousCreate
        doc: Node = {"ok": {}}
        if self.config.create_returns_id:
            doc["id"] = {"$": str(snapshot.id)}
        return doc

    def _delete(self, fields: dict[str, str], user: str) -> Node:
        _int_field(fields, "plid")
        snapshot_id = _int_field(fields, "elid")
        elname = fields.get("elname", "")
        if not elname:
            raise _missed("elname")
        if elname != fields["elid"]:
            raise _bad_value("elname", elname, "elname must repeat the snapshot id in elid")
        if fields.get("sok") != "ok":
            raise _missed("sok")
        instance = self._instance(fields, "plid")
        now = self.clock.monotonic()
        snapshot = next((s for s in self._live(instance, now) if s.id == snapshot_id), None)
        if snapshot is None:
            raise _ApiError("missed", "elid", "Snapshot not found")
        if snapshot.protected:
            raise _ApiError("value", "protected", "The snapshot is protected from deletion")
        if snapshot.deleted_at is None:
            snapshot.deleted_at = now
        return {"ok": {}}
