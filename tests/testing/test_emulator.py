"""The emulator, spoken to over loopback HTTP with a plain aiohttp client."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import math
import re
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from zomro_async.testing._clock import VirtualClock
from zomro_async.testing._emulator import EmulatorConfig, ZomroEmulator

VM = 5203773
LIST = "instances.snapshots"
EDIT = "instances.snapshots.edit"
PAGE_FIELDS = {
    "architecture": "x86_64",
    "createdate": "2026-01-01",  # VirtualClock's default start
    "disk_format": "qcow2",
    "hypervisor_type": "any_hypervisor",
    "min_disk": "20",
    "min_ram": "0",
    "os_distro": "Ubuntu",
    "os_version": "22.04 x64",
    "protected": "off",
    "region": "Netherlands-2",
    "visibility": "private",
}
ROW_KEYS = {*PAGE_FIELDS, "fleio_id", "fleio_status", "id", "image_size", "item_real_status"}
ROW_KEYS.add("name")


class Api:
    """Form posts to the emulator, the way the page's curl examples send them."""

    def __init__(self, emu: ZomroEmulator, http: aiohttp.ClientSession) -> None:
        self.emu, self.http = emu, http

    async def post(
        self, fields: dict[str, str], *, path: str = "", multipart: bool = True
    ) -> tuple[int, str, str]:
        form = aiohttp.FormData(fields, default_to_multipart=multipart)
        async with self.http.post(self.emu.url + path, data=form) as resp:
            return resp.status, resp.content_type, await resp.text()

    async def call(self, func: str, **fields: Any) -> dict[str, Any]:
        """`doc` of an authorised JSON call; fields given as None are left out."""
        sent = {"func": func, "auth": self.emu.token, "out": "json"}
        sent.update({k: str(v) for k, v in fields.items()})
        sent = {k: v for k, v in sent.items() if fields.get(k, "") is not None}
        status, ctype, text = await self.post(sent)
        assert (status, ctype) == (200, "application/json")
        doc: dict[str, Any] = json.loads(text)["doc"]
        return doc

    async def error(self, func: str, **fields: Any) -> tuple[str, str]:
        error = (await self.call(func, **fields))["error"]
        assert error["$lang"] == "en"
        assert set(error["msg"]) == {"$"}
        assert set(error["detail"]) == {"$"}
        return error["$type"], error["$object"]

    async def create(self, name: str = "MySnapshot", plid: int = VM) -> dict[str, Any]:
        return await self.call("instances.snapshots.edit", plid=plid, name=name, sok="ok")

    async def delete(self, snapshot_id: int | str, plid: int = VM) -> dict[str, Any]:
        sid = str(snapshot_id)
        return await self.call("image.delete", plid=plid, elid=sid, elname=sid, sok="ok")

    async def rows(self, instance: int = VM) -> list[dict[str, Any]]:
        elem = (await self.call("instances.snapshots", elid=instance)).get("elem", [])
        return elem if isinstance(elem, list) else [elem]


@contextlib.asynccontextmanager
async def running(**overrides: Any) -> AsyncIterator[tuple[ZomroEmulator, Api, VirtualClock]]:
    clock = VirtualClock(auto_advance=False)
    async with ZomroEmulator(clock=clock, **overrides) as emu, aiohttp.ClientSession() as http:
        emu.add_instance(VM)
        yield emu, Api(emu, http), clock


def statuses(rows: list[dict[str, Any]]) -> list[str]:
    return [row["fleio_status"]["$"] for row in rows]


async def test_rows_have_the_page_fields_and_shapes() -> None:
    async with running() as (emu, api, clock):
        assert await api.create() == {"ok": {}}
        [row] = await api.rows()
        assert set(row) == ROW_KEYS
        assert {k: row[k] for k in PAGE_FIELDS} == {k: {"$": v} for k, v in PAGE_FIELDS.items()}
        assert row["image_size"] == {}
        assert row["fleio_status"] == {"$": "Saving"}
        assert row["item_real_status"] == {"$": "5"}
        assert row["name"] == {"$": "MySnapshot"}
        assert re.fullmatch(r"\d+", row["id"]["$"])
        assert uuid.UUID(row["fleio_id"]["$"]).version == 4

        clock.advance(emu.config.time_to_active)
        [row] = await api.rows()
        assert all(set(v) == {"$"} and isinstance(v["$"], str) for v in row.values())
        assert row["fleio_status"] == {"$": "Active"}
        assert row["item_real_status"] == {"$": "2"}
        assert row["image_size"] == {"$": "3"}
        assert emu.snapshots_of(VM) == [{k: v["$"] for k, v in row.items()}]


async def test_seeded_snapshots_are_active_with_increasing_ids() -> None:
    async with running() as (emu, api, _):
        emu.add_instance(7, 3)
        rows = await api.rows(7)
        assert [r["name"]["$"] for r in rows] == ["seed-1", "seed-2", "seed-3"]
        assert statuses(rows) == ["Active"] * 3
        ids = [int(r["id"]["$"]) for r in rows]
        assert ids == sorted(set(ids))
        with pytest.raises(ValueError, match="already"):
            emu.add_instance(7)


@pytest.mark.parametrize(
    ("kwargs", "at_5s", "at_20s"),
    [
        ({}, "Active", "Active"),  # default time_to_active 5 in this test
        ({"time_to_active": 15.0}, "Saving", "Active"),
        ({"kill": True}, "Killed", "Killed"),
    ],
)
async def test_saving_turns_active_or_killed(kwargs: Any, at_5s: str, at_20s: str) -> None:
    async with running(time_to_active=5.0) as (emu, api, clock):
        emu.add_instance(8, **kwargs)
        await api.create(plid=8)
        assert statuses(await api.rows(8)) == ["Saving"]
        clock.advance(4.9)
        assert statuses(await api.rows(8)) == ["Saving"]
        clock.advance(0.1)
        assert statuses(await api.rows(8)) == [at_5s]
        clock.advance(15)
        [row] = await api.rows(8)
        assert row["fleio_status"]["$"] == at_20s
        assert (row["image_size"] == {}) == (at_20s == "Killed")


