"""aioresponses 0.7.9 on aiohttp 3.14: the one thing that breaks, mended in the tests only.

aiohttp 3.14 made `stream_writer` a required keyword of `ClientResponse.__init__`
(the response reads the request's upload size from it). aioresponses builds its
fake responses with `ClientResponse(method, url, writer=None, ...)` and no
`stream_writer`, so every mocked request fails with
`TypeError: ... missing 1 required keyword-only argument: 'stream_writer'`.

The fixture below hands aioresponses a `ClientResponse` subclass that supplies a
stand-in writer when none is given: with `writer=None` aiohttp only reads its
`output_size` (a mocked request uploads nothing). On aiohttp < 3.14, or once
aioresponses passes `stream_writer` itself, it changes nothing. The SDK's users
never see this: it is a test tool's problem, so it is mended here and the
runtime's `aiohttp` is never capped for it.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from aioresponses import core

NEEDS_STREAM_WRITER = (
    "stream_writer" in inspect.signature(aiohttp.ClientResponse.__init__).parameters
)


class _NothingUploaded:
    """The part of `AbstractStreamWriter` a sent request's response reads."""

    output_size = 0


class _MockedResponse(aiohttp.ClientResponse):
    def __init__(self, *args: Any, stream_writer: Any = None, **kwargs: Any) -> None:
        if stream_writer is None:
            stream_writer = _NothingUploaded()
        super().__init__(*args, stream_writer=stream_writer, **kwargs)


@pytest.fixture(autouse=True, scope="session")
def aioresponses_on_aiohttp_3_14() -> Iterator[None]:
    """Make aioresponses' default response class accept aiohttp 3.14's `stream_writer`."""
    if not NEEDS_STREAM_WRITER:
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(core, "ClientResponse", _MockedResponse)
        yield
