"""`ZomroClient`: credentials, settings and the lifetime of one API connection."""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from ._backups._client import BackupsManager
from ._checks import check_base_url, check_credentials, check_positive_seconds, check_timeout
from ._clock import Clock, SystemClock
from ._core._context import ResourceContext
from ._core._locks import KeyedLocks
from ._core._poller import Poller, PollPolicy
from ._core._retry import RetryPolicy
from ._core._session import ApiSession
from ._core._transport import Transport
from ._images._client import ImagesManager
from ._instances._client import InstancesManager
from ._snapshots._client import SnapshotsManager

if TYPE_CHECKING:
    import aiohttp  # the caller's session type only: _transport alone uses aiohttp

DEFAULT_BASE_URL = "https://api.zomro.com/"


class ZomroClient:
    """An asyncio client of Zomro's API; use it as `async with ZomroClient(...) as client`.

    Authenticate with a session `token`, or with `username` and `password` (the
    client logs in on first use, shared by every task, and again when the session
    expires; see docs/authentication.md for the exact rule).

    Args:
        token: a BILLmanager session id (`auth`). Mutually exclusive with username/password.
        username: the account's login for `func=auth`; needs `password`.
        password: the account's password; never logged, never in a repr or error.
        base_url: the API URL; https, or http to a loopback host (the emulator).
        session: an `aiohttp.ClientSession` of yours to use; the client never closes it.
        request_timeout: seconds one HTTP request may take.
        max_in_flight: the most requests this client has on the wire at once, shared
            by every task using the client (default 8).
        max_rate: the most requests per second this client starts, shared likewise;
            off by default, for accounts whose API access is rate limited.
        retry: how transient faults are retried (`RetryPolicy`).
        poll: how waits poll (`PollPolicy`: 2 s growing by 1.5x up to 30 s by default).
        conflict_timeout: how long a create or a restore waits out an operation
            still under way on the instance.
        verify_tls: certificate verification; on unless you turn it off explicitly.
        clock: the clock waits and deadlines use (tests pass a `VirtualClock`).

    Raises:
        ValueError, TypeError: on missing or conflicting credentials or an unsafe URL.
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        session: aiohttp.ClientSession | None = None,
        request_timeout: float = 30.0,
        max_in_flight: int = 8,
        max_rate: float | None = None,
        retry: RetryPolicy | None = None,
        poll: PollPolicy | None = None,
        conflict_timeout: float = 900.0,
        verify_tls: bool = True,
        clock: Clock | None = None,
    ) -> None:
        check_credentials(token, username, password)
        self.base_url = check_base_url(base_url)
        self.clock: Clock = clock or SystemClock()
        self.retry = retry or RetryPolicy()
        self.poll = poll or PollPolicy()
        self._transport = Transport(
            self.base_url,
            session=session,
            timeout=check_positive_seconds(request_timeout, "request_timeout"),
            verify_tls=verify_tls,
        )
        self._api = ApiSession(
            self._transport,
            clock=self.clock,
            retry=self.retry,
            token=token,
            username=username,
            password=password,
            max_in_flight=max_in_flight,
            max_rate=max_rate,
        )
        # One poller serves the waits of every resource; the client closes it.
        self._poller = Poller(clock=self.clock, poll=self.poll, max_rounds=max_in_flight)
        context = ResourceContext(
            api=self._api,
            poller=self._poller,
            # One lock per instance, whichever resource changes it.
            locks=KeyedLocks(),
            clock=self.clock,
            poll=self.poll,
            retry=self.retry,
            conflict_timeout=check_timeout(conflict_timeout),
            # A request lost on the way back may be held by the server about as
            # long as we waited for it: watch that long before sending it again.
            ambiguous_grace=check_timeout(request_timeout),
        )
        self.images = ImagesManager(context)
        self.instances = InstancesManager(context, images=self.images)
        self.snapshots = SnapshotsManager(context, images=self.images, restorer=self.instances)
        self.backups = BackupsManager(context, images=self.images, restorer=self.instances)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **settings: Any) -> ZomroClient:
        """A client configured from the environment.

        `ZOMRO_TOKEN` wins over `ZOMRO_USERNAME` with `ZOMRO_PASSWORD`;
        `ZOMRO_API_URL` sets the URL (default https://api.zomro.com/).

        Args:
            env: the variables to read (default `os.environ`).
            **settings: any other constructor argument (they win over the env URL).

        Returns:
            A new, unopened client.

        Raises:
            ValueError: no usable credentials in the environment.
        """
        env = os.environ if env is None else env
        token = env.get("ZOMRO_TOKEN") or None
        username = env.get("ZOMRO_USERNAME") or None
        password = env.get("ZOMRO_PASSWORD") or None
        if token is None and (username is None or password is None):
            raise ValueError("set ZOMRO_TOKEN, or both ZOMRO_USERNAME and ZOMRO_PASSWORD")
        if token is not None:
            username = password = None
        base_url = env.get("ZOMRO_API_URL") or DEFAULT_BASE_URL
        settings.setdefault("base_url", base_url)
        return cls(token=token, username=username, password=password, **settings)

    def __repr__(self) -> str:
        how = f"username={self._api.username!r}" if self._api.can_login else "token=***"
        return f"ZomroClient(base_url={self.base_url!r}, {how})"

    @property
    def retries(self) -> int:
        """How many times this client has retried a call after a transient fault."""
        return self._api.retries

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop polling, end the calls in flight and close the HTTP session the
        client made (never one passed in).

        Waits still pending and calls still in flight fail with `ZomroError` (a
        call whose answer had arrived returns it); no request leaves after this
        returns. The client may be used again afterwards, also from another
        event loop: it opens a new session on the next call.
        """
        await self._poller.close()
        await self._api.aclose()
