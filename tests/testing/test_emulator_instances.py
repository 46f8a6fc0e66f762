"""The emulator beyond snapshots: instances, stored filters, image.edit, rebuilds.

Spoken to over loopback HTTP with a plain aiohttp client, on a VirtualClock that
only the tests move.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import attrs
import pytest

from zomro_async.testing._clock import VirtualClock
from zomro_async.testing._emulator import (
    FILTER_FIELDS,
    FILTER_IGNORED_FIELDS,
    IMAGE_EDIT_REQUIRED,
    IN_PROGRESS_STATUSES,
    INSTANCE_STATUSES,
    PASSWORD_FORBIDDEN,
    STEADY_STATUSES,
    Rebuild,
    ZomroEmulator,
)

from ._support import PanelApi

VM = 5203773
REBUILD = "instances.fleio.rebuild"
EDIT = "image.edit"
SNAP_FILTER = "instances.snapshots.filter"
RUNNING = ("exists", "runningoperation")
GOOD_PASSWORD = "Restore-Me42"


class Api(PanelApi):
    """The panel's posts, with the listings these tests read."""

    async def instances(self, **fields: Any) -> list[dict[str, Any]]:
        return elems(await self.call("instances", **fields))

    async def snapshots(self, instance: int = VM) -> list[dict[str, Any]]:
        return elems(await self.call("instances.snapshots", elid=instance))

    async def rebuild(self, instance: int = VM, **fields: Any) -> dict[str, Any]:
        return await self.call(REBUILD, **rebuild_form(self.emu, instance, **fields))


def elems(doc: dict[str, Any]) -> list[dict[str, Any]]:
    assert "error" not in doc, doc
    elem = doc.get("elem", [])
    return elem if isinstance(elem, list) else [elem]


def unwrap(row: dict[str, Any]) -> dict[str, str]:
    return {k: v.get("$", "") for k, v in row.items()}


def ids(rows: list[dict[str, Any]]) -> list[int]:
    return [int(row["id"]["$"]) for row in rows]


def fleio_of(emu: ZomroEmulator, snapshot_id: int | str) -> str:
    return emu.snapshot_details(int(snapshot_id))["fleio_id"]


def first_snapshot(emu: ZomroEmulator, instance: int = VM) -> int:
    return int(emu.snapshots_of(instance)[0]["id"])


def rebuild_form(emu: ZomroEmulator, instance: int = VM, **fields: Any) -> dict[str, Any]:
    """A valid password rebuild commit from the instance's first snapshot, with changes."""
    form: dict[str, Any] = {"elid": instance, "sok": "ok", "zone": "own"}
    if "select_rebuild" not in fields:
        form["select_rebuild"] = fleio_of(emu, first_snapshot(emu, instance))
    form.update(enablessh="off", password=GOOD_PASSWORD)
    form.update(fields)
    return form


@contextlib.asynccontextmanager
async def running(**overrides: Any) -> AsyncIterator[tuple[ZomroEmulator, Api, VirtualClock]]:
    # Sessions outlive the days some tests move the clock by.
    overrides.setdefault("session_ttl", 1e9)
    clock = VirtualClock(auto_advance=False)
    async with ZomroEmulator(clock=clock, **overrides) as emu, aiohttp.ClientSession() as http:
        yield emu, Api(emu, http), clock


# -- instances: seeding, states -------------------------------------------------


async def test_instance_rows_have_the_notes_fields_as_strings() -> None:
    async with running() as (emu, api, clock):
        clock.advance(86_400 * 40 + 5)  # 2026-02-10
        emu.add_instance(VM)
        emu.add_instance(0x1_0203, name="web-1", status="stopped", region="Germany-1")
        second, first = await api.instances()  # by id: 66051 first
        assert all(set(v) == {"$"} and isinstance(v["$"], str) for v in first.values())
        assert unwrap(first) == {
            "id": str(VM),
            "servername": f"vps-{VM}",
            "name": f"vps-{VM}",
            "instance_status": "active",
            "item_status": "Active",
            "status": "2",
            "pricelist": "Cloud-2 (2 vCPU, 4 GB RAM, 40 GB NVMe)",
            "cost": "0.15 EUR / Day",
            "datacentername": "Netherlands-2",
            "createdate": "2026-02-10",
            "os_distro": "Ubuntu",
            "os_version": "22.04 x64",
            "instances_os": "Ubuntu 22.04",
            "ip": "185.0.103.61",  # 5203773 = 0x4F673D
            "ip_v6": "2a01:db8::4f:673d",
            "change_pricelist": "on",
        }
        row = unwrap(second)
        assert (row["servername"], row["name"], row["instance_status"]) == (
            "web-1",
            "web-1",
            "stopped",
        )
        assert (row["datacentername"], row["ip"], row["ip_v6"]) == (
            "Germany-1",
            "185.0.2.3",
            "2a01:db8::1:203",
        )


async def test_createdate_is_the_clock_date_when_added() -> None:
    async with running() as (emu, api, clock):
        emu.add_instance(1)
        clock.advance(86_400)
        emu.add_instance(2)
        dates = [r["createdate"]["$"] for r in await api.instances()]
        assert dates == ["2026-01-01", "2026-01-02"]
        expected = datetime.fromtimestamp(clock.time(), UTC).strftime("%Y-%m-%d")
        assert dates[1] == expected


async def test_createdate_as_list_renders_a_list_of_one_in_instance_rows_only() -> None:
    async with running(createdate_as_list=True) as (emu, api, _):
        emu.add_instance(VM, 1)
        [row] = await api.instances()
        assert row["createdate"] == [{"$": "2026-01-01"}]
        [snap] = await api.snapshots()
        assert snap["createdate"] == {"$": "2026-01-01"}


