"""Copy waits: how many `image` listings N concurrent `Image.wait_active()` cost per poll tick.

A copy to another region is awaited on the account's `image` listing, which
every copy wait on a client shares: each tick should cost one listing (all its
pages) and one stored-filter clear, however many copies it serves. The
emulator and the client share one `VirtualClock`, so the copies' minutes pass
in moments of real time and the counts are deterministic.

    python benchmarks/copy_waits.py [--copies 100] [--copy-time 1800]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from _common import Figure, emit, machine

from zomro_async import ImageStatus
from zomro_async.testing import VirtualClock, ZomroEmulator

LIST = "image"
INSTANCE = 5_203_773
REGIONS = ("Netherlands-1", "Germany-1", "USA-1")


async def measure(copies: int, copy_time: float, page_size: int) -> dict[str, float]:
    """`copies` copies of one snapshot across three regions, awaited at once by one client."""
    clock = VirtualClock()
    async with ZomroEmulator(clock=clock, copy_time=copy_time, page_size=page_size) as emulator:
        emulator.add_instance(INSTANCE, snapshots=1)
        async with emulator.client(token=emulator.token) as client:
            (snapshot,) = await client.snapshots.list(INSTANCE)
            made = [
                await client.images.copy(
                    snapshot.id, region=REGIONS[n % len(REGIONS)], name=f"dr-{n}"
                )
                for n in range(copies)
            ]
            pages, clears = emulator.calls[LIST], emulator.calls[f"{LIST}.filter"]
            ticks = client.images.poller.list_calls
            started, real_started = clock.monotonic(), time.perf_counter()
            done = await asyncio.gather(*(c.wait_active() for c in made))
            assert all(c.status is ImageStatus.ACTIVE for c in done)
            return {
                "pages": emulator.calls[LIST] - pages,
                "clears": emulator.calls[f"{LIST}.filter"] - clears,
                "ticks": client.images.poller.list_calls - ticks,
                "rows": len(emulator.images()),
                "virtual": clock.monotonic() - started,
                "real": time.perf_counter() - real_started,
            }


def main(argv: list[str] | None = None) -> list[Figure]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=100, help="copies, one wait each")
    parser.add_argument(
        "--copy-time", type=float, default=1800.0, help="virtual seconds a copy takes"
    )
    parser.add_argument("--page-size", type=int, default=20, help="the server's page size")
    args = parser.parse_args(argv)

    print(f"== copy waits ({machine()})")
    print(
        f"setup: {args.copies} copies of one snapshot into {len(REGIONS)} regions, "
        f"each Saving for {args.copy_time:g} s, one wait_active() each, concurrently, on one "
        f"client; the server pages {args.page_size} rows"
    )
    result = asyncio.run(measure(args.copies, args.copy_time, args.page_size))
    ticks = int(result["ticks"])
    pages_per_listing = -(-int(result["rows"]) // args.page_size)
    listings = result["pages"] / pages_per_listing
    print(
        f"ours: {ticks} poll ticks, {int(result['pages'])} `image` pages "
        f"= {listings:g} listings, {int(result['clears'])} stored-filter clears; "
        f"all Active at virtual {result['virtual']:.0f} s, real {result['real']:.2f} s"
    )
    print(f"naive (each wait lists on its own): {args.copies} x {ticks} = {args.copies * ticks}")
    figures = [
        Figure("image listings per tick", listings / ticks, goal=1.0, fmt=".2f"),
        Figure("filter clears per tick", result["clears"] / ticks, goal=1.0, fmt=".2f"),
        Figure(
            "copy waits served per listing", args.copies * ticks / listings, unit="x", fmt=".0f"
        ),
    ]
    emit("copy_waits", figures)
    return figures


if __name__ == "__main__":
    main()
