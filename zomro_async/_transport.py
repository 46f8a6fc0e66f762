"""The only module that touches aiohttp: a form POST goes out, a status and a body come back."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
import attrs

from ._exceptions import TransportError

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

    A session passed in is the caller's and is never closed here; one made here
    is closed by `aclose()`. Redirects are not followed: BILLmanager redirects
    only to HTML pages (a login form), which are no answer.
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

    def _client_session(self) -> aiohttp.ClientSession:
        if self._session is None or (self._owns_session and self._session.closed):
            # Made on first use so that it belongs to the loop that uses it.
            connector = aiohttp.TCPConnector(ssl=self._verify_tls)
            self._session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": USER_AGENT}
            )
        return self._session

    async def post(self, fields: Mapping[str, str]) -> RawAnswer:
        """POST `fields` form-encoded in the body (never in the URL)."""
        session = self._client_session()
        try:
            async with session.post(
                self.url, data=dict(fields), timeout=self._timeout, allow_redirects=False
            ) as response:
                body = await _read_capped(response)
                return RawAnswer(response.status, body, response.headers.get("Retry-After"))
        except TimeoutError as exc:
            raise TransportError("the API did not answer in time") from exc
        except aiohttp.ClientError as exc:
            raise TransportError(f"could not talk to the API ({type(exc).__name__})") from exc

    async def aclose(self) -> None:
        if self._owns_session and self._session is not None and not self._session.closed:
            await self._session.close()


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
