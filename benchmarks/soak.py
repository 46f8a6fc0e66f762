"""Chaos soak: a bulk snapshot or backup job under every fault at once: nothing lost or doubled.

Run with `nox -s soak` (1,000 instances) or `python benchmarks/soak.py --instances N`
(`--kind backups` for the same job over `client.backups`). A bounded run of each
kind is part of the test suite (tests/test_soak.py).

Random faults, ambiguous creates and session expiries go on throughout; on
top of them, two phases on one virtual clock:

1. Create: `create_many` of one snapshot per instance, awaited until Active.
   `outage_at` virtual seconds in, while creates and waits are in flight, the
   emulator has an outage of `outage_seconds` (`outage_mode`). The waits ride
   it out. A create caught in its own retries by an outage longer than the
   client's retry budget fails, as documented: `TransportError` (nothing was
   made: checked) or `OutcomeUnknown`; such a casualty is done again after the
   outage the documented way (list the instance, adopt the snapshot of that
   name if there is one, else create again). Nothing may be lost, doubled or
   left pending.
2. Delete: `delete_many` of every snapshot the create phase made, awaited until
   gone, with `lost_delete_rate` of the delete answers lost after the delete
   was done. Every delete must report ok, and none of them may still be listed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter

import attrs

import zomro_async as z
from zomro_async.testing import OUTAGE_MODES, VirtualClock, ZomroEmulator, pending_sdk_tasks

KILL_EVERY = 25  # every 25th instance ends Killed
FIRST_INSTANCE = 6_000_001
NAME = "soak-{instance_id}"
KINDS = ("snapshots", "backups")
# What a create caught by an outage longer than the retry budget may end in.
OUTAGE_FAILURES = (z.TransportError, z.OutcomeUnknown)


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
    pending_sdk_tasks: int  # after the creates and at the end, together
    # The outage during the creates: as asked, and as it happened.
    outage_mode: str = "none"
    outage_seconds: float = 0.0
    outage_virtual_seconds: float = 0.0
    outage_answers: int = 0
    outage_retries: int = 0
    # Creates the outage failed (by error type), and how they were done again.
    outage_casualties: Counter[str] = attrs.Factory(Counter)
    adopted: int = 0
    created_again: int = 0
    create_virtual_seconds: float = 0.0
    # The delete phase.
    deletes: int = 0
    deleted: int = 0
    lost_delete_answers: int = 0
    delete_virtual_seconds: float = 0.0
    wrong_deletes: list[str] = attrs.Factory(list)
    still_listed: list[int] = attrs.Factory(list)
    kind: str = "snapshots"

    def lines(self) -> list[str]:
        casualties = sum(self.outage_casualties.values())
        return [
            f"kind                 {self.kind}",
            f"instances            {self.instances} ({self.ok} Active, {self.killed} Killed)",
            f"faults injected      {sum(self.faults.values())} {dict(sorted(self.faults.items()))}",
            f"ambiguous creates    {self.ambiguous_creates}",
            f"outage               {self.outage_mode}, {self.outage_seconds:g} s asked, "
            f"{self.outage_virtual_seconds:.0f} s virtual ({self.outage_answers} answers, "
            f"{self.outage_retries} client retries meanwhile)",
            f"outage casualties    {casualties} {dict(sorted(self.outage_casualties.items()))} "
            f"(adopted {self.adopted}, created again {self.created_again})",
            f"deletes              {self.deleted}/{self.deletes} ok "
            f"({self.lost_delete_answers} answers lost)",
            f"session expiries     {self.session_expiries} (logins {self.logins})",
            f"client retries       {self.retries}",
            f"list calls           {self.list_calls}",
            f"max in flight        {self.max_in_flight} (cap {self.cap})",
            f"duration             {self.real_seconds:.1f} s real, "
            f"{self.virtual_seconds:.0f} s virtual (create {self.create_virtual_seconds:.0f}, "
            f"delete {self.delete_virtual_seconds:.0f})",
            f"wrong outcomes       {len(self.wrong_outcomes)} {self.wrong_outcomes[:3]}",
            f"duplicates           {len(self.duplicates)}",
            f"lost results         {len(self.lost)}",
            f"wrong deletes        {len(self.wrong_deletes)} {self.wrong_deletes[:3]}",
            f"listed after delete  {len(self.still_listed)}",
            f"pending SDK tasks    {self.pending_sdk_tasks}",
        ]

    @property
    def clean(self) -> bool:
        return not (
            self.wrong_outcomes
            or self.duplicates
            or self.lost
            or self.wrong_deletes
            or self.still_listed
            or self.pending_sdk_tasks
            or self.max_in_flight > self.cap
        )


def _describe(result: z.BulkResult) -> str:
    return f"{result.instance_id}: {type(result.error).__name__}: {result.error}"


async def soak(
    instances: int = 1000,
    *,
    fault_rate: float = 0.1,
    ambiguous_rate: float = 0.1,
    expire_every: float = 3.0,
    seed: int = 0,
    cap: int = 8,
    outage_seconds: float = 120.0,
    outage_mode: str = "html503",
    outage_at: float = 12.0,
    lost_delete_rate: float = 0.1,
    kind: str = "snapshots",
) -> SoakReport:
    if outage_mode not in OUTAGE_MODES:
        raise ValueError(f"outage_mode must be one of {OUTAGE_MODES}, got {outage_mode!r}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    clock = VirtualClock()
    started = time.perf_counter()
    emulator = ZomroEmulator(
        clock=clock,
        fault_rate=fault_rate,
        ambiguous_create_rate=ambiguous_rate,
        lost_delete_rate=lost_delete_rate,
        slow_seconds=0.001,
        session_ttl=expire_every * 2,
        seed=seed,
    )
    ids = list(range(FIRST_INSTANCE, FIRST_INSTANCE + instances))
    killed = {iid for n, iid in enumerate(ids) if n % KILL_EVERY == KILL_EVERY - 1}
    wrong: list[str] = []
    lost: list[int] = []
    async with emulator:
        rows_of = emulator.snapshots_of if kind == "snapshots" else emulator.backups_of

        def listed(iid: int) -> set[int]:
            return {int(r["id"]) for r in rows_of(iid)}

        for n, iid in enumerate(ids):
            emulator.add_instance(iid, snapshots=1, time_to_active=4.0 + n % 9, kill=iid in killed)
            if kind == "backups":
                emulator.add_backup(iid, "seed-backup", active=True)
        before = {iid: listed(iid) for iid in ids}
        expiries = 0
        outage_window: list[float] = []
        outage_retries = 0

        async def expire_sessions() -> None:
            nonlocal expiries
            while True:
                await clock.sleep(expire_every)
                emulator.expire_sessions()
                expiries += 1

        async def outage(client: z.ZomroClient) -> None:
            nonlocal outage_retries
            await clock.sleep(outage_at)
            retries = client.retries
            outage_window.append(clock.monotonic())
            await emulator.outage(outage_seconds, mode=outage_mode)
            await emulator.wait_outage_end()
            outage_window.append(clock.monotonic())
            outage_retries = client.retries - retries

        async def redo(client: z.ZomroClient, failed: z.BulkResult) -> z.BulkResult | None:
            """A casualty's snapshot, adopted if the failed create made it; None:
            create it again."""
            if not isinstance(failed.error, z.OutcomeUnknown):
                return None  # a TransportError: nothing was made (checked above)
            iid = failed.instance_id
            try:
                name = NAME.format(instance_id=iid)
                mine = [s for s in await getattr(client, kind).list(iid) if s.name == name]
                if not mine:
                    return None
                snapshot = min(mine, key=lambda s: s.id)
                return z.BulkResult(instance_id=iid, snapshot=await snapshot.wait_active())
            except z.ImageFailed as exc:
                return z.BulkResult(instance_id=iid, snapshot=exc.image, error=exc)
            except z.ZomroError as exc:
                return z.BulkResult(instance_id=iid, error=exc)

        expirer = asyncio.create_task(expire_sessions())
        outager: asyncio.Task[None] | None = None
        async with emulator.client(max_in_flight=cap) as client:
            resource: z.InstanceImages[z.Snapshot] | z.InstanceImages[z.Backup] = getattr(
                client, kind
            )
            if outage_seconds > 0:
                outager = asyncio.create_task(outage(client))
            try:
                results = await resource.create_many(ids, NAME)
                if outager is not None:
                    if outage_window:
                        await outager  # see it through before anything more
                    else:
                        outager.cancel()  # the creates were done before it was due
                # A create's failure; a wait's would keep the snapshot created (and
                # is wrong: the waits ride the outage out).
                casualties = {
                    r.instance_id: r
                    for r in results
                    if outage_window and r.snapshot is None and isinstance(r.error, OUTAGE_FAILURES)
                }
                for iid, failed in casualties.items():
                    # A TransportError from a create says it made nothing.
                    if isinstance(failed.error, z.TransportError) and listed(iid) - before[iid]:
                        lost.append(iid)
                redone = dict(
                    zip(
                        casualties,
                        await asyncio.gather(*(redo(client, r) for r in casualties.values())),
                        strict=True,
                    )
                )
                again = [iid for iid, result in redone.items() if result is None]
                if again:
                    redone.update(zip(again, await resource.create_many(again, NAME), strict=True))
                results = [redone.get(r.instance_id) or r for r in results]
                created_at = clock.monotonic()
                # Every wait is over: no poll, retry or login of the SDK may go on.
                await asyncio.sleep(0)
                pending_after_create = len(pending_sdk_tasks())
                after_create = {iid: listed(iid) for iid in ids}
                made = [(r.instance_id, r.snapshot_id) for r in results if r.snapshot_id]
                deletes = await resource.delete_many(made)
                deleted_at = clock.monotonic()
            finally:
                tasks = [t for t in (expirer, outager) if t is not None]
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            retries = client.retries
            list_calls = resource.poller.list_calls
        await asyncio.sleep(0)
        pending = pending_after_create + len(pending_sdk_tasks())

        duplicates = []
        for iid, result in zip(ids, results, strict=True):
            expected_failure = iid in killed
            right = result.instance_id == iid and (
                isinstance(result.error, z.ImageFailed) if expected_failure else result.ok
            )
            if not right:
                wrong.append(_describe(result))
            new = after_create[iid] - before[iid]
            if len(new) > 1:
                duplicates.append(iid)
            if new != ({result.snapshot_id} if result.snapshot_id else set()):
                lost.append(iid)

        wrong_deletes, still_listed = [], []
        for (iid, sid), result in zip(made, deletes, strict=True):
            if result.instance_id != iid or result.snapshot_id != sid or not result.ok:
                wrong_deletes.append(f"{sid} of {_describe(result)}")
            elif sid in listed(iid):
                still_listed.append(iid)
        for iid in ids:
            if not before[iid] <= listed(iid):
                wrong_deletes.append(f"{iid}: an image the soak did not make is gone")
        return SoakReport(
            instances=instances,
            ok=sum(r.ok for r in results),
            killed=sum(isinstance(r.error, z.ImageFailed) for r in results),
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
            lost=sorted(set(lost)),
            pending_sdk_tasks=pending,
            outage_mode=outage_mode if outage_seconds > 0 else "none",
            outage_seconds=outage_seconds,
            outage_virtual_seconds=(
                outage_window[1] - outage_window[0] if len(outage_window) == 2 else 0.0
            ),
            outage_answers=emulator.outage_answers,
            outage_retries=outage_retries,
            outage_casualties=Counter(type(r.error).__name__ for r in casualties.values()),
            adopted=len(casualties) - len(again),
            created_again=len(again),
            create_virtual_seconds=created_at,
            deletes=len(made),
            deleted=sum(r.ok for r in deletes),
            lost_delete_answers=emulator.lost_answers["image.delete"],
            delete_virtual_seconds=deleted_at - created_at,
            wrong_deletes=wrong_deletes,
            still_listed=still_listed,
            kind=kind,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--outage-seconds",
        type=float,
        default=120.0,
        help="virtual seconds of the outage during the creates; 0: none (default 120)",
    )
    parser.add_argument(
        "--outage-mode",
        choices=OUTAGE_MODES,
        default="html503",
        help="how the emulator fails meanwhile (default html503)",
    )
    parser.add_argument(
        "--outage-at",
        type=float,
        default=12.0,
        help="virtual seconds into the run the outage begins (default 12)",
    )
    parser.add_argument(
        "--lost-delete-rate",
        type=float,
        default=0.1,
        help="the fraction of delete answers lost after the delete was done (default 0.1)",
    )
    parser.add_argument(
        "--kind",
        choices=KINDS,
        default="snapshots",
        help="which of an instance's images the job makes (default snapshots)",
    )
    args = parser.parse_args()
    report = asyncio.run(
        soak(
            args.instances,
            seed=args.seed,
            outage_seconds=args.outage_seconds,
            outage_mode=args.outage_mode,
            outage_at=args.outage_at,
            lost_delete_rate=args.lost_delete_rate,
            kind=args.kind,
        )
    )
    print("\n".join(report.lines()))
    print("SOAK PASSED" if report.clean else "SOAK FAILED")
    return 0 if report.clean else 1


if __name__ == "__main__":
    sys.exit(main())
