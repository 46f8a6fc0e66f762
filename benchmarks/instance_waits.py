"""Instance waits: how many `instances` listings N concurrent instance waits cost per poll tick.

Every instance wait on a client joins one watch of the account's `instances`
listing, whatever the number of tasks: each tick should cost one listing (all
its pages) and one stored-filter clear, however many waits it serves. The
emulator and the client share one `VirtualClock`, so the minutes the
instances take pass in moments of real time and the counts are deterministic.

    python benchmarks/instance_waits.py [--waits 1000] [--page-size 20]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time

from _common import Figure, emit, machine

from zomro_async import InstanceStatus
from zomro_async.testing import VirtualClock, ZomroEmulator

LIST = "instances"
FIRST_INSTANCE = 5_203_773


async def measure(waits: int, page_size: int, seed: int) -> dict[str, float]:
    """`waits` instances, each building for 30-600 s, awaited at once by one client."""
    random.seed(seed)
    clock = VirtualClock()
    async with ZomroEmulator(clock=clock, page_size=page_size) as emulator:
        for n in range(waits):
            instance_id = FIRST_INSTANCE + n
            emulator.add_instance(instance_id)
            emulator.set_instance_status(
                instance_id, "building", then="active", after=random.uniform(30.0, 600.0)
            )
        async with emulator.client(token=emulator.token) as client:
            started, real_started = clock.monotonic(), time.perf_counter()
            done = await asyncio.gather(
                *(
                    client.instances.wait_settled(FIRST_INSTANCE + n, timeout=3600.0)
                    for n in range(waits)
                )
            )
            assert all(i.status is InstanceStatus.ACTIVE for i in done)
            return {
                "pages": emulator.calls[LIST],
                "clears": emulator.calls[f"{LIST}.filter"],
                "ticks": client.instances.poller.list_calls,
                "virtual": clock.monotonic() - started,
                "real": time.perf_counter() - real_started,
            }


def main(argv: list[str] | None = None) -> list[Figure]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waits", type=int, default=1000, help="instances, one wait each")
    parser.add_argument("--page-size", type=int, default=20, help="the server's page size")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    pages_per_listing = -(-args.waits // args.page_size)

    print(f"== instance waits ({machine()})")
    print(
        f"setup: {args.waits} instances building for 30-600 s (seed {args.seed}), one "
        f"wait_settled() each, concurrently, on one client; the server pages "
        f"{args.page_size} rows ({pages_per_listing} pages a listing)"
    )
    result = asyncio.run(measure(args.waits, args.page_size, args.seed))
    ticks = int(result["ticks"])
    listings = result["pages"] / pages_per_listing
    print(
        f"ours: {ticks} poll ticks, {int(result['pages'])} `instances` pages "
        f"= {listings:g} listings, {int(result['clears'])} stored-filter clears; "
        f"all Active at virtual {result['virtual']:.0f} s, real {result['real']:.2f} s"
    )
    print(f"naive (each wait lists on its own): {args.waits} x {ticks} = {args.waits * ticks}")
    figures = [
        Figure("instances listings per tick", listings / ticks, goal=1.0, fmt=".2f"),
        Figure("filter clears per tick", result["clears"] / ticks, goal=1.0, fmt=".2f"),
        Figure("waits served per listing", args.waits * ticks / listings, unit="x", fmt=".0f"),
    ]
    emit("instance_waits", figures)
    return figures


if __name__ == "__main__":
    main()
