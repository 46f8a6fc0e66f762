"""The emulator's backups, backup schedules, rotation, the image list and copies.

Spoken to over loopback HTTP with a plain aiohttp client, on a VirtualClock that
only the tests move. The clock starts at 2026-01-01 00:00:00 UTC, a Thursday:
03:00 on the panel's GMT+3 clock.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from zomro_async.testing._clock import VirtualClock
from zomro_async.testing._emulator import ZomroEmulator
from zomro_async.testing._emulator_images import (
    BACKUP_TYPES,
    COPY_REGIONS,
    LIMIT_ERROR_TYPE,
    LIMIT_OBJECTS,
    SCHEDULE_TZ,
)

from ._support import PanelApi

VM = 5203773
OTHER = 5203774
DAY = 86_400.0
BACKUPS = "instances.fleio_bckps"
CREATE = "instances.fleio_bckps.edit"
SCHEDULES = "instances.fleio_bckps.schedule"
SCHEDULE_EDIT = "instances.fleio_bckps.schedule.edit"
SCHEDULE_DELETE = "instances.fleio_bckps.schedule.delete"
RUNNING = ("exists", "runningoperation")
REBUILD = "instances.fleio.rebuild"
GOOD_PASSWORD = "Restore-Me42"
BACKUP_ROW_KEYS = {
    "id",
    "name",
    "backup_type",
    "image_size",
    "createdate",
    "os_distro",
    "os_version",
    "fleio_status",
    "protected",
}
IMAGE_ROW_KEYS = {
    "id",
    "image_name",
    "image_type",
    "disk_format",
    "region",
    "createdate",
    "image_size",
    "os_distro",
    "os_version",
    "fleio_status",
    "protected",
    "fleio_id",
    "min_disk",
    "min_ram",
}
# Seconds from the clock's start to the panel's next 02:01 (Friday 02:01 GMT+3,
# Thursday 23:01 UTC).
TO_0201 = 23 * 3600 + 60


class Api(PanelApi):
    """The panel's posts, with the backup calls these tests make."""

    async def backup(self, name: str = "manual-1", plid: int = VM, **fields: Any) -> Any:
        form = {"plid": plid, "name": name, "rotation_days": "", "rotation_time": "", "sok": "ok"}
        return await self.call(CREATE, **(form | fields))

    async def backups(self, instance: int = VM, **fields: Any) -> list[dict[str, str]]:
        return [unwrap(r) for r in elems(await self.call(BACKUPS, elid=instance, **fields))]

    async def schedule(
        self, days: str = "1,2,3,4,5,6,0", at: str = "02:01", name: str = "nightly", **fields: Any
    ) -> Any:
        form = {"plid": VM, "name": name, "rotation_days": days, "rotation_time": at, "sok": "ok"}
        return await self.call(SCHEDULE_EDIT, **(form | fields))

    async def schedules(self, instance: int = VM) -> list[dict[str, str]]:
        return [unwrap(r) for r in elems(await self.call(SCHEDULES, elid=instance))]

    async def images(self, **fields: Any) -> list[dict[str, str]]:
        return [unwrap(r) for r in elems(await self.call("image", **fields))]

    async def rebuild(self, fleio_id: str, instance: int = VM) -> dict[str, Any]:
        return await self.call(REBUILD, **rebuild_form(fleio_id, instance))


def rebuild_form(fleio_id: str, instance: int = VM) -> dict[str, Any]:
    """A password rebuild commit of `instance` from the image of that `fleio_id`."""
    return {
        "elid": instance,
        "sok": "ok",
        "zone": "own",
        "select_rebuild": fleio_id,
        "enablessh": "off",
        "password": GOOD_PASSWORD,
    }


def elems(doc: dict[str, Any]) -> list[dict[str, Any]]:
    assert "error" not in doc, doc
    elem = doc.get("elem", [])
    return elem if isinstance(elem, list) else [elem]


def unwrap(row: dict[str, Any]) -> dict[str, str]:
    assert all(set(v) <= {"$"} for v in row.values()), row
    return {k: v.get("$", "") for k, v in row.items()}


def names(rows: list[dict[str, str]]) -> list[str]:
    return [r["name"] for r in rows]


def slist_of(doc: dict[str, Any], name: str) -> list[dict[str, Any]]:
    [node] = [s for s in doc["slist"] if s["$name"] == name]
    val = node.get("val", [])
    return val if isinstance(val, list) else [val]


@contextlib.asynccontextmanager
async def running(**overrides: Any) -> AsyncIterator[tuple[ZomroEmulator, Api, VirtualClock]]:
    # Sessions outlive the days some tests move the clock by.
    overrides.setdefault("session_ttl", 1e9)
    clock = VirtualClock(auto_advance=False)
    async with ZomroEmulator(clock=clock, **overrides) as emu, aiohttp.ClientSession() as http:
        emu.add_instance(VM)
        yield emu, Api(emu, http), clock


# -- backups: create, list, lifecycle ------------------------------------------------


async def test_a_backup_is_saving_then_active_with_the_notes_fields() -> None:
    async with running(time_to_active=8.0) as (emu, api, clock):
        assert await api.backup("before-upgrade") == {"ok": {}}
        doc = await api.call(BACKUPS, elid=VM)
        [row] = elems(doc)
        assert set(row) == BACKUP_ROW_KEYS
        assert unwrap(row) == {
            "id": row["id"]["$"],
            "name": "before-upgrade",
            "backup_type": "manual",
            "image_size": "",
            "createdate": "2026-01-01",
            "os_distro": "Ubuntu",
            "os_version": "22.04 x64",
            "fleio_status": "Saving",
            "protected": "off",
        }
        assert doc["cost"] == {"stat_cost": {"$": "0.05"}}
        clock.advance(7.9)
        assert [r["fleio_status"] for r in await api.backups()] == ["Saving"]
        clock.advance(0.1)
        [row] = await api.backups()
        assert (row["fleio_status"], row["image_size"]) == ("Active", "3")
        assert emu.backups_of(VM) == [row]
        assert emu.snapshots_of(VM) == []  # a backup is no snapshot


@pytest.mark.parametrize(
    ("kwargs", "at_8s", "final"),
    [
        ({}, "Active", "Active"),
        ({"time_to_active": 20.0}, "Saving", "Active"),
        ({"kill": True}, "Killed", "Killed"),
    ],
)
async def test_a_backup_follows_its_instances_overrides(
    kwargs: dict[str, Any], at_8s: str, final: str
) -> None:
    async with running(time_to_active=8.0) as (emu, api, clock):
        emu.add_instance(OTHER, **kwargs)
        await api.backup(plid=OTHER)
        clock.advance(8)
        assert [r["fleio_status"] for r in await api.backups(OTHER)] == [at_8s]
        clock.advance(12)
        [row] = await api.backups(OTHER)
        assert row["fleio_status"] == final
        assert (row["image_size"] == "") == (final == "Killed")


async def test_a_backup_preview_makes_nothing_and_the_panels_empty_fields_are_taken() -> None:
    async with running() as (emu, api, _):
        doc = await api.call(CREATE, plid=VM, name="try", rotation_days="", rotation_time="")
        assert doc == {"plid": {"$": str(VM)}, "name": {"$": "try"}}
        assert emu.backups_of(VM) == []
        assert await api.backup("x" * 100) == {"ok": {}}  # the longest name
        assert names(emu.backups_of(VM)) == ["x" * 100]


