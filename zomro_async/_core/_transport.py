"""The only module that touches aiohttp: a form POST goes out, a status and a body come back."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp
import attrs

from .._exceptions import TransportError, ZomroError

# A snapshot list is a few kilobytes; anything near this is not a BILLmanager answer.
MAX_BODY_BYTES = 8 * 1024 * 1024
USER_AGENT = "zomro-async"


@attrs.frozen
class RawAnswer:
    """An HTTP answer before any reading of its document."""

    status: int
    body: bytes
    retry_after: str | None = None


class Transport:
    """Posts form fields to the API URL over one aiohttp session.

    A session passed in is the caller's and is never closed here. One made here
    belongs to the event loop that first used it: a post from another loop (a
    second `asyncio.run()`) makes a new one. `aclose()` closes it, fails every
    post still in flight with `ZomroError`, and returns only once they are done.
    Redirects are not followed: BILLmanager redirects only to HTML pages (a
    login form), which are no answer.
    """

    def __init__(
        self,
        url: str,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 30.0,
        verify_tls: bool = True,
    ) -> None:
        self.url = url
        self._session = session
        self._owns_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._verify_tls = verify_tls
        # The tasks inside post(), so that aclose() can end their requests.
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._ended_by_close: set[asyncio.Task[Any]] = set()
        self._drained: asyncio.Event | None = None

    def _client_session(self) -> aiohttp.ClientSession:
        session = self._session
        if session is not None and not self._owns_session:
            return session
        loop = asyncio.get_running_loop()
        if session is None or session.closed or getattr(session, "_loop", loop) is not loop:
            # Made on first use in each loop, so that it belongs to the loop that uses it.
            connector = aiohttp.TCPConnector(ssl=self._verify_tls)
            session = self._session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": USER_AGENT}
            )
        return session

    async def post(self, fields: Mapping[str, str]) -> RawAnswer:
        """POST `fields` form-encoded in the body (never in the URL).

        Raises:
            TransportError: no usable answer (`reached_server` False when no
                connection was opened, so the request had no effect).
            ZomroError: `aclose()` ended the post.
        """
        task = asyncio.current_task()
        assert task is not None  # aiohttp needs a task too
        self._in_flight.add(task)
        try:
            return await self._exchange(self._client_session(), dict(fields))
        except asyncio.CancelledError:
            if task in self._ended_by_close and task.uncancel() == 0:
                # Cancelled by aclose() alone: the caller gets an error, not a cancel.
                raise ZomroError("the client was closed while the request was in flight") from None
            raise
        finally:
            self._in_flight.discard(task)
            self._ended_by_close.discard(task)
            if not self._ended_by_close and self._drained is not None:
                self._drained.set()

    async def _exchange(self, session: aiohttp.ClientSession, form: dict[str, str]) -> RawAnswer:
        try:
            async with session.post(
                self.url, data=form, timeout=self._timeout, allow_redirects=False
            ) as response:
                body = await _read_capped(response)
                return RawAnswer(response.status, body, response.headers.get("Retry-After"))
        except _NEVER_CONNECTED as exc:
            raise TransportError(
                f"could not connect to the API ({type(exc).__name__})", reached_server=False
            ) from exc
        except TimeoutError as exc:
            raise TransportError("the API did not answer in time") from exc
        except aiohttp.ClientError as exc:
            raise TransportError(f"could not talk to the API ({type(exc).__name__})") from exc

    async def aclose(self) -> None:
        """End every post in flight, wait for them, and close the session made here
        (never one passed in): no request leaves after this returns.
        """
        for task in self._in_flight - self._ended_by_close:
            self._ended_by_close.add(task)
            task.cancel()
        if self._ended_by_close:
            # Wait for the posts ended by a close, not for posts begun since.
            if self._drained is None or self._drained.is_set():
                self._drained = asyncio.Event()
            await self._drained.wait()
        session = self._session
        if self._owns_session and session is not None and not session.closed:
            self._session = None
            await session.close()


# Failures to open a connection: nothing was sent, so the request had no effect.
_NEVER_CONNECTED: tuple[type[BaseException], ...] = (
    aiohttp.ClientConnectorError,
    *((aiohttp.ConnectionTimeoutError,) if hasattr(aiohttp, "ConnectionTimeoutError") else ()),
)


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise TransportError(
                f"the API's answer is larger than {MAX_BODY_BYTES} bytes", status=response.status
            )
        chunks.append(chunk)
    return b"".join(chunks)
