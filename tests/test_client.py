"""ZomroClient: credentials, URL safety, configuration from the environment, session ownership."""

from __future__ import annotations

import aiohttp
import pytest

import zomro_async as z
from tests.conftest import PASSWORD, TOKEN, URL, FakeApi, listing


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://api.zomro.com/", True),
        ("https://api.zomro.com/billmgr", True),
        ("http://127.0.0.1:8080/", True),
        ("http://localhost:8080/billmgr", True),
        ("http://[::1]:8080/", True),
        ("http://127.0.0.2/", True),
        ("http://api.zomro.com/", False),
        ("http://10.0.0.1/", False),
        ("ftp://api.zomro.com/", False),
        ("api.zomro.com", False),
        ("https://user:pass@api.zomro.com/", False),
        ("https://api.zomro.com/?auth=abc", False),
        ("https:///nohost", False),
    ],
)
def test_base_url_is_https_or_loopback_only(url: str, ok: bool) -> None:
    if ok:
        assert z.ZomroClient(token=TOKEN, base_url=url).base_url == url
    else:
        with pytest.raises(ValueError, match=r"base_url|refusing"):
            z.ZomroClient(token=TOKEN, base_url=url)


@pytest.mark.parametrize(
    "credentials",
    [
        {},
        {"username": "alice"},
        {"password": PASSWORD},
        {"token": TOKEN, "username": "alice", "password": PASSWORD},
        {"token": ""},
        {"username": "", "password": PASSWORD},
    ],
)
def test_credentials_must_be_a_token_or_a_username_and_password(
    credentials: dict[str, str],
) -> None:
    with pytest.raises(ValueError):
        z.ZomroClient(**credentials)


def test_credentials_must_be_text() -> None:
    with pytest.raises(TypeError):
        z.ZomroClient(token=123)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("env", "expect"),
    [
        ({"ZOMRO_TOKEN": TOKEN}, "token=***"),
        ({"ZOMRO_USERNAME": "alice", "ZOMRO_PASSWORD": PASSWORD}, "username='alice'"),
        (
            {"ZOMRO_TOKEN": TOKEN, "ZOMRO_USERNAME": "a", "ZOMRO_PASSWORD": PASSWORD},
            "token=***",
        ),
    ],
)
def test_from_env(env: dict[str, str], expect: str) -> None:
    client = z.ZomroClient.from_env({**env, "ZOMRO_API_URL": "http://127.0.0.1:9/"})
    assert client.base_url == "http://127.0.0.1:9/"
    assert expect in repr(client)


def test_from_env_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZOMRO_TOKEN", TOKEN)
    monkeypatch.delenv("ZOMRO_API_URL", raising=False)
    assert z.ZomroClient.from_env().base_url == "https://api.zomro.com/"


@pytest.mark.parametrize("env", [{}, {"ZOMRO_USERNAME": "alice"}, {"ZOMRO_PASSWORD": PASSWORD}])
def test_from_env_without_credentials_says_what_to_set(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="ZOMRO_TOKEN"):
        z.ZomroClient.from_env(env)


def test_repr_shows_no_secret() -> None:
    for client in (
        z.ZomroClient(token=TOKEN),
        z.ZomroClient(username="alice", password=PASSWORD),
    ):
        text = repr(client) + repr(client.snapshots)
        assert TOKEN not in text
        assert PASSWORD not in text


async def test_caller_session_is_used_and_left_open(api: FakeApi) -> None:
    api.on("instances.snapshots", listing())
    async with aiohttp.ClientSession() as session:
        async with z.ZomroClient(token=TOKEN, session=session) as client:
            assert await client.snapshots.list(1) == []
        assert not session.closed
    assert api.funcs() == ["instances.snapshots"]


async def test_own_session_is_closed_and_reopened_on_next_use(api: FakeApi) -> None:
    api.on("instances.snapshots", listing())
    client = z.ZomroClient(token=TOKEN)
    await client.snapshots.list(1)
    await client.aclose()
    await client.aclose()  # twice is harmless
    await client.snapshots.list(1)
    await client.aclose()
    assert api.funcs() == ["instances.snapshots"] * 2


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError):
        z.ZomroClient(token=TOKEN, max_in_flight=0)
    with pytest.raises(ValueError):
        z.ZomroClient(token=TOKEN, request_timeout=-1)
    with pytest.raises(ValueError, match="request_timeout"):
        z.ZomroClient(token=TOKEN, request_timeout=0)
    with pytest.raises(ValueError):
        z.PollPolicy(multiplier=0.5)
    with pytest.raises(ValueError):
        z.RetryPolicy(attempts=0)


def test_url_constant_is_the_documented_one() -> None:
    assert z.ZomroClient(token=TOKEN).base_url == URL