BACKUP_ERRORS: list[tuple[dict[str, Any], tuple[str, str]]] = [
    ({"plid": None}, ("missed", "plid")),
    ({"plid": "abc"}, ("value", "plid")),
    ({"plid": "42"}, ("missed", "plid")),
    ({"name": None}, ("missed", "name")),
    ({"name": "   "}, ("missed", "name")),
    ({"name": "x" * 101}, ("value", "name")),
]


@pytest.mark.parametrize(("changes", "expected"), BACKUP_ERRORS)
async def test_backup_refusals_make_nothing(
    changes: dict[str, Any], expected: tuple[str, str]
) -> None:
    async with running() as (emu, api, _):
        form = {"plid": VM, "name": "b", "sok": "ok"} | changes
        assert await api.error(CREATE, **form) == expected
        assert emu.backups_of(VM) == []
        assert emu.images() == []


async def test_the_backup_listing_of_an_unknown_instance_is_missed() -> None:
    async with running() as (_, api, _):
        assert await api.error(BACKUPS, elid=42) == ("missed", "elid")
        assert await api.error(BACKUPS) == ("missed", "elid")


async def test_image_ids_are_one_sequence_for_snapshots_and_backups() -> None:
    async with running() as (emu, api, clock):
        await api.call("instances.snapshots.edit", plid=VM, name="snap", sok="ok")
        clock.advance(emu.config.time_to_active)
        await api.backup()
        [snap] = emu.snapshots_of(VM)
        [backup] = emu.backups_of(VM)
        assert int(backup["id"]) == int(snap["id"]) + 1
        doc = await api.call("image.edit", elid=backup["id"])
        assert unwrap({k: v for k, v in doc.items() if k != "slist"}) == {
            **emu.image_details(int(backup["id"])),
            "elid": backup["id"],
        }
        assert (doc["image_type"], doc["backup_type"]) == ({"$": "Backup"}, {"$": "manual"})
        assert doc["instances_id"] == {"$": str(VM)}
        assert uuid.UUID(doc["fleio_id"]["$"]).version == 4
        assert doc["fleio_id"]["$"] != emu.image_details(int(snap["id"]))["fleio_id"]


async def test_backups_page_like_snapshots_with_usage_on_every_page() -> None:
    async with running() as (emu, api, _):
        for n in range(1, 6):
            emu.add_backup(VM, f"b{n}", active=True)
        doc = await api.call(BACKUPS, elid=VM, p_num=2, p_cnt=2)
        assert names([unwrap(r) for r in doc["elem"]]) == ["b3", "b4"]
        assert (doc["p_num"], doc["p_cnt"], doc["p_elems"]) == ({"$": "2"}, {"$": "2"}, {"$": "5"})
        doc = await api.call(BACKUPS, elid=VM, p_num=99, p_cnt=2)
        assert names([unwrap(r) for r in elems(doc)]) == ["b5"]
        assert doc["p_num"] == {"$": "3"}
        for page in (1, 3):
            doc = await api.call(BACKUPS, elid=VM, p_num=page, p_cnt=2)
            assert doc["manual_created_today"] == doc["manual_created_total"] == {"$": "5"}
            assert doc["cost"] == {"stat_cost": {"$": "0.05"}}


async def test_no_backups_no_elem_and_a_single_row_as_object() -> None:
    async with running(single_elem_as_object=True) as (emu, api, _):
        doc = await api.call(BACKUPS, elid=VM)
        assert "elem" not in doc
        assert doc["manual_created_today"] == {"$": "0"}
        emu.add_backup(VM, "one")
        assert isinstance((await api.call(BACKUPS, elid=VM))["elem"], dict)


async def test_no_stored_filter_hides_backups() -> None:
    async with running() as (emu, api, _):
        emu.add_backup(VM, "one", active=True)
        for func in ("instances.snapshots.filter", "image.filter", "instances.filter"):
            await api.call(func, sok="ok", name="nothing-matches", id="1")
        assert names(await api.backups()) == ["one"]


async def test_usage_counts_today_deleted_included_and_total_existing_manual() -> None:
    async with running(delete_linger=2.0) as (emu, api, clock):
        first = emu.add_backup(VM, "m1", active=True)
        emu.add_backup(VM, "m2", active=True)
        emu.add_backup(VM, "s1", backup_type="scheduled", active=True)
        await api.call("image.delete", elid=first)
        clock.advance(2)
        doc = await api.call(BACKUPS, elid=VM)
        assert names([unwrap(r) for r in elems(doc)]) == ["m2", "s1"]
        assert doc["manual_created_today"] == {"$": "2"}
        assert doc["manual_created_total"] == {"$": "1"}
        clock.advance(DAY)  # a new UTC day
        doc = await api.call(BACKUPS, elid=VM)
        assert (doc["manual_created_today"], doc["manual_created_total"]) == (
            {"$": "0"},
            {"$": "1"},
        )


async def test_usage_is_per_instance() -> None:
    async with running() as (emu, api, _):
        emu.add_instance(OTHER)
        emu.add_backup(OTHER, "theirs")
        doc = await api.call(BACKUPS, elid=VM)
        assert doc["manual_created_today"] == doc["manual_created_total"] == {"$": "0"}


# -- limits -------------------------------------------------------------------------


async def test_a_sixth_manual_backup_a_day_is_refused_until_the_next_day() -> None:
    async with running(delete_linger=0.0) as (emu, api, clock):
        clock.advance(3600)
        for n in range(5):
            assert await api.backup(f"b{n}") == {"ok": {}}
            clock.advance(emu.config.time_to_active)
        # Deleting one does not give the day's allowance back.
        await api.call("image.delete", elid=emu.backups_of(VM)[0]["id"])
        error = (await api.call(CREATE, plid=VM, name="sixth", sok="ok"))["error"]
        assert (error["$type"], error["$object"]) == ("limit", "manual_backups_per_day")
        assert (LIMIT_ERROR_TYPE, LIMIT_OBJECTS["backups_per_day"]) == (
            "limit",
            "manual_backups_per_day",
        )
        assert "sixth" not in names(emu.backups_of(VM))
        assert len(emu.backups_of(VM)) == 4
        clock.advance(DAY - 3600 - 5 * emu.config.time_to_active - 1)  # 23:59:59 UTC
        assert await api.error(CREATE, plid=VM, name="sixth", sok="ok") == (
            "limit",
            "manual_backups_per_day",
        )
        clock.advance(1)  # midnight UTC
        assert await api.backup("sixth") == {"ok": {}}
        assert names(emu.backups_of(VM))[-1] == "sixth"


async def test_the_daily_limit_is_per_instance_and_configurable() -> None:
    async with running(backups_per_day=1) as (emu, api, _):
        emu.add_instance(OTHER)
        await api.backup()
        assert await api.error(CREATE, plid=VM, name="2", sok="ok") == (
            "limit",
            "manual_backups_per_day",
        )
        assert await api.backup(plid=OTHER) == {"ok": {}}
    async with running(backups_per_day=None, time_to_active=0.0) as (emu, api, _):
        for n in range(8):
            assert await api.backup(f"b{n}") == {"ok": {}}
        assert len(emu.backups_of(VM)) == 8