@pytest.mark.parametrize(
    ("kwargs", "ready_after", "final"),
    [
        ({}, 5.0, "Active"),  # the emulator's time_to_active in this test
        ({"time_to_active": 12.0}, 12.0, "Active"),
        ({"kill": True}, 5.0, "Killed"),
    ],
)
async def test_seeded_saving_snapshots_finish_after_time_to_active(
    kwargs: Any, ready_after: float, final: str
) -> None:
    async with running(time_to_active=5.0) as (emu, api, clock):
        clock.advance(100)  # seeded "now", not at the clock's start
        emu.add_instance(7, 2, saving=3, **kwargs)
        rows = await api.rows(7)
        assert [r["name"]["$"] for r in rows] == [f"seed-{n}" for n in range(1, 6)]
        assert statuses(rows) == ["Active"] * 2 + ["Saving"] * 3
        assert [r["image_size"] for r in rows[2:]] == [{}] * 3
        ids = [int(r["id"]["$"]) for r in rows]
        assert ids == sorted(set(ids))
        clock.advance(ready_after - 0.1)
        assert statuses(await api.rows(7)) == ["Active"] * 2 + ["Saving"] * 3
        # Seeding bypassed the one-in-progress rule; the API still keeps it.
        assert await api.error(EDIT, plid=7, name="more", sok="ok") == (
            "exists",
            "runningoperation",
        )
        clock.advance(0.1)
        assert statuses(await api.rows(7)) == ["Active"] * 2 + [final] * 3
        with pytest.raises(ValueError, match="saving"):
            emu.add_instance(8, saving=-1)
        emu.add_instance(9, saving=0)
        assert await api.rows(9) == []


async def test_empty_instance_has_no_elem() -> None:
    async with running() as (_, api, _):
        assert await api.call("instances.snapshots", elid=VM) == {"elid": {"$": str(VM)}}


@pytest.mark.parametrize("as_object", [False, True])
async def test_single_row_shape(as_object: bool) -> None:
    async with running(single_elem_as_object=as_object) as (_, api, _):
        await api.create()
        elem = (await api.call("instances.snapshots", elid=VM))["elem"]
        assert isinstance(elem, dict) == as_object
        await api.delete(elem["id"]["$"] if as_object else elem[0]["id"]["$"])


async def test_paging_echoes_and_clamps_to_last_page() -> None:
    async with running() as (emu, api, _):
        emu.add_instance(9, 5)
        doc = await api.call("instances.snapshots", elid=9, p_num=2, p_cnt=2)
        assert [r["name"]["$"] for r in doc["elem"]] == ["seed-3", "seed-4"]
        assert (doc["p_num"], doc["p_cnt"], doc["p_elems"]) == ({"$": "2"}, {"$": "2"}, {"$": "5"})
        doc = await api.call("instances.snapshots", elid=9, p_num=99, p_cnt=2)
        assert [r["name"]["$"] for r in doc["elem"]] == ["seed-5"]
        assert doc["p_num"] == {"$": "3"}


@pytest.mark.parametrize("path", ["", "billmgr"])
@pytest.mark.parametrize("multipart", [True, False])
async def test_both_paths_and_encodings(path: str, multipart: bool) -> None:
    async with running() as (emu, api, _):
        fields = {"func": "whoami", "auth": emu.token, "out": "json"}
        status, ctype, text = await api.post(fields, path=path, multipart=multipart)
        assert (status, ctype) == (200, "application/json")
        assert json.loads(text) == {"doc": {"ok": {}, "user": {"$": "demo"}}}


async def test_other_methods_and_paths_are_plain_http_errors() -> None:
    async with running(fault_rate=1.0, fault_kinds=("reset",)) as (emu, api, _):
        async with api.http.get(emu.url) as resp:
            assert resp.status == 405
        async with api.http.post(emu.url + "elsewhere", data={"func": "whoami"}) as resp:
            assert resp.status == 404
        assert not emu.calls
        assert not emu.faults


async def test_xml_is_the_default_output() -> None:
    async with running() as (emu, api, _):
        for out in (None, "xml"):
            fields = {"func": "whoami", "auth": emu.token} | ({"out": out} if out else {})
            status, ctype, text = await api.post(fields)
            assert (status, ctype) == (200, "text/xml")
            assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
            assert "<doc><ok /><user>demo</user></doc>" in text
        _, _, text = await api.post({"func": "whoami"})
        assert '<error type="access" object="" lang="en">' in text


async def test_auth_and_keepalive() -> None:
    async with running() as (_, api, _):
        doc = await api.call("auth", auth=None, username="demo", password="demo-password")
        sid = doc["auth"]["$id"]
        assert re.fullmatch(r"[0-9a-f]{24}", sid)
        assert doc == {"auth": {"$id": sid, "$": sid}, "ok": {}}
        assert await api.call("keepalive", auth=sid) == {"ok": {}}
        assert (await api.call("whoami", auth=sid))["user"] == {"$": "demo"}


@pytest.mark.parametrize(
    ("username", "password", "expected"),
    [
        ("demo", "wrong", ("auth", "badpassword")),
        ("someone", "demo-password", ("auth", "badpassword")),
        ("demo", "", ("missed", "password")),
        (None, "demo-password", ("missed", "username")),
    ],
)
async def test_auth_refused(username: str | None, password: str, expected: Any) -> None:
    async with running() as (_, api, _):
        assert await api.error("auth", auth=None, username=username, password=password) == expected


