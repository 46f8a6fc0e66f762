"""The session layer: form posts with `auth`, one shared login, re-login, retries, the budget."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

from . import _document
from ._clock import Clock
from ._exceptions import ApiError, AuthError, TransportError, ZomroError
from ._retry import RetryPolicy, call_with_retries
from ._transport import Transport

logger = logging.getLogger("zomro_async")

# Sessions one call may try in all, and logins of its own among them.
_MAX_SESSIONS_PER_CALL = 5
_MAX_OWN_LOGINS = 2
SECRET_FIELDS = frozenset({"auth", "password", "authinfo", "key", "qrcode"})
REDACTED = "***"


def redact_fields(fields: Mapping[str, str]) -> dict[str, str]:
    """`fields` with every secret value replaced, for logs."""
    return {k: (REDACTED if k in SECRET_FIELDS else v) for k, v in fields.items()}


def _scrub_text(text: str, secrets: set[str]) -> str:
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return text


def scrub(error: ZomroError, secrets: set[str]) -> ZomroError:
    """`error` with any secret text (a token, a password) in its texts replaced."""

    def clean(text: str) -> str:
        return _scrub_text(text, secrets)

    if isinstance(error, ApiError):
        error.message = clean(error.message)
        error.detail = clean(error.detail)
        error.params = {k: clean(v) for k, v in error.params.items()}
    if isinstance(error, TransportError):
        error.body_excerpt = clean(error.body_excerpt)
    error.args = tuple(clean(a) if isinstance(a, str) else a for a in error.args)
    return error


class RateLimit:
    """Spaces request starts at least `1 / per_second` apart, across every caller."""

    def __init__(self, per_second: float, clock: Clock) -> None:
        if not per_second > 0:
            raise ValueError("max_rate must be a positive number of requests per second")
        self._interval = 1.0 / per_second
        self._clock = clock
        self._next_slot = float("-inf")

    async def wait(self) -> None:
        now = self._clock.monotonic()
        # Book the slot before sleeping, so concurrent callers queue up in order.
        slot = max(now, self._next_slot)
        self._next_slot = slot + self._interval
        if slot > now:
            await self._clock.sleep(slot - now)


class ApiSession:
    """Sends API calls: adds `out`, `lang` and `auth`, logs in (once for all
    concurrent callers), logs in again once on an `access` error when it holds a
    password, retries transient faults, and keeps at most `max_in_flight`
    requests on the wire.
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
        self._secrets: set[str] = {s for s in (token, password) if s}
        self._login_lock = asyncio.Lock()
        self._logins_finished = 0  # tells a queued caller that a login ended meanwhile
        self._login_error: AuthError | None = None
        self._budget = asyncio.Semaphore(max_in_flight)
        self.max_in_flight = max_in_flight
        self._rate = RateLimit(max_rate, clock) if max_rate is not None else None
        self.retries = 0

    @property
    def can_login(self) -> bool:
        return self.username is not None and self._password is not None

    def __repr__(self) -> str:
        how = f"user={self.username!r}" if self.can_login else "token"
        return f"ApiSession({self.transport.url!r}, {how})"

    def _count_retry(self, error: BaseException, wait: float) -> None:
        self.retries += 1
        logger.debug("retrying in %.2fs after %s", wait, type(error).__name__)

    async def call(
        self, func: str, fields: Mapping[str, str], *, retry: bool = True
    ) -> _document.Doc:
        """One API call; transient faults are retried unless `retry` is False."""
        if not retry:
            return await self._call_with_auth(func, fields)
        return await call_with_retries(
            lambda: self._call_with_auth(func, fields),
            policy=self.retry,
            clock=self.clock,
            on_retry=self._count_retry,
        )

    async def _call_with_auth(self, func: str, fields: Mapping[str, str]) -> _document.Doc:
        session_id = await self._current_session()
        own_logins = 0
        for _ in range(_MAX_SESSIONS_PER_CALL):
            try:
                return await self._send(func, {**fields, "auth": session_id})
            except AuthError:
                if not self.can_login or own_logins == _MAX_OWN_LOGINS:
                    raise
            # The session expired or was dropped: log in again and repeat. A
            # session made by another caller, or even our own fresh one, may have
            # been dropped meanwhile; a refusal that survives two logins of this
            # call's own is final (no rights, or the account is locked).
            session_id, own = await self._login(stale=session_id)
            own_logins += own
        raise AuthError("the API refused every session this call was given")

    async def _current_session(self) -> str:
        if self._session_id is not None:
            return self._session_id
        return (await self._login(stale=None))[0]

    async def _login(self, *, stale: str | None) -> tuple[str, bool]:
        """A live session id, and whether this call made it (False: adopted)."""
        finished_before = self._logins_finished
        async with self._login_lock:
            if self._session_id is not None and self._session_id != stale:
                return self._session_id, False  # another caller logged in while we queued
            if self._login_error is not None and self._logins_finished != finished_before:
                # A login refused while we queued: share the refusal, so a bad
                # password is posted once, not once per caller.
                raise self._login_error
            if not self.can_login:
                raise AuthError("no session and no username and password to log in with")
            fields = {"username": self.username or "", "password": self._password or ""}
            self._login_error = None  # this attempt's own outcome decides from here
            try:
                # No retries of its own: the call that needed the login retries both.
                doc = await self._send("auth", fields)
                session_id = _document.session_id(doc)
            except AuthError as exc:
                self._login_error = exc
                raise
            finally:
                self._logins_finished += 1
            self._login_error = None
            self._secrets.add(session_id)
            self._session_id = session_id
            return session_id, True

    async def _send(self, func: str, fields: Mapping[str, str]) -> _document.Doc:
        form = {"func": func, "out": "json", "lang": "en", **fields}
        started = time.perf_counter()
        outcome = "ok"
        try:
            async with self._budget:
                if self._rate is not None:
                    await self._rate.wait()
                answer = await self.transport.post(form)
            try:
                doc = _document.parse_body(answer.status, answer.body, answer.retry_after)
            except TransportError as exc:
                if func == "auth":
                    # A broken login answer may hold the new session id, which is no
                    # known secret yet: show none of it.
                    exc.body_excerpt = "(a login answer is not shown)"
                else:
                    # Scrub the whole body before cutting the excerpt: a secret cut
                    # in two by the excerpt would no longer be recognised.
                    body = answer.body.decode("utf-8", "replace")
                    exc.body_excerpt = _document.excerpt(_scrub_text(body, self._secrets))
                raise
            return _document.raise_for_error(doc, func)
        except ZomroError as exc:
            outcome = _describe(exc)
            scrub(exc, self._secrets)
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


def _describe(error: ZomroError) -> str:
    if isinstance(error, ApiError):
        return f"{type(error).__name__}(type={error.type!r}, object={error.object!r})"
    if isinstance(error, TransportError):
        return f"{type(error).__name__}(status={error.status})"
    return type(error).__name__
