"""`zomro-async emulator`: the serving coroutine, and the command stopped by a signal."""

from __future__ import annotations

import asyncio
import itertools
import shlex
import signal
import sys
from typing import Any

import aiohttp
import click
import pytest
from click.testing import CliRunner

from zomro_async._cli import _emulator_cmd, _sandbox, main
from zomro_async._cli._emulator_cmd import serve

from ._support import A, B


def banner_value(lines: list[str], label: str) -> str:
    (value,) = [line.split()[-1] for line in lines if line.strip().startswith(label)]
    return value


def curl_form(lines: list[str]) -> tuple[str, dict[str, str]]:
    """The URL and form fields of the printed curl example."""
    (line,) = [line for line in lines if line.strip().startswith("curl ")]
    words = shlex.split(line)
    fields = dict(w.split("=", 1) for prev, w in itertools.pairwise(words) if prev == "--form")
    return words[2], fields


async def post(http: aiohttp.ClientSession, url: str, **fields: str) -> dict[str, Any]:
    async with http.post(url, data=aiohttp.FormData(fields, default_to_multipart=True)) as resp:
        assert resp.status == 200
        doc: dict[str, Any] = (await resp.json())["doc"]
        return doc


async def test_serve_prints_how_to_reach_it_and_answers_there() -> None:
    lines: list[str] = []

    async def use_it() -> None:
        url = banner_value(lines, "Zomro API emulator at")
        user, password = banner_value(lines, "user"), banner_value(lines, "password")
        async with aiohttp.ClientSession() as http:
            doc = await post(http, url, func="auth", username=user, password=password, out="json")
            assert doc["auth"]["$"]
            curl_url, fields = curl_form(lines)
            assert curl_url == url
            assert fields["auth"] == banner_value(lines, "token")
            assert fields["elid"] == str(A)
            listing = await post(http, curl_url, **fields)
            assert listing["elem"][0]["fleio_status"]["$"] == "Active"
            # the banner's SSH key is the account's: a rebuild with it is accepted
            rebuild = await post(
                http,
                url,
                func="instances.fleio.rebuild",
                auth=fields["auth"],
                out="json",
                elid=str(A),
                zone="own",
                select_rebuild=listing["elem"][0]["fleio_id"]["$"],
                enablessh="on",
                ssh_keys=banner_value(lines, "ssh key"),
                sok="ok",
            )
            assert "error" not in rebuild

    await serve(stop=use_it(), port=0, instances=2, echo=lines.append)

    assert f"instances {A} {B} (one Active snapshot each)" in "\n".join(lines)
    assert banner_value(lines, "ssh key") == _sandbox.SSH_KEY  # the docs' key, as --emulator's
    assert lines[-1] == "emulator stopped after 3 calls"
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            await post(http, banner_value(lines, "Zomro API emulator at"), func="whoami")


async def test_serve_stops_when_the_event_is_set() -> None:
    lines: list[str] = []
    ready, stop = asyncio.Event(), asyncio.Event()

    def echo(line: str) -> None:
        lines.append(line)
        if line.startswith("Ctrl-C"):
            ready.set()

    task = asyncio.create_task(serve(stop=stop.wait(), port=0, instances=1, echo=echo))
    await ready.wait()
    assert not task.done()
    stop.set()
    await task
    assert lines[-1] == "emulator stopped after 0 calls"


async def test_a_taken_port_is_a_click_error() -> None:
    taken, ready, stop = [], asyncio.Event(), asyncio.Event()

    def echo(line: str) -> None:
        taken.append(line)
        ready.set()

    first = asyncio.create_task(serve(stop=stop.wait(), port=0, instances=0, echo=echo))
    await ready.wait()
    port = int(banner_value(taken, "Zomro API emulator at").rstrip("/").rsplit(":", 1)[1])
    with pytest.raises(click.ClickException, match=f"cannot listen on 127.0.0.1:{port}"):
        await serve(stop=asyncio.Event().wait(), port=port, echo=taken.append)
    stop.set()
    await first


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "example.com"])  # noqa: S104
def test_a_non_loopback_host_needs_allow_remote(host: str) -> None:
    result = CliRunner().invoke(main, ["emulator", "--host", host])
    assert result.exit_code == 2
    assert "--allow-remote" in result.output


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_the_command_serves_until_a_signal(
    monkeypatch: pytest.MonkeyPatch, sig: signal.Signals
) -> None:
    real_echo = click.echo

    def echo(message: str, **kwargs: Any) -> None:
        real_echo(message, **kwargs)
        if message.startswith("Ctrl-C"):
            signal.raise_signal(sig)  # as if the user pressed Ctrl-C, or systemd stopped it

    monkeypatch.setattr(_emulator_cmd.click, "echo", echo)
    result = CliRunner().invoke(main, ["emulator", "--port", "0", "--instances", "2"])

    assert result.exit_code == 0, result.output
    assert result.exception is None
    assert "Traceback" not in result.output
    assert "password  demo-password" in result.output
    assert result.output.splitlines()[-1] == "emulator stopped after 0 calls"
