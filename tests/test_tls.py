"""TLS verification stays on unless turned off explicitly, by name."""

from __future__ import annotations

import inspect

import zomro_async as z
from zomro_async._core._transport import Transport


async def test_certificates_are_verified_by_default() -> None:
    client = z.ZomroClient(token="t0ken")
    session = client._transport._client_session()
    try:
        assert session.connector is not None
        assert session.connector._ssl is True  # verify with the system's trust store
    finally:
        await client.aclose()


async def test_verification_goes_off_only_when_asked_by_name() -> None:
    transport = Transport("https://api.zomro.com/", verify_tls=False)
    session = transport._client_session()
    try:
        assert session.connector is not None
        assert session.connector._ssl is False
    finally:
        await transport.aclose()
    # Keyword-only, defaulting to on: no positional slip turns it off.
    parameter = inspect.signature(z.ZomroClient).parameters["verify_tls"]
    assert parameter.default is True
    assert parameter.kind is inspect.Parameter.KEYWORD_ONLY


def test_no_environment_variable_turns_verification_off(monkeypatch: object) -> None:
    client = z.ZomroClient.from_env(
        {"ZOMRO_TOKEN": "t0ken", "ZOMRO_VERIFY_TLS": "0", "PYTHONHTTPSVERIFY": "0"}
    )
    assert client._transport._verify_tls is True