async def test_a_backup_beyond_the_total_is_refused_of_any_type() -> None:
    async with running(delete_linger=2.0) as (emu, api, clock):
        ids = [
            emu.add_backup(VM, f"s{n}", backup_type="scheduled", active=True) for n in range(100)
        ]
        assert await api.error(CREATE, plid=VM, name="more", sok="ok") == (
            "limit",
            "backups_total",
        )
        assert len(emu.backups_of(VM)) == 100
        await api.call("image.delete", elid=ids[0])
        # A Deleting one still counts, until it is gone.
        assert await api.error(CREATE, plid=VM, name="more", sok="ok") == (
            "limit",
            "backups_total",
        )
        clock.advance(2)
        assert await api.backup("more") == {"ok": {}}
    async with running(backups_in_all=None, backups_per_day=None) as (emu, api, _):
        for n in range(101):
            emu.add_backup(VM, f"m{n}", active=True)
        assert await api.backup("more") == {"ok": {}}


async def test_the_limits_come_before_the_one_image_at_a_time_rule() -> None:
    async with running(backups_per_day=1) as (_, api, _):
        await api.backup()  # Saving
        assert await api.error(CREATE, plid=VM, name="2", sok="ok") == (
            "limit",
            "manual_backups_per_day",
        )


async def test_snapshots_have_no_daily_limit_unless_one_is_set() -> None:
    async with running(time_to_active=0.0) as (emu, api, _):
        for n in range(7):
            await api.call("instances.snapshots.edit", plid=VM, name=f"s{n}", sok="ok")
        assert len(emu.snapshots_of(VM)) == 7
    async with running(time_to_active=0.0, snapshots_per_day=2) as (emu, api, clock):
        for n in range(2):
            await api.call("instances.snapshots.edit", plid=VM, name=f"s{n}", sok="ok")
        assert await api.error("instances.snapshots.edit", plid=VM, name="s3", sok="ok") == (
            "limit",
            "manual_snapshots_per_day",
        )
        assert len(emu.snapshots_of(VM)) == 2
        assert await api.backup() == {"ok": {}}  # backups count apart
        clock.advance(DAY)
        assert await api.call("instances.snapshots.edit", plid=VM, name="s3", sok="ok") == {
            "ok": {}
        }


# -- busy instances ----------------------------------------------------------------


async def test_one_image_at_a_time_across_snapshots_and_backups() -> None:
    async with running() as (emu, api, clock):
        snap = {"plid": VM, "name": "s", "sok": "ok"}
        await api.backup()
        assert await api.error(CREATE, plid=VM, name="2", sok="ok") == RUNNING
        assert await api.error("instances.snapshots.edit", **snap) == RUNNING
        clock.advance(emu.config.time_to_active)
        assert await api.call("instances.snapshots.edit", **snap) == {"ok": {}}
        assert await api.error(CREATE, plid=VM, name="2", sok="ok") == RUNNING
        clock.advance(emu.config.time_to_active)
        assert await api.backup("2") == {"ok": {}}
        assert names(emu.backups_of(VM)) == ["manual-1", "2"]


async def test_a_rebuild_refuses_backups_and_a_saving_backup_refuses_a_rebuild() -> None:
    async with running(rebuild_lag=1.0, rebuild_time=5.0) as (emu, api, clock):
        active = emu.add_backup(VM, "base", active=True)
        fleio = emu.image_details(active)["fleio_id"]
        assert await api.rebuild(fleio) == {"ok": {}}
        assert await api.error(CREATE, plid=VM, name="x", sok="ok") == RUNNING
        clock.advance(6)
        await api.backup()
        assert await api.error(REBUILD, **rebuild_form(fleio)) == RUNNING
        emu.set_instance_status(VM, "rebuilding")
        clock.advance(emu.config.time_to_active)
        assert await api.error(CREATE, plid=VM, name="x", sok="ok") == RUNNING


# -- answers: ids, lost ones ----------------------------------------------------------


async def test_create_returns_id_for_backups_when_configured() -> None:
    async with running(create_returns_id=True) as (emu, api, _):
        doc = await api.backup()
        assert doc == {"ok": {}, "id": {"$": emu.backups_of(VM)[0]["id"]}}


async def test_a_lost_or_ambiguous_backup_create_made_the_backup() -> None:
    async with running() as (emu, api, _):
        emu.lose_answers(CREATE, kind="html504")
        status, _ = await api.post(CREATE, plid=VM, name="lost", sok="ok")
        assert status == 504
        assert names(emu.backups_of(VM)) == ["lost"]
        assert emu.lost_answers == {CREATE: 1}
        assert await api.error(CREATE, plid=VM, name="lost", sok="ok") == RUNNING
    async with running(ambiguous_create_rate=1.0) as (emu, api, _):
        status, text = await api.post(CREATE, plid=VM, name="amb", sok="ok")
        assert status == 502
        assert "<center>nginx</center>" in text
        assert names(emu.backups_of(VM)) == ["amb"]
        assert emu.ambiguous_creates == 1


# -- delete, protect, restore ------------------------------------------------------------


async def test_a_backup_is_deleted_by_either_form_and_lingers() -> None:
    async with running(delete_linger=2.0) as (emu, api, clock):
        panel = emu.add_backup(VM, "panel", active=True)
        sdk = emu.add_backup(VM, "sdk", active=True)
        assert await api.call("image.delete", elid=panel) == {"ok": {}}
        form = {"plid": VM, "elid": sdk, "elname": sdk, "sok": "ok"}
        assert await api.call("image.delete", **form) == {"ok": {}}
        rows = await api.backups()
        assert [r["fleio_status"] for r in rows] == ["Deleting", "Deleting"]
        assert [r["image_size"] for r in rows] == ["3", "3"]
        assert await api.call("image.delete", elid=panel) == {"ok": {}}  # still Deleting
        clock.advance(2)
        assert await api.backups() == []
        assert await api.error("image.delete", elid=panel) == ("missed", "elid")
        assert await api.error("image.delete", **form) == ("missed", "elid")


async def test_the_panels_delete_form_deletes_snapshots_too() -> None:
    async with running() as (emu, api, _):
        emu.add_instance(OTHER, 1)
        sid = emu.snapshots_of(OTHER)[0]["id"]
        assert await api.call("image.delete", elid=sid) == {"ok": {}}
        assert emu.snapshots_of(OTHER)[0]["fleio_status"] == "Deleting"


DELETE_ERRORS: list[tuple[dict[str, Any], tuple[str, str]]] = [
    ({"plid": OTHER}, ("missed", "elid")),  # another instance's: not found there
    ({"plid": 42}, ("missed", "plid")),
    ({"elname": "backup"}, ("value", "elname")),
    ({"elname": None}, ("missed", "elname")),  # the second form is all or nothing
    ({"sok": None}, ("missed", "sok")),
    ({"plid": None}, ("missed", "plid")),
    ({"elid": "1"}, ("missed", "elid")),
]


