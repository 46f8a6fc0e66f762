"""Snapshot calls over aioresponses: fields sent, validation, no duplicate creates, waits."""

from __future__ import annotations

import asyncio
import datetime
import itertools
from collections.abc import Callable

import aiohttp
import pytest

import zomro_async as z
from tests.conftest import FakeApi, doc, error, listing, row
from zomro_async.testing import VirtualClock

INSTANCE = 5203773
BUSY = error("exists", "runningoperation", "Another operation is already running")


# -- fields sent ----------------------------------------------------------------


async def test_list_structures_rows_and_binds_them(api: FakeApi, client: z.ZomroClient) -> None:
    api.on(
        "instances.snapshots",
        listing(row(1, "a", "Active", createdate="2024-07-23", protected="on"), row(2, "b")),
    )
    first, second = await client.snapshots.list(INSTANCE)
    assert (first.id, first.name, first.status, first.protected) == (
        1,
        "a",
        z.SnapshotStatus.ACTIVE,
        True,
    )
    assert first.created == datetime.date(2024, 7, 23)
    assert first.instance_id == INSTANCE
    assert second.status is z.SnapshotStatus.SAVING
    api.on("instances.snapshots", listing(row(1, "a", "Active")))
    assert (await first.refresh()).id == 1


async def test_create_posts_the_pages_fields_and_finds_the_new_snapshot(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on("instances.snapshots.edit", doc(ok={}))
    api._script["instances.snapshots"] = [
        listing(row(1, "old", "Active")),
        listing(row(1, "old", "Active"), row(2, "MySnapshot")),
    ]
    snap = await client.snapshots.create(INSTANCE, "MySnapshot")
    assert (snap.id, snap.name, snap.status) == (2, "MySnapshot", z.SnapshotStatus.SAVING)
    create = api.forms[1]
    assert create == {
        "func": "instances.snapshots.edit",
        "out": "json",
        "lang": "en",
        "auth": client._api._session_id,
        "plid": str(INSTANCE),
        "name": "MySnapshot",
        "sok": "ok",
    }


async def test_create_prefers_doc_id_when_the_answer_has_one(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api._script["instances.snapshots"] = [
        listing(),
        listing(row(8, "same"), row(9, "same")),
    ]
    api.on("instances.snapshots.edit", doc(ok={}, id="8"))
    assert (await client.snapshots.create(INSTANCE, "same")).id == 8


async def test_delete_posts_plid_elid_elname_and_sok(api: FakeApi, client: z.ZomroClient) -> None:
    api.on("image.delete", doc(ok={}))
    await client.snapshots.delete(INSTANCE, 5204214)
    form = api.forms[0]
    assert {k: form[k] for k in ("func", "plid", "elid", "elname", "sok")} == {
        "func": "image.delete",
        "plid": str(INSTANCE),
        "elid": "5204214",
        "elname": "5204214",
        "sok": "ok",
    }


async def test_delete_retries_transient_faults(api: FakeApi, client: z.ZomroClient) -> None:
    api.on("image.delete", (502, "<html>bad gateway</html>"), doc(ok={}))
    await client.snapshots.delete(INSTANCE, 9)
    assert api.funcs() == ["image.delete", "image.delete"]


async def test_a_delete_whose_retries_ran_out_looks_in_a_listing_that_clears_anew(
    api: FakeApi, make_client: Callable[..., z.ZomroClient]
) -> None:
    # Every attempt failed and the snapshot is listed Active: not deleted. The
    # look cleared the stored filter itself, though one was cleared a moment
    # ago: a filter saved since could have hidden the row and read as "done".
    quick = z.RetryPolicy(attempts=3, initial_wait=0.0, max_wait=0.0, jitter=0.0)
    api.on("instances.snapshots", listing(row(9)))
    api.on("image.delete", (502, "<html>bad gateway</html>"))
    async with make_client(retry=quick) as client:
        await client.snapshots.list(INSTANCE)
        with pytest.raises(z.TransportError):
            await client.snapshots.delete(INSTANCE, 9)
    assert api.funcs() == ["instances.snapshots", *["image.delete"] * 3, "instances.snapshots"]
    assert len(api.filter_forms) == 2


async def test_a_delete_whose_look_is_refused_raises_its_own_error(
    api: FakeApi, make_client: Callable[..., z.ZomroClient]
) -> None:
    quick = z.RetryPolicy(attempts=2, initial_wait=0.0, max_wait=0.0, jitter=0.0)
    api.on("instances.snapshots", error("value", "elid", "cannot list"))
    api.on("image.delete", (502, "<html>bad gateway</html>"))
    async with make_client(retry=quick) as client:
        with pytest.raises(z.TransportError) as caught:
            await client.snapshots.delete(INSTANCE, 9)
    assert caught.value.status == 502
    assert isinstance(caught.value.__context__, z.InvalidRequestError)


# -- validation: nothing is sent --------------------------------------------------


@pytest.mark.parametrize(
    ("instance_id", "name", "error_type"),
    [
        (True, "x", TypeError),
        ("5203773", "x", TypeError),
        (5.0, "x", TypeError),
        (0, "x", ValueError),
        (-1, "x", ValueError),
        (2**63, "x", ValueError),
        (1, "", ValueError),
        (1, "   ", ValueError),
        (1, "a" * 256, ValueError),
        (1, "bad\nname", ValueError),
        (1, "nul\x00", ValueError),
        (1, None, TypeError),
        (1, b"bytes", TypeError),
    ],
)
async def test_bad_create_input_raises_before_anything_is_sent(
    api: FakeApi,
    client: z.ZomroClient,
    instance_id: object,
    name: object,
    error_type: type[Exception],
) -> None:
    with pytest.raises(error_type):
        await client.snapshots.create(instance_id, name)  # type: ignore[arg-type]
    assert api.forms == []


async def test_a_255_character_name_is_accepted(api: FakeApi, client: z.ZomroClient) -> None:
    name = "ы" * 255
    api._script["instances.snapshots"] = [listing(), listing(row(4, name))]
    api.on("instances.snapshots.edit", doc(ok={}))
    assert (await client.snapshots.create(1, name)).name == name


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.list(0),
        lambda s: s.get(1, False),
        lambda s: s.delete(1, -5),
        lambda s: s.delete("1", 5),
        lambda s: s.wait_active(1, 2, timeout=-1),
        lambda s: s.wait_active(1, 2, timeout=float("nan")),
        lambda s: s.wait_deleted(1, 2, timeout="10"),
    ],
)
async def test_bad_ids_and_timeouts_raise_before_anything_is_sent(
    api: FakeApi, client: z.ZomroClient, call: Callable[[z.SnapshotsManager], object]
) -> None:
    with pytest.raises((TypeError, ValueError)):
        await call(client.snapshots)  # type: ignore[misc]
    assert api.forms == []