async def test_session_lives_ttl_after_its_last_request() -> None:
    access = ("access", "")
    async with running(session_ttl=100.0) as (emu, api, clock):
        clock.advance(90)
        assert await api.call("keepalive") == {"ok": {}}
        clock.advance(100)  # 100 since the last use: still alive
        assert await api.call("keepalive") == {"ok": {}}
        clock.advance(100.5)
        assert await api.error("keepalive") == access
        assert await api.error("whoami") == access  # expired stays expired
        doc = await api.call("auth", auth=None, username="demo", password="demo-password")
        fresh = doc["auth"]["$id"]
        assert await api.call("keepalive", auth=fresh) == {"ok": {}}
        emu.expire_sessions()
        assert await api.error("keepalive", auth=fresh) == access
        assert emu.token != fresh


async def test_preview_without_sok_creates_nothing() -> None:
    async with running() as (emu, api, _):
        doc = await api.call("instances.snapshots.edit", plid=VM, name="Try")
        assert doc == {"plid": {"$": str(VM)}, "name": {"$": "Try"}}
        doc = await api.call("instances.snapshots.edit", plid=VM, sok="no")
        assert doc == {"plid": {"$": str(VM)}, "name": {}}
        assert emu.snapshots_of(VM) == []


async def test_second_create_while_saving_conflicts() -> None:
    async with running() as (emu, api, clock):
        await api.create("one")
        conflict = await api.error(EDIT, plid=VM, name="two", sok="ok")
        assert conflict == ("exists", "runningoperation")
        clock.advance(emu.config.time_to_active)
        await api.create("two")
        assert [r["name"] for r in emu.snapshots_of(VM)] == ["one", "two"]


async def test_create_returns_id_when_configured() -> None:
    async with running(create_returns_id=True) as (emu, api, _):
        doc = await api.create()
        assert doc == {"ok": {}, "id": {"$": emu.snapshots_of(VM)[0]["id"]}}


async def test_delete_lingers_then_disappears() -> None:
    async with running() as (emu, api, clock):
        await api.create()  # still Saving: may be deleted anyway
        sid = emu.snapshots_of(VM)[0]["id"]
        assert await api.delete(sid) == {"ok": {}}
        [row] = await api.rows()
        assert (row["fleio_status"], row["item_real_status"]) == ({"$": "Deleting"}, {"$": "5"})
        clock.advance(1.0)
        assert await api.delete(sid) == {"ok": {}}  # idempotent while Deleting
        clock.advance(emu.config.delete_linger - 1.0)
        assert await api.rows() == []
        assert await api.error("image.delete", plid=VM, elid=sid, elname=sid, sok="ok") == (
            "missed",
            "elid",
        )


async def test_active_snapshot_keeps_its_size_while_deleting() -> None:
    async with running() as (emu, api, _):
        emu.add_instance(3, 1)
        await api.delete(emu.snapshots_of(3)[0]["id"], plid=3)
        assert emu.snapshots_of(3)[0]["image_size"] == "3"


async def test_protected_snapshot_is_not_deleted() -> None:
    async with running() as (emu, api, _):
        emu.add_instance(4, 1)
        sid = int(emu.snapshots_of(4)[0]["id"])
        emu.set_protected(4, sid)
        assert emu.snapshots_of(4)[0]["protected"] == "on"
        sent = {"plid": 4, "elid": sid, "elname": sid, "sok": "ok"}
        assert await api.error("image.delete", **sent) == ("value", "protected")
        emu.set_protected(4, sid, False)
        assert await api.call("image.delete", **sent) == {"ok": {}}
        with pytest.raises(KeyError):
            emu.set_protected(4, 1)


SID = "5204214"  # the first snapshot id: the one each error case below creates
DEL = {"plid": VM, "elid": SID, "elname": SID, "sok": "ok"}
ERRORS: list[tuple[str, dict[str, Any], tuple[str, str]]] = [
    ("whoami", {"auth": None}, ("access", "")),
    ("whoami", {"auth": "0" * 24}, ("access", "")),
    (LIST, {"auth": ""}, ("access", "")),
    ("no.such.func", {}, ("missed", "func")),
    ("", {}, ("missed", "func")),
    (LIST, {}, ("missed", "elid")),
    (LIST, {"elid": "abc"}, ("value", "elid")),
    (LIST, {"elid": "0"}, ("value", "elid")),
    (LIST, {"elid": "-3"}, ("value", "elid")),
    (LIST, {"elid": "42"}, ("missed", "elid")),
    (LIST, {"elid": VM, "p_cnt": "x"}, ("value", "p_cnt")),
    (EDIT, {"name": "n", "sok": "ok"}, ("missed", "plid")),
    (EDIT, {"plid": "1.5", "name": "n", "sok": "ok"}, ("value", "plid")),
    (EDIT, {"plid": "42", "name": "n", "sok": "ok"}, ("missed", "plid")),
    (EDIT, {"plid": VM, "sok": "ok"}, ("missed", "name")),
    (EDIT, {"plid": VM, "name": "  ", "sok": "ok"}, ("missed", "name")),
    (EDIT, {"plid": VM, "name": "x" * 256, "sok": "ok"}, ("value", "name")),
    ("image.delete", {**DEL, "plid": None}, ("missed", "plid")),
    ("image.delete", {**DEL, "plid": "x"}, ("value", "plid")),
    ("image.delete", {**DEL, "plid": "42"}, ("missed", "plid")),
    ("image.delete", {**DEL, "elid": None}, ("missed", "elid")),
    ("image.delete", {**DEL, "elid": "5204214, 5204215"}, ("value", "elid")),
    ("image.delete", {**DEL, "elname": None}, ("missed", "elname")),
    ("image.delete", {**DEL, "elname": "MySnapshot"}, ("value", "elname")),
    ("image.delete", {**DEL, "sok": None}, ("missed", "sok")),
    ("image.delete", {**DEL, "elid": "99", "elname": "99"}, ("missed", "elid")),
]


