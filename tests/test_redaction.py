"""Secrets never reach logs or error texts: `redact_fields` and `scrub`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from zomro_async._core._document import error_from, parse_body
from zomro_async._core._redact import Secrets, redact_fields
from zomro_async._exceptions import (
    ApiError,
    AuthError,
    ResponseError,
    TransportError,
    ZomroError,
)

TOKEN = "5acd1215da7a09eaae215987"
PASSWORD = "hunter2-Secret!"


# --------------------------------------------------------------------------- redact_fields


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param(
            {"func": "instances.snapshots", "auth": TOKEN, "out": "json", "elid": "5203773"},
            {"func": "instances.snapshots", "auth": "***", "out": "json", "elid": "5203773"},
            id="auth",
        ),
        pytest.param(
            {"func": "auth", "username": "me@example.com", "password": PASSWORD},
            {"func": "auth", "username": "me@example.com", "password": "***"},
            id="password",
        ),
        pytest.param(
            {"func": "instances", "authinfo": f"me@example.com:{PASSWORD}"},
            {"func": "instances", "authinfo": "***"},
            id="authinfo",
        ),
        pytest.param(
            {"func": "auth", "username": "me", "key": "k" * 32},
            {"func": "auth", "username": "me", "key": "***"},
            id="key",
        ),
        pytest.param(
            {"func": "totp.confirm", "qrcode": "123456", "sok": "ok"},
            {"func": "totp.confirm", "qrcode": "***", "sok": "ok"},
            id="qrcode",
        ),
        pytest.param({"auth": ""}, {"auth": "***"}, id="empty-secret-still-hidden"),
        pytest.param(
            {"func": "image.delete", "elid": "1", "elname": "1", "plid": "2"},
            {"func": "image.delete", "elid": "1", "elname": "1", "plid": "2"},
            id="nothing-secret",
        ),
        pytest.param({}, {}, id="empty"),
    ],
)
def test_redact_fields(fields: dict[str, str], expected: dict[str, str]) -> None:
    assert redact_fields(fields) == expected


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"auth": TOKEN, "func": "x"}, id="auth"),
        pytest.param({"password": PASSWORD, "username": "me"}, id="password"),
        pytest.param({"authinfo": f"me:{PASSWORD}"}, id="authinfo"),
    ],
)
def test_redact_fields_leaves_no_secret_and_does_not_mutate(fields: dict[str, str]) -> None:
    before = dict(fields)
    redacted = redact_fields(fields)
    assert TOKEN not in repr(redacted)
    assert PASSWORD not in repr(redacted)
    assert fields == before
    assert redacted is not fields
    assert redacted.keys() == fields.keys()


# --------------------------------------------------------------------------- scrub


def scrub(error: ZomroError, secrets: set[str]) -> ZomroError:
    return Secrets(secrets).scrub_error(error)


def _leaky_api_error() -> ApiError:
    return AuthError(
        f"session {TOKEN} is not valid",
        type="access",
        object="instances.snapshots",
        detail=f"auth={TOKEN}&password={PASSWORD}",
        params={"auth": TOKEN, "value": f"x{PASSWORD}x", "elid": "5203773"},
        func="instances.snapshots",
    )


def _leaky_transport_error() -> TransportError:
    return TransportError(
        f"POST failed for auth={TOKEN}",
        status=502,
        body_excerpt=f"<html>auth={TOKEN} password={PASSWORD}</html>",
        retry_after=3.0,
    )


@pytest.mark.parametrize(
    ("make", "texts"),
    [
        pytest.param(
            _leaky_api_error,
            lambda e: [e.message, e.detail, *e.params.values(), str(e), repr(e), *map(str, e.args)],
            id="api-error",
        ),
        pytest.param(
            _leaky_transport_error,
            lambda e: [e.body_excerpt, str(e), repr(e), *map(str, e.args)],
            id="transport-error",
        ),
        pytest.param(
            lambda: ResponseError(f"bad answer to auth={TOKEN}", field="auth.$id"),
            lambda e: [str(e), repr(e)],
            id="response-error",
        ),
    ],
)
def test_scrub_removes_every_secret(
    make: Callable[[], ZomroError], texts: Callable[[Any], list[str]]
) -> None:
    error = make()
    assert any(TOKEN in t for t in texts(error)), "the fixture must leak before scrubbing"
    cleaned = scrub(error, {TOKEN, PASSWORD})
    assert cleaned is error
    for text in texts(cleaned):
        assert TOKEN not in text
        assert PASSWORD not in text


def test_scrub_api_error_keeps_everything_else() -> None:
    error = scrub(_leaky_api_error(), {TOKEN, PASSWORD})
    assert isinstance(error, AuthError)
    assert error.message == "session *** is not valid"
    assert error.detail == "auth=***&password=***"
    assert error.params == {"auth": "***", "value": "x***x", "elid": "5203773"}
    assert error.type == "access"
    assert error.object == "instances.snapshots"
    assert error.func == "instances.snapshots"
    assert str(error) == (
        "session *** is not valid (type='access', object='instances.snapshots' "
        "in instances.snapshots)"
    )


def test_scrub_transport_error_keeps_everything_else() -> None:
    error = scrub(_leaky_transport_error(), {TOKEN, PASSWORD})
    assert isinstance(error, TransportError)
    assert error.status == 502
    assert error.retry_after == 3.0
    assert error.body_excerpt == "<html>auth=*** password=***</html>"
    assert str(error) == "POST failed for auth=*** (HTTP 502): '<html>auth=*** password=***</html>'"


def test_scrub_an_error_parsed_from_a_real_answer() -> None:
    doc = {
        "error": {
            "$type": "access",
            "msg": {"$": f"Insufficient privileges ({TOKEN})"},
            "param": {"$name": "auth", "$": TOKEN},
        }
    }
    error = error_from(doc, "instances.snapshots")
    assert error is not None
    scrub(error, {TOKEN})
    assert TOKEN not in str(error)
    assert TOKEN not in error.message
    assert error.params == {"auth": "***"}


def test_scrub_a_transport_error_from_parse_body() -> None:
    with pytest.raises(TransportError) as info:
        parse_body(403, f"<html>denied for auth={TOKEN}</html>".encode())
    error = scrub(info.value, {TOKEN})
    assert TOKEN not in error.body_excerpt
    assert TOKEN not in str(error)


@pytest.mark.parametrize(
    "secrets",
    [
        pytest.param(set(), id="no-secrets"),
        pytest.param({""}, id="empty-secret"),
        pytest.param({"ab"}, id="too-short-to-scrub"),
    ],
)
def test_scrub_without_usable_secrets_changes_nothing(secrets: set[str]) -> None:
    error = ApiError("ab message", detail="ab detail", params={"p": "ab"})
    cleaned = scrub(error, secrets)
    assert cleaned is error
    assert (error.message, error.detail, dict(error.params)) == (
        "ab message",
        "ab detail",
        {"p": "ab"},
    )


def test_scrub_keeps_the_error_class_for_every_root_subclass() -> None:
    for cls in (ZomroError, ResponseError):
        error = cls(f"x {TOKEN}")
        assert type(scrub(error, {TOKEN})) is cls
        assert TOKEN not in str(error)