async def test_a_snapshot_is_in_its_instance_region() -> None:
    async with running() as (emu, api, _):
        emu.add_instance(VM, 1, region="Poland-1")
        [snap] = await api.snapshots()
        assert snap["region"] == {"$": "Poland-1"}


async def test_set_instance_status_now_and_then_after_clock_seconds() -> None:
    async with running() as (emu, api, clock):
        emu.add_instance(VM)
        assert emu.instance_status(VM) == "active"
        emu.set_instance_status(VM, "stopping", then="stopped", after=10)
        assert emu.instance_status(VM) == "stopping"
        clock.advance(9.9)
        [row] = await api.instances()
        assert row["instance_status"] == {"$": "stopping"}
        clock.advance(0.1)
        [row] = await api.instances()
        assert row["instance_status"] == {"$": "stopped"}
        clock.advance(1000)
        assert emu.instance_status(VM) == "stopped"
        emu.set_instance_status(VM, "building")  # no `then`: stays
        clock.advance(1000)
        assert emu.instance_status(VM) == "building"


@pytest.mark.parametrize("status", INSTANCE_STATUSES)
async def test_every_status_of_the_notes_can_be_seeded(status: str) -> None:
    async with running() as (emu, api, _):
        emu.add_instance(VM, status=status)
        [row] = await api.instances()
        assert row["instance_status"] == {"$": status}


def test_status_helpers_check_their_arguments() -> None:
    emu = ZomroEmulator(clock=VirtualClock(auto_advance=False))
    with pytest.raises(KeyError):
        emu.instance_status(1)
    with pytest.raises(KeyError):
        emu.set_instance_status(1, "active")
    with pytest.raises(ValueError, match="status"):
        emu.add_instance(1, status="ACTIVE")  # lower case, as on the wire
    emu.add_instance(1)
    with pytest.raises(ValueError, match="status"):
        emu.set_instance_status(1, "running")
    with pytest.raises(ValueError, match="status"):
        emu.set_instance_status(1, "active", then="gone")
    with pytest.raises(ValueError, match="after"):
        emu.set_instance_status(1, "stopping", then="stopped", after=-1)
    assert emu.instance_status(1) == "active"


# -- instances: the listing -------------------------------------------------------


async def test_instances_list_by_id_and_sort_only_on_id() -> None:
    async with running() as (emu, api, _):
        for instance_id in (30, 10, 20):
            emu.add_instance(instance_id, name=f"z-{100 - instance_id}")
        doc = await api.call("instances")
        assert set(doc) == {"elem"}  # not paged when nobody asks
        assert ids(elems(doc)) == [10, 20, 30]
        assert ids(await api.instances(p_col="+id")) == [10, 20, 30]
        assert ids(await api.instances(p_col="-id")) == [30, 20, 10]
        for ignored in ("+servername", "-servername", "id", "nonsense"):
            assert ids(await api.instances(p_col=ignored)) == [10, 20, 30]


async def test_instances_page_and_clamp_like_snapshots() -> None:
    async with running() as (emu, api, _):
        for instance_id in range(1, 6):
            emu.add_instance(instance_id)
        doc = await api.call("instances", p_num=2, p_cnt=2)
        assert ids(doc["elem"]) == [3, 4]
        assert (doc["p_num"], doc["p_cnt"], doc["p_elems"]) == ({"$": "2"}, {"$": "2"}, {"$": "5"})
        doc = await api.call("instances", p_num=99, p_cnt=2)
        assert (ids(doc["elem"]), doc["p_num"]) == ([5], {"$": "3"})
        doc = await api.call("instances", p_num=2, p_cnt=2, p_col="-id")
        assert ids(doc["elem"]) == [3, 2]
        assert await api.error("instances", p_cnt="x") == ("value", "p_cnt")
        assert await api.error("instances", p_num="0") == ("value", "p_num")


async def test_a_remembered_page_size_pages_the_instances() -> None:
    async with running(page_size=2) as (emu, api, _):
        for instance_id in range(1, 4):
            emu.add_instance(instance_id)
        doc = await api.call("instances")
        assert (ids(doc["elem"]), doc["p_elems"], doc["p_cnt"]) == ([1, 2], {"$": "3"}, {"$": "2"})


async def test_no_instances_no_elem() -> None:
    async with running() as (_, api, _):
        assert await api.call("instances") == {}
        doc = await api.call("instances", p_cnt=10)
        assert doc == {"p_num": {"$": "1"}, "p_cnt": {"$": "10"}, "p_elems": {"$": "0"}}


@pytest.mark.parametrize("as_object", [False, True])
async def test_a_single_instance_row_shape(as_object: bool) -> None:
    async with running(single_elem_as_object=as_object) as (emu, api, _):
        emu.add_instance(VM)
        elem = (await api.call("instances"))["elem"]
        assert isinstance(elem, dict) == as_object
        emu.add_instance(VM + 1)
        assert isinstance((await api.call("instances"))["elem"], list)


async def test_instances_need_a_session() -> None:
    async with running() as (emu, api, _):
        emu.add_instance(VM)
        emu.expire_sessions()
        assert await api.error("instances") == ("access", "")


# -- stored filters ---------------------------------------------------------------


