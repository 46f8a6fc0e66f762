"""Scale: 10,000 concurrent `wait_active()` on 1,000 instances, on the real clock.

The emulator runs in a child process and seeds 10 Saving snapshots per instance
(Active 8 s later), so this process measures only the client: list calls per
instance, RSS growth from just before the waiters exist to the peak, the worst
event-loop stall (a ticker sleeping 10 ms records its lateness), and the wall
time until every snapshot is seen Active. Each configuration is measured
`--runs` times (default 3), every run in a fresh process; each figure is the
median over the runs (each run's values are printed too), so one unlucky start
does not decide the worst stall. A higher `max_in_flight` is measured too when
the default misses a goal.

    python benchmarks/scale.py [--instances 1000] [--per-instance 10] [--saving 8]
                               [--max-in-flight 8] [--higher 64] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import multiprocessing.connection
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

from _common import EmulatorProcess, Figure, emit, machine, rss_bytes, rss_source

from zomro_async import SnapshotStatus, ZomroClient

FIRST_INSTANCE = 6_000_000
WARMUP_INSTANCE = 5_999_999
TICK = 0.010
MB = 1024 * 1024
GOALS = {"calls": 6.0, "rss": 100.0, "stall": 120.0}


class Ticker:
    """Sleeps `TICK` over and over: records the worst lateness and the peak RSS."""

    def __init__(self) -> None:
        self.worst = 0.0
        self.worst_at = 0.0  # when the worst stall ended (time.monotonic())
        self.settled_after = float("inf")  # stalls ending after this count as steady state too
        self.worst_settled = 0.0
        self.ticks = 0
        self.peak_rss = rss_bytes()
        self._stop = False

    def sample(self) -> None:
        self.peak_rss = max(self.peak_rss, rss_bytes())

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stop:
            before = loop.time()
            await asyncio.sleep(TICK)
            late = loop.time() - before - TICK
            now = time.monotonic()
            if late > self.worst:
                self.worst, self.worst_at = late, now
            if now > self.settled_after:
                self.worst_settled = max(self.worst_settled, late)
            self.ticks += 1
            self.sample()

    def stop(self) -> None:
        self._stop = True


async def measure(emulator: EmulatorProcess, instances: int, per: int, cap: int) -> dict[str, Any]:
    """Wait on `per` Saving snapshots of each of `instances` new instances at once."""
    loop = asyncio.get_running_loop()
    specs = [(FIRST_INSTANCE + n, {"saving": per}) for n in range(instances)]
    async with ZomroClient(
        token=emulator.token, base_url=emulator.url, max_in_flight=cap
    ) as client:
        # Warm up: the HTTP session, the code paths, the converter.
        await loop.run_in_executor(None, emulator.add, [(WARMUP_INSTANCE, {"snapshots": 10})])
        for _ in range(20):
            await client.snapshots.list(WARMUP_INSTANCE)
        warmup_calls = client.snapshots.poller.list_calls
        emulator_before = emulator.calls().get("instances.snapshots", 0)

        ticker = Ticker()
        ticking = asyncio.create_task(ticker.run())
        seeded_at, ids = await loop.run_in_executor(None, emulator.add, specs)
        targets = [(i, s) for i, snapshot_ids in ids.items() for s in snapshot_ids]
        assert len(targets) == instances * per
        baseline = rss_bytes()
        ticker.peak_rss = baseline
        ticker.worst = 0.0  # stalls count from here: the waiters' lifetime
        started = time.monotonic()
        ticker.settled_after = started + 1.0
        cpu = time.process_time()
        results = await asyncio.gather(
            *(client.snapshots.wait_active(i, s, timeout=120) for i, s in targets),
            return_exceptions=True,
        )
        finished = time.monotonic()
        cpu = time.process_time() - cpu
        ticker.sample()
        ticker.stop()
        await ticking

        failed = [r for r in results if isinstance(r, BaseException)]
        active = sum(
            1
            for r in results
            if not isinstance(r, BaseException) and r.status is SnapshotStatus.ACTIVE
        )
        emulator_calls = emulator.calls().get("instances.snapshots", 0) - emulator_before
        return {
            "cap": cap,
            "waiters": len(targets),
            "active": active,
            "failed": len(failed),
            "first_error": repr(failed[0]) if failed else "",
            "list_calls": client.snapshots.poller.list_calls - warmup_calls,
            "emulator_calls": emulator_calls,
            "retries": client.retries,
            "rss_baseline": baseline,
            "rss_peak": ticker.peak_rss,
            "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "stall": ticker.worst,
            "stall_at": ticker.worst_at - started,
            "stall_settled": ticker.worst_settled,
            "cpu": cpu,
            "ticks": ticker.ticks,
            "wall_from_seed": finished - seeded_at,
            "wall_from_start": finished - started,
            "seed_to_start": started - seeded_at,
        }


def _child(conn: multiprocessing.connection.Connection, args: dict[str, Any]) -> None:
    with EmulatorProcess(time_to_active=args["saving"]) as emulator:
        result = asyncio.run(measure(emulator, args["instances"], args["per"], args["cap"]))
    conn.send(result)


def run_config(instances: int, per: int, saving: float, cap: int) -> dict[str, Any]:
    """One configuration in a fresh process, so its RSS starts from nothing of ours."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=_child,
        args=(child, {"instances": instances, "per": per, "saving": saving, "cap": cap}),
    )
    proc.start()
    child.close()
    try:
        if not parent.poll(300):
            raise TimeoutError("the scale run did not finish in 300 s")
        result: dict[str, Any] = parent.recv()
    except EOFError:
        raise RuntimeError(f"the scale run crashed (exit code {proc.exitcode})") from None
    finally:
        proc.join(30)
        if proc.is_alive():
            proc.terminate()
            proc.join()
    return result