@pytest.mark.parametrize(("func", "fields", "expected"), ERRORS)
async def test_error_conventions(func: str, fields: dict[str, Any], expected: Any) -> None:
    async with running() as (emu, api, _):
        await api.create()
        assert emu.snapshots_of(VM)[0]["id"] == SID
        assert await api.error(func, **fields) == expected
        assert [r["fleio_status"] for r in emu.snapshots_of(VM)] == ["Saving"]


async def test_error_document_shape() -> None:
    async with running() as (_, api, _):
        access = (await api.call("whoami", auth=None))["error"]
        assert access["msg"] == {"$": "Insufficient privileges to perform this operation"}
        assert access["$object"] == ""
        assert "param" not in access
        missed = (await api.call(LIST))["error"]
        assert missed["param"] == {"$name": "object", "$": "elid"}
        value = (await api.call(LIST, elid="abc"))["error"]
        assert value["param"] == [{"$name": "object", "$": "elid"}, {"$name": "value", "$": "abc"}]
        await api.create()
        conflict = (await api.create())["error"]
        assert conflict["msg"] == {"$": "Another operation is already running on this object"}


async def test_malformed_bodies_get_error_documents() -> None:
    async with running() as (emu, api, _):
        headers = {"Content-Type": "multipart/form-data; boundary=zz"}
        for data, hdrs in ((b"--zz\r\ngarbage", headers), (b'{"func": "whoami"}', None)):
            async with api.http.post(emu.url, data=data, headers=hdrs) as resp:
                assert resp.status == 200
                assert '<error type="missed" object="func"' in await resp.text()
        assert emu.calls == {"": 2}


@pytest.mark.parametrize(("kind", "status"), [("html502", 502), ("html503", 503)])
async def test_html_faults_change_nothing(kind: str, status: int) -> None:
    async with running(fault_rate=1.0, fault_kinds=(kind,)) as (emu, api, _):
        fields = {"func": EDIT, "auth": emu.token, "out": "json", "plid": str(VM)}
        got = await api.post(fields | {"name": "x", "sok": "ok"})
        assert got[:2] == (status, "text/html")
        assert "<center>nginx</center>" in got[2]
        assert emu.snapshots_of(VM) == []
        assert (emu.calls, emu.faults) == ({EDIT: 1}, {kind: 1})


async def test_truncated_fault_is_cut_json_and_changes_nothing() -> None:
    async with running(fault_rate=1.0, fault_kinds=("truncated",)) as (emu, api, _):
        fields = {"func": EDIT, "auth": emu.token, "out": "json", "plid": str(VM)}
        status, ctype, text = await api.post(fields | {"name": "x", "sok": "ok"})
        assert (status, ctype) == (200, "application/json")
        assert text.startswith('{"doc": {"elem": [{')
        with pytest.raises(json.JSONDecodeError):
            json.loads(text)
        assert emu.snapshots_of(VM) == []
        assert emu.faults == {"truncated": 1}


async def test_reset_drops_the_connection_quietly(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    async with running(fault_rate=1.0, fault_kinds=("reset",)) as (emu, api, _):
        fields = {"func": EDIT, "auth": emu.token, "out": "json", "plid": str(VM)}
        for _ in range(3):
            with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
                await api.post(fields | {"name": "x", "sok": "ok"})
        assert emu.snapshots_of(VM) == []
        assert (emu.calls, emu.faults, emu.in_flight) == ({EDIT: 3}, {"reset": 3}, 0)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


async def test_slow_answers_late_then_handles_and_counts_concurrency() -> None:
    async with running(fault_rate=1.0, fault_kinds=("slow",), slow_seconds=0.02) as (emu, api, _):
        docs = await asyncio.gather(*(api.call("whoami") for _ in range(5)))
        assert docs == [{"ok": {}, "user": {"$": "demo"}}] * 5
        await api.create()
        assert len(emu.snapshots_of(VM)) == 1
        assert emu.calls == {"whoami": 5, EDIT: 1}
        assert emu.faults == {"slow": 6}
        assert (emu.max_in_flight, emu.in_flight) == (5, 0)


async def test_ambiguous_create_creates_behind_a_502() -> None:
    async with running(ambiguous_create_rate=1.0) as (emu, api, _):
        fields = {"func": EDIT, "auth": emu.token, "out": "json", "plid": str(VM)}
        status, ctype, _ = await api.post(fields | {"name": "x", "sok": "ok"})
        assert (status, ctype) == (502, "text/html")
        assert [r["name"] for r in emu.snapshots_of(VM)] == ["x"]
        assert (emu.ambiguous_creates, emu.faults) == (1, {})
        await api.call(EDIT, plid=VM, name="preview")  # previews are never ambiguous
        assert emu.ambiguous_creates == 1


async def fault_trace(seed: int) -> tuple[list[int], list[str]]:
    kinds = ("html502", "html503", "truncated")
    async with running(fault_rate=0.5, fault_kinds=kinds, seed=seed) as (emu, api, _):
        trace = [(await api.post({"func": "whoami"}))[0] for _ in range(30)]
        trace += [(await api.post({"func": EDIT}))[0] for _ in range(10)]
        emu.add_instance(2, 2)
        return trace, [r["fleio_id"] for r in emu.snapshots_of(2)] + [emu.token]


async def test_same_seed_same_faults_and_ids() -> None:
    first = await fault_trace(1)
    assert first == await fault_trace(1)
    assert first != await fault_trace(2)
    assert {200, 502, 503} <= set(first[0])


def test_config_and_overrides() -> None:
    emu = ZomroEmulator(EmulatorConfig(username="u"), fault_rate=0.1)
    assert (emu.config.username, emu.config.fault_rate) == ("u", 0.1)
    assert emu.app.router.resources()
    with pytest.raises(RuntimeError):
        _ = emu.url
    with pytest.raises(ValueError, match="fault_kinds"):
        ZomroEmulator(fault_kinds=("boom",))
    with pytest.raises(ValueError, match="fault_kinds"):
        ZomroEmulator(fault_rate=0.5, fault_kinds=())


async def test_a_remembered_page_size_pages_lists_nobody_asked_to_page() -> None:
    import aiohttp

    from zomro_async.testing import ZomroEmulator

    async with ZomroEmulator(page_size=2) as emulator:
        emulator.add_instance(1, snapshots=3)
        async with aiohttp.ClientSession() as http:
            form = {"func": "instances.snapshots", "out": "json", "auth": emulator.token}
            async with http.post(emulator.url, data={**form, "elid": "1"}) as answer:
                doc = (await answer.json())["doc"]
            async with http.post(emulator.url, data={**form, "elid": "1", "p_num": "2"}) as answer:
                second = (await answer.json())["doc"]
    assert [row["name"]["$"] for row in doc["elem"]] == ["seed-1", "seed-2"]
    assert (doc["p_elems"]["$"], doc["p_cnt"]["$"], doc["p_num"]["$"]) == ("3", "2", "1")
    assert [row["name"]["$"] for row in second["elem"]] == ["seed-3"]


# -- scripted faults: lost answers, failed logins, outages, holds ----------------

DELETE = "image.delete"
WHOAMI = {"func": "whoami", "out": "json"}
DROPPED = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)


