"""Instances, restores, image edits and stored-filter clears over aioresponses: the exact
forms sent, the refusals made before anything is sent, and the rebuild password kept
out of every error and log line."""

from __future__ import annotations

import asyncio
import itertools
import logging
import traceback
import uuid
from collections.abc import Callable
from typing import Any
from unittest import mock

import aiohttp
import pytest

import zomro_async as z
from tests.conftest import QUICK_RETRY, TOKEN, FakeApi, doc, listing
from zomro_async._core._inferred import (
    FILTER_CLEAR_REUSE,
    INSTANCES_FILTER,
    REBUILD_STATUS_LAG,
    SNAPSHOTS_FILTER,
)
from zomro_async.testing import VirtualClock

VM = 5203773
OTHER_VM = 5203774
SNAP = 5204214
FLEIO = uuid.UUID("afd72725-81aa-43ad-984c-a3f3a05b4b84")
PW = "Sup3rSecretRoot"  # a password the panel's rules accept
BASE = {"out": "json", "lang": "en", "auth": TOKEN}
IS = z.InstanceStatus


def vm_row(instance_id: int = VM, status: str = "active", **more: str) -> dict[str, str]:
    return {
        "id": str(instance_id),
        "servername": f"vps-{instance_id}",
        "instance_status": status,
        **more,
    }


def snapshot(
    status: z.SnapshotStatus = z.SnapshotStatus.ACTIVE,
    fleio_id: uuid.UUID | None = FLEIO,
    instance_id: int = VM,
) -> z.Snapshot:
    return z.Snapshot(
        id=SNAP, instance_id=instance_id, name="MySnapshot", status=status, fleio_id=fleio_id
    )


def preview(instance_id: int = VM, protected: Any = "off", **more: Any) -> dict[str, Any]:
    """The `image.edit` preview of SNAP, as the emulator and the notes show it."""
    fields: dict[str, Any] = {
        "elid": str(SNAP),
        "architecture": "x86_64",
        "created": "2024-07-23",
        "disk_format": "qcow2",
        "fleio_id": str(FLEIO),
        "fleio_status": "Active",
        "id": str(SNAP),
        "image_name": "MySnapshot",
        "image_size": "3",
        "image_type": "Snapshot",
        "instances_id": str(instance_id),
        "min_disk": "20",
        "min_ram": "0",
        "os_distro": "Ubuntu",
        "os_version": "22.04 x64",
        "protected": protected,
        "region": "Netherlands-2",
        "updated": "2024-07-23",
        "url": "",
        "slist": [{"$name": "disk_format", "val": [{"$key": "qcow2", "$": "qcow2"}]}],
        **more,
    }
    return doc(**fields)


def rebuild_form(**access: str) -> dict[str, str]:
    return {
        "func": "instances.fleio.rebuild",
        **BASE,
        "elid": str(VM),
        "zone": "own",
        "select_rebuild": str(FLEIO),
        **access,
        "sok": "ok",
    }


# -- the instances listing and its stored-filter clear ----------------------------------