async def test_a_filter_is_stored_shown_and_cleared() -> None:
    async with running() as (emu, api, _):
        emu.add_instance(1, name="Web-1")
        emu.add_instance(2, name="db-1")
        emu.add_instance(3, name="web-2")
        assert await api.call("instances.filter") == {}
        sent = {"name": "WEB", "ip": "", "sok": "ok", "elid": "2", "bogus": "x"}
        assert await api.call("instances.filter", **sent) == {"ok": {}}
        assert await api.call("instances.filter") == {"name": {"$": "WEB"}}
        assert await api.call("instances.filter", sok="no") == {"name": {"$": "WEB"}}
        assert emu.stored_filter("instances.filter") == {"name": "WEB"}
        assert ids(await api.instances()) == [1, 3]
        # The panel's way of clearing: every field posted empty.
        empty = dict.fromkeys(FILTER_FIELDS["instances.filter"], "")
        assert await api.call("instances.filter", sok="ok", **empty) == {"ok": {}}
        assert await api.call("instances.filter") == {}
        assert emu.stored_filter("instances.filter") == {}
        assert ids(await api.instances()) == [1, 2, 3]
        assert emu.calls["instances.filter"] == 6


async def test_a_filter_post_replaces_the_whole_filter() -> None:
    async with running() as (emu, api, _):
        await api.call("instances.filter", sok="ok", name="a", instance_status="active")
        await api.call("instances.filter", sok="ok", pricelist="cloud")
        assert emu.stored_filter("instances.filter") == {"pricelist": "cloud"}


async def test_the_filtered_listing_pages_and_counts_only_the_matches() -> None:
    async with running() as (emu, api, _):
        for instance_id in range(1, 8):
            emu.add_instance(instance_id, status="stopped" if instance_id % 2 else "active")
        await api.call("instances.filter", sok="ok", instance_status="stopped")
        doc = await api.call("instances", p_cnt=3, p_num=9)
        assert (doc["p_elems"], doc["p_num"]) == ({"$": "4"}, {"$": "2"})
        assert ids(doc["elem"]) == [7]
        doc = await api.call("instances", p_cnt=3)
        assert ids(doc["elem"]) == [1, 3, 5]
        await api.call("instances.filter", sok="ok", name="nothing-is-called-this")
        assert await api.call("instances", p_cnt=3) == {
            "p_num": {"$": "1"},
            "p_cnt": {"$": "3"},
            "p_elems": {"$": "0"},
        }


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"id": "15"}, [15]),
        ({"id": "1"}, []),  # exact, not a substring of 15 or 150
        ({"name": "ALPHA"}, [5, 15]),  # case-insensitive substring of servername
        ({"name": "alpha-1"}, [15]),
        ({"instance_status": "STOPPED"}, [15]),
        ({"instance_status": "stop"}, []),  # whole, not a substring
        ({"ip": "185.0.0.1"}, [15, 150]),  # other fields: a substring of the row's
        ({"pricelist": "cloud-2"}, [5, 15, 150]),
        ({"datacenter": "Mars"}, [5, 15, 150]),  # the rows lack it: ignored
        ({"cost_from": "100"}, [5, 15, 150]),
        ({"name": "alpha", "instance_status": "active"}, [5]),  # every field must match
    ],
)
async def test_instance_filter_matching(fields: dict[str, str], expected: list[int]) -> None:
    async with running() as (emu, api, _):
        emu.add_instance(5, name="Alpha")
        emu.add_instance(15, name="alpha-15", status="stopped")
        emu.add_instance(150, name="beta")
        emu.set_stored_filter("instances.filter", **fields)
        assert ids(await api.instances()) == expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"name": "NIGHT"}, ["nightly-1", "nightly-2"]),
        ({"fleio_status": "saving"}, ["nightly-2"]),
        ({"fleio_status": "sav"}, []),
        ({"protected": "ON"}, ["manual"]),
        ({"os_distro": "ubuntu"}, ["nightly-1", "manual", "nightly-2"]),
        ({"os_distro": "ubunt"}, []),
    ],
)
async def test_snapshot_filter_matching(fields: dict[str, str], expected: list[str]) -> None:
    async with running() as (emu, api, clock):
        emu.add_instance(VM)
        for name in ("nightly-1", "manual"):
            await api.call("instances.snapshots.edit", plid=VM, name=name, sok="ok")
            clock.advance(emu.config.time_to_active)
        await api.call("instances.snapshots.edit", plid=VM, name="nightly-2", sok="ok")
        manual = int(emu.snapshots_of(VM)[1]["id"])
        emu.set_protected(VM, manual)
        await api.call(SNAP_FILTER, sok="ok", **fields)
        assert [r["name"]["$"] for r in await api.snapshots()] == expected


async def test_a_snapshot_filter_by_id_and_its_page_counts() -> None:
    async with running() as (emu, api, _):
        emu.add_instance(VM, 3)
        sid = emu.snapshots_of(VM)[1]["id"]
        emu.set_stored_filter(SNAP_FILTER, id=sid)
        doc = await api.call("instances.snapshots", elid=VM, p_cnt=20)
        assert (ids(elems(doc)), doc["p_elems"]) == ([int(sid)], {"$": "1"})
        assert isinstance(doc["elem"], list)
        assert len(emu.snapshots_of(VM)) == 3  # inspection is not filtered


async def test_a_filter_left_by_the_panel_hides_rows_of_every_instance() -> None:
    """The hazard the notes describe: one filter per user, whatever elid it came with."""
    async with running() as (emu, api, _):
        emu.add_instance(1, 2)
        emu.add_instance(2, 2)
        # The panel filtered instance 1's snapshots by a name; the SDK lists instance 2's.
        assert await api.call(SNAP_FILTER, sok="ok", elid=1, plid=1, name="seed-2") == {"ok": {}}
        assert emu.stored_filter(SNAP_FILTER) == {"name": "seed-2"}
        assert [r["name"]["$"] for r in await api.snapshots(2)] == ["seed-2"]
        assert await api.call(SNAP_FILTER, elid=2) == {"name": {"$": "seed-2"}}
        # Cleared by a post of empty fields for any elid.
        await api.call(SNAP_FILTER, sok="ok", elid=2, name="")
        assert len(await api.snapshots(1)) == len(await api.snapshots(2)) == 2


