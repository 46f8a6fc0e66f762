"""The session layer: posts with `auth`, one shared login, re-login, retries, paging, budget."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import functools
import logging
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import Any, Concatenate, NamedTuple, ParamSpec, Protocol, TypeVar

from .._clock import Clock
from .._exceptions import (
    ApiError,
    AuthError,
    NotFoundError,
    TransportError,
    ZomroError,
    fresh_copy,
)
from . import _document
from ._inferred import FILTER_CLEAR_REUSE, SESSION_CHECK_FUNC, StoredFilter
from ._redact import SECRET_FIELDS, Secrets, redact_fields
from ._retry import RetryPolicy, call_with_retries, may_have_acted
from ._row_models import MAX_LISTINGS, remember_last
from ._transport import Transport

logger = logging.getLogger("zomro_async")

# Sessions one call may try in all: a backstop, the check below ends it sooner.
_MAX_SESSIONS_PER_CALL = 5
# Listing a paged instance again when its pages disagreed (rows moved meanwhile).
_MAX_RELISTS = 3


P = ParamSpec("P")
R = TypeVar("R")

# The session, and its epoch, that the operation running in this context began
# on: every call it makes later, and every task it starts, is bound to it.
_operation: contextvars.ContextVar[tuple[ApiSession, int] | None] = contextvars.ContextVar(
    "zomro_async_operation", default=None
)


# Set where what a listing does not show decides something (an absence, a
# create's "before"): its stored-filter clear must be its own, not one reused.
_clear_anew: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "zomro_async_clear_filters_anew", default=False
)


@contextlib.contextmanager
def filters_cleared_anew(anew: bool = True) -> Iterator[None]:
    """Every listing inside (and in the tasks started inside) clears its stored
    filter itself, whatever cleared it lately: a row it does not show is not
    there. With `anew` False, listings inside may reuse a recent clear again.
    """
    token = _clear_anew.set(anew)
    try:
        yield
    finally:
        _clear_anew.reset(token)


class _Answer(NamedTuple):
    """One call's document, and the body it was read from."""

    doc: _document.Doc
    body: bytes


class _SharedClear:
    """A clear of a stored filter that listings wait for: its outcome, once done
    (None: cleared; else what the clear raised)."""

    __slots__ = ("done", "outcome")

    def __init__(self) -> None:
        self.done = asyncio.Event()
        self.outcome: BaseException | None = None


class _Attempt:
    """One call, as each of its attempts makes it: a retry repeats it.

    An object rather than a closure: a closure and its six cells are seven
    objects for the collector, for every call in flight or waiting its turn.
    """

    __slots__ = ("done_if_gone", "epoch", "fields", "func", "maybe_done", "session")

    def __init__(
        self,
        session: ApiSession,
        func: str,
        fields: Mapping[str, str],
        epoch: int,
        done_if_gone: bool,
    ) -> None:
        self.session = session
        self.func = func
        self.fields = fields
        self.epoch = epoch
        self.done_if_gone = done_if_gone
        self.maybe_done = False  # an attempt whose answer was lost may have acted

    async def __call__(self) -> _Answer:
        try:
            return await self.session._call_with_auth(self.func, self.fields, self.epoch)
        except NotFoundError:
            if self.done_if_gone and self.maybe_done:
                logger.debug("%s: gone on the repeat, done by the lost attempt", self.func)
                return _Answer({}, b"")
            raise
        except TransportError as exc:
            self.maybe_done |= may_have_acted(exc)
            raise


def context_clearing_anew(anew: bool) -> contextvars.Context:
    """A copy of the current context in which listings clear their stored filter
    themselves (`anew`) or may reuse a recent clear: for a task to run in."""
    context = contextvars.copy_context()
    context.run(_clear_anew.set, anew)
    return context


class HasApi(Protocol):
    _api: ApiSession


H = TypeVar("H", bound=HasApi)


