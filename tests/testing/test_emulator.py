"""The emulator, spoken to over loopback HTTP with a plain aiohttp client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
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