def figures_of(results: list[dict[str, Any]], instances: int) -> list[Figure]:
    """The figures of one configuration: each the median over its runs."""
    cap = results[0]["cap"]
    tag = f"[max_in_flight={cap}]"

    def median(value: Callable[[dict[str, Any]], float]) -> float:
        return statistics.median(value(r) for r in results)

    return [
        Figure(
            f"list calls per instance {tag}",
            median(lambda r: r["list_calls"] / instances),
            goal=GOALS["calls"],
            fmt=".2f",
        ),
        Figure(
            f"RSS growth {tag}",
            median(lambda r: (r["rss_peak"] - r["rss_baseline"]) / MB),
            unit="MB",
            goal=GOALS["rss"],
            fmt=".1f",
        ),
        Figure(
            f"worst event-loop stall, median of runs {tag}",
            median(lambda r: r["stall"] * 1000),
            unit="ms",
            goal=GOALS["stall"],
            fmt=".0f",
        ),
        Figure(
            f"worst stall after the first second {tag}",
            median(lambda r: r["stall_settled"] * 1000),
            unit="ms",
            fmt=".0f",
        ),
        Figure(
            f"wall until all Active {tag}",
            median(lambda r: r["wall_from_seed"]),
            unit="s",
            fmt=".2f",
        ),
    ]


def describe(result: dict[str, Any], instances: int) -> None:
    first_error = f" (first: {result['first_error']})" if result["failed"] else ""
    print(
        f"max_in_flight={result['cap']}: {result['active']}/{result['waiters']} Active, "
        f"{result['failed']} failed{first_error}; "
        f"{result['list_calls']} list calls ({result['emulator_calls']} served by the emulator, "
        f"{result['retries']} retries) = {result['list_calls'] / instances:.2f} per instance"
    )
    print(
        f"  RSS {result['rss_baseline'] / MB:.1f} MB before the waiters -> peak "
        f"{result['rss_peak'] / MB:.1f} MB (ru_maxrss {result['ru_maxrss'] / MB:.1f} MB); "
        f"worst stall {result['stall'] * 1000:.0f} ms (ending {result['stall_at']:.2f} s after "
        f"the waiters started; worst after the first second {result['stall_settled'] * 1000:.0f} "
        f"ms) over {result['ticks']} ticks of {TICK * 1000:.0f} ms"
    )
    print(
        f"  all Active {result['wall_from_seed']:.2f} s after the snapshots were seeded Saving "
        f"({result['wall_from_start']:.2f} s after the waiters started, "
        f"{result['seed_to_start'] * 1000:.0f} ms after seeding); client CPU "
        f"{result['cpu']:.2f} s = {result['cpu'] / result['list_calls'] * 1e6:.0f} us "
        "per list call",
        flush=True,
    )


def run_configs(args: argparse.Namespace, cap: int) -> list[dict[str, Any]]:
    """`--runs` runs of one configuration, each in a fresh process, each described."""
    results = []
    for n in range(args.runs):
        print(f"run {n + 1}/{args.runs}, ", end="")
        result = run_config(args.instances, args.per_instance, args.saving, cap)
        describe(result, args.instances)
        results.append(result)
    stalls = ", ".join(f"{r['stall'] * 1000:.0f}" for r in results)
    median = statistics.median(r["stall"] * 1000 for r in results)
    print(
        f"max_in_flight={cap}: worst stall of each run {stalls} ms; median {median:.0f} ms "
        f"(goal <= {GOALS['stall']:g} ms)",
        flush=True,
    )
    return results


def main(argv: list[str] | None = None) -> list[Figure]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--per-instance", type=int, default=10)
    parser.add_argument("--saving", type=float, default=8.0, help="Saving period, seconds")
    parser.add_argument("--max-in-flight", type=int, default=8, help="the client's default is 8")
    parser.add_argument("--higher", type=int, default=64, help="cap to try when the first misses")
    parser.add_argument("--runs", type=int, default=3, help="runs of each configuration")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    print(f"== scale ({machine()})")
    print(
        f"setup: {args.instances * args.per_instance} concurrent wait_active() on "
        f"{args.instances} instances ({args.per_instance} each, seeded Saving), Saving "
        f"{args.saving:g} s; real clock; emulator in a child process; default PollPolicy; "
        f"RSS via {rss_source()}; {args.runs} run(s) of each configuration, each in a fresh "
        "process, figures the medians"
    )
    first = run_configs(args, args.max_in_flight)
    figures = figures_of(first, args.instances)
    if any(r["failed"] for r in first) or any(f.verdict == "FAIL" for f in figures):
        print(
            f"a goal was missed with max_in_flight={args.max_in_flight}: again with {args.higher}"
        )
        second = run_configs(args, args.higher)
        figures += figures_of(second, args.instances)
    emit("scale", figures)
    return figures


if __name__ == "__main__":
    main()