async def test_filters_are_per_user() -> None:
    async with running() as (emu, api, _):
        emu.add_instance(VM, 2)
        # The account has one login; a second user's session, made the way a login makes one.
        other = emu._new_session("someone-else")
        await api.call(SNAP_FILTER, sok="ok", name="seed-1", auth=other)
        assert await api.call(SNAP_FILTER, auth=other) == {"name": {"$": "seed-1"}}
        assert await api.call(SNAP_FILTER) == {}
        assert emu.stored_filter(SNAP_FILTER) == {}
        assert len(await api.snapshots()) == 2
        doc = await api.call("instances.snapshots", elid=VM, auth=other)
        assert [r["name"]["$"] for r in elems(doc)] == ["seed-1"]


async def test_filters_are_per_list_function() -> None:
    async with running() as (emu, api, _):
        emu.add_instance(VM, 2, name="seed-host")
        await api.call("instances.filter", sok="ok", name="nothing")
        assert await api.instances() == []
        assert len(await api.snapshots()) == 2  # the instances filter does not hide snapshots
        await api.call("image.filter", sok="ok", image_type="Backup", region="x")
        assert await api.call("image.filter") == {
            "image_type": {"$": "Backup"},
            "region": {"$": "x"},
        }
        assert len(await api.snapshots()) == 2
        assert await api.call("instances.filter") == {"name": {"$": "nothing"}}
        await api.call(SNAP_FILTER, sok="ok", name="seed-1")
        assert len(await api.snapshots()) == 1
        assert await api.instances() == []


async def test_set_stored_filter_is_the_configured_users_and_is_checked() -> None:
    async with running(username="alice", password="pw") as (emu, api, _):
        emu.add_instance(VM, 2)
        emu.set_stored_filter(SNAP_FILTER, name="seed-1", id="")
        assert emu.stored_filter(SNAP_FILTER) == {"name": "seed-1"}
        assert await api.call(SNAP_FILTER) == {"name": {"$": "seed-1"}}
        assert len(await api.snapshots()) == 1
        got = emu.stored_filter(SNAP_FILTER)
        got["name"] = "changed"  # a copy
        assert emu.stored_filter(SNAP_FILTER) == {"name": "seed-1"}
        emu.set_stored_filter(SNAP_FILTER)  # nothing: cleared
        assert emu.stored_filter(SNAP_FILTER) == {}
        assert len(await api.snapshots()) == 2
        with pytest.raises(ValueError, match="func"):
            emu.set_stored_filter("instances.snapshots", name="x")
        with pytest.raises(ValueError, match="instance_status"):
            emu.set_stored_filter(SNAP_FILTER, instance_status="active")
        with pytest.raises(ValueError, match="func"):
            emu.stored_filter("images.filter")
        assert emu.stored_filter("image.filter") == {}


# -- image.edit -------------------------------------------------------------------


async def test_image_edit_preview_of_a_snapshot() -> None:
    async with running() as (emu, api, _):
        emu.add_instance(1)
        emu.add_instance(VM, 1, region="Germany-1")
        sid = first_snapshot(emu)
        doc = await api.call(EDIT, elid=sid)
        slist = doc.pop("slist")
        assert unwrap(doc) == {
            "elid": str(sid),
            "id": str(sid),
            "image_name": "seed-1",
            "fleio_id": emu.snapshots_of(VM)[0]["fleio_id"],
            "instances_id": str(VM),
            "region": "Germany-1",
            "image_size": "3",
            "min_ram": "0",
            "min_disk": "20",
            "created": "2026-01-01",
            "updated": "2026-01-01",
            "architecture": "x86_64",
            "disk_format": "qcow2",
            "os_distro": "Ubuntu",
            "os_version": "22.04 x64",
            "fleio_status": "Active",
            "image_type": "Snapshot",
            "url": "",
            "backup_type": "",
            "protected": "off",
        }
        assert doc["url"] == doc["backup_type"] == {}
        assert doc["protected"] == {"$": "off"}
        assert uuid.UUID(doc["fleio_id"]["$"]).version == 4
        disk = next(s for s in slist if s["$name"] == "disk_format")
        assert {"$key": "qcow2", "$": "qcow2"} in disk["val"]
        assert emu.snapshot_details(sid) == {k: v for k, v in unwrap(doc).items() if k != "elid"}


@pytest.mark.parametrize(
    ("protected", "node"), [(False, {"$orig": "off"}), (True, {"$orig": "on"})]
)
async def test_protected_as_orig_in_the_preview_only(protected: bool, node: Any) -> None:
    async with running(protected_as_orig=True) as (emu, api, _):
        emu.add_instance(VM, 1)
        sid = first_snapshot(emu)
        emu.set_protected(VM, sid, protected)
        assert (await api.call(EDIT, elid=sid))["protected"] == node
        [row] = await api.snapshots()
        assert row["protected"] == {"$": "on" if protected else "off"}


async def test_image_edit_of_a_saving_snapshot_has_no_size_yet() -> None:
    async with running() as (emu, api, _):
        emu.add_instance(VM, saving=1)
        doc = await api.call(EDIT, elid=first_snapshot(emu))
        assert (doc["fleio_status"], doc["image_size"]) == ({"$": "Saving"}, {})


