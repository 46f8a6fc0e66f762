"""`zomro-async emulator`: serve the API emulator on its own until Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import click

from zomro_async._checks import is_loopback
from zomro_async.testing import EmulatorConfig, ZomroEmulator
from zomro_async.testing._ids import FIRST_INSTANCE_ID, MAX_FLEET, fleet_ids

from ._common import FiniteFloatRange

# Off the 8080 that web apps (examples/aiohttp_service.py among them) default
# to, so the emulator and an app pointed at it can both run with their defaults.
DEFAULT_PORT = 8765


async def serve(
    *,
    stop: Awaitable[object],
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    instances: int = 3,
    time_to_active: float = 8.0,
    fault_rate: float = 0.0,
    seed: int = 0,
    echo: Callable[[str], object] | None = None,
) -> None:
    """Serve an emulator with `instances` seeded ones, print how to reach it, and
    close it once `stop` is done. `ClickException` if the address is taken.
    """
    say = echo or click.echo
    config = EmulatorConfig(time_to_active=time_to_active, fault_rate=fault_rate, seed=seed)
    emulator = ZomroEmulator(config, host=host, port=port)
    try:
        try:
            await emulator.start()
        except OSError as exc:
            raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from exc
        # For `restore --ssh-key`; first, as the --emulator sandbox adds it, so that
        # with the same seed it is the same key the docs show.
        ssh_key = emulator.add_ssh_key("emulator")
        ids = fleet_ids(instances)
        for instance_id in ids:
            emulator.add_instance(instance_id, 1)
        say(f"Zomro API emulator at {emulator.url}")
        say(f"  user      {config.username}")
        say(f"  password  {config.password}")
        say(f"  token     {emulator.token}")
        say(f"  ssh key   {ssh_key}")
        say(f"  instances {' '.join(map(str, ids))} (one Active snapshot each)")
        say(f"  new snapshots are Active after {time_to_active:g} s")
        if fault_rate:
            say(f"  {fault_rate:.0%} of requests fail transiently (502, 503, resets, ...)")
        say("Try:")
        say(
            f"  curl -s {emulator.url} --form func=instances.snapshots "
            f"--form auth={emulator.token} --form out=json --form elid={ids[0] if ids else 'ID'}"
        )
        say("Ctrl-C to stop.")
        await stop
    finally:
        if isinstance(stop, Coroutine):
            stop.close()  # never awaited when the start failed: no warning
        await emulator.close()
    served = sum(emulator.calls.values())
    say(f"emulator stopped after {served} call{'' if served == 1 else 's'}")


async def serve_until_signal(**settings: Any) -> None:
    """`serve` until SIGINT or SIGTERM (where the loop can catch them)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    caught: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # Windows, or not the main thread
            continue
        caught.append(sig)
    try:
        await serve(stop=stop.wait(), **settings)
    finally:
        for sig in caught:
            loop.remove_signal_handler(sig)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True)
@click.option(
    "--instances",
    type=click.IntRange(0, MAX_FLEET),
    default=3,
    show_default=True,
    help=f"How many instances to seed, ids from {FIRST_INSTANCE_ID} up (as the demo's).",
)
@click.option(
    "--time-to-active",
    type=FiniteFloatRange(min=0),
    default=8.0,
    show_default=True,
    help="Seconds a new snapshot stays Saving.",
)
@click.option(
    "--fault-rate",
    type=FiniteFloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of requests that fail transiently.",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seeds the emulator's data and faults: the same seed, the same ids and keys.",
)
@click.option("--allow-remote", is_flag=True, help="Listen on a non-loopback host.")
def emulator(
    host: str,
    port: int,
    instances: int,
    time_to_active: float,
    fault_rate: float,
    seed: int,
    allow_remote: bool,
) -> None:
    """Serve an emulator of Zomro's API (instances, snapshots, restores), to try the
    SDK, the CLI (--api-url) or curl on."""
    if not allow_remote and not is_loopback(host):
        raise click.BadParameter(
            f"{host} is not a loopback address, and the emulator's password is public; "
            "pass --allow-remote to listen there anyway",
            param_hint="--host",
        )
    if not is_loopback(host):
        click.echo(f"warning: anyone who can reach {host} can use the emulator", err=True)
    try:
        asyncio.run(
            serve_until_signal(
                host=host,
                port=port,
                instances=instances,
                time_to_active=time_to_active,
                fault_rate=fault_rate,
                seed=seed,
            )
        )
    except KeyboardInterrupt:  # Ctrl-C where no signal handler could be set
        click.echo("emulator stopped")
