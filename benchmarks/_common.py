"""Shared by the benchmarks: figures with goals, the result line, an emulator in a child process."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import importlib.util
import json
import multiprocessing
import multiprocessing.connection
import os
import platform
import random
import resource
import secrets
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Self

from aiohttp import web

from zomro_async.testing import ZomroEmulator

# The runner reads the figures of a benchmark from this line of its output.
RESULT_PREFIX = "BENCH-RESULT "


@dataclass
class Figure:
    """One measured figure; `goal` is an upper bound (None: reported, not judged)."""

    name: str
    value: float
    unit: str = ""
    goal: float | None = None
    fmt: str = ".3f"

    @property
    def verdict(self) -> str:
        if self.goal is None:
            return "info"
        return "PASS" if self.value <= self.goal else "FAIL"

    def line(self) -> str:
        value = f"{self.value:{self.fmt}}{(' ' + self.unit) if self.unit else ''}"
        goal = (
            "" if self.goal is None else f"  (goal <= {self.goal:g}{self.unit and ' '}{self.unit})"
        )
        return f"{self.name}: {value}{goal}  {self.verdict}"


def emit(benchmark: str, figures: list[Figure]) -> None:
    """Print the figures, then the machine-readable line the runner collects."""
    print()
    for figure in figures:
        print(f"  {figure.line()}")
    payload = {"benchmark": benchmark, "figures": [asdict(f) for f in figures]}
    print(RESULT_PREFIX + json.dumps(payload), flush=True)


def machine() -> str:
    """The interpreter, the machine, and its load average (other work skews timings)."""
    load = (
        ", load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
        if hasattr(os, "getloadavg")
        else ""
    )
    return (
        f"{platform.python_implementation()} {platform.python_version()} on "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs{load}"
    )


def rss_bytes() -> int:
    """This process's resident set size now (psutil, else /proc, else the peak so far)."""
    try:
        import psutil  # optional: only the bench session installs it
    except ImportError:
        pass
    else:
        return int(psutil.Process().memory_info().rss)
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize()
    except OSError:
        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def rss_source() -> str:
    if importlib.util.find_spec("psutil") is not None:
        return "psutil"
    return "/proc/self/statm" if os.path.exists("/proc/self/statm") else "ru_maxrss (peak)"


# -- an emulator in another process -------------------------------------------------


def _serve(conn: multiprocessing.connection.Connection, overrides: dict[str, Any]) -> None:
    asyncio.run(_serve_async(conn, overrides))


async def _serve_async(
    conn: multiprocessing.connection.Connection, overrides: dict[str, Any]
) -> None:
    loop = asyncio.get_running_loop()
    async with ZomroEmulator(port=0, **overrides) as emulator:
        conn.send(("ready", emulator.url, emulator.token))
        while True:
            try:
                op, *args = await loop.run_in_executor(None, conn.recv)
            except EOFError:  # the parent is gone
                return
            if op == "add":
                # [(instance_id, {add_instance keywords}), ...] -> ids and when they were seeded
                seeded_at = time.monotonic()
                ids: dict[int, list[int]] = {}
                for instance_id, kwargs in args[0]:
                    emulator.add_instance(instance_id, **kwargs)
                    ids[instance_id] = [int(r["id"]) for r in emulator.snapshots_of(instance_id)]
                conn.send((seeded_at, ids))
            elif op == "calls":
                conn.send(dict(emulator.calls))
            elif op == "stop":
                conn.send("stopped")
                return


class _ChildServer:
    """A server run by `target(conn, *args)` in a spawned child process, on the real clock.

    The child sends `("ready", url, token)` once it listens, then answers the
    messages `request()` sends it until "stop" or until the parent is gone.
    """

    def __init__(self, target: Callable[..., None], *args: Any) -> None:
        self._target = target
        self._args = args
        self._conn: multiprocessing.connection.Connection | None = None
        self._proc: multiprocessing.process.BaseProcess | None = None
        self.url = ""
        self.token = ""

    def __enter__(self) -> Self:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=self._target, args=(child, *self._args), daemon=True)
        self._proc.start()
        child.close()
        _, self.url, self.token = self._recv(timeout=60)
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._proc is not None
        with contextlib.suppress(OSError, EOFError, TimeoutError):
            self.request("stop", timeout=10)
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5)

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def _recv(self, timeout: float) -> Any:
        assert self._conn is not None
        if not self._conn.poll(timeout):
            raise TimeoutError("the server process did not answer")
        return self._conn.recv()

    def request(self, *message: Any, timeout: float = 120) -> Any:
        assert self._conn is not None
        self._conn.send(message)
        return self._recv(timeout)