async def test_rows_without_fleio_id_leave_it_to_image_edit() -> None:
    async with running(snapshot_rows_have_fleio_id=False) as (emu, api, _):
        emu.add_instance(VM, 1)
        [row] = await api.snapshots()
        assert "fleio_id" not in row
        assert "fleio_id" not in emu.snapshots_of(VM)[0]
        doc = await api.call(EDIT, elid=row["id"]["$"])
        assert uuid.UUID(doc["fleio_id"]["$"]).version == 4
    async with running() as (emu, api, _):
        emu.add_instance(VM, 1)
        [row] = await api.snapshots()
        doc = await api.call(EDIT, elid=row["id"]["$"])
        assert row["fleio_id"] == doc["fleio_id"]


def commit_form(sid: int, **changes: Any) -> dict[str, Any]:
    """What the panel sends back to commit an `image.edit` (the preview's fields)."""
    form: dict[str, Any] = {
        "elid": sid,
        "image_name": "renamed",
        "protected": "off",
        "clicked_button": "ok",
        "sok": "ok",
        "region": "Netherlands-2",
        "min_disk": "20",
        "min_ram": "0",
        "disk_format": "qcow2",
        "os_distro": "Ubuntu",
        "os_version": "22.04 x64",
        "architecture": "x86_64",
        "url": "",
    }
    form.update(changes)
    return form


async def test_image_edit_renames_and_protects() -> None:
    async with running() as (emu, api, clock):
        emu.add_instance(VM, 1)
        sid = first_snapshot(emu)
        clock.advance(86_400)
        assert await api.call(EDIT, **commit_form(sid, protected="on")) == {"ok": {}}
        [row] = emu.snapshots_of(VM)
        assert (row["name"], row["protected"]) == ("renamed", "on")
        details = emu.snapshot_details(sid)
        assert (details["created"], details["updated"]) == ("2026-01-01", "2026-01-02")
        delete = {"plid": VM, "elid": sid, "elname": sid, "sok": "ok"}
        assert await api.error("image.delete", **delete) == ("value", "protected")
        # `url` may be left out; an absent `protected` keeps the flag.
        assert await api.call(EDIT, **commit_form(sid, url=None, protected=None)) == {"ok": {}}
        assert emu.snapshots_of(VM)[0]["protected"] == "on"
        assert await api.call(EDIT, **commit_form(sid, image_name="x" * 255)) == {"ok": {}}
        assert emu.snapshots_of(VM)[0]["protected"] == "off"
        assert await api.call("image.delete", **delete) == {"ok": {}}


async def test_image_edit_finds_any_instances_snapshot_by_id() -> None:
    async with running() as (emu, api, _):
        emu.add_instance(1, 1)
        emu.add_instance(2, 1)
        sid = first_snapshot(emu, 2)
        assert (await api.call(EDIT, elid=sid))["instances_id"] == {"$": "2"}
        assert await api.call(EDIT, **commit_form(sid, image_name="two")) == {"ok": {}}
        assert [r["name"] for r in emu.snapshots_of(2)] == ["two"]
        assert [r["name"] for r in emu.snapshots_of(1)] == ["seed-1"]


IMAGE_EDIT_ERRORS: list[tuple[dict[str, Any], tuple[str, str]]] = [
    ({"clicked_button": None}, ("missed", "clicked_button")),
    ({"clicked_button": "cancel"}, ("missed", "clicked_button")),
    ({"image_name": None}, ("missed", "image_name")),
    ({"image_name": "  "}, ("missed", "image_name")),
    ({"image_name": "x" * 256}, ("value", "image_name")),
    ({"protected": "yes"}, ("value", "protected")),
    ({"protected": ""}, ("value", "protected")),
    *[({field: None}, ("missed", field)) for field in IMAGE_EDIT_REQUIRED],
    ({"elid": None}, ("missed", "elid")),
    ({"elid": "abc"}, ("value", "elid")),
    ({"elid": "99"}, ("missed", "elid")),
]


@pytest.mark.parametrize(("changes", "expected"), IMAGE_EDIT_ERRORS)
async def test_image_edit_refusals_change_nothing(
    changes: dict[str, Any], expected: tuple[str, str]
) -> None:
    async with running() as (emu, api, _):
        emu.add_instance(VM, 1)
        sid = first_snapshot(emu)
        fields = commit_form(sid, **({"protected": "on"} | changes))
        assert await api.error(EDIT, **fields) == expected
        [row] = emu.snapshots_of(VM)
        assert (row["name"], row["protected"]) == ("seed-1", "off")


async def test_image_edit_of_a_gone_snapshot_is_missed_on_elid() -> None:
    async with running() as (emu, api, clock):
        emu.add_instance(VM, 1)
        sid = first_snapshot(emu)
        await api.call("image.delete", plid=VM, elid=sid, elname=sid, sok="ok")
        assert (await api.call(EDIT, elid=sid))["fleio_status"] == {"$": "Deleting"}
        clock.advance(emu.config.delete_linger)
        assert await api.error(EDIT, elid=sid) == ("missed", "elid")
        assert await api.error(EDIT, **commit_form(sid)) == ("missed", "elid")
        with pytest.raises(KeyError):
            emu.snapshot_details(sid)