def one_operation(
    method: Callable[Concatenate[H, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[H, P], Coroutine[Any, Any, R]]:
    """Bind a resource's public coroutine to the client as it is when the call begins.

    Everything the call does later (a re-send after a grace, the next page, a
    poll) fails with `ZomroError` once `aclose()` has run: nothing begun before
    a close sends after it.
    """

    @functools.wraps(method)
    async def bound(self: H, /, *args: P.args, **kwargs: P.kwargs) -> R:
        # Bound unless an operation already bound it to this client (an
        # operation within an operation); no context manager, so that ten
        # thousand calls leave no objects of it for the collector to walk.
        api = self._api
        current = _operation.get()
        if current is not None and current[0] is api:
            return await method(self, *args, **kwargs)
        token = _operation.set((api, api._epoch))
        try:
            return await method(self, *args, **kwargs)
        finally:
            _operation.reset(token)

    return bound


class RateLimit:
    """Spaces request starts at least `1 / per_second` apart, across every caller."""

    def __init__(self, per_second: float, clock: Clock) -> None:
        if not per_second > 0:
            raise ValueError("max_rate must be a positive number of requests per second")
        self._interval = 1.0 / per_second
        self._clock = clock
        self._next_start = float("-inf")

    def try_start(self) -> float:
        """0 and the start is booked, or the seconds to wait before asking again."""
        now = self._clock.monotonic()
        if now >= self._next_start:
            self._next_start = now + self._interval
            return 0.0
        return self._next_start - now


class _LoopState:
    """What binds to one event loop: the in-flight budget and the login under way."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_in_flight: int) -> None:
        self.loop = loop
        self.budget = asyncio.Semaphore(max_in_flight)
        self.login: asyncio.Task[str] | None = None
        # The check under way of each refused session, shared by its refused calls,
        # and the count of refusals, by which a check knows the ones it answers.
        self.session_checks: dict[str, _SessionCheck] = {}
        self.refusals = 0
        # The clear of each stored filter under way, shared by the listings that wait on it.
        self.filter_clears: dict[str, _SharedClear] = {}


class _SessionCheck(NamedTuple):
    """A check of a refused session under way, and the refusals it answers: those
    that came before it was asked (the first `covers` of its event loop)."""

    task: asyncio.Task[bool]
    covers: int


def _forget_check(state: _LoopState, session_id: str, task: asyncio.Task[bool]) -> None:
    check = state.session_checks.get(session_id)
    if check is not None and check.task is task:
        del state.session_checks[session_id]


class _SharedLoginFailed(Exception):
    """Carries a failed shared login (or session check) past the call's own
    retries: it was retried already."""

    def __init__(self, error: ZomroError) -> None:
        super().__init__()
        self.error = error


async def _shared_outcome(task: asyncio.Task[R]) -> R:
    """The outcome of a login or a session check that several calls await.

    Shielded: a caller that is cancelled must not end it for the others. Each
    caller raises its own copy of its error, past the call's retries: none
    retries what the task retried already.
    """
    try:
        return await asyncio.shield(task)
    except ZomroError as exc:
        raise _SharedLoginFailed(fresh_copy(exc)) from None
    except asyncio.CancelledError:
        if task.cancelled() and not _being_cancelled():
            raise _SharedLoginFailed(ZomroError("the client was closed")) from None
        raise


class ApiSession:
    """Sends API calls: adds `out`, `lang` and `auth`, logs in (once for all
    concurrent callers, with retries of its own that they share), logs in again
    when a session is refused and it holds a password, retries transient
    faults, follows pages, and keeps at most `max_in_flight` requests on the
    wire without sleeping on a slot.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        clock: Clock,
        retry: RetryPolicy,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        max_in_flight: int = 8,
        max_rate: float | None = None,
    ) -> None:
        if isinstance(max_in_flight, bool) or not isinstance(max_in_flight, int):
            raise TypeError("max_in_flight must be an int")
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.transport = transport
        self.clock = clock
        self.retry = retry
        self.username = username
        self._password = password
        self._session_id = token
        # The last session a check found ended: later refusals of it need no check.
        self._ended_session: str | None = None
        self._secrets = Secrets([token, password])
        self.max_in_flight = max_in_flight
        self._rate = RateLimit(max_rate, clock) if max_rate is not None else None
        self._state: _LoopState | None = None
        # aclose() moves it on: a call begun before never sends again afterwards.
        self._epoch = 0
        self.retries = 0
        self.logins = 0
        # When each stored filter was last cleared, on the clock (see `list_rows`).
        self._filters_cleared: dict[str, float] = {}
        # Per listing (a list function and its fields), its pages' last answers
        # and the rows read from them, the least recently listed forgotten first.
        self._listed: collections.OrderedDict[
            tuple[str, tuple[tuple[str, str], ...]],
            tuple[tuple[bytes, ...], tuple[_document.Row, ...]],
        ] = collections.OrderedDict()

    @property
    def can_login(self) -> bool:
        return self.username is not None and self._password is not None

    def __repr__(self) -> str:
        how = f"user={self.username!r}" if self.can_login else "token"
        return f"ApiSession({self.transport.url!r}, {how})"

    def _loop_state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._state
        if state is None or state.loop is not loop:
            state = self._state = _LoopState(loop, self.max_in_flight)
        return state

    def _count_retry(self, error: BaseException, wait: float) -> None:
        self.retries += 1
        logger.debug("retrying in %.2fs after %s", wait, type(error).__name__)

    def operation_context(self) -> contextvars.Context:
        """A context bound like a `one_operation` call, for a task started later (a bulk job)."""
        context = contextvars.copy_context()
        context.run(_operation.set, (self, self._operation_epoch()))
        return context

    def _operation_epoch(self) -> int:
        bound = _operation.get()
        return bound[1] if bound is not None and bound[0] is self else self._epoch

    async def aclose(self) -> None:
        """End the login and session checks under way and every request in
        flight; operations begun before fail from here on; later ones start afresh.
        """
        self._epoch += 1
        state, self._state = self._state, None
        if state is not None:
            renewals = [state.login, *(check.task for check in state.session_checks.values())]
            under_way = [task for task in renewals if task is not None and not task.done()]
            for task in under_way:
                task.cancel()
            await asyncio.gather(*under_way, return_exceptions=True)
        await self.transport.aclose()

    async def call(
        self,
        func: str,
        fields: Mapping[str, str],
        *,
        retry: bool = True,
        done_if_gone: bool = False,
    ) -> _document.Doc:
        """One API call; transient faults are retried unless `retry` is False.

        With `done_if_gone`, a `NotFoundError` on a repeat after an attempt that
        may have been carried out (its answer was lost) is the call's success:
        the lost attempt did the work (a delete). An empty document is returned.
        """
        answer = await self._call(func, fields, retry=retry, done_if_gone=done_if_gone)
        return answer.doc

    async def _call(
        self,
        func: str,
        fields: Mapping[str, str],
        *,
        retry: bool = True,
        done_if_gone: bool = False,
    ) -> _Answer:
        epoch = self._operation_epoch()
        if epoch != self._epoch:
            raise ZomroError("the client was closed")
        attempt = _Attempt(self, func, fields, epoch, done_if_gone)
        try:
            if not retry:
                return await attempt()
            return await call_with_retries(
                attempt, policy=self.retry, clock=self.clock, on_retry=self._count_retry
            )
        except _SharedLoginFailed as failed:
            raise failed.error from failed.error.__cause__

    async def list_rows(
        self,
        func: str,
        fields: Mapping[str, str],
        *,
        stored_filter: StoredFilter | None = None,
    ) -> tuple[_document.Row, ...]:
        """Every row of a list function, all pages.

        With `stored_filter`, the filter the server keeps for the user is cleared
        first (as the panel does), so that one left by the web panel hides no
        row; a clear serves the listings that start within `FILTER_CLEAR_REUSE`
        seconds of it (except inside `filters_cleared_anew()`, where a listing
        must prove absence), and concurrent listings share one.
        The server may page a listing at a size it remembers for the user:
        follow the pages rather than send `p_cnt`, which would change that setting.
        Pages that disagree (rows moved meanwhile) are listed again, keeping what
        was seen, so that a row that moved is never taken as gone.

        A listing whose every page is, byte for byte, what it was last time gives
        the very same rows (the same tuple) without reading them again, so that
        polling what did not change costs little more than the requests; the
        last answers of the `MAX_LISTINGS` listings made last are kept for this.
        """
        if stored_filter is not None:
            await self._clear_filter(stored_filter)
        key = (func, tuple(sorted(fields.items())))
        seen: dict[str | None, _document.Row] = {}
        for _ in range(_MAX_RELISTS):
            answers = [await self._call(func, fields)]
            total = _document.listed_total(answers[0].doc)
            pages = _document.page_count(answers[0].doc)
            steady = True
            for page in range(2, pages + 1):
                answers.append(await self._call(func, {**fields, "p_num": str(page)}))
                steady &= _document.listed_total(answers[-1].doc) == total
            bodies = tuple(answer.body for answer in answers)
            last = self._listed.get(key)
            if last is not None and last[0] == bodies:
                self._listed.move_to_end(key)
                return last[1]  # every page as last time, byte for byte: the same rows
            rows = {row.get("id"): row for a in answers for row in _document.rows(a.doc)}
            if pages == 1 or (steady and len(rows) == total):
                listed = tuple(rows.values())
                remember_last(self._listed, key, (bodies, listed), MAX_LISTINGS)
                return listed
            seen = {**seen, **rows}
        return tuple(seen.values())

    async def _clear_filter(self, stored: StoredFilter) -> None:
        # No task of its own: the first listing to need the clear sends it, the
        # ones that come meanwhile wait for its outcome (and send it themselves
        # if that listing was cancelled).
        reuse = not _clear_anew.get()
        while True:
            cleared = self._filters_cleared.get(stored.func)
            if (
                reuse
                and cleared is not None
                and self.clock.monotonic() - cleared < FILTER_CLEAR_REUSE
            ):
                return
            state = self._loop_state()
            pending = state.filter_clears.get(stored.func)
            if pending is None:
                await self._lead_clear(state, stored)
                return
            # An event, not the outcome's future: a waiting listing that is
            # cancelled cancels its own wait only, and costs fewer objects
            # than a shield while a thousand listings wait their turn.
            await pending.done.wait()
            outcome = pending.outcome
            if outcome is None:
                return
            if isinstance(outcome, ZomroError):
                raise fresh_copy(outcome) from outcome.__cause__

    async def _lead_clear(self, state: _LoopState, stored: StoredFilter) -> None:
        pending = state.filter_clears[stored.func] = _SharedClear()
        try:
            await self.call(stored.func, stored.clearing_form())
        except BaseException as exc:
            pending.outcome = exc
            pending.done.set()
            raise
        finally:
            del state.filter_clears[stored.func]
        self._filters_cleared[stored.func] = self.clock.monotonic()
        pending.done.set()

    async def _call_with_auth(self, func: str, fields: Mapping[str, str], epoch: int) -> _Answer:
        session_id = await self._current_session(epoch)
        for _ in range(_MAX_SESSIONS_PER_CALL - 1):
            try:
                return await self._send(func, {**fields, "auth": session_id}, epoch)
            except AuthError:
                if not self.can_login or not await self._session_ended(session_id, epoch):
                    raise  # the session lives: the refusal is about this call
            session_id = await self._login(stale=session_id, epoch=epoch)
        # The backstop: the last session's refusal is final, whatever the reason.
        return await self._send(func, {**fields, "auth": session_id}, epoch)

    async def _session_ended(self, refused: str, epoch: int) -> bool:
        """Whether the session that refused a call has ended (expired, logged out),
        rather than the account lacking rights for the call: BILLmanager answers
        both with an `access` error, and `SESSION_CHECK_FUNC` tells them apart.

        A check asked after the refusal came is shared by the calls refused
        meanwhile. One asked before it may have found the session alive just
        before it ended: if so, it is asked again.
        """
        state = self._loop_state()
        state.refusals += 1
        refusal = state.refusals
        while True:
            if refused != self._session_id or refused == self._ended_session:
                return True  # replaced by another caller's login, or found ended
            check = state.session_checks.get(refused)
            # A check that ended before this refusal came cannot answer it (it may
            # still be listed: it leaves in a done callback, a loop pass later).
            if check is None or (check.task.done() and check.covers < refusal):
                check = _SessionCheck(
                    state.loop.create_task(self._check_session(refused, epoch)), state.refusals
                )
                state.session_checks[refused] = check
                check.task.add_done_callback(_retrieve)
                check.task.add_done_callback(functools.partial(_forget_check, state, refused))
            ended = await _shared_outcome(check.task)
            if ended or check.covers >= refusal:
                return ended

    async def _check_session(self, session_id: str, epoch: int) -> bool:
        try:
            answer = await call_with_retries(
                lambda: self._send(SESSION_CHECK_FUNC, {"auth": session_id}, epoch),
                policy=self.retry,
                clock=self.clock,
                on_retry=self._count_retry,
            )
        except AuthError:
            self._ended_session = session_id
            logger.debug("the refused session has ended: logging in again")
            return True
        except ApiError as exc:
            # The check was refused otherwise (say, not offered to this account):
            # it tells nothing, and the call's own refusal stands.
            logger.debug("the session check was refused (%s): the refusal stands", exc.type)
            return False
        if _document.asks_for_second_factor(answer.doc):
            raise AuthError(
                "the account asks for a two-factor code, which the client does not "
                "send: give it a session you completed yourself as a token "
                "(see docs/authentication.md)",
                type="access",
                func=SESSION_CHECK_FUNC,
            )
        return False

    async def _current_session(self, epoch: int) -> str:
        if self._session_id is not None:
            return self._session_id
        return await self._login(stale=None, epoch=epoch)

    async def _login(self, *, stale: str | None, epoch: int) -> str:
        """A live session id: the one another caller made meanwhile, or the one
        the login under way (started by whoever came first) makes.
        """
        if self._session_id is not None and self._session_id != stale:
            return self._session_id
        if not self.can_login:
            raise AuthError("no session and no username and password to log in with")
        state = self._loop_state()
        login = state.login
        if login is None or login.done():
            login = state.login = state.loop.create_task(self._log_in(epoch))
            login.add_done_callback(_retrieve)
        return await _shared_outcome(login)

    async def _log_in(self, epoch: int) -> str:
        fields = {"username": self.username or "", "password": self._password or ""}
        answer = await call_with_retries(
            lambda: self._send("auth", fields, epoch),
            policy=self.retry,
            clock=self.clock,
            on_retry=self._count_retry,
        )
        session_id = _document.session_id(answer.doc)
        self.logins += 1
        self._secrets.add_session(session_id)
        self._session_id = session_id
        return session_id

    async def _acquire_slot(self, state: _LoopState) -> None:
        # Never sleep on the rate while holding a slot others could use meanwhile.
        while True:
            await state.budget.acquire()
            wait = self._rate.try_start() if self._rate is not None else 0.0
            if wait <= 0:
                return
            state.budget.release()
            await self.clock.sleep(wait)

    async def _send(self, func: str, fields: Mapping[str, str], epoch: int) -> _Answer:
        form = {"func": func, "out": "json", "lang": "en", **fields}
        started = time.perf_counter()
        outcome = "ok"
        try:
            state = self._loop_state()
            await self._acquire_slot(state)
            try:
                if epoch != self._epoch:
                    raise ZomroError("the client was closed")
                answer = await self.transport.post(form)
            finally:
                state.budget.release()
            try:
                doc = _document.parse_body(
                    answer.status, answer.body, answer.retry_after, self.clock.time()
                )
            except TransportError as exc:
                if func == "auth":
                    # A broken login answer may hold the new session id, which is no
                    # known secret yet: show none of it.
                    exc.body_excerpt = "(a login answer is not shown)"
                else:
                    # Scrub the whole body before cutting the excerpt: a secret cut
                    # in two by the excerpt would no longer be recognised.
                    body = _call_secrets(fields).scrub(answer.body.decode("utf-8", "replace"))
                    exc.body_excerpt = _document.excerpt(self._secrets.scrub(body))
                raise
            return _Answer(_document.raise_for_error(doc, func), answer.body)
        except ZomroError as exc:
            # The call's own secrets too (a rebuild's password), which the client
            # does not keep: a server may echo them in an error.
            _call_secrets(fields).scrub_error(exc)
            self._secrets.scrub_error(exc)
            outcome = _describe(exc)  # scrubbed first: it goes to the log
            raise
        except BaseException as exc:
            outcome = type(exc).__name__
            raise
        finally:
            if logger.isEnabledFor(logging.DEBUG):  # spare the redacted copy otherwise
                logger.debug(
                    "%s -> %s in %.3fs %s",
                    func,
                    outcome,
                    time.perf_counter() - started,
                    redact_fields(form),
                )


def _call_secrets(fields: Mapping[str, str]) -> Secrets:
    return Secrets(v for k, v in fields.items() if k in SECRET_FIELDS)


def _retrieve(task: asyncio.Task[Any]) -> None:
    # A login whose callers all left still ends in an outcome: read it, so that
    # asyncio does not report it as never retrieved.
    if not task.cancelled():
        task.exception()


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _describe(error: ZomroError) -> str:
    if isinstance(error, ApiError):
        return f"{type(error).__name__}(type={error.type!r}, object={error.object!r})"
    if isinstance(error, TransportError):
        return f"{type(error).__name__}(status={error.status})"
    return type(error).__name__
