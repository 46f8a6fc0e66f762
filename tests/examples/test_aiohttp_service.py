"""examples/aiohttp_service.py against the emulator, through aiohttp's test client."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import test_utils, web

import zomro_async as z
from zomro_async._cli._emulator_cmd import emulator, serve
from zomro_async.testing import VirtualClock, ZomroEmulator, pending_sdk_tasks

from ._support import DOOMED_VM, SLOW_VM, VM, load_example

service = load_example("aiohttp_service")

UNKNOWN_VM = 9999999


@pytest.fixture
def made() -> list[z.ZomroClient]:
    """The clients the app made."""
    return []


@pytest.fixture
async def app(zomro_emulator: ZomroEmulator, made: list[z.ZomroClient]) -> web.Application:
    zomro_emulator.add_instance(VM, 1)
    zomro_emulator.add_instance(DOOMED_VM, kill=True)
    zomro_emulator.add_instance(SLOW_VM, time_to_active=86_400.0)

    def make_client() -> z.ZomroClient:
        made.append(zomro_emulator.client())
        return made[-1]

    app: web.Application = service.create_app(make_client, wait_timeout=600.0)
    return app


@pytest.fixture
async def http(app: web.Application) -> AsyncIterator[test_utils.TestClient[Any, Any]]:
    async with test_utils.TestClient(test_utils.TestServer(app)) as client:
        yield client


async def settled(
    http: test_utils.TestClient[Any, Any], path: str, clock: VirtualClock
) -> dict[str, Any]:
    """The status at `path` once it is no longer pending (virtual time passes meanwhile)."""
    for _ in range(200):
        response = await http.get(path)
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        if body["status"] != "pending":
            return body
        await clock.sleep(1.0)
    raise AssertionError(f"{path} stayed pending")


async def test_a_snapshot_is_started_then_reported_active(
    http: test_utils.TestClient[Any, Any], zomro_emulator: ZomroEmulator, zomro_clock: VirtualClock
) -> None:
    response = await http.post(f"/snapshots/{VM}", json={"name": "before-upgrade"})
    assert response.status == 202
    job = await response.json()
    assert job["instance_id"] == VM
    assert job["name"] == "before-upgrade"
    assert job["status"] == "pending"
    assert job["error"] is None
    path = response.headers["Location"]
    assert path == f"/snapshots/{VM}/{job['snapshot_id']}"

    pending = await (await http.get(path)).json()
    assert pending["status"] == "pending"
    done = await settled(http, path, zomro_clock)
    assert done == {**job, "status": "active"}
    row = next(r for r in zomro_emulator.snapshots_of(VM) if r["id"] == str(job["snapshot_id"]))
    assert row["fleio_status"] == "Active"


async def test_a_default_name_is_dated(http: test_utils.TestClient[Any, Any]) -> None:
    response = await http.post(f"/snapshots/{VM}")
    assert response.status == 202
    name = (await response.json())["name"]
    assert name.startswith("api-2026-")  # the virtual clock starts on 2026-01-01


async def test_a_snapshot_that_fails_is_reported_failed_with_the_error(
    http: test_utils.TestClient[Any, Any], zomro_clock: VirtualClock
) -> None:
    response = await http.post(f"/snapshots/{DOOMED_VM}")
    assert response.status == 202
    done = await settled(http, response.headers["Location"], zomro_clock)
    assert done["status"] == "failed"
    assert done["error"].startswith("SnapshotFailed: ")
    assert "Killed" in done["error"]


async def test_a_snapshot_it_did_not_start_is_looked_up(
    http: test_utils.TestClient[Any, Any], zomro_emulator: ZomroEmulator
) -> None:
    seeded = int(zomro_emulator.snapshots_of(VM)[0]["id"])
    body = await (await http.get(f"/snapshots/{VM}/{seeded}")).json()
    assert body == {
        "instance_id": VM,
        "snapshot_id": seeded,
        "name": "seed-1",
        "status": "active",
        "error": None,
    }


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("POST", f"/snapshots/{UNKNOWN_VM}", {}, 404),
        ("POST", "/snapshots/abc", {}, 400),
        ("POST", "/snapshots/0", {}, 400),
        ("POST", f"/snapshots/{VM}", {"data": b"not json"}, 400),
        ("POST", f"/snapshots/{VM}", {"json": {"name": "x" * 256}}, 400),
        ("POST", f"/snapshots/{VM}", {"json": {"name": 42}}, 400),
        ("GET", f"/snapshots/{VM}/1", {}, 404),
        ("GET", f"/snapshots/{UNKNOWN_VM}/1", {}, 404),
        ("GET", f"/snapshots/{VM}/x", {}, 400),
    ],
)
async def test_bad_requests_get_a_client_error(
    http: test_utils.TestClient[Any, Any],
    method: str,
    path: str,
    kwargs: dict[str, Any],
    status: int,
) -> None:
    response = await http.request(method, path, **kwargs)
    assert response.status == status


async def test_one_client_serves_every_request(
    app: web.Application,
    made: list[z.ZomroClient],
    http: test_utils.TestClient[Any, Any],
    zomro_clock: VirtualClock,
) -> None:
    paths = []
    for instance_id in (VM, DOOMED_VM):
        response = await http.post(f"/snapshots/{instance_id}")
        paths.append(response.headers["Location"])
    for path in paths:
        await settled(http, path, zomro_clock)
    assert len(made) == 1
    assert app[service.SERVICE].client is made[0]


async def test_stopping_the_app_cancels_the_waits_and_closes_the_client(
    app: web.Application,
    made: list[z.ZomroClient],
    zomro_emulator: ZomroEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    closed: list[z.ZomroClient] = []
    async with test_utils.TestClient(test_utils.TestServer(app)) as http:
        response = await http.post(f"/snapshots/{SLOW_VM}")
        assert response.status == 202
        tasks = set(app[service.SERVICE].tasks)
        assert len(tasks) == 1
        client = made[0]
        close = client.aclose

        async def aclose() -> None:
            assert all(task.done() for task in tasks)  # the waits end first
            closed.append(client)
            await close()

        monkeypatch.setattr(client, "aclose", aclose)
        assert not closed
    assert closed == [client]
    assert all(task.cancelled() for task in tasks)
    assert not app[service.SERVICE].tasks
    assert pending_sdk_tasks() == []
    # Nothing polls on after the app stopped.
    calls = zomro_emulator.calls["instances.snapshots"]
    await asyncio.sleep(0.05)
    assert zomro_emulator.calls["instances.snapshots"] == calls


def test_the_service_and_the_emulator_command_default_to_different_ports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The docs run the emulator and this service side by side, both on their defaults.
    monkeypatch.delenv("HOST", raising=False)
    monkeypatch.delenv("PORT", raising=False)
    served: dict[str, Any] = {}
    monkeypatch.setattr(web, "run_app", lambda app, **settings: served.update(settings))
    service.main()
    (port_option,) = [p for p in emulator.params if p.name == "port"]

    assert served["port"] == service.DEFAULT_PORT
    assert inspect.signature(serve).parameters["port"].default == port_option.default
    assert port_option.default != served["port"]