async def test_a_lost_image_edit_answer_renamed_all_the_same() -> None:
    async with running() as (emu, api, _):
        emu.add_instance(VM, 1)
        sid = first_snapshot(emu)
        emu.lose_answers(EDIT)
        status, text = await api.post(EDIT, **commit_form(sid, protected="on"))
        assert status == 502
        assert "<center>nginx</center>" in text
        assert emu.snapshots_of(VM)[0]["name"] == "renamed"
        assert emu.snapshots_of(VM)[0]["protected"] == "on"
        assert emu.lost_answers == {EDIT: 1}
        assert await api.call(EDIT, **commit_form(sid)) == {"ok": {}}


# -- ssh keys and the rebuild preview -----------------------------------------------


def test_ssh_keys_are_new_uuids() -> None:
    emu = ZomroEmulator()
    keys = [emu.add_ssh_key(), emu.add_ssh_key("laptop")]
    assert len(set(keys)) == 2
    assert all(uuid.UUID(k).version == 4 for k in keys)
    assert ZomroEmulator().add_ssh_key() == keys[0]  # from the seeded data stream


def slist_of(doc: dict[str, Any], name: str) -> list[dict[str, Any]]:
    [node] = [s for s in doc["slist"] if s["$name"] == name]
    val = node.get("val", [])
    return val if isinstance(val, list) else [val]


async def test_rebuild_preview_lists_zones_ready_snapshots_and_keys() -> None:
    async with running() as (emu, api, _):
        emu.add_instance(1, 2)
        emu.add_instance(VM, 1, saving=1)
        emu.add_instance(3, kill=True, saving=1)
        emu.set_protected(1, first_snapshot(emu, 1))
        key = emu.add_ssh_key("laptop")
        doc = await api.call(REBUILD, elid=VM)
        assert doc["elid"] == {"$": str(VM)}
        assert [s["$name"] for s in doc["slist"]] == ["zone", "select_rebuild", "ssh_keys"]
        assert [v["$key"] for v in slist_of(doc, "zone")] == ["pub", "own", "shr"]
        ready = [r for i in (1, VM) for r in emu.snapshots_of(i) if r["fleio_status"] == "Active"]
        assert slist_of(doc, "select_rebuild") == [
            {"$key": r["fleio_id"], "$": r["name"], "$depend": "own"} for r in ready
        ]
        assert len(ready) == 3  # every instance's, protected or not; not Saving ones
        assert slist_of(doc, "ssh_keys") == [{"$key": key, "$": "laptop"}]
        assert emu.rebuilds == []
        assert emu.instance_status(VM) == "active"


async def test_rebuild_preview_with_nothing_to_choose() -> None:
    async with running(single_elem_as_object=True) as (emu, api, _):
        emu.add_instance(VM)
        doc = await api.call(REBUILD, elid=VM)
        by_name = {s["$name"]: s for s in doc["slist"]}
        assert by_name["select_rebuild"] == {"$name": "select_rebuild"}
        assert by_name["ssh_keys"] == {"$name": "ssh_keys"}
        key = emu.add_ssh_key()
        doc = await api.call(REBUILD, elid=VM)
        # A list of one is an object, as BILLmanager may send it.
        assert {s["$name"]: s for s in doc["slist"]}["ssh_keys"]["val"] == {
            "$key": key,
            "$": "default",
        }


async def test_rebuild_preview_in_xml_is_billmanagers_slist() -> None:
    async with running() as (emu, api, _):
        emu.add_instance(VM, 1)
        fleio = emu.snapshots_of(VM)[0]["fleio_id"]
        form = api.form(REBUILD, elid=VM)
        del form["out"]
        async with api.http.post(emu.url, data=form) as resp:
            text = await resp.text()
        assert '<slist name="zone"><val key="pub">' in text
        assert f'<val key="{fleio}" depend="own">seed-1</val>' in text


# -- rebuild: the commit ---------------------------------------------------------


async def test_a_rebuild_lags_then_rebuilds_then_is_active() -> None:
    async with running(rebuild_lag=3.0, rebuild_time=20.0) as (emu, api, clock):
        emu.add_instance(VM, 1)
        assert await api.rebuild() == {"ok": {}}
        assert emu.rebuilds == [
            Rebuild(VM, first_snapshot(emu), fleio_of(emu, first_snapshot(emu)), None, True)
        ]
        timeline = []
        for step in (0, 2.9, 0.1, 19.9, 0.1, 100):
            clock.advance(step)
            [row] = await api.instances()
            timeline.append(row["instance_status"]["$"])
        assert timeline == ["active", "active", "rebuilding", "rebuilding", "active", "active"]
        assert await api.rebuild() == {"ok": {}}  # done: may be rebuilt again
        assert len(emu.rebuilds) == 2


async def test_a_rebuild_reads_the_old_status_in_its_lag_and_ends_active() -> None:
    async with running() as (emu, api, clock):
        emu.add_instance(VM, 1, status="stopped")
        assert await api.rebuild() == {"ok": {}}
        assert emu.instance_status(VM) == "stopped"
        clock.advance(emu.config.rebuild_lag)
        assert emu.instance_status(VM) == "rebuilding"
        clock.advance(emu.config.rebuild_time)
        assert emu.instance_status(VM) == "active"


async def test_fail_rebuild_ends_in_error_and_error_can_be_rebuilt() -> None:
    async with running(rebuild_lag=0.0, rebuild_time=5.0) as (emu, api, clock):
        emu.add_instance(VM, 1, fail_rebuild=True)
        await api.rebuild()
        assert emu.instance_status(VM) == "rebuilding"
        clock.advance(5)
        assert emu.instance_status(VM) == "error"
        assert await api.rebuild() == {"ok": {}}  # error is a steady state
        clock.advance(5)
        assert emu.instance_status(VM) == "error"