@pytest.mark.parametrize(("changes", "expected"), DELETE_ERRORS)
async def test_delete_refusals_delete_nothing(
    changes: dict[str, Any], expected: tuple[str, str]
) -> None:
    async with running() as (emu, api, _):
        emu.add_instance(OTHER)
        bid = emu.add_backup(VM, "backup", active=True)
        form = {"plid": VM, "elid": bid, "elname": bid, "sok": "ok"} | changes
        if changes.get("elid"):
            form["elname"] = form["elid"]
        assert await api.error("image.delete", **form) == expected
        assert [r["fleio_status"] for r in emu.backups_of(VM)] == ["Active"]


async def test_a_protected_backup_refuses_deletion_by_either_form() -> None:
    async with running() as (emu, api, _):
        bid = emu.add_backup(VM, "keep", active=True)
        emu.set_protected(VM, bid)
        assert emu.backups_of(VM)[0]["protected"] == "on"
        assert await api.error("image.delete", elid=bid) == ("value", "protected")
        form = {"plid": VM, "elid": bid, "elname": bid, "sok": "ok"}
        assert await api.error("image.delete", **form) == ("value", "protected")
        emu.set_protected(VM, bid, False)
        assert await api.call("image.delete", elid=bid) == {"ok": {}}
        with pytest.raises(KeyError):
            emu.set_protected(VM, 1)


async def test_lost_delete_rate_applies_to_backups() -> None:
    async with running(lost_delete_rate=1.0) as (emu, api, _):
        bid = emu.add_backup(VM, "b", active=True)
        status, _ = await api.post("image.delete", elid=bid)
        assert status == 502
        assert emu.backups_of(VM)[0]["fleio_status"] == "Deleting"


def edit_commit(image_id: int | str, **changes: Any) -> dict[str, Any]:
    """What the panel sends back to commit an `image.edit`."""
    form: dict[str, Any] = {
        "elid": image_id,
        "image_name": "renamed",
        "protected": "on",
        "clicked_button": "ok",
        "sok": "ok",
        "region": "Netherlands-2",
        "min_disk": "20",
        "min_ram": "0",
        "disk_format": "qcow2",
        "os_distro": "Ubuntu",
        "os_version": "22.04 x64",
        "architecture": "x86_64",
    }
    return form | changes


async def test_image_edit_protects_and_renames_a_backup() -> None:
    async with running() as (emu, api, _):
        bid = emu.add_backup(VM, "b", backup_type="scheduled")
        doc = await api.call("image.edit", elid=bid)
        assert (doc["fleio_status"], doc["image_size"]) == ({"$": "Saving"}, {})
        assert doc["backup_type"] == {"$": "scheduled"}
        assert await api.call("image.edit", **edit_commit(bid)) == {"ok": {}}
        [row] = emu.backups_of(VM)
        assert (row["name"], row["protected"], row["backup_type"]) == ("renamed", "on", "scheduled")
        assert await api.error("image.delete", elid=bid) == ("value", "protected")


async def test_a_rebuild_restores_an_active_backup_not_a_saving_one() -> None:
    async with running() as (emu, api, clock):
        saving = emu.add_backup(VM, "saving")
        fleio = emu.image_details(saving)["fleio_id"]
        assert await api.error(REBUILD, **rebuild_form(fleio)) == ("value", "select_rebuild")
        clock.advance(emu.config.time_to_active)
        preview = await api.call(REBUILD, elid=VM)
        assert slist_of(preview, "select_rebuild") == [
            {"$key": fleio, "$": "saving", "$depend": "own"}
        ]
        assert await api.rebuild(fleio) == {"ok": {}}
        [record] = emu.rebuilds
        assert (record.instance_id, record.image_id, record.fleio_id) == (VM, saving, fleio)


# -- schedules ----------------------------------------------------------------------


async def test_a_schedule_is_listed_in_the_panels_format() -> None:
    async with running() as (emu, api, clock):
        clock.advance(5 * DAY)  # 2026-01-06
        assert await api.schedule("0,3,1", "07:05", name="weekly") == {"ok": {}}
        assert await api.schedule() == {"ok": {}}
        doc = await api.call(SCHEDULES, elid=VM)
        assert doc["backup_rotation"] == {"$": "3"}
        assert [unwrap(r) for r in elems(doc)] == [
            {
                "id": "31000",
                "name": "weekly",
                "instance_id": str(VM),
                "create_date": "2026-01-06",
                "rotation_time": "07:05",
                "rotation_days": "Monday Wednesday Sunday",
            },
            {
                "id": "31001",
                "name": "nightly",
                "instance_id": str(VM),
                "create_date": "2026-01-06",
                "rotation_time": "02:01",
                "rotation_days": "Monday Tuesday Wednesday Thursday Friday Saturday Sunday",
            },
        ]
        assert emu.schedules_of(VM) == [unwrap(r) for r in elems(doc)]
        emu.add_instance(OTHER)
        assert emu.schedules_of(OTHER) == await api.schedules(OTHER) == []


async def test_schedules_page_when_asked() -> None:
    async with running() as (_, api, _):
        for n in range(3):
            await api.schedule(name=f"s{n}")
        doc = await api.call(SCHEDULES, elid=VM, p_cnt=2, p_num=2)
        assert [unwrap(r)["name"] for r in elems(doc)] == ["s2"]
        assert (doc["p_elems"], doc["backup_rotation"]) == ({"$": "3"}, {"$": "3"})


async def test_a_schedule_preview_makes_nothing() -> None:
    async with running() as (emu, api, _):
        doc = await api.call(SCHEDULE_EDIT, plid=VM, name="n", rotation_days="1", rotation_time="")
        assert (doc["plid"], doc["name"], doc["rotation_days"], doc["rotation_time"]) == (
            {"$": str(VM)},
            {"$": "n"},
            {"$": "1"},
            {},
        )
        assert next(v["$"] for v in slist_of(doc, "rotation_days")) == "Monday"
        assert {v["$key"]: v["$"] for v in slist_of(doc, "rotation_days")}["0"] == "Sunday"
        assert emu.schedules_of(VM) == []
        await api.schedule("2,4", "10:30", name="old")
        doc = await api.call(SCHEDULE_EDIT, plid=VM, elid=31000)
        assert (doc["elid"], doc["name"], doc["rotation_days"], doc["rotation_time"]) == (
            {"$": "31000"},
            {"$": "old"},
            {"$": "2,4"},
            {"$": "10:30"},
        )


async def test_a_schedule_is_edited_by_its_elid_and_deleted() -> None:
    async with running() as (emu, api, _):
        await api.schedule("1", "01:00", name="a")
        await api.schedule("2", "02:00", name="b")
        assert await api.schedule("6,0", "23:59", name="a2", elid=31000) == {"ok": {}}
        [a, b] = await api.schedules()
        assert (a["id"], a["name"], a["rotation_days"], a["rotation_time"]) == (
            "31000",
            "a2",
            "Saturday Sunday",
            "23:59",
        )
        assert b["name"] == "b"
        assert await api.call(SCHEDULE_DELETE, elid=31000) == {"ok": {}}
        assert [s["id"] for s in await api.schedules()] == ["31001"]
        assert await api.error(SCHEDULE_DELETE, elid=31000) == ("missed", "elid")
        assert await api.error(SCHEDULE_DELETE) == ("missed", "elid")
        emu.lose_answers(SCHEDULE_DELETE)
        assert (await api.post(SCHEDULE_DELETE, elid=31001))[0] == 502
        assert emu.schedules_of(VM) == []
        assert await api.schedule(name="c") == {"ok": {}}
        assert [s["id"] for s in await api.schedules()] == ["31002"]  # ids are not reused