async def test_list_sends_no_page_size_and_follows_every_page(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on(
        "instances",
        doc(elem=[vm_row(1), vm_row(2)], p_elems="3", p_cnt="2", p_num="1"),
        doc(elem=[vm_row(3, "stopped")], p_elems="3", p_cnt="2", p_num="2"),
    )
    listed = await client.instances.list()
    assert [(i.id, i.status) for i in listed] == [(1, IS.ACTIVE), (2, IS.ACTIVE), (3, IS.STOPPED)]
    assert api.forms == [
        {"func": "instances", **BASE},
        {"func": "instances", **BASE, "p_num": "2"},
    ]
    # Bound to the client: a refresh lists again.
    api.on("instances", listing(vm_row(3, "active")))
    assert (await listed[2].refresh()).status is IS.ACTIVE


async def test_the_stored_filter_is_cleared_with_every_field_empty_before_the_listing(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on("instances.filter", doc(ok={}))  # scripted: it shows in `forms`, in order
    api.on("instances", listing(vm_row()))
    await client.instances.list()
    clear = {
        "func": "instances.filter",
        **BASE,
        "autoprolong": "",
        "cost_from": "",
        "cost_to": "",
        "datacenter": "",
        "domain": "",
        "expiredate": "",
        "id": "",
        "ip": "",
        "opendate": "",
        "orderdatefrom": "",
        "orderdateto": "",
        "period": "",
        "pricelist": "",
        "instance_status": "",
        "name": "",
        "sok": "ok",
    }
    assert api.forms == [clear, {"func": "instances", **BASE}]
    assert set(INSTANCES_FILTER.fields) == set(clear) - {"func", "sok", *BASE}


async def test_the_snapshots_filter_clear_carries_no_instance(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on("instances.snapshots.filter", doc(ok={}))
    api.on("instances.snapshots", listing())
    await client.snapshots.list(VM)
    assert api.forms[0] == {
        "func": "instances.snapshots.filter",
        **BASE,
        **dict.fromkeys(SNAPSHOTS_FILTER.fields, ""),
        "sok": "ok",
    }
    assert set(SNAPSHOTS_FILTER.fields) == {"name", "id", "fleio_status", "os_distro", "protected"}


async def test_a_poll_listing_reuses_a_clear_within_the_window_and_clears_after(
    api: FakeApi, client: z.ZomroClient, clock: VirtualClock
) -> None:
    # The poll's listings (the session's list_rows) reuse a recent clear; the
    # poller proves any absence with a listing of its own clear.
    api.on("instances", listing(vm_row()))
    session = client._api
    await session.list_rows("instances", {}, stored_filter=INSTANCES_FILTER)
    assert len(api.filter_forms) == 1
    clock.advance(FILTER_CLEAR_REUSE * 0.9)
    await session.list_rows("instances", {}, stored_filter=INSTANCES_FILTER)
    assert len(api.filter_forms) == 1  # reused
    clock.advance(FILTER_CLEAR_REUSE * 0.2)  # 1.1 windows after the clear
    await session.list_rows("instances", {}, stored_filter=INSTANCES_FILTER)
    assert len(api.filter_forms) == 2
    assert [f["func"] for f in api.filter_forms] == ["instances.filter"] * 2
    assert api.funcs() == ["instances"] * 3


async def test_a_listing_the_caller_reads_always_clears_itself(
    api: FakeApi, client: z.ZomroClient
) -> None:
    # A filter saved since the last clear could hide rows: list() and get() (whose
    # NotFoundError is an absence) each clear the filter themselves, even at once.
    api.on("instances", listing(vm_row()))
    await client.instances.list()
    with pytest.raises(z.NotFoundError):
        await client.instances.get(OTHER_VM)
    await client.instances.list()
    assert len(api.filter_forms) == 3
    assert api.funcs() == ["instances"] * 3


async def test_each_list_function_has_its_own_clear(api: FakeApi, client: z.ZomroClient) -> None:
    api.on("instances", listing(vm_row()))
    api.on("instances.snapshots", listing())
    session = client._api
    await session.list_rows("instances", {}, stored_filter=INSTANCES_FILTER)
    for vm in (VM, OTHER_VM):  # the filter is the user's: one clear serves both
        await session.list_rows(
            "instances.snapshots", {"elid": str(vm)}, stored_filter=SNAPSHOTS_FILTER
        )
    assert [f["func"] for f in api.filter_forms] == [
        "instances.filter",
        "instances.snapshots.filter",
    ]


async def test_concurrent_poll_listings_share_one_clear(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on("instances", listing(vm_row()))
    session = client._api
    await asyncio.gather(
        *(session.list_rows("instances", {}, stored_filter=INSTANCES_FILTER) for _ in range(10))
    )
    assert len(api.filter_forms) == 1
    assert api.funcs() == ["instances"] * 10


async def test_a_clear_refused_fails_the_listing_and_is_tried_again_next_time(
    api: FakeApi, client: z.ZomroClient
) -> None:
    refused = {"doc": {"error": {"$type": "value", "$object": "name", "msg": {"$": "no"}}}}
    api.on("instances.filter", refused, doc(ok={}))
    api.on("instances", listing(vm_row()))
    with pytest.raises(z.InvalidRequestError):
        await client.instances.list()
    assert api.funcs() == ["instances.filter"]  # nothing listed behind a filter left in place
    assert [i.id for i in await client.instances.list()] == [VM]
    assert api.funcs() == ["instances.filter", "instances.filter", "instances"]


# -- get and the waits ------------------------------------------------------------------


async def test_get_finds_one_instance_and_refuses_an_unknown_id(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on("instances", listing(vm_row(1), vm_row(VM, datacentername="Netherlands-2")))
    got = await client.instances.get(VM)
    assert (got.id, got.name, got.region) == (VM, f"vps-{VM}", "Netherlands-2")
    with pytest.raises(z.NotFoundError) as caught:
        await client.instances.get(42)
    assert (caught.value.type, caught.value.object, caught.value.func) == (
        "missed",
        "elid",
        "instances",
    )


@pytest.mark.parametrize(
    ("status", "error"),
    [
        ("no-such-state", ValueError),
        ("unknown", ValueError),
        (IS.UNKNOWN, ValueError),
        ("", ValueError),
        (5, TypeError),
        (None, TypeError),
        (z.SnapshotStatus.ACTIVE, TypeError),
    ],
)
async def test_wait_status_refuses_a_status_it_cannot_await_before_anything_is_sent(
    api: FakeApi, client: z.ZomroClient, status: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await client.instances.wait_status(VM, status)  # type: ignore[arg-type]
    assert api.forms == []
    assert api.filter_forms == []


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.get(0),
        lambda m: m.get(True),
        lambda m: m.wait_status("1", IS.ACTIVE),
        lambda m: m.wait_status(VM, IS.ACTIVE, timeout=-1),
        lambda m: m.wait_settled(VM, timeout=float("inf")),
        lambda m: m.wait_settled(VM, on_update=_async_hook),
    ],
)
async def test_bad_ids_timeouts_and_hooks_raise_before_anything_is_sent(
    api: FakeApi, client: z.ZomroClient, call: Callable[[z.InstancesManager], Any]
) -> None:
    with pytest.raises((TypeError, ValueError)):
        await call(client.instances)
    assert api.forms == []
    assert api.filter_forms == []


async def _async_hook(instance: z.Instance) -> None:
    return None


async def test_wait_status_takes_the_status_as_text_and_waits_through_the_poll(
    api: FakeApi, client: z.ZomroClient, clock: VirtualClock
) -> None:
    api.on(
        "instances",
        listing(vm_row(status="stopping")),
        listing(vm_row(status="stopping")),
        listing(vm_row(status="Stopped")),
    )
    seen: list[z.InstanceStatus] = []
    got = await client.instances.wait_status(
        VM, " STOPPED ", on_update=lambda i: seen.append(i.status)
    )
    assert got.status is IS.STOPPED
    assert got.status_text == "Stopped"  # as the API sent it
    assert seen == [IS.STOPPING, IS.STOPPING]
    assert clock.monotonic() == pytest.approx(2.0 + 3.0)  # the poll schedule: 2 s, then 3 s


async def test_reaching_error_fails_a_wait_with_the_instance(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on("instances", listing(vm_row(status="rebuilding")), listing(vm_row(status="error")))
    with pytest.raises(z.InstanceFailed) as caught:
        await client.instances.wait_status(VM, IS.ACTIVE)
    assert caught.value.instance.id == VM
    assert caught.value.instance.status is IS.ERROR
    assert "error" in str(caught.value)


async def test_error_can_be_awaited_as_the_goal(api: FakeApi, client: z.ZomroClient) -> None:
    api.on("instances", listing(vm_row(status="error")))
    assert (await client.instances.wait_status(VM, "error")).status is IS.ERROR


async def test_an_instance_that_vanishes_fails_the_wait_with_its_last_state(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on("instances", listing(vm_row(status="stopping")), listing(vm_row(1)))
    with pytest.raises(z.InstanceFailed) as caught:
        await client.instances.wait_settled(VM)
    assert caught.value.instance.status is IS.STOPPING


async def test_a_wait_on_an_unknown_instance_is_not_found(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on("instances", listing(vm_row(1)))
    with pytest.raises(z.NotFoundError):
        await client.instances.wait_settled(VM)


async def test_an_undocumented_status_is_not_taken_for_settled(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on(
        "instances",
        listing(vm_row(status="shelving_offloaded")),
        listing(vm_row(status="active")),
    )
    got = await client.instances.wait_settled(VM)
    assert got.status is IS.ACTIVE
    assert api.funcs() == ["instances", "instances"]


# -- the rebuild form ------------------------------------------------------------------


async def test_restore_with_a_password_posts_the_rebuild_form(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on("instances.fleio.rebuild", doc(ok={}))
    api.on("instances", listing(vm_row()))
    got = await client.instances.restore(VM, snapshot(), password=PW)
    assert got.id == VM
    assert api.forms == [
        rebuild_form(enablessh="off", password=PW),
        {"func": "instances", **BASE},
    ]


async def test_restore_with_an_ssh_key_sends_its_canonical_uuid_and_no_password(
    api: FakeApi, client: z.ZomroClient
) -> None:
    key = uuid.UUID("0f0e0d0c-0b0a-4908-8706-050403020100")
    api.on("instances.fleio.rebuild", doc(ok={}))
    api.on("instances", listing(vm_row()))
    await client.instances.restore(VM, snapshot(), ssh_key=f"  {str(key).upper()} ")
    assert api.forms[0] == rebuild_form(enablessh="on", ssh_keys=str(key))
    assert "password" not in api.forms[0]


async def test_a_snapshot_without_a_fleio_id_is_looked_up_with_image_edit(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on("image.edit", preview())
    api.on("instances.fleio.rebuild", doc(ok={}))
    api.on("instances", listing(vm_row()))
    await client.instances.restore(VM, snapshot(fleio_id=None), password=PW)
    assert api.forms[0] == {"func": "image.edit", **BASE, "elid": str(SNAP)}
    assert api.forms[1] == rebuild_form(enablessh="off", password=PW)
    assert api.funcs() == ["image.edit", "instances.fleio.rebuild", "instances"]


async def test_an_image_id_is_looked_up_and_must_be_active(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on("image.edit", preview())
    api.on("instances.fleio.rebuild", doc(ok={}))
    api.on("instances", listing(vm_row()))
    await client.instances.restore(VM, SNAP, password=PW)
    assert api.forms[1] == rebuild_form(enablessh="off", password=PW)

    api._script["image.edit"] = [preview(fleio_status="Saving")]
    api.forms.clear()
    with pytest.raises(ValueError, match="not Active"):
        await client.instances.restore(VM, SNAP, password=PW)
    assert api.funcs() == ["image.edit"]  # no rebuild of an image still being taken


async def test_an_image_edit_without_a_readable_fleio_id_sends_no_rebuild(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on("image.edit", preview(fleio_id="not-a-uuid"))
    with pytest.raises(z.ResponseError) as caught:
        await client.instances.restore(VM, snapshot(fleio_id=None), password=PW)
    assert caught.value.field == "fleio_id"
    assert api.funcs() == ["image.edit"]


async def test_an_unknown_image_id_is_not_found_and_sends_no_rebuild(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on("image.edit", {"doc": {"error": {"$type": "missed", "$object": "elid"}}})
    with pytest.raises(z.NotFoundError):
        await client.instances.restore(VM, 777, password=PW)
    assert api.funcs() == ["image.edit"]


async def test_a_busy_instance_is_a_conflict_once_conflict_timeout_is_spent(
    api: FakeApi, make_client: Callable[..., z.ZomroClient], clock: VirtualClock
) -> None:
    busy = {"doc": {"error": {"$type": "exists", "$object": "runningoperation"}}}
    api.on("instances.fleio.rebuild", busy)
    api.on("instances", listing(vm_row(status="building")))
    async with make_client(conflict_timeout=20.0) as client:
        with pytest.raises(z.ConflictError):
            await client.instances.restore(VM, snapshot(), password=PW)
    assert 20.0 <= clock.monotonic() < 30.0
    assert api.funcs().count("instances.fleio.rebuild") >= 2


async def test_a_lost_rebuild_never_seen_is_sent_again_only_after_the_lag_watch(
    api: FakeApi, client: z.ZomroClient, clock: VirtualClock
) -> None:
    # The answer is lost and the instance never reads `rebuilding`: it did not
    # begin. It is sent again, but only after a watch of the whole lag.
    api.clock = clock
    api.on("instances.fleio.rebuild", (502, "<html>502 Bad Gateway</html>"), doc(ok={}))
    api.on("instances", listing(vm_row()))
    got = await client.instances.restore(VM, snapshot(), password=PW)
    assert got.id == VM
    first, second = api.times("instances.fleio.rebuild")
    assert second - first >= REBUILD_STATUS_LAG


async def test_a_rebuild_never_answered_nor_seen_ends_after_the_attempts(
    api: FakeApi, client: z.ZomroClient, clock: VirtualClock
) -> None:
    # The watch is off the retry budget: every attempt is watched for the lag.
    api.clock = clock
    api.on("instances.fleio.rebuild", (502, "<html>502 Bad Gateway</html>"))
    api.on("instances", listing(vm_row()))
    with pytest.raises(z.TransportError):
        await client.instances.restore(VM, snapshot(), password=PW)
    sent = api.times("instances.fleio.rebuild")
    assert len(sent) == QUICK_RETRY.attempts
    assert all(b - a >= REBUILD_STATUS_LAG for a, b in itertools.pairwise(sent))
    assert clock.monotonic() - sent[-1] >= REBUILD_STATUS_LAG  # the last one watched too


@pytest.mark.parametrize(
    "answer",
    [
        (200, '{"doc": {"ok"'),
        (500, "<html>500 Internal Server Error</html>"),
        (502, "<html>502 Bad Gateway</html>"),
        (503, "<html>503 Service Temporarily Unavailable</html>"),
        (504, "<html>504 Gateway Time-out</html>"),
        aiohttp.ServerDisconnectedError(),
    ],
    ids=["truncated-2xx", "500", "502", "503", "504", "disconnect"],
)
async def test_a_rebuild_whose_answer_may_have_acted_is_watched_for_the_lag_first(
    api: FakeApi, client: z.ZomroClient, clock: VirtualClock, answer: Any
) -> None:
    # The server may have started the rebuild, and the instance reads its old
    # status for a while, as after any accepted rebuild: one look is not enough.
    api.clock = clock
    api.on("instances.fleio.rebuild", answer, doc(ok={}))
    api.on("instances", listing(vm_row()))
    await client.instances.restore(VM, snapshot(), password=PW)
    first, second = api.times("instances.fleio.rebuild")
    assert second - first >= REBUILD_STATUS_LAG


@pytest.mark.parametrize("answer", [(429, "<html>429</html>"), aiohttp.ClientConnectorError])
async def test_a_rebuild_that_certainly_did_not_act_is_sent_again_at_once(
    api: FakeApi, client: z.ZomroClient, clock: VirtualClock, answer: Any
) -> None:
    api.clock = clock
    if answer is aiohttp.ClientConnectorError:
        answer = aiohttp.ClientConnectorError(mock.Mock(), OSError(111, "refused"))
    api.on("instances.fleio.rebuild", answer, doc(ok={}))
    api.on("instances", listing(vm_row()))
    await client.instances.restore(VM, snapshot(), password=PW)
    first, second = api.times("instances.fleio.rebuild")
    assert second - first < 5.0  # the backoff only


async def test_a_lost_rebuild_seen_rebuilding_is_the_result(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on("instances.fleio.rebuild", (504, "<html>504 Gateway Time-out</html>"))
    api.on(
        "instances",
        listing(vm_row()),  # the old status, for a while
        listing(vm_row(status="rebuilding")),
    )
    got = await client.instances.restore(VM, snapshot(), password=PW)
    assert got.status is IS.REBUILDING
    assert api.funcs().count("instances.fleio.rebuild") == 1


async def test_after_a_restore_the_old_status_is_not_taken_for_the_end(
    api: FakeApi, client: z.ZomroClient, clock: VirtualClock
) -> None:
    # The instance reads `active` for a while after the rebuild was accepted: the
    # wait ends only once it read `rebuilding` and left it.
    api.on("instances.fleio.rebuild", doc(ok={}))
    api.on(
        "instances",
        listing(vm_row()),
        listing(vm_row()),
        listing(vm_row()),
        listing(vm_row(status="rebuilding")),
        listing(vm_row()),
    )
    got = await client.instances.restore(VM, snapshot(), password=PW, wait=True)
    assert got.status is IS.ACTIVE
    assert api.funcs().count("instances") == 5


async def test_after_a_restore_whose_status_never_moves_the_wait_ends_after_the_lag(
    api: FakeApi, client: z.ZomroClient, clock: VirtualClock
) -> None:
    api.clock = clock
    api.on("instances.fleio.rebuild", doc(ok={}))
    api.on("instances", listing(vm_row()))
    got = await client.instances.restore(VM, snapshot(), password=PW, wait=True)
    assert got.status is IS.ACTIVE
    sent = api.times("instances.fleio.rebuild")[0]
    last_listing = api.times("instances")[-1]
    # The listing that ended it started a full lag after the rebuild; none before did.
    assert last_listing - sent >= REBUILD_STATUS_LAG
    assert api.times("instances")[-2] - sent < REBUILD_STATUS_LAG


# -- refusals before anything is sent ---------------------------------------------------


BAD_PASSWORDS = [
    pytest.param("Ab1defg", ValueError, id="7-chars"),
    pytest.param("Ab1" + "x" * 46, ValueError, id="49-chars"),
    pytest.param("Ab1 defgh", ValueError, id="space"),
    pytest.param("Ab1défghi", ValueError, id="non-ascii"),
    pytest.param("Ab1\tdefgh", ValueError, id="tab"),
    pytest.param("abcdefg1", ValueError, id="no-upper"),
    pytest.param("ABCDEFG1", ValueError, id="no-lower"),
    pytest.param("Abcdefgh", ValueError, id="no-digit"),
    pytest.param(b"Abcdefg1", TypeError, id="bytes"),
    pytest.param(12345678, TypeError, id="int"),
    *(pytest.param(f"Ab1def{ch}gh", ValueError, id=f"forbidden-{ch}") for ch in "\"#%&'()*;<>?@|"),
]


@pytest.mark.parametrize(("password", "error"), BAD_PASSWORDS)
async def test_a_password_the_panel_refuses_is_refused_before_anything_is_sent(
    api: FakeApi, client: z.ZomroClient, password: object, error: type[Exception]
) -> None:
    with pytest.raises(error) as caught:
        await client.instances.restore(VM, snapshot(fleio_id=None), password=password)  # type: ignore[arg-type]
    if isinstance(password, str):
        assert password not in str(caught.value)
    assert api.forms == []
    assert api.filter_forms == []


SAVING, KILLED, DELETING = (
    z.SnapshotStatus.SAVING,
    z.SnapshotStatus.KILLED,
    z.SnapshotStatus.DELETING,
)
KEY = "0f0e0d0c-0b0a-4908-8706-050403020100"


@pytest.mark.parametrize(
    ("instance_id", "image", "access", "error"),
    [
        pytest.param(VM, snapshot(), {"password": PW, "ssh_key": KEY}, ValueError, id="both"),
        pytest.param(VM, snapshot(), {}, ValueError, id="neither"),
        pytest.param(VM, snapshot(), {"ssh_key": "id_rsa.pub"}, ValueError, id="key-not-uuid"),
        pytest.param(VM, snapshot(), {"ssh_key": ""}, ValueError, id="key-empty"),
        pytest.param(VM, snapshot(), {"ssh_key": uuid.UUID(KEY)}, TypeError, id="key-uuid"),
        pytest.param(VM, snapshot(SAVING), {"password": PW}, ValueError, id="saving"),
        pytest.param(VM, snapshot(KILLED), {"password": PW}, ValueError, id="killed"),
        pytest.param(VM, snapshot(DELETING, None), {"password": PW}, ValueError, id="deleting"),
        pytest.param(VM, True, {"password": PW}, TypeError, id="image-bool"),
        pytest.param(VM, str(SNAP), {"password": PW}, TypeError, id="image-str"),
        pytest.param(VM, None, {"password": PW}, TypeError, id="image-none"),
        pytest.param(VM, 0, {"password": PW}, ValueError, id="image-zero"),
        pytest.param(VM, -SNAP, {"password": PW}, ValueError, id="image-negative"),
        pytest.param(VM, 2**63, {"password": PW}, ValueError, id="image-huge"),
        pytest.param(0, snapshot(), {"password": PW}, ValueError, id="instance-zero"),
        pytest.param(True, snapshot(), {"password": PW}, TypeError, id="instance-bool"),
        pytest.param(str(VM), snapshot(), {"password": PW}, TypeError, id="instance-str"),
        pytest.param(VM, snapshot(), {"password": PW, "timeout": -1}, ValueError, id="timeout"),
    ],
)
async def test_restore_refusals_send_nothing(
    api: FakeApi,
    client: z.ZomroClient,
    instance_id: object,
    image: object,
    access: dict[str, Any],
    error: type[Exception],
) -> None:
    with pytest.raises(error):
        await client.instances.restore(instance_id, image, **access)  # type: ignore[arg-type]
    assert api.forms == []
    assert api.filter_forms == []


async def test_snapshot_restore_refuses_what_is_not_a_snapshot(
    api: FakeApi, client: z.ZomroClient
) -> None:
    with pytest.raises(TypeError):
        await client.snapshots.restore(SNAP, password=PW)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await client.snapshots.restore(snapshot(), onto="5203774", password=PW)  # type: ignore[arg-type]
    assert api.forms == []
    assert api.filter_forms == []


# -- the password stays secret ------------------------------------------------------------


def _echoing_refusal() -> dict[str, Any]:
    """A hostile server's refusal that quotes the password it was sent, in every place."""
    return {
        "doc": {
            "error": {
                "$type": "value",
                "$object": "password",
                "msg": {"$": f"The password '{PW}' is refused"},
                "detail": {"$": f"password={PW}&enablessh=off (form: password%3D{PW})"},
                "param": [
                    {"$name": "object", "$": "password"},
                    {"$name": "value", "$": PW},
                ],
            }
        }
    }


async def test_a_password_the_server_echoes_never_shows_in_the_error(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on("instances.fleio.rebuild", _echoing_refusal())
    with pytest.raises(z.InvalidRequestError) as caught:
        await client.instances.restore(VM, snapshot(), password=PW)
    err = caught.value
    shown = [
        str(err),
        repr(err),
        err.message,
        err.detail,
        *err.params.values(),
        *map(str, err.args),
        "".join(traceback.format_exception(err)),
    ]
    assert all(PW not in text for text in shown), shown
    assert err.params["value"] == "***"
    assert err.object == "password"


async def test_a_password_echoed_in_an_error_page_never_shows(
    api: FakeApi, client: z.ZomroClient
) -> None:
    page = f"<html><body>400 bad request: password={PW}</body></html>"
    api.on("instances.fleio.rebuild", (400, page))
    api.on("instances", listing(vm_row()))
    with pytest.raises(z.ZomroError) as caught:
        await client.instances.restore(VM, snapshot(), password=PW)
    chain: list[BaseException] = []
    error: BaseException | None = caught.value
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    text = "".join(traceback.format_exception(caught.value))
    assert PW not in text
    assert all(PW not in str(e) and PW not in repr(e) for e in chain)
    assert any("***" in getattr(e, "body_excerpt", "") for e in chain)


async def test_the_password_never_reaches_a_debug_log(
    api: FakeApi, client: z.ZomroClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="zomro_async")
    api.on("instances.fleio.rebuild", _echoing_refusal(), doc(ok={}))
    api.on("instances", listing(vm_row()))
    with pytest.raises(z.InvalidRequestError):
        await client.instances.restore(VM, snapshot(), password=PW)
    await client.instances.restore(VM, snapshot(), password=PW)
    assert "instances.fleio.rebuild" in caplog.text  # the calls were logged...
    assert "'password': '***'" in caplog.text  # ...with the password redacted
    assert PW not in caplog.text
    assert all(PW not in str(r.args) for r in caplog.records)


async def test_a_password_echoed_in_the_error_object_never_shows(
    api: FakeApi, client: z.ZomroClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="zomro_async")
    echo = {"doc": {"error": {"$type": "value", "$object": PW, "msg": {"$": "refused"}}}}
    api.on("instances.fleio.rebuild", echo)
    with pytest.raises(z.ApiError) as caught:
        await client.instances.restore(VM, snapshot(), password=PW)
    assert PW not in str(caught.value)
    assert PW not in repr(caught.value)
    assert PW not in caught.value.object
    assert PW not in caplog.text


# -- re-login around the clear and the rebuild ----------------------------------------------

LOGIN = doc(auth={"$id": "sid-first-0001"})
RELOGIN = doc(auth={"$id": "sid-second-0002"})
REFUSED = {"doc": {"error": {"$type": "access", "$object": "", "msg": {"$": "Insufficient"}}}}


async def test_a_listing_refused_on_a_live_session_is_final_without_a_new_login(
    api: FakeApi, login_client: z.ZomroClient
) -> None:
    # The clear got through on the session; the listing never does: no rights
    # for it, which the session's check tells from an expiry. No login more.
    api.on("auth", LOGIN, RELOGIN)
    api.on("instances", REFUSED)
    api.on("whoami", doc(ok={}, user={"$": "alice"}))
    with pytest.raises(z.AuthError):
        await login_client.instances.list()
    with pytest.raises(z.AuthError):
        await login_client.instances.list()
    assert api.funcs() == ["auth", "instances", "whoami", "instances", "whoami"]
    assert len(api.filter_forms) >= 1


async def test_a_session_that_listed_instances_before_is_renewed_when_refused(
    api: FakeApi, login_client: z.ZomroClient, clock: VirtualClock
) -> None:
    api.on("auth", LOGIN, RELOGIN)
    api.on("instances", listing(vm_row()), REFUSED, listing(vm_row()))
    await login_client.instances.list()
    clock.advance(FILTER_CLEAR_REUSE * 2)  # the next listing clears again, on the old session
    assert [i.id for i in await login_client.instances.list()] == [VM]
    assert api.funcs() == ["auth", "instances", "instances", "auth", "instances"]
    assert [f["auth"] for f in api.forms if f["func"] == "instances"] == [
        "sid-first-0001",
        "sid-first-0001",
        "sid-second-0002",
    ]


async def test_a_rebuild_refused_on_a_live_session_is_sent_once(
    api: FakeApi, login_client: z.ZomroClient
) -> None:
    api.on("auth", LOGIN, RELOGIN)
    api.on("instances", listing(vm_row()))
    api.on("instances.fleio.rebuild", REFUSED)
    api.on("whoami", doc(ok={}, user={"$": "alice"}))
    await login_client.instances.list()  # the session serves instances...
    with pytest.raises(z.AuthError):  # ...but the rebuild is not allowed
        await login_client.instances.restore(VM, snapshot(), password=PW)
    assert api.funcs().count("auth") == 1
    assert api.funcs().count("instances.fleio.rebuild") == 1


# -- image.edit: protect and unprotect ----------------------------------------------------


def commit_form(protected: str) -> dict[str, str]:
    return {
        "func": "image.edit",
        **BASE,
        "region": "Netherlands-2",
        "min_disk": "20",
        "min_ram": "0",
        "disk_format": "qcow2",
        "os_distro": "Ubuntu",
        "os_version": "22.04 x64",
        "architecture": "x86_64",
        "url": "",
        "elid": str(SNAP),
        "image_name": "MySnapshot",
        "protected": protected,
        "clicked_button": "ok",
        "sok": "ok",
    }


@pytest.mark.parametrize(("protect", "flag"), [(True, "on"), (False, "off")])
async def test_protect_previews_then_commits_every_field_sent_back(
    api: FakeApi, client: z.ZomroClient, protect: bool, flag: str
) -> None:
    api.on("image.edit", preview(protected="off" if protect else "on"), doc(ok={}))
    manager = client.snapshots
    await (manager.protect if protect else manager.unprotect)(VM, SNAP)
    assert api.forms == [
        {"func": "image.edit", **BASE, "elid": str(SNAP)},
        commit_form(flag),
    ]


async def test_protect_reads_a_protected_flag_given_only_as_orig(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on("image.edit", preview(protected={"$orig": "off"}), doc(ok={}))
    await client.snapshots.protect(VM, SNAP)
    assert api.forms[1] == commit_form("on")


async def test_protect_through_a_bound_snapshot(api: FakeApi, client: z.ZomroClient) -> None:
    api.on(
        "instances.snapshots",
        listing({"id": str(SNAP), "name": "MySnapshot", "fleio_status": "Active"}),
    )
    api.on("image.edit", preview(), doc(ok={}), preview(protected="on"), doc(ok={}))
    (snap,) = await client.snapshots.list(VM)
    await snap.protect()
    await snap.unprotect()
    assert [f.get("protected") for f in api.forms if f["func"] == "image.edit"] == [
        None,
        "on",
        None,
        "off",
    ]


async def test_protect_of_another_instances_snapshot_is_not_found_and_commits_nothing(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on("image.edit", preview(instance_id=OTHER_VM), doc(ok={}))
    with pytest.raises(z.NotFoundError) as caught:
        await client.snapshots.protect(VM, SNAP)
    assert str(VM) in str(caught.value)
    assert str(SNAP) in str(caught.value)
    assert api.forms == [{"func": "image.edit", **BASE, "elid": str(SNAP)}]


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.protect(0, SNAP),
        lambda s: s.protect(VM, True),
        lambda s: s.unprotect("1", SNAP),
        lambda s: s.unprotect(VM, -1),
    ],
)
async def test_protect_refuses_bad_ids_before_anything_is_sent(
    api: FakeApi, client: z.ZomroClient, call: Callable[[z.SnapshotsManager], Any]
) -> None:
    with pytest.raises((TypeError, ValueError)):
        await call(client.snapshots)
    assert api.forms == []


# -- bulk jobs take Instances -------------------------------------------------------------


async def test_create_many_and_rotate_take_instances_and_refuse_a_duplicate(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on("instances", listing(vm_row(VM), vm_row(OTHER_VM)))
    fleet = await client.instances.list()
    with pytest.raises(ValueError, match="duplicate"):
        client.snapshots.create_many([*fleet, VM], "n")
    with pytest.raises(ValueError, match="duplicate"):
        client.snapshots.rotate([fleet[1], OTHER_VM], keep=2)
    assert api.funcs() == ["instances"]
