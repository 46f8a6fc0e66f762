"""The transport's cap on an answer's size, over loopback HTTP: declared, streamed, inflated."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web

import zomro_async as z
from zomro_async._core import _transport
from zomro_async._core._transport import Transport

CAP = 4096
DOC = b'{"doc": {"ok": {}}}'


@pytest.fixture
def small_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_transport, "MAX_BODY_BYTES", CAP)


Answer = Callable[[web.Request], web.StreamResponse]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Callable[[web.Request], object]], object]]:
    runners: list[web.AppRunner] = []

    async def start(handler: Callable[[web.Request], object]) -> str:
        app = web.Application()
        app.router.add_post("/", handler)  # type: ignore[arg-type]
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}/"

    yield start  # type: ignore[misc]
    for runner in runners:
        await runner.cleanup()


async def _post(url: str) -> _transport.RawAnswer:
    transport = Transport(url)
    try:
        return await transport.post({"func": "whoami"})
    finally:
        await transport.aclose()


async def declared(request: web.Request) -> web.Response:
    return web.Response(body=b" " * (CAP + 1), content_type="application/json")


async def streamed(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    for _ in range(4):
        await response.write(b" " * (CAP // 2))
    await response.write_eof()
    return response


async def inflated(request: web.Request) -> web.Response:
    # Small on the wire, past the cap once inflated.
    body = gzip.compress(b" " * (CAP * 4))
    assert len(body) < CAP
    return web.Response(body=body, headers={"Content-Encoding": "gzip"})


async def small(request: web.Request) -> web.Response:
    return web.Response(body=DOC, content_type="application/json")


async def small_gzip(request: web.Request) -> web.Response:
    return web.Response(body=gzip.compress(DOC), headers={"Content-Encoding": "gzip"})


@pytest.mark.usefixtures("small_cap")
@pytest.mark.parametrize("handler", [declared, streamed, inflated], ids=lambda h: h.__name__)
async def test_an_answer_past_the_cap_is_a_transport_error(serve, handler) -> None:  # type: ignore[no-untyped-def]
    url = await serve(handler)
    with pytest.raises(z.TransportError, match=f"larger than {CAP} bytes") as caught:
        await _post(url)
    assert caught.value.status == 200


@pytest.mark.usefixtures("small_cap")
@pytest.mark.parametrize("handler", [small, small_gzip], ids=lambda h: h.__name__)
async def test_an_answer_under_the_cap_is_read_whole(serve, handler) -> None:  # type: ignore[no-untyped-def]
    url = await serve(handler)
    answer = await _post(url)
    assert (answer.status, answer.body) == (200, DOC)