async def test_a_schedule_of_another_instance_is_not_found_through_this_one() -> None:
    async with running() as (emu, api, _):
        emu.add_instance(OTHER)
        await api.schedule(plid=OTHER)
        assert await api.error(SCHEDULE_EDIT, **schedule_form(elid=31000)) == ("missed", "elid")
        assert await api.error(SCHEDULE_DELETE, elid=31000, plid=VM) == ("missed", "elid")
        assert await api.call(SCHEDULE_DELETE, elid=31000, plid=OTHER) == {"ok": {}}


def schedule_form(**changes: Any) -> dict[str, Any]:
    form = {"plid": VM, "name": "n", "rotation_days": "1,2", "rotation_time": "02:01", "sok": "ok"}
    return form | changes


SCHEDULE_ERRORS: list[tuple[dict[str, Any], tuple[str, str]]] = [
    ({"plid": None}, ("missed", "plid")),
    ({"plid": "42"}, ("missed", "plid")),
    ({"elid": "31999"}, ("missed", "elid")),
    ({"elid": "x"}, ("value", "elid")),
    ({"name": None}, ("missed", "name")),
    ({"name": " "}, ("missed", "name")),
    ({"name": "x" * 101}, ("value", "name")),
    ({"rotation_days": None}, ("missed", "rotation_days")),
    ({"rotation_days": ""}, ("missed", "rotation_days")),
    *[
        ({"rotation_days": days}, ("value", "rotation_days"))
        for days in ("7", "1,1", "1, 2", "1,,2", "-1", "Monday", "1,2,", "12", "1;2")
    ],
    ({"rotation_time": None}, ("missed", "rotation_time")),
    ({"rotation_time": ""}, ("missed", "rotation_time")),
    *[
        ({"rotation_time": at}, ("value", "rotation_time"))
        for at in ("24:00", "2:01", "02:60", "0201", "02:01:00", "ab:cd", " 02:01")
    ],
]


@pytest.mark.parametrize(("changes", "expected"), SCHEDULE_ERRORS)
async def test_schedule_refusals_change_nothing(
    changes: dict[str, Any], expected: tuple[str, str]
) -> None:
    async with running() as (emu, api, _):
        await api.schedule("3", "04:04", name="kept")
        assert await api.error(SCHEDULE_EDIT, **schedule_form(**changes)) == expected
        [row] = emu.schedules_of(VM)
        assert (row["name"], row["rotation_days"], row["rotation_time"]) == (
            "kept",
            "Wednesday",
            "04:04",
        )
        assert await api.error(SCHEDULE_EDIT, **schedule_form(**({"elid": 31000} | changes))) in (
            expected,
            ("missed", "elid"),
        )
        assert emu.schedules_of(VM) == [row]


@pytest.mark.parametrize("at", ["00:00", "23:59", "09:30"])
async def test_times_at_the_bounds_are_taken(at: str) -> None:
    async with running() as (emu, api, _):
        assert await api.schedule("0", at) == {"ok": {}}
        assert emu.schedules_of(VM)[0]["rotation_time"] == at


async def test_the_schedule_listing_of_an_unknown_instance_is_missed() -> None:
    async with running() as (_, api, _):
        assert await api.error(SCHEDULES, elid=42) == ("missed", "elid")


# -- firing -------------------------------------------------------------------------


async def test_a_schedule_fires_on_the_panels_gmt3_clock() -> None:
    async with running(time_to_active=8.0) as (emu, api, clock):
        assert SCHEDULE_TZ.utcoffset(None) == timedelta(hours=3)
        # 03:00 on the panel's clock now: 05:00 is two hours on (UTC would be five).
        await api.schedule(at="05:00")
        clock.advance(2 * 3600 - 1)
        assert await api.backups() == []
        clock.advance(1)
        [row] = await api.backups()
        assert row | {"id": ""} == {
            "id": "",
            "name": "nightly-20260101-0500",
            "backup_type": "scheduled",
            "image_size": "",
            "createdate": "2026-01-01",
            "os_distro": "Ubuntu",
            "os_version": "22.04 x64",
            "fleio_status": "Saving",
            "protected": "off",
        }
        clock.advance(8)
        assert emu.backups_of(VM)[0]["fleio_status"] == "Active"
        doc = await api.call(BACKUPS, elid=VM)
        # Not a manual backup: neither the day's count nor the total.
        assert doc["manual_created_today"] == doc["manual_created_total"] == {"$": "0"}


async def test_a_late_look_finds_the_backup_saving_from_when_it_fired() -> None:
    async with running(time_to_active=8.0) as (emu, api, clock):
        await api.schedule()  # 02:01 GMT+3 = 23:01 UTC, the day before
        clock.advance(TO_0201 + 5)
        [row] = emu.backups_of(VM)
        assert (row["name"], row["createdate"]) == ("nightly-20260102-0201", "2026-01-01")
        assert row["fleio_status"] == "Saving"
        clock.advance(3)
        assert emu.backups_of(VM)[0]["fleio_status"] == "Active"


async def test_a_schedule_fires_only_on_its_days() -> None:
    async with running() as (emu, api, clock):
        await api.schedule("5", "05:00")  # Fridays; today is a Thursday
        clock.advance(2 * 3600)
        assert emu.backups_of(VM) == []
        clock.advance(DAY)  # Friday 05:00
        assert names(emu.backups_of(VM)) == ["nightly-20260102-0500"]
        clock.advance(6 * DAY)  # to Thursday: none
        assert len(emu.backups_of(VM)) == 1
        clock.advance(DAY)  # Friday again
        assert names(emu.backups_of(VM))[-1] == "nightly-20260109-0500"


async def test_a_schedule_does_not_backfill_before_it_was_made_or_edited() -> None:
    async with running() as (emu, api, clock):
        await api.schedule(at="02:00")  # passed an hour ago today, on the panel's clock
        clock.advance(DAY - 3601)  # 01:59:59 the next day, panel's clock
        assert emu.backups_of(VM) == []
        await api.schedule(at="01:00", elid=31000)  # already past today: from tomorrow
        clock.advance(2)  # 02:00:01: the old time passed, and made nothing
        assert emu.backups_of(VM) == []
        clock.advance(DAY - 3600 - 2)  # 00:59:59 the next day
        assert emu.backups_of(VM) == []
        clock.advance(1)
        assert names(emu.backups_of(VM)) == ["nightly-20260103-0100"]


async def test_each_call_catches_up_on_schedules_before_it_acts() -> None:
    async with running(time_to_active=8.0) as (_, api, clock):
        await api.schedule(at="05:00")
        clock.advance(2 * 3600 + 1)
        # Never listed: the manual create sees the scheduled backup Saving.
        assert await api.error(CREATE, plid=VM, name="m", sok="ok") == RUNNING
        [row] = await api.images()
        assert row["image_type"] == "Backup"