class EmulatorProcess(_ChildServer):
    """`ZomroEmulator(port=0, **overrides)` served by a child process on the real clock.

    Use as a context manager; `url` and `token` are the emulator's. `add(...)`
    seeds instances and returns their snapshot ids; `calls()` its call counter.
    """

    def __init__(self, **overrides: Any) -> None:
        super().__init__(_serve, overrides)

    def add(
        self, instances: list[tuple[int, dict[str, Any]]]
    ) -> tuple[float, dict[int, list[int]]]:
        """Seed instances: `(instance_id, add_instance keywords)` each. Returns the
        child's `time.monotonic()` when seeding began (system-wide on Linux) and
        every instance's snapshot ids.
        """
        seeded_at, ids = self.request("add", instances)
        return seeded_at, ids

    def calls(self) -> dict[str, int]:
        calls: dict[str, int] = self.request("calls")
        return calls


# -- generated snapshot rows in another process: fresh on every call, or repeated ---

# The fields of an `instances.snapshots` row that vary from snapshot to snapshot...
_VARYING_FIELDS = (
    "createdate",
    "fleio_id",
    "fleio_status",
    "id",
    "image_size",
    "item_real_status",
    "name",
    "protected",
)


def _emulator_row() -> dict[str, str]:
    emulator = ZomroEmulator()
    emulator.add_instance(1, snapshots=1)
    (row,) = emulator.snapshots_of(1)
    return row


# ...the ones every snapshot of an instance shares, taken from the emulator's own
# row (not written out again here)...
_FIXED_FIELDS = {k: v for k, v in _emulator_row().items() if k not in _VARYING_FIELDS}
# ...and the statuses, mostly Active as on a real instance, with the item status of each.
_STATUSES = ("Active", "Saving", "Active", "Active", "Deleting", "Active", "Killed", "Active")
_ITEM_STATUS = {"Saving": "5", "Deleting": "5", "Active": "2", "Killed": "4"}
# Creation dates walk 1900-01-01..2099-12-31 with a stride prime to the span, so
# each of its 73,049 days comes once before any comes again.
_FIRST_DAY = datetime.date(1900, 1, 1).toordinal()
_DAYS = datetime.date(2099, 12, 31).toordinal() - _FIRST_DAY + 1
_DAY_STRIDE = 7_919
FIRST_ROW_ID = 70_000_000


def _row_template() -> str:
    """A row's JSON text (as `json.dumps` writes it), every field in the emulator's
    sorted order, the fixed ones filled in, a `{field}` slot for each varying one."""
    escape = str.maketrans({"{": "{{", "}": "}}"})
    nodes = []
    for key in sorted([*_FIXED_FIELDS, *_VARYING_FIELDS]):
        if key in _FIXED_FIELDS:
            nodes.append(f'"{key}": ' + json.dumps({"$": _FIXED_FIELDS[key]}).translate(escape))
        else:
            nodes.append(f'"{key}": {{{key}}}')
    return "{{" + ", ".join(nodes) + "}}"


def _node(text: str) -> str:
    return '{"$": "' + text + '"}'


class RowMaker:
    """Snapshot rows in BILLmanager's wrapped form (`{"id": {"$": "..."}, ...}`), every
    one new: its own id, name, creation date and `fleio_id`, the status, item status,
    size and `protected` varying from row to row. An empty field is `{}`, as the
    API sends it (a Saving or Killed snapshot has no size). Rows are written as
    JSON text from a template, to keep the server quick.
    """

    _TEMPLATE = _row_template()

    def __init__(self, seed: int = 0) -> None:
        self.made = 0
        self._rng = random.Random(seed)
        self._dates = [datetime.date.fromordinal(_FIRST_DAY + d).isoformat() for d in range(_DAYS)]

    def text(self) -> str:
        """The next row, as JSON text."""
        self.made += 1
        n = self.made
        status = _STATUSES[n % len(_STATUSES)]
        created = self._dates[n * _DAY_STRIDE % _DAYS]
        return self._TEMPLATE.format(
            createdate=_node(created),
            fleio_id=_node(str(uuid.UUID(int=self._rng.getrandbits(128), version=4))),
            fleio_status=_node(status),
            id=_node(str(FIRST_ROW_ID + n)),
            image_size="{}" if status in ("Saving", "Killed") else _node(str(1 + n % 250)),
            item_real_status=_node(_ITEM_STATUS[status]),
            name=_node(f"auto-{created}-{n}"),
            protected=_node("on" if n % 5 == 0 else "off"),
        )

    def row(self) -> dict[str, dict[str, str]]:
        """The next row, parsed."""
        row: dict[str, dict[str, str]] = json.loads(self.text())
        return row

    def body(self, elid: int | str, rows: int) -> bytes:
        """A whole `instances.snapshots` answer of `rows` new rows."""
        elem = ", ".join([self.text() for _ in range(rows)])
        return f'{{"doc": {{"elid": {{"$": "{elid}"}}, "elem": [{elem}]}}}}'.encode()