async def soon(predicate: Callable[[], bool]) -> None:
    """Let loopback I/O run (in real time) until `predicate` holds."""
    for _ in range(2000):
        if predicate():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("timed out waiting on loopback I/O")


async def settle() -> None:
    """Enough real time for a loopback answer, had one been sent."""
    await asyncio.sleep(0.02)


def raw_delete(emu: ZomroEmulator, sid: str, plid: int = VM) -> dict[str, str]:
    fields = {"plid": str(plid), "elid": sid, "elname": sid, "sok": "ok"}
    return {"func": DELETE, "auth": emu.token, "out": "json"} | fields


@pytest.mark.parametrize(("kind", "status"), [("html502", 502), ("html504", 504), ("reset", None)])
async def test_a_lost_delete_answer_was_deleted_all_the_same(kind: str, status: int | None) -> None:
    async with running() as (emu, api, clock):
        emu.add_instance(3, 1)
        sid = emu.snapshots_of(3)[0]["id"]
        emu.lose_answers(DELETE, kind=kind)
        if status is None:
            with pytest.raises(DROPPED):
                await api.post(raw_delete(emu, sid, 3))
        else:
            got = await api.post(raw_delete(emu, sid, 3))
            assert got[:2] == (status, "text/html")
            assert f"<h1>{status} " in got[2]
            assert "<center>nginx</center>" in got[2]
        assert [r["fleio_status"] for r in emu.snapshots_of(3)] == ["Deleting"]
        assert emu.lost_answers == {DELETE: 1}
        assert await api.delete(sid, plid=3) == {"ok": {}}  # one lost, the next answered
        clock.advance(emu.config.delete_linger)
        assert await api.error(DELETE, plid=3, elid=sid, elname=sid, sok="ok") == ("missed", "elid")
        assert (emu.calls[DELETE], emu.lost_answers[DELETE], emu.faults) == (3, 1, {})


async def test_lost_answers_count_up_and_lose_errors_too() -> None:
    async with running() as (emu, api, _):
        emu.lose_answers(EDIT)
        emu.lose_answers(EDIT, 1)  # adds up: the next two
        emu.lose_answers(EDIT, 0)
        fields = {"func": EDIT, "auth": emu.token, "out": "json", "plid": str(VM), "sok": "ok"}
        assert (await api.post(fields | {"name": "one"}))[0] == 502
        assert [r["name"] for r in emu.snapshots_of(VM)] == ["one"]  # made, answer lost
        # The second is refused (one is Saving): the refusal is what gets lost.
        assert (await api.post(fields | {"name": "two"}))[0] == 502
        assert await api.error(EDIT, plid=VM, name="three", sok="ok") == (
            "exists",
            "runningoperation",
        )
        assert [r["name"] for r in emu.snapshots_of(VM)] == ["one"]
        assert emu.lost_answers == {EDIT: 2}
        assert emu.calls == {EDIT: 3}


async def test_a_call_failed_before_acting_does_not_use_up_a_lost_answer() -> None:
    async with running() as (emu, api, clock):
        emu.lose_answers("whoami")
        await emu.outage(5, mode="html503")
        assert (await api.post(WHOAMI | {"auth": emu.token}))[0] == 503
        clock.advance(5)
        assert (await api.post(WHOAMI | {"auth": emu.token}))[0] == 502
        assert await api.call("whoami") == {"ok": {}, "user": {"$": "demo"}}
        assert emu.lost_answers == {"whoami": 1}


def test_lose_answers_refuses_bad_arguments() -> None:
    emu = ZomroEmulator()
    with pytest.raises(ValueError, match="kind"):
        emu.lose_answers(DELETE, kind="html503")
    with pytest.raises(ValueError, match="count"):
        emu.lose_answers(DELETE, -1)