async def test_rotation_keeps_the_newest_scheduled_leaves_manual_and_protected() -> None:
    async with running(time_to_active=1.0) as (emu, api, clock):
        manual = emu.add_backup(VM, "manual", active=True)
        await api.schedule(at="05:00")
        clock.advance(2 * 3600)  # the first firing
        keep = int(emu.backups_of(VM)[1]["id"])
        emu.set_protected(VM, keep)
        for _ in range(4):
            clock.advance(DAY)
            await api.backups()
        rows = await api.backups()
        assert names(rows) == [
            "manual",
            "nightly-20260101-0500",
            "nightly-20260103-0500",
            "nightly-20260104-0500",
            "nightly-20260105-0500",
        ]
        assert [int(rows[0]["id"]), int(rows[1]["id"])] == [manual, keep]
        assert rows[1]["protected"] == "on"


async def test_rotation_counts_seeded_scheduled_backups() -> None:
    async with running() as (emu, api, clock):
        emu.add_backup(VM, "old-1", backup_type="scheduled", active=True)
        emu.add_backup(VM, "old-2", backup_type="scheduled", active=True)
        emu.add_backup(VM, "old-3", backup_type="scheduled", active=True)
        emu.add_backup(VM, "man", active=True)
        await api.schedule(at="05:00")
        clock.advance(2 * 3600)
        assert names(await api.backups()) == ["old-2", "old-3", "man", "nightly-20260101-0500"]


async def test_the_rotation_set_by_instances_edit_applies_at_the_next_firing() -> None:
    async with running() as (emu, api, clock):
        await api.schedule(at="05:00")
        for _ in range(3):
            clock.advance(2 * 3600 if not emu.backups_of(VM) else DAY)
        assert len(emu.backups_of(VM)) == 3
        form = {"elid": VM, "backup_rotation": 1, "clicked_button": "ok", "sok": "ok"}
        assert await api.call("instances.edit", **form) == {"ok": {}}
        assert len(emu.backups_of(VM)) == 3  # nothing overwritten yet
        clock.advance(DAY)
        assert names(emu.backups_of(VM)) == ["nightly-20260104-0500"]


async def test_two_schedules_share_the_instances_rotation() -> None:
    async with running() as (emu, api, clock):
        await api.schedule(at="05:00", name="a")
        await api.schedule(at="06:00", name="b")
        clock.advance(2 * DAY)
        # Four firings (two each): the newest three are kept, whichever schedule made them.
        assert names(emu.backups_of(VM)) == [
            "b-20260101-0600",
            "a-20260102-0500",
            "b-20260102-0600",
        ]


async def test_a_long_pause_makes_only_the_backups_the_rotation_keeps() -> None:
    async with running() as (emu, api, clock):
        seed = emu.add_backup(VM, "seed", active=True)
        await api.schedule(at="05:00")
        clock.advance(3650 * DAY)
        rows = await api.backups()
        assert names(rows) == [
            "seed",
            "nightly-20351227-0500",
            "nightly-20351228-0500",
            "nightly-20351229-0500",
        ]
        # Three made, not one a day for ten years: the ids tell.
        assert [int(r["id"]) for r in rows] == [seed, seed + 1, seed + 2, seed + 3]
        # Made at their moments: Active long since.
        assert {r["fleio_status"] for r in rows} == {"Active"}


async def test_a_deleted_schedule_fires_no_more() -> None:
    async with running() as (emu, api, clock):
        await api.schedule(at="05:00")
        clock.advance(2 * 3600)
        await api.call(SCHEDULE_DELETE, elid=31000)
        clock.advance(5 * DAY)
        assert names(emu.backups_of(VM)) == ["nightly-20260101-0500"]


async def test_scheduled_backups_do_not_use_the_days_manual_allowance() -> None:
    async with running(backups_per_day=1, time_to_active=0.0) as (_, api, clock):
        await api.schedule(at="05:00")
        clock.advance(2 * 3600)
        assert await api.backup() == {"ok": {}}
        doc = await api.call(BACKUPS, elid=VM)
        assert doc["manual_created_today"] == {"$": "1"}
        assert len(elems(doc)) == 2


async def test_a_scheduled_backup_of_a_killing_instance_ends_killed() -> None:
    async with running() as (emu, api, clock):
        emu.add_instance(OTHER, kill=True)
        await api.schedule(at="05:00", plid=OTHER)
        clock.advance(2 * 3600 + emu.config.time_to_active)
        assert [r["fleio_status"] for r in emu.backups_of(OTHER)] == ["Killed"]


# -- instances.edit: the rotation setting ---------------------------------------------


async def test_instances_edit_shows_the_details_and_the_rotation() -> None:
    async with running() as (emu, api, _):
        doc = await api.call("instances.edit", elid=VM)
        assert doc["backup_rotation"] == {"$": "3"}
        assert doc["createdate"] == {"$": "2026-01-01"}
        [row] = elems(await api.call("instances"))
        assert (doc["ip"], doc["ip_v6"], doc["servername"]) == (
            row["ip"],
            row["ip_v6"],
            row["servername"],
        )
        assert uuid.UUID(doc["instances_uuid"]["$"]).version == 4
        assert doc["elid"] == {"$": str(VM)}
        assert [v["$key"] for v in slist_of(doc, "backup_rotation")] == [
            str(n) for n in range(1, 11)
        ]
        assert emu.backup_rotation(VM) == 3
        again = await api.call("instances.edit", elid=VM)
        assert again["instances_uuid"] == doc["instances_uuid"]


@pytest.mark.parametrize("value", ["1", "10", "7"])
async def test_instances_edit_sets_the_rotation(value: str) -> None:
    async with running() as (emu, api, _):
        form = {"elid": VM, "backup_rotation": value, "sok": "ok"}  # no clicked_button
        assert await api.call("instances.edit", **form) == {"ok": {}}
        assert emu.backup_rotation(VM) == int(value)
        assert (await api.call(SCHEDULES, elid=VM))["backup_rotation"] == {"$": value}
        assert (await api.call("instances.edit", elid=VM))["backup_rotation"] == {"$": value}


@pytest.mark.parametrize("value", ["0", "11", "x", "", "-1", "3.5", " 3"])
async def test_instances_edit_refuses_a_rotation_out_of_bounds(value: str) -> None:
    async with running() as (emu, api, _):
        form = {"elid": VM, "backup_rotation": value, "clicked_button": "ok", "sok": "ok"}
        assert await api.error("instances.edit", **form) == ("value", "backup_rotation")
        assert emu.backup_rotation(VM) == 3


async def test_instances_edit_without_a_rotation_changes_nothing() -> None:
    async with running() as (emu, api, _):
        assert await api.call("instances.edit", elid=VM, sok="ok", clicked_button="ok") == {
            "ok": {}
        }
        assert emu.backup_rotation(VM) == 3
        assert await api.error("instances.edit", elid=42) == ("missed", "elid")
        assert await api.error("instances.edit", elid=42, sok="ok") == ("missed", "elid")


# -- the image list -------------------------------------------------------------------