def _check_row_fields() -> None:
    """The generated rows carry exactly the fields of the emulator's rows."""
    emulator = ZomroEmulator()
    emulator.add_instance(1, snapshots=1, saving=1)
    ours = {frozenset(RowMaker().row())}
    theirs = {frozenset(row) for row in emulator.snapshots_of(1)}
    if ours != theirs:
        raise RuntimeError(f"generated rows have the fields {ours}, the emulator's {theirs}")


def _error(type_: str, object_: str, message: str) -> bytes:
    error = {"$type": type_, "$object": object_, "msg": {"$": message}}
    return json.dumps({"doc": {"error": error}}).encode()


class _RowsApp:
    """The child's side of `RowsProcess`: one aiohttp handler, no paging, no state
    but the listings it was given."""

    def __init__(self) -> None:
        self.token = secrets.token_hex(16)
        self.listings: dict[str, int] = {}  # elid -> rows, listed fresh on every call
        self.repeated: dict[str, bytes] = {}  # elid -> the one body, listed every time
        self.maker = RowMaker()
        self.calls: Counter[str] = Counter()
        self.forms: set[tuple[tuple[str, str], ...]] = set()

    def add(self, instance_id: int, rows: int, fresh: bool) -> None:
        elid = str(instance_id)
        self.listings[elid] = rows
        if fresh:
            self.repeated.pop(elid, None)
        else:
            self.repeated[elid] = self.maker.body(elid, rows)

    async def handle(self, request: web.Request) -> web.Response:
        form = {key: str(value) for key, value in (await request.post()).items()}
        func = form.get("func", "")
        self.calls[func] += 1
        self.forms.add(tuple(sorted((k, v) for k, v in form.items() if k != "auth")))
        return web.Response(
            body=self.answer(func, form), content_type="application/json", charset="utf-8"
        )

    def answer(self, func: str, form: dict[str, str]) -> bytes:
        if form.get("out") != "json":
            return _error("value", "out", "this server speaks JSON only")
        if form.get("auth") != self.token:
            return _error("auth", "", "Unauthorized")
        if func.endswith(".filter") and form.get("sok") == "ok":
            if any(form[k] for k in form if k not in ("func", "out", "lang", "auth", "sok")):
                return _error("value", "filter", "this server clears filters only")
            return b'{"doc": {"ok": {}}}'
        if func == "instances.snapshots" and not form.get("p_num"):
            elid = form.get("elid", "")
            if elid in self.repeated:
                return self.repeated[elid]
            if elid in self.listings:
                return self.maker.body(elid, self.listings[elid])
            return _error("missed", "elid", "Instance not found")
        return _error("missed", "func", f"{func!r} is not served here")


def _serve_rows(conn: multiprocessing.connection.Connection) -> None:
    asyncio.run(_serve_rows_async(conn))


async def _serve_rows_async(conn: multiprocessing.connection.Connection) -> None:
    _check_row_fields()
    loop = asyncio.get_running_loop()
    rows = _RowsApp()
    app = web.Application()
    app.router.add_post("/", rows.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        conn.send(("ready", f"http://127.0.0.1:{port}/", rows.token))
        while True:
            try:
                op, *args = await loop.run_in_executor(None, conn.recv)
            except EOFError:  # the parent is gone
                return
            if op == "add":
                rows.add(*args)
                conn.send("added")
            elif op == "calls":
                conn.send(dict(rows.calls))
            elif op == "forms":
                conn.send(sorted(rows.forms))
                rows.forms.clear()
            elif op == "made":
                conn.send(rows.maker.made)
            elif op == "stop":
                conn.send("stopped")
                return
    finally:
        await runner.cleanup()


class RowsProcess(_ChildServer):
    """A minimal BILLmanager served by a child process: `instances.snapshots` of an
    instance given to `add()` lists generated rows (`RowMaker`), fresh on every
    call or the same ones every time; a stored-filter clear (`*.filter` with every
    field empty and `sok=ok`) answers `{"doc": {"ok": {}}}`. No paging, no login:
    `token` is the session. The emulator is far slower to list, and cannot make
    rows anew on every call.
    """

    def __init__(self) -> None:
        super().__init__(_serve_rows)

    def add(self, instance_id: int, rows: int, *, fresh: bool) -> None:
        """List `rows` rows for the instance: new ones each call when `fresh`,
        else one set made now."""
        self.request("add", instance_id, rows, fresh)

    def calls(self) -> dict[str, int]:
        calls: dict[str, int] = self.request("calls")
        return calls

    def forms(self) -> list[tuple[tuple[str, str], ...]]:
        """Every distinct form posted since the last look (`auth` left out), sorted."""
        forms: list[tuple[tuple[str, str], ...]] = self.request("forms")
        return forms

    def made(self) -> int:
        """How many rows the server has made so far."""
        made: int = self.request("made")
        return made