async def test_a_rebuild_from_another_instances_snapshot() -> None:
    async with running() as (emu, api, _):
        emu.add_instance(VM)
        emu.add_instance(2, 1)
        sid = first_snapshot(emu, 2)
        assert await api.rebuild(select_rebuild=fleio_of(emu, sid)) == {"ok": {}}
        assert [(r.instance_id, r.image_id) for r in emu.rebuilds] == [(VM, sid)]


async def test_a_rebuild_with_an_ssh_key() -> None:
    async with running() as (emu, api, _):
        emu.add_instance(VM, 1)
        emu.add_ssh_key("other")
        key = emu.add_ssh_key("mine")
        assert await api.rebuild(enablessh="on", ssh_keys=key, password=None) == {"ok": {}}
        [record] = emu.rebuilds
        assert (record.ssh_key, record.with_password) == (key, False)


async def test_a_rebuild_record_keeps_no_password() -> None:
    async with running() as (emu, api, _):
        emu.add_instance(VM, 1)
        await api.rebuild(password=GOOD_PASSWORD)
        [record] = emu.rebuilds
        assert GOOD_PASSWORD not in repr(record)
        assert GOOD_PASSWORD not in repr(attrs.asdict(record))
        assert set(attrs.fields_dict(Rebuild)) == {
            "instance_id",
            "image_id",
            "fleio_id",
            "ssh_key",
            "with_password",
        }
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            record.ssh_key = "x"  # type: ignore[misc]


REBUILD_ERRORS: list[tuple[dict[str, Any], tuple[str, str]]] = [
    ({"elid": None}, ("missed", "elid")),
    ({"elid": "abc"}, ("value", "elid")),
    ({"elid": "-1"}, ("value", "elid")),
    ({"elid": "42"}, ("missed", "elid")),
    ({"zone": None}, ("missed", "zone")),
    ({"zone": "pub"}, ("value", "zone")),
    ({"zone": "shr"}, ("value", "zone")),
    ({"select_rebuild": None}, ("missed", "select_rebuild")),
    ({"select_rebuild": str(uuid.UUID(int=1, version=4))}, ("value", "select_rebuild")),
    ({"select_rebuild": "5204214"}, ("value", "select_rebuild")),  # the id, not the fleio_id
    ({"enablessh": None}, ("missed", "enablessh")),
    ({"enablessh": "yes"}, ("value", "enablessh")),
    ({"password": None}, ("missed", "password")),
    ({"password": ""}, ("missed", "password")),
    ({"enablessh": "on", "ssh_keys": None}, ("missed", "ssh_keys")),
    ({"enablessh": "on", "ssh_keys": str(uuid.UUID(int=2, version=4))}, ("value", "ssh_keys")),
]


@pytest.mark.parametrize(("changes", "expected"), REBUILD_ERRORS)
async def test_rebuild_refusals_start_nothing(
    changes: dict[str, Any], expected: tuple[str, str]
) -> None:
    async with running(rebuild_lag=0.0) as (emu, api, _):
        emu.add_instance(VM, 1)
        emu.add_ssh_key()
        assert await api.error(REBUILD, **rebuild_form(emu, **changes)) == expected
        assert emu.rebuilds == []
        assert emu.instance_status(VM) == "active"


async def test_a_rebuild_needs_an_active_snapshot() -> None:
    async with running(rebuild_lag=0.0) as (emu, api, clock):
        emu.add_instance(VM, saving=1)
        emu.add_instance(2, kill=True, saving=1)
        emu.add_instance(3, 1)
        saving, killed = first_snapshot(emu), first_snapshot(emu, 2)
        deleting = first_snapshot(emu, 3)
        fleio = {sid: fleio_of(emu, sid) for sid in (saving, killed, deleting)}
        fields = rebuild_form(emu, 3, select_rebuild=fleio[saving])
        assert await api.error(REBUILD, **fields) == ("value", "select_rebuild")
        await api.call("image.delete", plid=3, elid=deleting, elname=deleting, sok="ok")
        assert emu.snapshots_of(3)[0]["fleio_status"] == "Deleting"
        clock.advance(emu.config.time_to_active)  # one Active, one Killed, one gone
        assert emu.snapshots_of(2)[0]["fleio_status"] == "Killed"
        for sid in (killed, deleting):
            fields = rebuild_form(emu, 3, select_rebuild=fleio[sid])
            assert await api.error(REBUILD, **fields) == ("value", "select_rebuild")
        assert await api.rebuild(3, select_rebuild=fleio[saving]) == {"ok": {}}


GOOD_PASSWORDS = [
    "Abcdef12",
    "Aa1" + "x" * 45,  # 48
    "Restore-Me_42!$",
    "1234567aB",
    "Aa1+,-./:=[]^_`{}~\\",
]
BAD_PASSWORDS = [
    "Abcde12",  # 7
    "Aa1" + "x" * 46,  # 49
    "abcdef12",
    "ABCDEF12",
    "Abcdefgh",
    "Abc def12",
    "Abcdef12\t",
    "Abcdéf12",
    *[f"Abcdef12{c}" for c in PASSWORD_FORBIDDEN],
]


@pytest.mark.parametrize("password", GOOD_PASSWORDS)
async def test_passwords_the_panel_allows(password: str) -> None:
    async with running() as (emu, api, _):
        emu.add_instance(VM, 1)
        assert await api.rebuild(password=password) == {"ok": {}}
        assert emu.rebuilds[0].with_password