async def test_image_lists_every_own_image_by_id() -> None:
    async with running() as (emu, api, clock):
        emu.add_instance(OTHER, 1, region="Germany-1")
        b1 = emu.add_backup(VM, "vm-backup", active=True)
        emu.add_instance(3, 1)
        b2 = emu.add_backup(OTHER, "other-backup")
        await api.call("image.copy", elid=b1, image_name="copied", region="10", sok="ok")
        rows = await api.images()
        assert all(set(r) == IMAGE_ROW_KEYS for r in rows)
        assert [(r["image_name"], r["image_type"], r["region"]) for r in rows] == [
            ("seed-1", "Snapshot", "Germany-1"),
            ("vm-backup", "Backup", "Netherlands-2"),
            ("seed-1", "Snapshot", "Netherlands-2"),
            ("other-backup", "Backup", "Germany-1"),
            ("copied", "Backup", "USA-1"),
        ]
        ids = [int(r["id"]) for r in rows]
        assert ids == sorted(ids)
        assert ids[1] == b1
        assert ids[3] == b2
        assert rows[3]["fleio_status"] == "Saving"
        assert rows[3]["image_size"] == ""
        assert rows[1] | {"fleio_id": ""} == {
            "id": str(b1),
            "image_name": "vm-backup",
            "image_type": "Backup",
            "disk_format": "qcow2",
            "region": "Netherlands-2",
            "createdate": "2026-01-01",
            "image_size": "3",
            "os_distro": "Ubuntu",
            "os_version": "22.04 x64",
            "fleio_status": "Active",
            "protected": "off",
            "fleio_id": "",
            "min_disk": "20",
            "min_ram": "0",
        }
        assert [r["fleio_id"] for r in rows] == [
            emu.image_details(int(r["id"]))["fleio_id"] for r in rows
        ]
        assert emu.images() == rows
        clock.advance(emu.config.time_to_active)
        assert (await api.images())[3]["fleio_status"] == "Active"


async def test_image_pages_and_has_no_elem_when_empty() -> None:
    async with running() as (emu, api, _):
        assert "elem" not in await api.call("image")
        emu.add_instance(OTHER, 3)
        doc = await api.call("image", p_cnt=2, p_num=2)
        assert [unwrap(r)["image_name"] for r in elems(doc)] == ["seed-3"]
        assert (doc["p_num"], doc["p_elems"]) == ({"$": "2"}, {"$": "3"})


IMAGE_FILTERS: list[tuple[dict[str, str], list[str]]] = [
    ({"image_type": "Backup"}, ["b-active", "b-saving", "copy"]),
    ({"image_type": "snapshot"}, ["seed-1"]),
    ({"image_type": "Back"}, []),  # a choice: compared whole
    ({"name": "b-"}, ["b-active", "b-saving"]),
    ({"name": "COPY"}, ["copy"]),
    ({"fleio_status": "Saving"}, ["b-saving", "copy"]),
    ({"region": "USA-1"}, ["copy"]),
    ({"region": "Netherlands"}, []),
    ({"disk_format": "qcow2"}, ["seed-1", "b-active", "b-saving", "copy"]),
    ({"disk_format": "raw"}, []),
    ({"os_distro": "ubuntu"}, ["seed-1", "b-active", "b-saving", "copy"]),
    ({"image_type": "Backup", "fleio_status": "Active"}, ["b-active"]),
]


@pytest.mark.parametrize(("fields", "expected"), IMAGE_FILTERS)
async def test_the_stored_image_filter_applies_to_image(
    fields: dict[str, str], expected: list[str]
) -> None:
    async with running() as (emu, api, _):
        emu.add_instance(OTHER, 1)
        b = emu.add_backup(OTHER, "b-active", active=True)
        emu.add_backup(OTHER, "b-saving")
        await api.call("image.copy", elid=b, image_name="copy", region="10", sok="ok")
        assert await api.call("image.filter", sok="ok", **fields) == {"ok": {}}
        assert [r["image_name"] for r in await api.images()] == expected
        assert len(emu.images()) == 4  # inspection is not filtered
        assert len(await api.backups(OTHER)) == 2  # nor are the backups


async def test_an_image_filter_by_id_and_its_page_counts() -> None:
    async with running() as (emu, api, _):
        emu.add_instance(OTHER, 3)
        sid = emu.snapshots_of(OTHER)[1]["id"]
        emu.set_stored_filter("image.filter", id=sid)
        doc = await api.call("image", p_cnt=20)
        assert [unwrap(r)["id"] for r in elems(doc)] == [sid]
        assert doc["p_elems"] == {"$": "1"}


# -- copies -------------------------------------------------------------------------


def test_the_copy_regions_are_keyed_apart_from_their_labels() -> None:
    assert COPY_REGIONS == {
        "7": "Netherlands-1",
        "8": "Netherlands-2",
        "9": "Germany-1",
        "10": "USA-1",
    }
    assert not set(COPY_REGIONS) & set(COPY_REGIONS.values())
    assert BACKUP_TYPES == ("manual", "scheduled")


@pytest.mark.parametrize(
    ("region", "offered"),
    [
        ("Netherlands-2", ["7", "9", "10"]),
        ("Germany-1", ["7", "8", "10"]),
        ("Moon-1", ["7", "8", "9", "10"]),
    ],
)
async def test_the_copy_preview_offers_the_other_regions_by_key(
    region: str, offered: list[str]
) -> None:
    async with running() as (emu, api, _):
        emu.add_instance(OTHER, 1, region=region)
        sid = emu.snapshots_of(OTHER)[0]["id"]
        doc = await api.call("image.copy", elid=sid)
        assert doc["elid"] == {"$": sid}
        assert doc["image_name"] == {"$": "seed-1"}
        assert doc["region"] == {"$": region}
        assert slist_of(doc, "region") == [{"$key": k, "$": COPY_REGIONS[k]} for k in offered]
        assert emu.images() == [emu.images()[0]]  # nothing copied


async def test_a_copy_is_a_new_image_saving_for_copy_time_then_active() -> None:
    async with running(copy_time=30.0) as (emu, api, clock):
        bid = emu.add_backup(VM, "src", active=True)
        form = {"elid": bid, "image_name": "dr-copy", "region": "9", "sok": "ok"}
        assert await api.call("image.copy", **form) == {"ok": {}}
        src, copy = emu.images()
        assert int(copy["id"]) == bid + 1
        assert copy["fleio_id"] != src["fleio_id"]
        assert uuid.UUID(copy["fleio_id"]).version == 4
        assert (copy["image_name"], copy["image_type"], copy["region"]) == (
            "dr-copy",
            "Backup",
            "Germany-1",
        )
        assert (copy["fleio_status"], copy["image_size"]) == ("Saving", "")
        # Listed only by `image`: under no instance.
        assert names(emu.backups_of(VM)) == ["src"]
        assert emu.snapshots_of(VM) == []
        clock.advance(29.9)
        assert emu.images()[1]["fleio_status"] == "Saving"
        clock.advance(0.1)
        assert (emu.images()[1]["fleio_status"], emu.images()[1]["image_size"]) == ("Active", "3")
        details = emu.image_details(int(copy["id"]))
        assert (details["instances_id"], details["image_type"], details["region"]) == (
            "",
            "Backup",
            "Germany-1",
        )
        assert details["backup_type"] == "manual"


async def test_a_copy_of_a_snapshot_is_a_snapshot() -> None:
    async with running() as (emu, api, _):
        emu.add_instance(OTHER, 1)
        sid = emu.snapshots_of(OTHER)[0]["id"]
        await api.call("image.copy", elid=sid, image_name="c", region="7", sok="ok")
        copy = emu.images()[-1]
        assert (copy["image_type"], copy["region"]) == ("Snapshot", "Netherlands-1")
        assert emu.image_details(int(copy["id"]))["backup_type"] == ""
        assert len(emu.snapshots_of(OTHER)) == 1