async def lost_delete_trace(seed: int, rate: float) -> tuple[list[int], ZomroEmulator]:
    async with running(lost_delete_rate=rate, seed=seed) as (emu, api, _):
        emu.add_instance(6, 20)
        trace = [(await api.post(raw_delete(emu, r["id"], 6)))[0] for r in emu.snapshots_of(6)]
        assert [r["fleio_status"] for r in emu.snapshots_of(6)] == ["Deleting"] * 20
        return trace, emu


async def test_lost_delete_rate_loses_seeded_answers_of_done_deletes() -> None:
    trace, emu = await lost_delete_trace(3, 0.5)
    assert set(trace) == {200, 502}
    assert emu.lost_answers == {DELETE: trace.count(502)}
    assert (await lost_delete_trace(3, 0.5))[0] == trace
    assert (await lost_delete_trace(4, 0.5))[0] != trace
    assert set((await lost_delete_trace(3, 1.0))[0]) == {502}
    assert set((await lost_delete_trace(3, 0.0))[0]) == {200}


CREDENTIALS = {"username": "demo", "password": "demo-password"}
LOGIN = {"func": "auth", "out": "json"} | CREDENTIALS


@pytest.mark.parametrize(
    ("kind", "status"),
    [("http429", 429), ("html503", 503), ("html502", 502), ("reset", None)],
)
async def test_failed_logins_make_no_session_then_logins_succeed(
    kind: str, status: int | None
) -> None:
    async with running() as (emu, api, _):
        emu.fail_logins(2, kind=kind)
        for _ in range(2):
            if status is None:
                with pytest.raises(DROPPED):
                    await api.post(LOGIN)
                continue
            async with api.http.post(emu.url, data=LOGIN) as resp:
                assert (resp.status, resp.content_type) == (status, "text/html")
                assert f"<h1>{status} " in await resp.text()
                assert "Retry-After" not in resp.headers
        sid = (await api.call("auth", auth=None, **CREDENTIALS))["auth"]["$id"]
        assert await api.call("whoami", auth=sid) == {"ok": {}, "user": {"$": "demo"}}
        assert (emu.calls["auth"], emu.failed_logins, emu.faults) == (3, 2, {})
    # Session ids are drawn in order: had a failed login made one, this would differ.
    async with running() as (_, fresh, _):
        assert (await fresh.call("auth", auth=None, **CREDENTIALS))["auth"]["$id"] == sid


async def test_failed_logins_fail_only_logins_and_count_up() -> None:
    async with running() as (emu, api, _):
        emu.fail_logins(1)
        emu.fail_logins(1, kind="html502")
        assert await api.call("whoami") == {"ok": {}, "user": {"$": "demo"}}
        assert [(await api.post(LOGIN))[0] for _ in range(3)] == [429, 502, 200]
        assert emu.failed_logins == 2


async def retry_after_of(emu: ZomroEmulator, api: Api) -> str:
    async with api.http.post(emu.url, data=LOGIN) as resp:
        assert resp.status in (429, 503)
        return resp.headers["Retry-After"]


async def test_retry_after_in_seconds() -> None:
    async with running() as (emu, api, clock):
        emu.fail_logins(1, retry_after=30)
        emu.fail_logins(1, kind="html503", retry_after=1.2)  # rounded up
        emu.fail_logins(1, retry_after="whenever")  # a string goes as it is
        emu.fail_logins(1, retry_after=0.0)
        clock.advance(12.5)
        assert [await retry_after_of(emu, api) for _ in range(4)] == ["30", "2", "whenever", "0"]


