"""Polling amplification: how many `instances.snapshots` calls N waiters on M instances cost.

The emulator and the client share one `VirtualClock`, so a Saving period of a
minute passes in moments of real time and the count is deterministic (the poll
jitter is seeded). Ticks are the poll rounds one instance's schedule needs for
that period, measured with one waiter on one instance; the shared poller should
make N waiters cost M x ticks calls, where polling per snapshot costs N x ticks.

    python benchmarks/polling.py [--waiters 1000] [--instances 100] [--saving 60]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time

from _common import Figure, emit, machine

from zomro_async import PollPolicy, SnapshotStatus
from zomro_async.testing import VirtualClock, ZomroEmulator

LIST = "instances.snapshots"
FIRST_INSTANCE = 5_203_773


async def measure(instances: int, per_instance: int, saving: float, seed: int) -> dict[str, float]:
    """Wait for `per_instance` Saving snapshots on each of `instances` instances."""
    random.seed(seed)  # the poll jitter draws from `random`
    clock = VirtualClock()
    async with ZomroEmulator(clock=clock, time_to_active=saving) as emulator:
        targets: list[tuple[int, int]] = []
        for n in range(instances):
            instance_id = FIRST_INSTANCE + n
            emulator.add_instance(instance_id, saving=per_instance)
            targets += [(instance_id, int(r["id"])) for r in emulator.snapshots_of(instance_id)]
        async with emulator.client(token=emulator.token) as client:
            before = emulator.calls[LIST]
            started, real_started = clock.monotonic(), time.perf_counter()
            done = await asyncio.gather(*(client.snapshots.wait_active(i, s) for i, s in targets))
            assert all(s.status is SnapshotStatus.ACTIVE for s in done)
            return {
                "calls": emulator.calls[LIST] - before,
                "list_calls": client.snapshots.poller.list_calls,
                "virtual": clock.monotonic() - started,
                "real": time.perf_counter() - real_started,
                "max_in_flight": client._api.max_in_flight,
            }


def main(argv: list[str] | None = None) -> list[Figure]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waiters", type=int, default=1000, help="N, all waiting at once")
    parser.add_argument("--instances", type=int, default=100, help="M, N spread evenly")
    parser.add_argument("--saving", type=float, default=60.0, help="Saving period, seconds")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.waiters % args.instances:
        parser.error("--waiters must be a multiple of --instances")
    n, m, per = args.waiters, args.instances, args.waiters // args.instances

    print(f"== polling amplification ({machine()})")
    print(
        "clock: one VirtualClock shared by the emulator and the client (auto-advance: time "
        "jumps to the next sleeper's wake-up; nothing really sleeps)"
    )
    print(
        f"setup: N={n} waiters on M={m} instances ({per} each), Saving {args.saving:g} s, "
        f"{PollPolicy()}, seed {args.seed}"
    )
    one = asyncio.run(measure(1, 1, args.saving, args.seed))
    ticks = int(one["calls"])
    print(
        f"ticks: 1 waiter on 1 instance made {ticks} list calls "
        f"(Active seen at virtual {one['virtual']:.1f} s)"
    )
    ours = asyncio.run(measure(m, per, args.saving, args.seed))
    calls = int(ours["calls"])
    print(
        f"ours: {calls} list calls served by the emulator, "
        f"poller.list_calls={ours['list_calls']:g}, max_in_flight={ours['max_in_flight']:g}; "
        f"all Active at virtual {ours['virtual']:.1f} s, real {ours['real']:.2f} s"
    )
    print(f"M x ticks = {m} x {ticks} = {m * ticks}")
    print(f"naive (each waiter polls its own snapshot): N x ticks = {n} x {ticks} = {n * ticks}")
    figures = [
        Figure("calls / (M x ticks)", calls / (m * ticks), goal=1.1),
        Figure("naive / ours: (N x ticks) / calls", n * ticks / calls, unit="x", fmt=".1f"),
    ]
    emit("polling", figures)
    return figures


if __name__ == "__main__":
    main()
