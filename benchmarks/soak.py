"""Chaos soak: a bulk snapshot job under every fault at once, checked for lost or doubled work.

Run with `nox -s soak` (1,000 instances) or `python benchmarks/soak.py --instances N`.
A bounded run is part of the test suite (tests/test_soak.py).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter

import attrs

import zomro_async as z
from zomro_async.testing import VirtualClock, ZomroEmulator, pending_sdk_tasks

KILL_EVERY = 25  # every 25th instance ends Killed
FIRST_INSTANCE = 6_000_001


@attrs.frozen
class SoakReport:
    instances: int
    ok: int
    killed: int
    faults: Counter[str]
    ambiguous_creates: int
    session_expiries: int
    logins: int
    retries: int
    list_calls: int
    max_in_flight: int
    cap: int
    virtual_seconds: float
    real_seconds: float
    wrong_outcomes: list[str]
    duplicates: list[int]
    lost: list[int]
    pending_sdk_tasks: int

    def lines(self) -> list[str]:
        return [
            f"instances            {self.instances} ({self.ok} Active, {self.killed} Killed)",
            f"faults injected      {sum(self.faults.values())} {dict(sorted(self.faults.items()))}",
            f"ambiguous creates    {self.ambiguous_creates}",
            f"session expiries     {self.session_expiries} (logins {self.logins})",
            f"client retries       {self.retries}",
            f"list calls           {self.list_calls}",
            f"max in flight        {self.max_in_flight} (cap {self.cap})",
            f"duration             {self.real_seconds:.1f} s real, "
            f"{self.virtual_seconds:.0f} s virtual",
            f"wrong outcomes       {len(self.wrong_outcomes)} {self.wrong_outcomes[:3]}",
            f"duplicates           {len(self.duplicates)}",
            f"lost results         {len(self.lost)}",
            f"pending SDK tasks    {self.pending_sdk_tasks}",
        ]

    @property
    def clean(self) -> bool:
        return not (
            self.wrong_outcomes
            or self.duplicates
            or self.lost
            or self.pending_sdk_tasks
            or self.max_in_flight > self.cap
        )


async def soak(
    instances: int = 1000,
    *,
    fault_rate: float = 0.1,
    ambiguous_rate: float = 0.1,
    expire_every: float = 3.0,
    seed: int = 0,
    cap: int = 8,
) -> SoakReport:
    clock = VirtualClock()
    started = time.perf_counter()
    emulator = ZomroEmulator(
        clock=clock,
        fault_rate=fault_rate,
        ambiguous_create_rate=ambiguous_rate,
        slow_seconds=0.001,
        session_ttl=expire_every * 2,
        seed=seed,
    )
    ids = list(range(FIRST_INSTANCE, FIRST_INSTANCE + instances))
    killed = {iid for n, iid in enumerate(ids) if n % KILL_EVERY == KILL_EVERY - 1}
    async with emulator:
        for n, iid in enumerate(ids):
            emulator.add_instance(iid, snapshots=1, time_to_active=4.0 + n % 9, kill=iid in killed)
        before = {iid: {int(r["id"]) for r in emulator.snapshots_of(iid)} for iid in ids}
        expiries = 0

        async def expire_sessions() -> None:
            nonlocal expiries
            while True:
                await clock.sleep(expire_every)
                emulator.expire_sessions()
                expiries += 1

        expirer = asyncio.create_task(expire_sessions())
        async with emulator.client(max_in_flight=cap) as client:
            try:
                results = await client.snapshots.create_many(ids, "soak-{instance_id}")
            finally:
                expirer.cancel()
                await asyncio.gather(expirer, return_exceptions=True)
            retries = client.retries
            list_calls = client.snapshots.poller.list_calls
        await asyncio.sleep(0)
        pending = len(pending_sdk_tasks())

        wrong, duplicates, lost = [], [], []
        for iid, result in zip(ids, results, strict=True):
            expected_failure = iid in killed
            right = result.instance_id == iid and (
                isinstance(result.error, z.SnapshotFailed) if expected_failure else result.ok
            )
            if not right:
                wrong.append(f"{iid}: {type(result.error).__name__}: {result.error}")
            new = {int(r["id"]) for r in emulator.snapshots_of(iid)} - before[iid]
            if len(new) > 1:
                duplicates.append(iid)
            if new != ({result.snapshot_id} if result.snapshot_id else set()):
                lost.append(iid)
        return SoakReport(
            instances=instances,
            ok=sum(r.ok for r in results),
            killed=sum(isinstance(r.error, z.SnapshotFailed) for r in results),
            faults=Counter(emulator.faults),
            ambiguous_creates=emulator.ambiguous_creates,
            session_expiries=expiries,
            logins=emulator.calls["auth"],
            retries=retries,
            list_calls=list_calls,
            max_in_flight=emulator.max_in_flight,
            cap=cap,
            virtual_seconds=clock.monotonic(),
            real_seconds=time.perf_counter() - started,
            wrong_outcomes=wrong,
            duplicates=duplicates,
            lost=lost,
            pending_sdk_tasks=pending,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    report = asyncio.run(soak(args.instances, seed=args.seed))
    print("\n".join(report.lines()))
    print("SOAK PASSED" if report.clean else "SOAK FAILED")
    return 0 if report.clean else 1


if __name__ == "__main__":
    sys.exit(main())
