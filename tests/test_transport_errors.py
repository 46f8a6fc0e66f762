"""The transport's failures: a `TransportError` naming host:port and a plain reason."""

from __future__ import annotations

import errno
import socket
import ssl

import aiohttp
import pytest
from aioresponses import aioresponses

import zomro_async as z
from zomro_async._core._transport import Transport

URL = "https://api.zomro.com/"
KEY = aiohttp.client_reqrep.ConnectionKey("api.zomro.com", 443, True, True, None, None, None)


def _certificate_error() -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(
        1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate"
    )
    error.verify_message = "self-signed certificate"  # as the ssl module sets it
    return error


def _cut_short() -> aiohttp.ClientPayloadError:
    return aiohttp.ClientPayloadError("Response payload is not completed")


# (what aiohttp raised, the message, whether a connection was opened)
FAILURES = [
    pytest.param(
        aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(errno.ECONNREFUSED, "Refused")),
        "cannot connect to api.zomro.com:443: connection refused",
        False,
        id="refused",
    ),
    pytest.param(
        aiohttp.ClientConnectorDNSError(
            KEY, socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        ),
        "cannot connect to api.zomro.com:443: name not resolved",
        False,
        id="dns",
    ),
    pytest.param(
        aiohttp.ClientConnectorError(KEY, socket.gaierror(socket.EAI_AGAIN, "Try again")),
        "cannot connect to api.zomro.com:443: name not resolved",
        False,
        id="dns-as-a-plain-connector-error",
    ),
    pytest.param(
        aiohttp.ClientConnectorCertificateError(KEY, _certificate_error()),
        "cannot connect to api.zomro.com:443: TLS certificate verify failed "
        "(self-signed certificate)",
        False,
        id="certificate",
    ),
    pytest.param(
        aiohttp.ClientConnectorError(KEY, OSError(errno.ENETUNREACH, "Network is unreachable")),
        "cannot connect to api.zomro.com:443: network unreachable",
        False,
        id="unreachable",
    ),
    pytest.param(
        aiohttp.ClientConnectorError(KEY, OSError(errno.ENOTSOCK, "Socket operation on nonsock")),
        "cannot connect to api.zomro.com:443: socket operation on nonsock",
        False,
        id="another-os-error",
    ),
    pytest.param(
        aiohttp.ConnectionTimeoutError(f"Connection timeout to host {URL}?auth=secret-token"),
        "cannot connect to api.zomro.com:443: timed out",
        False,
        id="connect-timeout",
    ),
    pytest.param(
        TimeoutError(),
        "no answer from api.zomro.com:443: timed out after 30 s",
        True,
        id="answer-timeout",
    ),
    pytest.param(
        aiohttp.ServerDisconnectedError(),
        "no usable answer from api.zomro.com:443: the server closed the connection",
        True,
        id="disconnected",
    ),
    pytest.param(
        aiohttp.ClientOSError(errno.ECONNRESET, "Connection reset by peer"),
        "no usable answer from api.zomro.com:443: connection reset",
        True,
        id="reset",
    ),
    pytest.param(
        _cut_short(),
        "no usable answer from api.zomro.com:443: the answer was cut short",
        True,
        id="cut-short",
    ),
]


@pytest.mark.parametrize(("raised", "message", "reached"), FAILURES)
async def test_a_failure_names_the_host_the_port_and_a_plain_reason(
    raised: BaseException, message: str, reached: bool
) -> None:
    transport = Transport(URL, timeout=30.0)
    with aioresponses() as mocked:
        mocked.post(URL, exception=raised)
        with pytest.raises(z.TransportError) as caught:
            await transport.post({"func": "vm", "auth": "secret-token"})
    await transport.aclose()

    assert str(caught.value) == message
    assert caught.value.__cause__ is raised  # the original, for who needs it
    assert caught.value.reached_server is reached
    assert "secret-token" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "where"),
    [
        ("https://api.zomro.com/billmgr?x=1", "api.zomro.com:443"),
        ("http://127.0.0.1/", "127.0.0.1:80"),
        ("http://localhost:8080/api/", "localhost:8080"),
        ("http://[::1]:8080/", "[::1]:8080"),
    ],
)
async def test_host_port_is_the_urls_without_its_path_or_query(url: str, where: str) -> None:
    transport = Transport(url)
    with aioresponses() as mocked:
        mocked.post(url, exception=aiohttp.ServerDisconnectedError())
        with pytest.raises(z.TransportError) as caught:
            await transport.post({"func": "vm"})
    await transport.aclose()

    assert str(caught.value).startswith(f"no usable answer from {where}: ")


async def test_a_closed_port_is_connection_refused(unused_tcp_port: int) -> None:
    transport = Transport(f"http://127.0.0.1:{unused_tcp_port}/")
    try:
        with pytest.raises(z.TransportError) as caught:
            await transport.post({"func": "vm"})
    finally:
        await transport.aclose()

    assert str(caught.value) == f"cannot connect to 127.0.0.1:{unused_tcp_port}: connection refused"
    assert isinstance(caught.value.__cause__, aiohttp.ClientConnectorError)
    assert caught.value.reached_server is False
