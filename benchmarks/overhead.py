"""Client overhead: CPU per `client.snapshots.list()` against a bare aiohttp POST of the same form.

The emulator runs in a child process (real clock) with one instance holding 20
snapshots, so this process's CPU time (`time.process_time()`) is the client's
alone. Rounds alternate the two loops; the figure is the median per-call CPU.

    python benchmarks/overhead.py [--calls 2000] [--rounds 3] [--profile] [--layers]

`--profile` adds a cProfile of K more SDK calls; `--layers` times the SDK's
layers one on top of the other (private internals: a diagnosis, not an API).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import pstats
import statistics
import time
from collections.abc import Awaitable, Callable

import aiohttp
from _common import EmulatorProcess, Figure, emit, machine

from zomro_async import ZomroClient
from zomro_async._core import _document
from zomro_async._core._converter import snapshot_from_row

INSTANCE = 5_203_773
SNAPSHOTS = 20
WARMUP = 200


def make_loops(
    url: str, token: str, client: ZomroClient, http: aiohttp.ClientSession
) -> dict[str, Callable[[int], Awaitable[None]]]:
    form = {
        "func": "instances.snapshots",
        "out": "json",
        "lang": "en",
        "auth": token,
        "elid": str(INSTANCE),
    }

    async def sdk(k: int) -> None:
        for _ in range(k):
            snapshots = await client.snapshots.list(INSTANCE)
            assert len(snapshots) == SNAPSHOTS

    async def bare(k: int) -> None:
        for _ in range(k):
            async with http.post(url, data=form) as response:
                doc = json.loads(await response.read())
            assert len(doc["doc"]["elem"]) == SNAPSHOTS

    return {"SDK": sdk, "bare": bare}


async def timed(loop: Callable[[int], Awaitable[None]], k: int) -> tuple[float, float]:
    """CPU and wall seconds per call over `k` sequential calls."""
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    await loop(k)
    return (time.process_time() - cpu) / k, (time.perf_counter() - wall) / k


def make_layers(
    url: str, token: str, client: ZomroClient, http: aiohttp.ClientSession
) -> dict[str, Callable[[int], Awaitable[None]]]:
    """The path of `snapshots.list()` cut at each layer, every loop adding one layer."""
    form = {"func": "instances.snapshots", "out": "json", "lang": "en", "auth": token}
    form["elid"] = elid = str(INSTANCE)
    api, transport = client._api, client._transport
    fields = {"elid": elid}

    async def transport_post(k: int) -> None:
        for _ in range(k):
            json.loads((await transport.post(form)).body)

    async def session_send(k: int) -> None:
        for _ in range(k):
            await api._send("instances.snapshots", {**fields, "auth": token})

    async def session_call(k: int) -> None:
        for _ in range(k):
            await api.call("instances.snapshots", fields)

    async def rows(k: int) -> None:
        for _ in range(k):
            _document.rows(await api.call("instances.snapshots", fields))

    async def models(k: int) -> None:
        for _ in range(k):
            doc = await api.call("instances.snapshots", fields)
            [snapshot_from_row(row, INSTANCE) for row in _document.rows(doc)]

    return {
        "bare aiohttp POST + json.loads": make_loops(url, token, client, http)["bare"],
        "+ Transport.post (attrs answer, capped read)": transport_post,
        "+ ApiSession._send (form, budget, parse, errors, log)": session_send,
        "+ ApiSession.call (tenacity retry wrapper, auth)": session_call,
        "+ _document.rows (unwrap 20 rows)": rows,
        "+ snapshot_from_row (cattrs, 20 rows)": models,
        "+ paging check, bind = snapshots.list()": make_loops(url, token, client, http)["SDK"],
    }


async def layers(url: str, token: str, k: int, rounds: int) -> None:
    async with (
        ZomroClient(token=token, base_url=url) as client,
        aiohttp.ClientSession() as http,
    ):
        loops = make_layers(url, token, client, http)
        for loop in loops.values():
            await loop(WARMUP)
        cpu: dict[str, list[float]] = {name: [] for name in loops}
        for _ in range(rounds):
            for name, loop in loops.items():
                cpu[name].append((await timed(loop, k))[0])
        print(f"\nlayers, median CPU per call over {rounds} rounds of {k}:")
        previous = 0.0
        for name, samples in cpu.items():
            median = statistics.median(samples) * 1e6
            print(f"  {name:<52} {median:7.1f} us  ({median - previous:+7.1f})")
            previous = median


async def measure(
    url: str, token: str, k: int, rounds: int, profile: bool
) -> dict[str, list[float]]:
    cpu: dict[str, list[float]] = {"SDK": [], "bare": []}
    async with (
        ZomroClient(token=token, base_url=url) as client,
        aiohttp.ClientSession() as http,
    ):
        loops = make_loops(url, token, client, http)
        for loop in loops.values():
            await loop(WARMUP)
        for r in range(rounds):
            order = ["SDK", "bare"] if r % 2 == 0 else ["bare", "SDK"]
            shown = []
            for name in order:
                per_call, wall = await timed(loops[name], k)
                cpu[name].append(per_call)
                shown.append(f"{name} {per_call * 1e6:7.1f} us CPU ({wall * 1e6:7.1f} us wall)")
            print(f"round {r + 1}: " + ", ".join(shown), flush=True)
        if profile:
            profiler = cProfile.Profile()
            profiler.enable()
            await loops["SDK"](k)
            profiler.disable()
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out).strip_dirs()
            stats.sort_stats("tottime").print_stats(25)
            stats.sort_stats("cumulative").print_stats(40)
            print(f"\ncProfile of {k} SDK calls:\n{out.getvalue()}")
    return cpu


def main(argv: list[str] | None = None) -> list[Figure]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="K calls per loop per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile K more SDK calls")
    parser.add_argument("--layers", action="store_true", help="time the SDK layer by layer")
    args = parser.parse_args(argv)

    print(f"== client overhead ({machine()})")
    print(
        f"setup: emulator in a child process on the real clock, 1 instance x {SNAPSHOTS} "
        f"snapshots; K={args.calls} sequential calls per loop, {args.rounds} alternating rounds "
        f"after {WARMUP} warm-up calls each; token client; CPU = time.process_time() of this "
        "process"
    )
    with EmulatorProcess() as emulator:
        emulator.add([(INSTANCE, {"snapshots": SNAPSHOTS})])
        print(f"emulator: pid {emulator.pid} at {emulator.url}")
        cpu = asyncio.run(
            measure(emulator.url, emulator.token, args.calls, args.rounds, args.profile)
        )
        if args.layers:
            asyncio.run(layers(emulator.url, emulator.token, args.calls, args.rounds))
    sdk, bare = statistics.median(cpu["SDK"]), statistics.median(cpu["bare"])
    print(
        f"median CPU per call: SDK client.snapshots.list() {sdk * 1e6:.1f} us, "
        f"bare aiohttp POST + json.loads {bare * 1e6:.1f} us"
    )
    figures = [
        Figure("SDK CPU per call", sdk * 1e6, unit="us", fmt=".1f"),
        Figure("bare aiohttp CPU per call", bare * 1e6, unit="us", fmt=".1f"),
        Figure("SDK / bare CPU per call", sdk / bare, goal=1.4, fmt=".2f"),
    ]
    emit("overhead", figures)
    return figures


if __name__ == "__main__":
    main()
