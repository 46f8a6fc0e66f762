"""The only module that touches aiohttp: a form POST goes out, a status and a body come back."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

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
        self._where = _host_port(url)
        self._session = session
        self._owns_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._seconds = timeout
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
                f"cannot connect to {self._where}: {_connect_failure(exc)}", reached_server=False
            ) from exc
        except TimeoutError as exc:
            raise TransportError(
                f"no answer from {self._where}: timed out after {self._seconds:g} s"
            ) from exc
        except aiohttp.ClientError as exc:
            raise TransportError(
                f"no usable answer from {self._where}: {_answer_failure(exc)}"
            ) from exc

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


def _host_port(url: str) -> str:
    """`host:port` of `url` (the default port of its scheme if none is given), for
    messages: never its path, query or credentials."""
    parts = urlsplit(url)
    host = parts.hostname or "the API"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:  # not a port at all: the connection tells what is wrong
        return host
    if port is None:
        port = {"https": 443, "http": 80}.get(parts.scheme)
    return host if port is None else f"{host}:{port}"


# Plain words for what the OS said; `strerror`'s wording differs between systems.
_OS_REASONS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ETIMEDOUT: "timed out",
    errno.ENETUNREACH: "network unreachable",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ECONNRESET: "connection reset",
    errno.ECONNABORTED: "connection aborted",
}


def _connect_failure(error: BaseException) -> str:
    """Why no connection was opened, in plain words."""
    if isinstance(error, aiohttp.ClientConnectorCertificateError):
        cause = error.certificate_error
        detail = getattr(cause, "verify_message", None) or type(cause).__name__
        return f"TLS certificate verify failed ({detail})"
    if isinstance(error, aiohttp.ClientConnectorSSLError):
        reason = getattr(error.os_error, "reason", None) or type(error.os_error).__name__
        return f"TLS handshake failed ({reason})"
    if isinstance(error, TimeoutError):  # the connect timeout
        return "timed out"
    if not isinstance(error, aiohttp.ClientConnectorError):
        return type(error).__name__
    cause = error.os_error
    if isinstance(error, aiohttp.ClientConnectorDNSError) or isinstance(cause, socket.gaierror):
        return "name not resolved"
    return _os_reason(cause)


def _answer_failure(error: aiohttp.ClientError) -> str:
    """What went wrong once a connection was opened, in plain words."""
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "the server closed the connection"
    if isinstance(error, aiohttp.ClientPayloadError):
        return "the answer was cut short"
    if isinstance(error, OSError):
        return _os_reason(error)
    return type(error).__name__


def _os_reason(error: OSError) -> str:
    if error.errno in _OS_REASONS:
        return _OS_REASONS[error.errno]
    if isinstance(error, ssl.SSLError):
        return f"TLS error ({getattr(error, 'reason', None) or type(error).__name__})"
    return (error.strerror or type(error).__name__).lower()


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    length = response.content_length
    if (
        length is not None
        and length <= MAX_BODY_BYTES
        and "Content-Encoding" not in response.headers
    ):
        # The usual answer: a declared length under the cap, not compressed, so
        # the body is that long. Read in one step (a stream costs more awaits).
        return await response.read()
    # Compressed (its length says nothing of what it inflates to), of no declared
    # length, or declared too long: counted as it comes.
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