# -- creates are never blindly retried ---------------------------------------------


@pytest.mark.parametrize(
    "ambiguous",
    [
        (502, "<html>502 Bad Gateway</html>"),
        (200, '{"doc": {"ok"'),
        aiohttp.ServerDisconnectedError(),
        TimeoutError(),
    ],
    ids=["502", "truncated", "disconnect", "timeout"],
)
async def test_an_ambiguous_create_that_made_the_snapshot_is_no_duplicate(
    api: FakeApi, client: z.ZomroClient, ambiguous: tuple[int, str] | BaseException
) -> None:
    api._script["instances.snapshots"] = [listing(), listing(row(77, "nightly"))]
    api.on("instances.snapshots.edit", ambiguous)
    snap = await client.snapshots.create(INSTANCE, "nightly")
    assert snap.id == 77
    assert api.funcs().count("instances.snapshots.edit") == 1


async def test_an_ambiguous_create_that_made_nothing_is_tried_again(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api._script["instances.snapshots"] = [listing(), listing(), listing(row(5, "n"))]
    api.on("instances.snapshots.edit", (503, "<html>busy</html>"), doc(ok={}))
    assert (await client.snapshots.create(INSTANCE, "n")).id == 5
    assert api.funcs() == [
        "instances.snapshots",
        "instances.snapshots.edit",
        "instances.snapshots",
        "instances.snapshots.edit",
        "instances.snapshots",
    ]


async def test_create_gives_up_after_the_retry_budget(
    api: FakeApi, make_client: Callable[..., z.ZomroClient]
) -> None:
    api.on("instances.snapshots", listing())
    api.on("instances.snapshots.edit", (502, "<html>down</html>"))
    # A one-second grace leaves the attempts, not the time, to end the create.
    async with make_client(request_timeout=1.0) as client:
        with pytest.raises(z.TransportError):
            await client.snapshots.create(INSTANCE, "n")
    assert api.funcs().count("instances.snapshots.edit") == client.retry.attempts


async def test_a_refused_create_is_not_retried(api: FakeApi, client: z.ZomroClient) -> None:
    api.on("instances.snapshots", listing())
    api.on("instances.snapshots.edit", (400, "<html>bad request</html>"))
    with pytest.raises(z.TransportError):
        await client.snapshots.create(INSTANCE, "n")
    assert api.funcs().count("instances.snapshots.edit") == 1


async def test_a_conflict_is_waited_out(api: FakeApi, client: z.ZomroClient) -> None:
    # The listing shows nothing in progress, yet the API still says busy.
    quiet = listing(row(1, "prev", "Active"))
    api._script["instances.snapshots"] = [
        quiet,  # before
        quiet,  # after the first refusal: nothing of ours landed
        quiet,  # after the second
        listing(row(1, "prev", "Active"), row(2, "n")),
    ]
    api.on("instances.snapshots.edit", BUSY, BUSY, doc(ok={}))
    assert (await client.snapshots.create(INSTANCE, "n")).id == 2
    assert api.funcs().count("instances.snapshots.edit") == 3


async def test_a_conflict_caused_by_our_own_late_request_is_its_result(
    api: FakeApi, client: z.ZomroClient
) -> None:
    # The first post timed out; the server ran it late, so the re-send meets a
    # conflict with our own snapshot: that snapshot is the result, not a retry.
    api._script["instances.snapshots"] = [
        listing(),  # before
        listing(),  # after the timeout...
        listing(),  # ...and through the grace period
        listing(row(9, "n")),  # after the conflict
    ]
    api.on("instances.snapshots.edit", TimeoutError(), BUSY, doc(ok={}))
    async with z.ZomroClient(
        token="t0ken", clock=client.clock, request_timeout=0.001, retry=client.retry
    ) as quick:
        assert (await quick.snapshots.create(INSTANCE, "n")).id == 9
    assert api.funcs().count("instances.snapshots.edit") == 2


async def test_a_conflict_past_conflict_timeout_is_raised(
    api: FakeApi, make_client: Callable[..., z.ZomroClient]
) -> None:
    api.on("instances.snapshots", listing(row(1, "prev", "Active")))
    api.on("instances.snapshots.edit", BUSY)
    async with make_client(conflict_timeout=60.0) as client:
        with pytest.raises(z.ConflictError) as caught:
            await client.snapshots.create(INSTANCE, "n")
    assert caught.value.object == "runningoperation"
    assert 1 < api.funcs().count("instances.snapshots.edit") < 30


async def test_an_accepted_create_that_never_shows_up_is_an_unknown_outcome(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on("instances.snapshots", listing())
    api.on("instances.snapshots.edit", doc(ok={}))
    with pytest.raises(z.OutcomeUnknown, match="does not list it") as caught:
        await client.snapshots.create(INSTANCE, "n")
    assert caught.value.accepted
    assert (caught.value.instance_id, caught.value.name) == (INSTANCE, "n")
    assert api.funcs().count("instances.snapshots.edit") == 1


# -- waiting -------------------------------------------------------------------------


def pauses(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


async def test_wait_active_polls_with_backoff_until_active(
    api: FakeApi, client: z.ZomroClient, clock: VirtualClock
) -> None:
    api.clock = clock
    saving = listing(row(3, "n", "Saving"))
    api._script["instances.snapshots"] = [saving] * 6 + [
        listing(row(3, "n", "Active", image_size="3"))
    ]
    snap = await client.snapshots.wait_active(INSTANCE, 3, timeout=3600)
    assert snap.status is z.SnapshotStatus.ACTIVE
    assert snap.image_size == 3
    assert pauses(api.times("instances.snapshots")) == pytest.approx(
        [2.0, 3.0, 4.5, 6.75, 10.125, 15.1875]
    )


async def test_poll_interval_is_capped(
    api: FakeApi, make_client: Callable[..., z.ZomroClient], clock: VirtualClock
) -> None:
    api.clock = clock
    api._script["instances.snapshots"] = [listing(row(3))] * 12 + [listing(row(3, "n", "Active"))]
    async with make_client(poll=z.PollPolicy(maximum=5.0, jitter=0)) as client:
        await client.snapshots.wait_active(INSTANCE, 3)
    assert max(pauses(api.times("instances.snapshots"))) == pytest.approx(5.0)


async def test_jitter_stretches_delays_within_bounds(
    api: FakeApi, make_client: Callable[..., z.ZomroClient], clock: VirtualClock
) -> None:
    api.clock = clock
    api._script["instances.snapshots"] = [listing(row(3))] * 20 + [listing(row(3, "n", "Active"))]
    policy = z.PollPolicy(initial=2.0, multiplier=1.0, jitter=0.5)
    async with make_client(poll=policy) as client:
        await client.snapshots.wait_active(INSTANCE, 3)
    waited = pauses(api.times("instances.snapshots"))
    assert all(2.0 <= s <= 3.0 for s in waited)
    assert len(set(waited)) > 1


@pytest.mark.parametrize("status", ["Killed", "Error", "KILLED", "Deleting"])
async def test_a_failed_state_raises_snapshot_failed_at_once(
    api: FakeApi, client: z.ZomroClient, status: str
) -> None:
    api._script["instances.snapshots"] = [listing(row(3)), listing(row(3, "n", status))]
    with pytest.raises(z.SnapshotFailed) as caught:
        await client.snapshots.wait_active(INSTANCE, 3)
    assert caught.value.snapshot.status_text == status
    assert len(api.forms) == 2


async def test_a_snapshot_that_disappears_while_awaited_is_a_failure(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api._script["instances.snapshots"] = [listing(row(3)), listing()]
    with pytest.raises(z.SnapshotFailed) as caught:
        await client.snapshots.wait_active(INSTANCE, 3)
    assert caught.value.snapshot.id == 3


async def test_waiting_for_a_snapshot_never_there_is_not_found(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on("instances.snapshots", listing(row(1)))
    with pytest.raises(z.NotFoundError):
        await client.snapshots.wait_active(INSTANCE, 3)
    with pytest.raises(z.NotFoundError):
        await client.snapshots.get(INSTANCE, 3)


async def test_timeout_raises_wait_timeout_with_the_last_snapshot_after_a_final_check(
    api: FakeApi, make_client: Callable[..., z.ZomroClient], clock: VirtualClock
) -> None:
    api.clock = clock
    api.on("instances.snapshots", listing(row(3, "n", "Saving")))
    async with make_client() as client:
        with pytest.raises(z.WaitTimeout) as caught:
            await client.snapshots.wait_active(INSTANCE, 3, timeout=10.0)
    assert isinstance(caught.value, TimeoutError)
    assert caught.value.last is not None
    assert caught.value.last.status is z.SnapshotStatus.SAVING
    # The deadline is hard: the wait ends at it, not a listing later.
    assert clock.monotonic() == pytest.approx(10.0)
    # 2 + 3 seconds of backoff, then the next pause is cut so that the last
    # listing starts `final_lead` (1 s) before the deadline.
    assert api.times("instances.snapshots") == pytest.approx([0.0, 2.0, 5.0, 9.0])


async def test_zero_timeout_checks_once(api: FakeApi, client: z.ZomroClient) -> None:
    api.on("instances.snapshots", listing(row(3)))
    with pytest.raises(z.WaitTimeout):
        await client.snapshots.wait_active(INSTANCE, 3, timeout=0)
    assert len(api.forms) == 1


async def test_wait_deleted_ends_when_the_id_is_no_longer_listed(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api._script["instances.snapshots"] = [
        listing(row(3, "n", "Deleting"), row(4)),
        listing(row(3, "n", "Deleting"), row(4)),
        listing(row(4)),
    ]
    await client.snapshots.wait_deleted(INSTANCE, 3)
    # Its absence, seen in a listing that reused a recent filter clear, is
    # proven by one more that clears the stored filter itself.
    assert len(api.forms) == 4


async def test_wait_deleted_times_out(api: FakeApi, client: z.ZomroClient) -> None:
    api.on("instances.snapshots", listing(row(3, "n", "Deleting")))
    with pytest.raises(z.WaitTimeout) as caught:
        await client.snapshots.wait_deleted(INSTANCE, 3, timeout=30)
    assert caught.value.last is not None
    assert caught.value.last.id == 3


async def test_bound_snapshot_methods_go_through_the_client(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on("instances.snapshots", listing(row(3, "n", "Active")))
    snap = (await client.snapshots.list(INSTANCE))[0]
    assert (await snap.wait_active()).status is z.SnapshotStatus.ACTIVE
    api.on("image.delete", doc(ok={}))
    await snap.delete()
    api._script["instances.snapshots"] = [listing()]
    await snap.wait_deleted()
    # The absence is seen, then proven by a listing that cleared the filter itself.
    assert api.funcs()[-3:] == ["image.delete", "instances.snapshots", "instances.snapshots"]


async def test_cancelling_a_wait_cancels_only_the_wait(api: FakeApi, client: z.ZomroClient) -> None:
    api.on("instances.snapshots", listing(row(3)))
    task = asyncio.create_task(client.snapshots.wait_active(INSTANCE, 3))
    while len(api.forms) < 2:
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [s.id for s in await client.snapshots.list(INSTANCE)] == [3]


# -- second-order contracts of the create path ---------------------------------------


async def test_a_create_honours_the_time_bound_of_the_retry_policy(
    api: FakeApi, make_client: Callable[..., z.ZomroClient], clock: VirtualClock
) -> None:
    api.clock = clock
    api.on("instances.snapshots", listing())
    api.on("instances.snapshots.edit", (503, "<html>busy</html>"))
    policy = z.RetryPolicy(
        attempts=6, initial_wait=0.5, max_wait=8.0, jitter=0.0, give_up_after=2.0
    )
    async with make_client(retry=policy) as client:
        with pytest.raises(z.TransportError):
            await client.snapshots.create(INSTANCE, "n")
    # Attempts at 0, 0.5 and 1.5; the next would start at 3.5, past the 2 s bound.
    assert api.times("instances.snapshots.edit") == pytest.approx([0.0, 0.5, 1.5])


async def test_the_confirm_step_polls_on_time_not_on_the_attempt_count(
    api: FakeApi, make_client: Callable[..., z.ZomroClient]
) -> None:
    api._script["instances.snapshots"] = [listing()] * 4 + [listing(row(9, "n"))]
    api.on("instances.snapshots.edit", doc(ok={}))
    async with make_client(retry=z.RetryPolicy(attempts=1)) as client:
        assert (await client.snapshots.create(INSTANCE, "n")).id == 9


async def test_a_refused_connection_is_sent_again_without_a_grace(
    api: FakeApi, client: z.ZomroClient, clock: VirtualClock
) -> None:
    refused = aiohttp.ClientConnectorError(
        aiohttp.client_reqrep.ConnectionKey("h", 1, False, True, None, None, None),
        ConnectionRefusedError(111, "refused"),
    )
    api.on("instances.snapshots", listing(), listing(), listing(row(4, "n")))
    api.on("instances.snapshots.edit", refused, doc(ok={}))
    assert (await client.snapshots.create(INSTANCE, "n")).id == 4
    assert api.funcs().count("instances.snapshots.edit") == 2
    assert clock.monotonic() < 2.0  # a backoff, no watch of the listing for the grace


async def test_an_accepted_create_whose_confirmation_fails_is_an_unknown_outcome(
    api: FakeApi, make_client: Callable[..., z.ZomroClient]
) -> None:
    api.on("instances.snapshots", listing(), (502, "<html>down</html>"))
    api.on("instances.snapshots.edit", doc(ok={}, id="5204299"))
    async with make_client(retry=z.RetryPolicy(attempts=2, initial_wait=0.1)) as client:
        with pytest.raises(z.OutcomeUnknown) as caught:
            await client.snapshots.create(INSTANCE, "nightly")
        api._script["instances.snapshots"] = [listing(), (502, "<html>down</html>")]
        job = client.snapshots.create_many([INSTANCE], "nightly")
        (result,) = await job
    error = caught.value
    assert (error.instance_id, error.name, error.resource_id, error.accepted) == (
        INSTANCE,
        "nightly",
        5204299,
        True,
    )
    assert "5204299" in str(error)
    assert "nightly" in str(error)
    assert isinstance(error.__cause__, z.TransportError)
    assert not isinstance(error, z.TransportError)  # never read as "nothing was made"
    assert isinstance(result.error, z.OutcomeUnknown)
    assert result.snapshot_id == 5204299  # a bulk item keeps every id it knows


async def test_a_create_begun_before_aclose_sends_nothing_after_it(
    api: FakeApi, make_client: Callable[..., z.ZomroClient]
) -> None:
    clock = VirtualClock(auto_advance=False)
    api.on("instances.snapshots", listing())
    api.on("instances.snapshots.edit", (502, "<html>bad gateway</html>"), doc(ok={}))
    client = make_client(clock=clock)
    creating = asyncio.create_task(client.snapshots.create(INSTANCE, "n"))
    job = client.snapshots.create_many([INSTANCE + 1], "n", wait=False)
    while api.funcs().count("instances.snapshots") < 2:  # in its grace, after the 502
        await asyncio.sleep(0)

    await client.aclose()
    sent = len(api.forms)
    clock.advance(100.0)  # past every grace and backoff
    with pytest.raises(z.ZomroError, match="closed"):
        await creating
    (result,) = await job  # made before the close, started after it: ended by it
    assert isinstance(result.error, z.ZomroError)
    assert len(api.forms) == sent


async def test_a_create_that_may_have_acted_and_cannot_list_for_auth_is_an_unknown_outcome(
    api: FakeApi, client: z.ZomroClient
) -> None:
    refused = error("access", "", "Insufficient privileges to perform this operation")
    api.on("instances.snapshots", listing(), refused)
    api.on("instances.snapshots.edit", (502, "<html>bad gateway</html>"))
    with pytest.raises(z.OutcomeUnknown) as caught:
        await client.snapshots.create(INSTANCE, "n")
    assert isinstance(caught.value.__cause__, z.AuthError)
    assert not caught.value.accepted
    assert api.funcs().count("instances.snapshots.edit") == 1