@pytest.mark.parametrize("password", BAD_PASSWORDS)
async def test_passwords_the_panel_refuses_come_back_in_the_error(password: str) -> None:
    async with running() as (emu, api, _):
        emu.add_instance(VM, 1)
        error = await api.error_node(REBUILD, **rebuild_form(emu, password=password))
        assert (error["$type"], error["$object"]) == ("value", "password")
        # Hostile on purpose: the server repeats the password it refused.
        assert {"$name": "value", "$": password} in error["param"]
        assert password in error["detail"]["$"]
        assert emu.rebuilds == []


def test_the_forbidden_characters_are_the_panels() -> None:
    assert sorted(PASSWORD_FORBIDDEN) == sorted("\"#%&'()*;<>?@|")


@pytest.mark.parametrize("status", [s for s in INSTANCE_STATUSES if s not in STEADY_STATUSES])
async def test_a_busy_instance_refuses_a_rebuild(status: str) -> None:
    async with running() as (emu, api, clock):
        emu.add_instance(VM, 1)
        emu.set_instance_status(VM, status, then="active", after=30)
        error = await api.error_node(REBUILD, **rebuild_form(emu))
        assert (error["$type"], error["$object"]) == RUNNING
        assert error["msg"] == {"$": "Another operation is already running on this object"}
        clock.advance(30)
        assert await api.rebuild() == {"ok": {}}


def test_busy_statuses_are_the_notes_in_progress_ones_and_more() -> None:
    busy = set(INSTANCE_STATUSES) - set(STEADY_STATUSES)
    assert busy == set(IN_PROGRESS_STATUSES) | {"verify_resize", "suspend"}


@pytest.mark.parametrize("status", STEADY_STATUSES)
async def test_a_steady_instance_may_be_rebuilt(status: str) -> None:
    async with running() as (emu, api, _):
        emu.add_instance(VM, 1, status=status)
        assert await api.rebuild() == {"ok": {}}


async def test_a_rebuild_under_way_refuses_rebuilds_and_snapshots_lag_included() -> None:
    async with running(rebuild_lag=3.0, rebuild_time=20.0) as (emu, api, clock):
        emu.add_instance(VM, 1)
        await api.rebuild()
        create = {"plid": VM, "name": "during", "sok": "ok"}
        for step in (0, 2.9, 0.1, 19.9):  # reads active in the lag, busy all the same
            clock.advance(step)
            assert await api.error(REBUILD, **rebuild_form(emu)) == RUNNING
            assert await api.error("instances.snapshots.edit", **create) == RUNNING
        clock.advance(0.1)
        assert await api.call("instances.snapshots.edit", **create) == {"ok": {}}
        assert len(emu.rebuilds) == 1
        # And a snapshot being taken refuses a rebuild (Nova: task image_snapshot).
        assert await api.error(REBUILD, **rebuild_form(emu)) == RUNNING
        clock.advance(emu.config.time_to_active)
        assert await api.rebuild() == {"ok": {}}


async def test_a_rebuilding_status_refuses_snapshots() -> None:
    async with running() as (emu, api, _):
        emu.add_instance(VM)
        emu.set_instance_status(VM, "rebuilding")
        create = {"plid": VM, "name": "x", "sok": "ok"}
        assert await api.error("instances.snapshots.edit", **create) == RUNNING
        emu.set_instance_status(VM, "stopping")  # busy, but not rebuilding: snapshots go on
        assert await api.call("instances.snapshots.edit", **create) == {"ok": {}}


async def test_set_instance_status_ends_a_rebuild_under_way() -> None:
    async with running() as (emu, api, _):
        emu.add_instance(VM, 1)
        await api.rebuild()
        emu.set_instance_status(VM, "active")
        assert emu.instance_status(VM) == "active"
        assert await api.rebuild() == {"ok": {}}


async def test_a_lost_rebuild_answer_started_it_all_the_same() -> None:
    async with running() as (emu, api, clock):
        emu.add_instance(VM, 1)
        emu.lose_answers(REBUILD, kind="html504")
        status, text = await api.post(REBUILD, **rebuild_form(emu))
        assert status == 504
        assert "<h1>504 " in text
        assert len(emu.rebuilds) == 1
        assert emu.lost_answers == {REBUILD: 1}
        # A repeat finds it under way.
        assert await api.error(REBUILD, **rebuild_form(emu)) == RUNNING
        clock.advance(emu.config.rebuild_lag)
        assert emu.instance_status(VM) == "rebuilding"
        assert emu.calls[REBUILD] == 2


async def test_a_lost_rebuild_preview_still_answers_next_time() -> None:
    async with running() as (emu, api, _):
        emu.add_instance(VM, 1)
        emu.lose_answers(REBUILD)
        assert (await api.post(REBUILD, elid=VM))[0] == 502
        assert "slist" in await api.call(REBUILD, elid=VM)
        assert emu.rebuilds == []


async def test_the_new_funcs_need_a_session() -> None:
    async with running() as (emu, api, _):
        emu.add_instance(VM, 1)
        emu.expire_sessions()
        for func in (REBUILD, EDIT, SNAP_FILTER, "instances.filter", "image.filter"):
            assert await api.error(func, elid=VM) == ("access", "")


def test_the_exported_names_are_consistent() -> None:
    assert set(FILTER_FIELDS) == {"instances.filter", SNAP_FILTER, "image.filter"}
    # A filter is never scoped by the element or parent posted along with it.
    assert all(not set(FILTER_IGNORED_FIELDS) & set(f) for f in FILTER_FIELDS.values())
    assert "url" not in IMAGE_EDIT_REQUIRED
    assert all(re.fullmatch(r"[a-z_]+", s) for s in INSTANCE_STATUSES)
    assert len(set(INSTANCE_STATUSES)) == len(INSTANCE_STATUSES)
