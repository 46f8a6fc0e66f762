"""The session layer over aioresponses: form fields, login, re-login, retries, logs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aioresponses import CallbackResult, aioresponses

import zomro_async as z
from tests.conftest import PASSWORD, TOKEN, URL, FakeApi, doc, error, listing, row
from zomro_async.testing import VirtualClock

LOGIN = doc(auth={"$id": "sid-first-0001"})
RELOGIN = doc(auth={"$id": "sid-second-0002"})
EXPIRED = error("access", "", "Insufficient privileges to perform this operation")


async def test_every_call_posts_func_out_lang_and_auth(api: FakeApi, client: z.ZomroClient) -> None:
    api.on("instances.snapshots", listing())
    await client.snapshots.list(5203773)
    assert api.forms == [
        {
            "func": "instances.snapshots",
            "out": "json",
            "lang": "en",
            "auth": TOKEN,
            "elid": "5203773",
        }
    ]


async def test_login_happens_once_for_concurrent_first_calls(
    api: FakeApi, login_client: z.ZomroClient
) -> None:
    api.on("auth", LOGIN).on("instances.snapshots", listing())
    await asyncio.gather(*(login_client.snapshots.list(i) for i in range(1, 11)))
    assert api.funcs().count("auth") == 1
    login = api.forms[0]
    assert login == {
        "func": "auth",
        "out": "json",
        "lang": "en",
        "username": "alice",
        "password": PASSWORD,
    }
    assert {f["auth"] for f in api.forms[1:]} == {"sid-first-0001"}


async def test_an_access_error_logs_in_again_once_and_repeats_the_call(
    api: FakeApi, login_client: z.ZomroClient
) -> None:
    api.on("auth", LOGIN, RELOGIN)
    api.on("instances.snapshots", listing(), EXPIRED, listing(row(7)))
    await login_client.snapshots.list(1)
    snaps = await login_client.snapshots.list(1)
    assert [s.id for s in snaps] == [7]
    assert api.funcs() == [
        "auth",
        "instances.snapshots",
        "instances.snapshots",
        "auth",
        "instances.snapshots",
    ]
    assert api.forms[-1]["auth"] == "sid-second-0002"


LIVE = doc(ok={}, user={"$": "alice"})  # whoami on a session that lives


async def test_a_refusal_on_a_live_session_is_final_without_a_new_login(
    api: FakeApi, login_client: z.ZomroClient
) -> None:
    # No rights for the call: the session's check answers, so the refusal is the
    # call's, raised at once. A new login would only be refused the same way.
    api.on("auth", LOGIN)
    api.on("instances.snapshots", EXPIRED)
    api.on("whoami", LIVE)
    with pytest.raises(z.AuthError) as caught:
        await login_client.snapshots.list(1)
    assert caught.value.type == "access"
    assert caught.value.func == "instances.snapshots"
    assert api.funcs() == ["auth", "instances.snapshots", "whoami"]
    assert api.forms[-1]["auth"] == "sid-first-0001"


async def test_an_unfinished_two_factor_login_is_named_and_not_repeated(
    api: FakeApi, login_client: z.ZomroClient
) -> None:
    api.on("auth", LOGIN)
    api.on("instances.snapshots", EXPIRED)
    api.on("whoami", doc(ok={"$": "func=totp.confirm"}))
    with pytest.raises(z.AuthError, match="two-factor") as caught:
        await login_client.snapshots.list(1)
    assert "sid-first-0001" not in str(caught.value)
    assert api.funcs() == ["auth", "instances.snapshots", "whoami"]


async def test_a_server_refusing_every_session_stops_at_the_backstop(
    api: FakeApi, login_client: z.ZomroClient
) -> None:
    # Every session is refused and every check says it ended: five sessions at most.
    api.on("auth", *(doc(auth={"$id": f"sid-{n}-abcdef"}) for n in range(9)))
    api.on("instances.fleio_bckps", EXPIRED)
    with pytest.raises(z.AuthError):
        await login_client.backups.list(1)
    assert api.funcs() == ["auth", "instances.fleio_bckps"] * 5
    assert len(api.check_forms) == 4  # the fifth session's refusal is final unchecked


async def test_a_token_client_raises_auth_error_without_logging_in(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on("instances.snapshots", EXPIRED)
    with pytest.raises(z.AuthError):
        await client.snapshots.list(1)
    assert api.funcs() == ["instances.snapshots"]


async def test_bad_password_is_an_auth_error_and_not_retried(
    api: FakeApi, login_client: z.ZomroClient
) -> None:
    api.on("auth", error("auth", "badpassword", "Invalid username or password"))
    with pytest.raises(z.AuthError) as caught:
        await login_client.snapshots.list(1)
    assert caught.value.object == "badpassword"
    assert api.funcs() == ["auth"]


async def test_login_answer_without_session_id_is_a_response_error(
    api: FakeApi, login_client: z.ZomroClient
) -> None:
    api.on("auth", doc(ok={}))
    with pytest.raises(z.ResponseError):
        await login_client.snapshots.list(1)


@pytest.mark.parametrize(
    "fault",
    [
        (502, "<html><body>502 Bad Gateway</body></html>"),
        (503, "<html>busy</html>"),
        (429, "slow down"),
        (200, '{"doc": {"elem": [{"id": '),
        (200, "<?xml version='1.0'?><doc/>"),
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientConnectionError("reset"),
        TimeoutError(),
    ],
    ids=["502", "503", "429", "truncated", "xml", "disconnect", "conn-error", "timeout"],
)
async def test_reads_retry_transient_faults(
    api: FakeApi, client: z.ZomroClient, fault: tuple[int, str] | BaseException
) -> None:
    api.on("instances.snapshots", fault, fault, listing(row(3)))
    snaps = await client.snapshots.list(1)
    assert [s.id for s in snaps] == [3]
    assert api.funcs() == ["instances.snapshots"] * 3
    assert client.retries == 2


async def test_retries_are_bounded_and_reraise_the_last_real_error(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on("instances.snapshots", (503, "<html>maintenance</html>"))
    with pytest.raises(z.TransportError) as caught:
        await client.snapshots.list(1)
    assert caught.value.status == 503
    assert "maintenance" in caught.value.body_excerpt
    assert len(api.forms) == client.retry.attempts


@pytest.mark.parametrize("status", [400, 403, 404])
async def test_client_errors_are_not_retried(
    api: FakeApi, client: z.ZomroClient, status: int
) -> None:
    api.on("instances.snapshots", (status, "<html>no</html>"))
    with pytest.raises(z.TransportError) as caught:
        await client.snapshots.list(1)
    assert caught.value.status == status
    assert len(api.forms) == 1


async def test_retry_after_is_honoured_up_to_the_cap(
    api: FakeApi, make_client: Callable[..., z.ZomroClient]
) -> None:
    sleeps: list[float] = []

    class RecordingClock:
        def monotonic(self) -> float:
            return 0.0

        def time(self) -> float:
            return 0.0

        async def sleep(self, seconds: float) -> None:
            sleeps.append(seconds)

    api.on(
        "instances.snapshots",
        CallbackResult(status=429, body="slow", headers={"Retry-After": "7"}),
        CallbackResult(status=429, body="slow", headers={"Retry-After": "9999"}),
        listing(),
    )
    async with make_client(clock=RecordingClock()) as client:
        await client.snapshots.list(1)
    assert sleeps[0] == pytest.approx(7.0)
    assert sleeps[1] == pytest.approx(client.retry.max_retry_after)


async def test_debug_log_has_one_line_per_call_and_no_secret(
    api: FakeApi, login_client: z.ZomroClient, caplog: pytest.LogCaptureFixture
) -> None:
    api.on("auth", LOGIN).on("instances.snapshots", EXPIRED, listing())
    api.on("auth", LOGIN, RELOGIN)
    caplog.set_level(logging.DEBUG, logger="zomro_async")
    await login_client.snapshots.list(1)
    text = caplog.text
    lines = [r for r in caplog.records if r.name == "zomro_async" and "->" in r.getMessage()]
    assert len(lines) == len(api.forms) + len(api.filter_forms) + len(api.check_forms)
    for secret in (PASSWORD, "sid-first-0001", "sid-second-0002"):
        assert secret not in text
    assert "instances.snapshots -> AuthError" in text


async def test_secrets_echoed_by_the_server_are_scrubbed_from_errors(
    api: FakeApi, login_client: z.ZomroClient
) -> None:
    api.on("auth", LOGIN)
    api.on(
        "instances.snapshots",
        error("value", "elid", f"bad request auth=sid-first-0001 password={PASSWORD}"),
    )
    with pytest.raises(z.InvalidRequestError) as caught:
        await login_client.snapshots.list(1)
    text = str(caught.value) + repr(caught.value) + caught.value.message
    assert "sid-first-0001" not in text
    assert PASSWORD not in text
    assert "***" in text


async def test_a_secret_cut_by_the_excerpt_leaves_no_part_behind(
    api: FakeApi, client: z.ZomroClient
) -> None:
    body = "x" * 180 + f" auth={TOKEN} tail"
    api.on("instances.snapshots", (400, body))
    with pytest.raises(z.TransportError) as caught:
        await client.snapshots.list(1)
    assert TOKEN[:8] not in caught.value.body_excerpt
    assert TOKEN[:8] not in str(caught.value)
    assert caught.value.body_excerpt.startswith("xxx")


async def test_a_new_session_dropped_before_use_is_replaced_not_fatal(
    mocked: aioresponses, login_client: z.ZomroClient
) -> None:
    forms: list[dict[str, str]] = []
    # sid-1 serves two calls then dies; sid-2 serves one call then dies; sid-3 lives.
    lives = {"sid-1": 2, "sid-2": 1, "sid-3": 99}
    issued = iter(["sid-1", "sid-2", "sid-3"])
    both_refused = asyncio.Event()
    refused_on_sid_1 = 0

    def login(form: dict[str, str]) -> dict[str, Any]:
        return doc(auth={"$id": next(issued)})

    async def listing_while_alive(url: Any, **kwargs: Any) -> CallbackResult:
        nonlocal refused_on_sid_1
        form = dict(kwargs["data"])
        if form["func"].endswith(".filter"):
            return CallbackResult(payload={"doc": {"ok": {}}})  # the clear before a listing
        if form["func"] == "whoami":  # the check of a refused session: it died
            return CallbackResult(payload=EXPIRED if lives[form["auth"]] < 0 else LIVE)
        forms.append(form)
        if form["func"] == "auth":
            return CallbackResult(payload=login(form))
        lives[form["auth"]] -= 1
        if lives[form["auth"]] >= 0:
            return CallbackResult(payload=listing())
        if form["auth"] == "sid-1":
            # Hold the refusals until both calls have been refused on sid-1, so
            # that one logs in and the other adopts its new session.
            refused_on_sid_1 += 1
            if refused_on_sid_1 == 2:
                both_refused.set()
            await both_refused.wait()
        return CallbackResult(payload=EXPIRED)

    mocked.post(URL, callback=listing_while_alive, repeat=True)
    await asyncio.gather(login_client.snapshots.list(1), login_client.snapshots.list(2))
    again = await asyncio.gather(login_client.snapshots.list(1), login_client.snapshots.list(2))
    assert again == [[], []]
    # sid-2, adopted by one call, died under it: that call logged in on its own.
    assert [f.get("auth") for f in forms if f["func"] != "auth"] == [
        "sid-1", "sid-1", "sid-1", "sid-1", "sid-2", "sid-2", "sid-3",
    ]  # fmt: skip
    assert [f["func"] for f in forms].count("auth") == 3


# -- second-order contracts ------------------------------------------------------------


async def test_an_access_refusal_under_concurrency_costs_no_new_login(
    api: FakeApi, login_client: z.ZomroClient
) -> None:
    # No rights for the call: twenty callers refused by one live session share its
    # check (a second one at most, for refusals that came after the first was
    # asked), and nobody logs in again.
    api.on("auth", LOGIN, RELOGIN)
    api.on("instances.snapshots", EXPIRED)
    api.on("whoami", LIVE)
    results = await asyncio.gather(
        *(login_client.snapshots.list(1) for _ in range(20)), return_exceptions=True
    )
    assert all(isinstance(r, z.AuthError) for r in results)
    assert api.funcs().count("auth") == 1
    assert 1 <= api.funcs().count("whoami") <= 2


async def test_a_check_asked_before_a_refusal_does_not_answer_it(
    mocked: aioresponses, login_client: z.ZomroClient
) -> None:
    # The session lives when the first refused call's check is answered, and ends
    # before the second call is refused: that second refusal is an expiry, which
    # the first check cannot tell. It is asked again, and the call logs in again.
    first_refused = asyncio.Event()
    second_sent = asyncio.Event()
    funcs: list[str] = []

    async def answer(url: Any, **kwargs: Any) -> CallbackResult:
        form = dict(kwargs["data"])
        funcs.append(form["func"])
        if form["func"] == "auth":
            sid = "sid-first-0001" if funcs.count("auth") == 1 else "sid-second-0002"
            return CallbackResult(payload=doc(auth={"$id": sid}))
        if form["func"] == "whoami":
            if funcs.count("whoami") == 1:
                await second_sent.wait()  # answered alive as the session ends
                return CallbackResult(payload=LIVE)
            return CallbackResult(payload=EXPIRED)
        if form["auth"] == "sid-second-0002":
            return CallbackResult(payload=doc(ok={}))
        if form["plid"] == "1":
            first_refused.set()
            return CallbackResult(payload=EXPIRED)  # no rights for this one
        second_sent.set()
        return CallbackResult(payload=EXPIRED)  # the session ended

    mocked.post(URL, callback=answer, repeat=True)
    api_session = login_client._api
    first = asyncio.create_task(api_session.call("instances.snapshots.edit", {"plid": "1"}))
    await first_refused.wait()
    second = await api_session.call("instances.snapshots.edit", {"plid": "2"})
    assert second == {"ok": {}}
    with pytest.raises(z.AuthError):
        await first
    assert funcs.count("whoami") == 2
    assert funcs.count("auth") == 2


async def test_secrets_are_scrubbed_in_every_spelling_the_client_sent(
    api: FakeApi, make_client: Callable[..., z.ZomroClient]
) -> None:
    password = "P@ss w0rd!&é"
    # A server that quotes the form back, as it was posted and as a panel would.
    echo = "auth=sid-first-0001&password=P%40ss+w0rd%21%26%C3%A9 (P%40ss%20w0rd%21%26%c3%a9)"
    api.on("auth", LOGIN)
    api.on("instances.snapshots", error("value", "elid", f"rejected: {echo}"))
    async with make_client(username="alice", password=password) as client:
        with pytest.raises(z.InvalidRequestError) as caught:
            await client.snapshots.list(1)
    text = " ".join([str(caught.value), repr(caught.value), caught.value.message])
    for leaked in ("sid-first-0001", "P%40ss", "w0rd", password):
        assert leaked not in text
    assert text.count("***") >= 3


async def test_a_login_error_echoing_the_form_leaks_no_password(
    api: FakeApi, make_client: Callable[..., z.ZomroClient]
) -> None:
    echo = "no such user for username=alice&password=s3cr%2Bt"
    api.on("auth", error("auth", "badpassword", echo))
    async with make_client(username="alice", password="s3cr+t") as client:
        with pytest.raises(z.AuthError) as caught:
            await client.snapshots.list(1)
    assert "s3cr" not in str(caught.value)


async def test_a_long_lived_client_keeps_a_bounded_number_of_session_ids(
    api: FakeApi, login_client: z.ZomroClient
) -> None:
    for n in range(40):
        api.on("auth", doc(auth={"$id": f"sid-{n:04d}-abcdef"}))
        api.on("instances.snapshots", EXPIRED, listing())
        await login_client.snapshots.list(1)
        api._script.clear()
    assert login_client._api.logins == 41
    assert len(login_client._api._secrets.spellings()) < 8 * 4 + 8


async def test_the_rate_limit_never_holds_an_in_flight_slot_while_it_waits(
    api: FakeApi, make_client: Callable[..., z.ZomroClient]
) -> None:
    clock = VirtualClock(auto_advance=False)
    api.on("instances.snapshots", listing())
    async with make_client(max_in_flight=1, max_rate=0.1, clock=clock) as client:
        # One request each (a listing would clear the stored filter first).
        api_session = client._api
        await api_session.call("instances.snapshots", {"elid": "1"})  # books a start 10 s on
        waiting = asyncio.create_task(api_session.call("instances.snapshots", {"elid": "2"}))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not waiting.done()
        # It sleeps on the rate with the one slot free for anyone who may go.
        assert not client._api._loop_state().budget.locked()
        clock.advance(10.0)
        assert "error" not in await waiting


async def test_many_calls_refused_by_one_expired_session_log_in_again_not_give_up(
    api: FakeApi, login_client: z.ZomroClient
) -> None:
    # Six concurrent calls of a function the session never served are all refused
    # by it (it expired): that is one session's refusal, not six, so the client
    # logs in again and every call goes through.
    first = LOGIN["doc"]["auth"]["$id"]
    api.on("auth", LOGIN, RELOGIN)
    api.on(
        "instances.snapshots.edit", lambda form: EXPIRED if form["auth"] == first else doc(ok={})
    )
    results = await asyncio.gather(
        *(login_client._api.call("instances.snapshots.edit", {"plid": str(n)}) for n in range(6)),
        return_exceptions=True,
    )
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert api.funcs().count("auth") == 2


BAD_GATEWAY = (502, "<html>bad gateway</html>")


async def test_a_fresh_session_refused_after_a_backoff_may_have_expired(
    api: FakeApi, make_client: Callable[..., z.ZomroClient]
) -> None:
    # Each fresh session meets a 502, and is refused after the retry's 1.5 s
    # backoff: sessions that short-lived expire meanwhile (the chaos soak). The
    # check says so each time: the client logs in again and succeeds.
    api.on("auth", LOGIN, RELOGIN, doc(auth={"$id": "sid-third-0003"}))
    api.on("instances.fleio_bckps", BAD_GATEWAY, EXPIRED, BAD_GATEWAY, EXPIRED, listing(row(7)))
    retry = z.RetryPolicy(attempts=4, initial_wait=1.5, max_wait=2.0, jitter=0.0)
    async with make_client(username="alice", password=PASSWORD, retry=retry) as client:
        backups = await client.backups.list(1)
    assert [b.id for b in backups] == [7]
    assert api.funcs().count("auth") == 3


# ------------------------------------------------------------- unchanged listings


async def test_a_listing_answered_as_last_time_gives_the_very_same_rows(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on(
        "instances.snapshots",
        listing(row(1), row(2)),
        listing(row(1), row(2)),
        listing(row(1), row(2, status="Active")),
    )
    session = client._api
    first = await session.list_rows("instances.snapshots", {"elid": "7"})
    second = await session.list_rows("instances.snapshots", {"elid": "7"})
    assert second is first
    changed = await session.list_rows("instances.snapshots", {"elid": "7"})
    assert changed is not first
    assert [r["fleio_status"] for r in changed] == ["Saving", "Active"]


async def test_an_unchanged_page_is_not_enough_when_another_page_changed(
    api: FakeApi, client: z.ZomroClient
) -> None:
    def page(number: int, status: str) -> dict[str, Any]:
        return doc(p_elems="2", p_cnt="1", p_num=str(number), elem=[row(number, status=status)])

    def answer(statuses: list[str]) -> Callable[[dict[str, str]], dict[str, Any]]:
        def paged(form: dict[str, str]) -> dict[str, Any]:
            number = int(form.get("p_num", "1"))
            return page(number, statuses[number - 1])

        return paged

    states = ["Saving", "Saving"]
    api.on("instances.snapshots", answer(states))
    session = client._api
    first = await session.list_rows("instances.snapshots", {"elid": "7"})
    assert await session.list_rows("instances.snapshots", {"elid": "7"}) is first
    states[1] = "Active"  # the second page only
    changed = await session.list_rows("instances.snapshots", {"elid": "7"})
    assert changed is not first
    assert [r["fleio_status"] for r in changed] == ["Saving", "Active"]


async def test_listings_remembered_are_bounded_the_least_recent_forgotten(
    api: FakeApi, client: z.ZomroClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zomro_async._core import _session

    monkeypatch.setattr(_session, "MAX_LISTINGS", 2)
    api.on("instances.snapshots", listing(row(1)))
    session = client._api
    firsts = [await session.list_rows("instances.snapshots", {"elid": str(vm)}) for vm in (1, 2)]
    assert await session.list_rows("instances.snapshots", {"elid": "1"}) is firsts[0]
    await session.list_rows("instances.snapshots", {"elid": "3"})  # forgets 2, not 1
    assert await session.list_rows("instances.snapshots", {"elid": "1"}) is firsts[0]
    assert await session.list_rows("instances.snapshots", {"elid": "2"}) is not firsts[1]
    assert len(session._listed) == 2


async def test_a_check_refused_otherwise_leaves_the_calls_refusal_standing(
    api: FakeApi, login_client: z.ZomroClient
) -> None:
    # A whoami this account is not offered tells nothing: the call's refusal stands.
    api.on("auth", LOGIN)
    api.on("instances.snapshots", EXPIRED)
    api.on("whoami", error("missed", "func", "Function 'whoami' not found"))
    with pytest.raises(z.AuthError) as caught:
        await login_client.snapshots.list(1)
    assert caught.value.func == "instances.snapshots"
    assert api.funcs() == ["auth", "instances.snapshots", "whoami"]


async def test_a_check_that_ended_before_a_refusal_is_asked_again_not_spun_on(
    api: FakeApi, login_client: z.ZomroClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A finished check stays listed until its done callback runs, a loop pass
    # later; a refusal it does not cover must ask anew, not await it again and
    # again without ever yielding (which froze the event loop).
    from zomro_async._core import _session

    api.on("auth", LOGIN)
    api.on("instances.snapshots", listing())
    api.on("whoami", LIVE)
    await login_client.snapshots.list(1)
    session = login_client._api
    state = session._loop_state()
    finished: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    finished.set_result(False)
    sid = "sid-first-0001"
    state.session_checks[sid] = _session._SessionCheck(finished, covers=state.refusals)  # type: ignore[arg-type]
    awaited = 0
    shared_outcome = _session._shared_outcome

    async def counted(task: Any) -> Any:
        nonlocal awaited
        awaited += 1
        assert awaited < 5, "the refusal spins on a check that cannot answer it"
        return await shared_outcome(task)

    monkeypatch.setattr(_session, "_shared_outcome", counted)
    assert await session._session_ended(sid, session._epoch) is False
    assert api.funcs().count("whoami") == 1  # asked anew, once
