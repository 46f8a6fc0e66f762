"""Shared fixtures: a scripted fake API over aioresponses, a virtual clock, quick clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from aioresponses import CallbackResult, aioresponses
from hypothesis import HealthCheck, settings

import zomro_async as z
from tests._aioresponses_compat import aioresponses_on_aiohttp_3_14  # noqa: F401  (autouse)
from zomro_async.testing._clock import VirtualClock

# Property tests: no wall-clock deadlines (CI machines vary), and the same
# examples on every run, so that a failure in CI reproduces locally.
settings.register_profile(
    "zomro", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("zomro")

URL = "https://api.zomro.com/"
TOKEN = "tok-5acd1215da7a09eaae215987"
PASSWORD = "pw-very-secret-42"

Answer = dict[str, Any] | tuple[int, str] | BaseException | CallbackResult


# The page's sample row (zomro-snapshots-api.md), as `rows()` unwraps it.
PAGE_ROW = {
    "architecture": "x86_64",
    "createdate": "2024-07-23",
    "disk_format": "qcow2",
    "fleio_id": "afd72725-81aa-43ad-984c-a3f3a05b4b84",
    "fleio_status": "Active",
    "hypervisor_type": "any_hypervisor",
    "id": "5204214",
    "image_size": "3",
    "item_real_status": "2",
    "min_disk": "20",
    "min_ram": "0",
    "name": "MySnapshot",
    "os_distro": "Ubuntu",
    "os_version": "22.04 x64",
    "protected": "off",
    "region": "Netherlands-2",
    "visibility": "private",
}


class SteppingClock:
    """Time moves only when slept on (or when a test moves it); sleeps are recorded."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return 1_700_000_000.0 + self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def doc(**nodes: Any) -> dict[str, Any]:
    """A BILLmanager document with every leaf string wrapped as {"$": ...}."""

    def wrap(value: Any) -> Any:
        if isinstance(value, str):
            return {"$": value}
        if isinstance(value, list):
            return [wrap(v) for v in value]
        if isinstance(value, dict):
            return {k: (v if k.startswith("$") else wrap(v)) for k, v in value.items()}
        return value

    return {"doc": {k: wrap(v) for k, v in nodes.items()}}


def row(
    snapshot_id: int, name: str = "snap", status: str = "Saving", **more: str
) -> dict[str, str]:
    fields = {"id": str(snapshot_id), "name": name, "fleio_status": status, **more}
    return fields


def listing(*rows: dict[str, str]) -> dict[str, Any]:
    return doc(elem=list(rows)) if rows else doc()


def error(type_: str, object_: str = "", msg: str = "refused") -> dict[str, Any]:
    return {"doc": {"error": {"$type": type_, "$object": object_, "msg": {"$": msg}}}}


_ENDED_SESSION = error("access", "", "Insufficient privileges to perform this operation")


class FakeApi:
    """Answers each POST with the next scripted answer (per `func`) and records the forms."""

    def __init__(self, mocked: aioresponses) -> None:
        self.forms: list[dict[str, str]] = []
        self.filter_forms: list[dict[str, str]] = []
        self.check_forms: list[dict[str, str]] = []
        # Set `clock` to stamp each call: `times(func)` then says when each came.
        self.clock: VirtualClock | None = None
        self._stamps: list[tuple[str, float]] = []
        self._script: dict[str, list[Answer | Callable[[dict[str, str]], Answer]]] = {}
        mocked.post(URL, callback=self._answer, repeat=True)

    def on(self, func: str, *answers: Answer | Callable[[dict[str, str]], Answer]) -> FakeApi:
        self._script.setdefault(func, []).extend(answers)
        return self

    def funcs(self) -> list[str]:
        return [f["func"] for f in self.forms]

    def times(self, func: str) -> list[float]:
        return [at for f, at in self._stamps if f == func]

    def _answer(self, url: Any, **kwargs: Any) -> CallbackResult:
        form = dict(kwargs["data"])
        if form["func"].endswith(".filter") and not self._script.get(form["func"]):
            # The stored-filter clear before each listing, answered as the server
            # does and kept apart: `forms` shows the calls a test scripted.
            self.filter_forms.append(form)
            return CallbackResult(status=200, payload={"doc": {"ok": {}}})
        if form["func"] == "whoami" and not self._script.get("whoami"):
            # The check of a refused session, unscripted: it had ended (the usual
            # reason), so the client logs in again. Kept apart, as the clear is.
            self.check_forms.append(form)
            return CallbackResult(status=200, payload=_ENDED_SESSION)
        self.forms.append(form)
        if self.clock is not None:
            self._stamps.append((form["func"], self.clock.monotonic()))
        queue = self._script.get(form["func"])
        if not queue:
            raise AssertionError(f"unscripted call {form['func']}")
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if callable(answer) and not isinstance(answer, BaseException):
            answer = answer(form)
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, CallbackResult):
            return answer
        if isinstance(answer, tuple):
            status, body = answer
            return CallbackResult(status=status, body=body, content_type="text/html")
        return CallbackResult(status=200, payload=answer)


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    with aioresponses() as m:
        yield m


@pytest.fixture
def api(mocked: aioresponses) -> FakeApi:
    return FakeApi(mocked)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


QUICK_RETRY = z.RetryPolicy(attempts=4, initial_wait=0.5, max_wait=2.0, jitter=0.1)
QUICK_POLL = z.PollPolicy(initial=2.0, multiplier=1.5, maximum=30.0, jitter=0.0)


@pytest.fixture
def make_client(clock: VirtualClock) -> Iterator[Callable[..., z.ZomroClient]]:
    def make(**settings: Any) -> z.ZomroClient:
        if "username" not in settings:
            settings.setdefault("token", TOKEN)
        settings.setdefault("clock", clock)
        settings.setdefault("retry", QUICK_RETRY)
        settings.setdefault("poll", QUICK_POLL)
        return z.ZomroClient(**settings)

    return make


@pytest.fixture
async def client(make_client: Callable[..., z.ZomroClient]) -> AsyncIterator[z.ZomroClient]:
    async with make_client() as c:
        yield c


@pytest.fixture
async def login_client(make_client: Callable[..., z.ZomroClient]) -> AsyncIterator[z.ZomroClient]:
    async with make_client(username="alice", password=PASSWORD) as c:
        yield c