COPY_ERRORS: list[tuple[dict[str, Any], tuple[str, str]]] = [
    ({"elid": None}, ("missed", "elid")),
    ({"elid": "99"}, ("missed", "elid")),
    ({"image_name": None}, ("missed", "image_name")),
    ({"image_name": " "}, ("missed", "image_name")),
    ({"image_name": "x" * 101}, ("value", "image_name")),
    ({"region": None}, ("missed", "region")),
    ({"region": "8"}, ("value", "region")),  # the source's own region
    ({"region": "Germany-1"}, ("value", "region")),  # a label, not a key
    ({"region": "11"}, ("value", "region")),
]


@pytest.mark.parametrize(("changes", "expected"), COPY_ERRORS)
async def test_copy_refusals_copy_nothing(
    changes: dict[str, Any], expected: tuple[str, str]
) -> None:
    async with running() as (emu, api, _):
        bid = emu.add_backup(VM, "src", active=True)
        form = {"elid": bid, "image_name": "c", "region": "9", "sok": "ok"} | changes
        assert await api.error("image.copy", **form) == expected
        assert len(emu.images()) == 1


async def test_only_an_active_image_is_copied() -> None:
    async with running(delete_linger=5.0) as (emu, api, clock):
        emu.add_instance(OTHER, kill=True)
        saving = emu.add_backup(VM, "saving")
        killed = emu.add_backup(OTHER, "killed")
        form = {"image_name": "c", "region": "9", "sok": "ok"}
        assert await api.error("image.copy", elid=saving, **form) == RUNNING
        clock.advance(emu.config.time_to_active)
        assert await api.error("image.copy", elid=killed, **form) == RUNNING
        await api.call("image.delete", elid=saving)
        assert await api.error("image.copy", elid=saving, **form) == RUNNING
        assert len(emu.images()) == 2


async def test_failed_copies_end_killed() -> None:
    async with running(copy_time=10.0) as (emu, api, clock):
        bid = emu.add_backup(VM, "src", active=True)
        emu.fail_copies()
        form = {"elid": bid, "region": "9", "sok": "ok"}
        await api.call("image.copy", image_name="bad", **form)
        await api.call("image.copy", image_name="good", **form)
        assert [r["fleio_status"] for r in emu.images()] == ["Active", "Saving", "Saving"]
        clock.advance(10)
        rows = emu.images()
        assert [(r["image_name"], r["fleio_status"]) for r in rows[1:]] == [
            ("bad", "Killed"),
            ("good", "Active"),
        ]
        assert rows[1]["image_size"] == ""
        emu.fail_copies(2)
        emu.fail_copies(0)
        for n in range(3):
            await api.call("image.copy", image_name=f"n{n}", **form)
        clock.advance(10)
        assert [r["fleio_status"] for r in emu.images()[3:]] == ["Killed", "Killed", "Active"]
        with pytest.raises(ValueError, match="count"):
            emu.fail_copies(-1)


async def test_a_lost_copy_answer_made_the_copy_all_the_same() -> None:
    async with running() as (emu, api, _):
        bid = emu.add_backup(VM, "src", active=True)
        emu.lose_answers("image.copy")
        status, _ = await api.post("image.copy", elid=bid, image_name="c", region="9", sok="ok")
        assert status == 502
        assert [r["image_name"] for r in emu.images()] == ["src", "c"]
        assert emu.lost_answers == {"image.copy": 1}
    async with running(ambiguous_create_rate=1.0) as (emu, api, _):
        bid = emu.add_backup(VM, "src", active=True)
        status, _ = await api.post("image.copy", elid=bid, image_name="c", region="9", sok="ok")
        assert status == 502
        assert [r["image_name"] for r in emu.images()] == ["src", "c"]
        assert emu.ambiguous_creates == 1


async def test_a_copy_is_edited_deleted_by_elid_alone_and_restored_from() -> None:
    async with running(copy_time=0.0, delete_linger=0.0) as (emu, api, _):
        bid = emu.add_backup(VM, "src", active=True)
        await api.call("image.copy", elid=bid, image_name="c", region="10", sok="ok")
        cid = int(emu.images()[-1]["id"])
        doc = await api.call("image.edit", elid=cid)
        assert (doc["instances_id"], doc["image_type"]) == ({}, {"$": "Backup"})
        assert await api.rebuild(doc["fleio_id"]["$"]) == {"ok": {}}
        assert emu.rebuilds[0].image_id == cid
        assert await api.call("image.edit", **edit_commit(cid, region="USA-1")) == {"ok": {}}
        assert await api.error("image.delete", elid=cid) == ("value", "protected")
        await api.call("image.edit", **edit_commit(cid, protected="off"))
        form = {"plid": VM, "elid": cid, "elname": cid, "sok": "ok"}
        assert await api.error("image.delete", **form) == ("missed", "elid")  # no instance's
        assert await api.call("image.delete", elid=cid) == {"ok": {}}
        assert [r["image_name"] for r in emu.images()] == ["src"]


# -- helpers, sessions, XML -------------------------------------------------------------


def test_the_helpers_check_their_arguments() -> None:
    emu = ZomroEmulator()
    emu.add_instance(VM)
    with pytest.raises(ValueError, match="backup_type"):
        emu.add_backup(VM, "x", backup_type="weekly")
    for helper in (emu.backups_of, emu.schedules_of, emu.backup_rotation):
        with pytest.raises(KeyError):
            helper(42)
    with pytest.raises(KeyError):
        emu.add_backup(42, "x")
    with pytest.raises(KeyError):
        emu.image_details(1)
    assert emu.backups_of(VM) == emu.images() == []


async def test_add_backup_starts_saving_or_active_and_protected_if_asked() -> None:
    async with running(time_to_active=8.0) as (emu, _, clock):
        saving = emu.add_backup(VM, "s", backup_type="scheduled")
        active = emu.add_backup(VM, "a", active=True, protected=True)
        assert active == saving + 1
        rows = emu.backups_of(VM)
        assert [(r["fleio_status"], r["backup_type"], r["protected"]) for r in rows] == [
            ("Saving", "scheduled", "off"),
            ("Active", "manual", "on"),
        ]
        clock.advance(8)
        assert emu.backups_of(VM)[0]["fleio_status"] == "Active"


async def test_the_backup_funcs_need_a_session() -> None:
    async with running() as (emu, api, _):
        emu.expire_sessions()
        for func in (
            BACKUPS,
            CREATE,
            SCHEDULES,
            SCHEDULE_EDIT,
            SCHEDULE_DELETE,
            "instances.edit",
            "image",
            "image.copy",
        ):
            assert await api.error(func, elid=VM, plid=VM) == ("access", "")


async def test_the_backup_listing_in_xml() -> None:
    async with running() as (emu, api, _):
        emu.add_backup(VM, "b", active=True)
        form = api.form(BACKUPS, elid=VM)
        del form["out"]
        async with api.http.post(emu.url, data=form) as resp:
            text = await resp.text()
        assert "<cost><stat_cost>0.05</stat_cost></cost>" in text
        assert "<backup_type>manual</backup_type>" in text
        assert "<manual_created_today>1</manual_created_today>" in text