async def test_retry_after_as_an_http_date_on_the_clock() -> None:
    async with running(retry_after_style="date") as (emu, api, clock):
        emu.fail_logins(2, retry_after=30)
        emu.fail_logins(1, retry_after=0.25)
        clock.advance(100)  # rendered when sent, not when scripted
        header = await retry_after_of(emu, api)
        assert re.fullmatch(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT", header)
        assert header == "Thu, 01 Jan 2026 00:02:10 GMT"  # the clock starts at 2026-01-01
        expected = datetime.fromtimestamp(clock.time() + 30, UTC)
        assert email.utils.parsedate_to_datetime(header) == expected
        clock.advance(5)
        later = email.utils.parsedate_to_datetime(await retry_after_of(emu, api))
        assert later == expected + timedelta(seconds=5)
        clock.advance(0.5)  # 100.5 + 0.25 rounds up to the next second
        last = email.utils.parsedate_to_datetime(await retry_after_of(emu, api))
        assert last == datetime.fromtimestamp(math.ceil(clock.time() + 0.25), UTC)


def test_retry_after_arguments_are_checked() -> None:
    emu = ZomroEmulator()
    with pytest.raises(ValueError, match="429 or a 503"):
        emu.fail_logins(1, kind="html502", retry_after=5)
    with pytest.raises(ValueError, match="429 or a 503"):
        emu.fail_logins(1, kind="reset", retry_after="5")
    with pytest.raises(ValueError, match=">= 0"):
        emu.fail_logins(1, retry_after=-1)
    with pytest.raises(ValueError, match="kind"):
        emu.fail_logins(1, kind="html504")
    with pytest.raises(ValueError, match="count"):
        emu.fail_logins(-1)
    with pytest.raises(ValueError, match="retry_after_style"):
        ZomroEmulator(retry_after_style="http-date")


async def test_a_refusing_outage_closes_the_port_and_reopens_the_same_one() -> None:
    async with running() as (emu, api, clock):
        url = emu.url
        assert await api.call("whoami") == {"ok": {}, "user": {"$": "demo"}}  # kept alive
        await emu.outage(30)
        assert emu.outage_active
        assert emu.url == url
        with pytest.raises(aiohttp.ClientConnectorError):  # the kept-alive one is gone too
            await api.post(WHOAMI)
        clock.advance(29.9)
        await settle()
        assert emu.outage_active
        with pytest.raises(aiohttp.ClientConnectorError):
            await api.post(WHOAMI)
        clock.advance(0.1)
        await emu.wait_outage_end()
        assert not emu.outage_active
        assert emu.url == url
        assert await api.call("whoami") == {"ok": {}, "user": {"$": "demo"}}
        assert emu.calls == {"whoami": 2}  # refused connections reached nothing
        assert emu.outage_answers == 0
        await emu.outage(10)  # and again, on the same port
        clock.advance(10)
        await emu.wait_outage_end()
        assert await api.call("whoami") == {"ok": {}, "user": {"$": "demo"}}
        assert emu.url == url


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback here")
async def test_a_refusing_outage_reopens_an_ipv6_port() -> None:
    clock = VirtualClock(auto_advance=False)
    async with ZomroEmulator(clock=clock, host="::1") as emu, aiohttp.ClientSession() as http:
        url = emu.url
        assert url.startswith("http://[::1]:")
        await emu.outage(5)
        with pytest.raises(aiohttp.ClientConnectorError):
            await http.post(url, data=WHOAMI)
        clock.advance(5)
        await emu.wait_outage_end()
        async with http.post(url, data=WHOAMI) as resp:
            assert resp.status == 200


async def test_a_refusing_outage_aborts_a_request_in_flight() -> None:
    async with running() as (emu, api, clock):
        emu.hold("whoami", 5)
        request = asyncio.ensure_future(api.post(WHOAMI | {"auth": emu.token}))
        await soon(lambda: emu.held_answers["whoami"] == 1)
        await emu.outage(60)
        with pytest.raises(DROPPED):
            await request
        clock.advance(60)
        await emu.wait_outage_end()
        assert emu.in_flight == 0


async def test_end_outage_listens_again_at_once() -> None:
    async with running() as (emu, api, clock):
        await emu.end_outage()  # none on: nothing to do
        await emu.outage(3600)
        with pytest.raises(aiohttp.ClientConnectorError):
            await api.post(WHOAMI)
        await emu.end_outage()
        assert not emu.outage_active
        assert clock.monotonic() == 0
        assert (await api.post(WHOAMI | {"auth": emu.token}))[0] == 200
        await emu.outage(5, mode="html503")
        await emu.end_outage()
        assert (await api.post(WHOAMI | {"auth": emu.token}))[0] == 200


async def test_close_during_an_outage_ends_it_and_its_task() -> None:
    clock = VirtualClock(auto_advance=False)
    emu = ZomroEmulator(clock=clock)
    await emu.start()
    await emu.outage(3600)
    await emu.close()
    assert not emu.outage_active
    assert [t for t in asyncio.all_tasks() if t.get_name() == "zomro-emulator-outage"] == []
    await emu.start()  # serves again, on a port of its own
    async with aiohttp.ClientSession() as http, http.post(emu.url, data=WHOAMI) as resp:
        assert resp.status == 200
    await emu.close()


def intruder_on(emu: ZomroEmulator) -> socket.socket:
    """A socket listening on the emulator's port, which it can take only while the
    emulator does not listen and (Linux) asking to reuse the address."""
    intruder = socket.socket()
    try:
        intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        intruder.bind(("127.0.0.1", int(emu.url.rsplit(":", 1)[1].strip("/"))))
        intruder.listen()
    except BaseException:
        intruder.close()
        raise
    return intruder


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's SO_REUSEADDR rules")
async def test_a_port_taken_during_an_outage_is_reported() -> None:
    async with running() as (emu, _, clock):
        await emu.outage(30)
        # Another socket takes the port while the emulator does not listen.
        with intruder_on(emu):
            clock.advance(30)
            with pytest.raises(RuntimeError, match=r"could not listen on .* again"):
                await emu.wait_outage_end()
            assert not emu.outage_active
            await emu.wait_outage_end()  # reported once
        emu2 = ZomroEmulator(clock=clock)
        await emu2.start()
        await emu2.outage(1)
        with intruder_on(emu2):
            clock.advance(1)
            await soon(lambda: not emu2.outage_active)
        with pytest.raises(RuntimeError, match="could not listen"):
            await emu2.close()  # not reported yet: close does


async def test_an_answering_outage_fails_every_request_for_its_time() -> None:
    async with running() as (emu, api, clock):
        await emu.outage(20, mode="html503", retry_after=7)
        assert emu.outage_active
        for fields in (WHOAMI | {"auth": emu.token}, LOGIN, {"func": EDIT}):
            async with api.http.post(emu.url, data=fields) as resp:
                assert (resp.status, resp.headers["Retry-After"]) == (503, "7")
                assert "<center>nginx</center>" in await resp.text()
        with pytest.raises(RuntimeError, match="already"):
            await emu.outage(5, mode="reset")
        waiter = asyncio.ensure_future(emu.wait_outage_end())
        clock.advance(19.9)
        await settle()
        assert not waiter.done()
        clock.advance(0.1)
        await waiter
        assert not emu.outage_active
        assert (await api.post(WHOAMI | {"auth": emu.token}))[0] == 200
        await emu.outage(5, mode="reset")
        with pytest.raises(DROPPED):
            await api.post(WHOAMI)
        clock.advance(5)  # the end is read from the clock: nothing else to await
        assert (await api.post(WHOAMI | {"auth": emu.token}))[0] == 200
        assert emu.outage_answers == 4
        assert emu.calls == {"whoami": 4, "auth": 1, EDIT: 1}


async def test_an_answering_outage_works_for_a_mounted_app_a_refusing_one_does_not() -> None:
    emu = ZomroEmulator(clock=VirtualClock(auto_advance=False))
    with pytest.raises(RuntimeError, match="started"):
        await emu.outage(5)
    await emu.outage(5, mode="html503")
    assert emu.outage_active


async def test_outage_arguments_are_checked() -> None:
    async with running() as (emu, _, _):
        with pytest.raises(ValueError, match="mode"):
            await emu.outage(5, mode="html502")
        with pytest.raises(ValueError, match="429 or a 503"):
            await emu.outage(5, retry_after=5)
        with pytest.raises(ValueError, match="429 or a 503"):
            await emu.outage(5, mode="reset", retry_after=5)
        with pytest.raises(ValueError, match="seconds"):
            await emu.outage(-1)
        assert not emu.outage_active


async def test_a_held_listing_answers_after_its_hold_with_the_state_then() -> None:
    async with running(time_to_active=8.0) as (emu, api, clock):
        await api.create()
        emu.hold(LIST, 10)
        listing = asyncio.ensure_future(api.rows())
        await soon(lambda: emu.held_answers[LIST] == 1)
        clock.advance(9.9)
        await settle()
        assert not listing.done()
        clock.advance(0.1)
        assert statuses(await listing) == ["Active"]  # Saving when asked, Active when answered
        assert emu.held_answers == {LIST: 1}
        # Held until told otherwise: the next one waits too.
        listing = asyncio.ensure_future(api.rows())
        await soon(lambda: emu.held_answers[LIST] == 2)
        await settle()
        assert not listing.done()
        emu.hold(LIST, 0)
        assert await api.rows() != []  # not held any more; the one held still is
        assert not listing.done()
        clock.advance(10)
        await listing
        assert emu.held_answers == {LIST: 2}


async def test_hold_for_a_count_of_calls_then_answer_at_once() -> None:
    async with running() as (emu, api, clock):
        emu.hold("whoami", 3, count=2)
        held = [asyncio.ensure_future(api.call("whoami")) for _ in range(2)]
        await soon(lambda: emu.held_answers["whoami"] == 2)
        assert await api.call("whoami") == {"ok": {}, "user": {"$": "demo"}}  # the third
        assert not any(h.done() for h in held)
        clock.advance(3)
        assert await asyncio.gather(*held) == [{"ok": {}, "user": {"$": "demo"}}] * 2
        assert clock.monotonic() == 3
        with pytest.raises(ValueError, match="seconds"):
            emu.hold("whoami", -1)
        with pytest.raises(ValueError, match="count"):
            emu.hold("whoami", 1, count=0)


async def test_a_held_call_acts_when_answered_unless_an_outage_is_on_then() -> None:
    async with running() as (emu, api, clock):
        emu.add_instance(2)
        emu.hold(EDIT, 10, count=2)
        fields = {"func": EDIT, "auth": emu.token, "out": "json", "sok": "ok", "name": "late"}
        create = asyncio.ensure_future(api.post(fields | {"plid": str(VM)}))
        await soon(lambda: emu.held_answers[EDIT] == 1)
        assert emu.snapshots_of(VM) == []  # not acted on while held
        clock.advance(10)
        assert (await create)[0] == 200
        assert [r["name"] for r in emu.snapshots_of(VM)] == ["late"]
        create = asyncio.ensure_future(api.post(fields | {"plid": "2"}))
        await soon(lambda: emu.held_answers[EDIT] == 2)
        await emu.outage(20, mode="html503")
        clock.advance(10)
        assert (await create)[0] == 503
        assert emu.snapshots_of(2) == []


async def test_close_drops_held_answers_without_waiting() -> None:
    clock = VirtualClock(auto_advance=False)
    async with aiohttp.ClientSession() as http:
        async with ZomroEmulator(clock=clock) as emu:
            emu.hold("whoami", 3600)
            request = asyncio.ensure_future(http.post(emu.url, data=WHOAMI))
            await soon(lambda: emu.in_flight == 1 and emu.held_answers["whoami"] == 1)
            started = time.monotonic()
        assert time.monotonic() - started < 0.5  # not aiohttp's 1 s shutdown timeout
        with pytest.raises(DROPPED):
            await request
        assert emu.in_flight == 0


async def test_act_late_answers_a_fault_now_and_acts_later() -> None:
    clock = VirtualClock()
    async with ZomroEmulator(clock=clock) as emu, aiohttp.ClientSession() as http:
        emu.add_instance(VM)
        emu.act_late(EDIT, 30.0)
        api = Api(emu, http)
        status, _, _ = await api.post(
            {"func": EDIT, "auth": emu.token, "plid": str(VM), "name": "late", "sok": "ok"}
        )
        assert status == 504
        assert emu.snapshots_of(VM) == []  # not yet: the backend still has it
        assert emu.late_acts_pending == 1
        await clock.sleep(30.0)
        assert [row["name"] for row in emu.snapshots_of(VM)] == ["late"]
        assert (emu.late_acts[EDIT], emu.late_acts_pending) == (1, 0)
        # Only the next call was affected.
        doc = await api.call(EDIT, plid=str(VM), name="now", sok="ok")
        assert "error" in doc  # refused: "late" is still Saving


def test_act_late_refuses_bad_arguments() -> None:
    emu = ZomroEmulator()
    with pytest.raises(ValueError, match=">= 0"):
        emu.act_late(EDIT, -1.0)
    with pytest.raises(ValueError, match="kind"):
        emu.act_late(EDIT, 1.0, kind="html418")
