"""The in-process emulator behind `--emulator`: sample instances on a virtual clock."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import time
from collections.abc import AsyncIterator

from zomro_async.testing import VirtualClock, ZomroEmulator
from zomro_async.testing._ids import DOOMED_INSTANCE_ID, fleet_ids

from . import _logging

# The first three of the fleet the demo and `zomro-async emulator` seed too.
SAMPLE_INSTANCES = fleet_ids(3)
# Every snapshot created on this one ends Killed, and every restore of it in
# error: try a failure (exit status 1) on it. It is outside the fleet.
DOOMED_INSTANCE = DOOMED_INSTANCE_ID
# Seeded in this order, so that the seeded images' ids (the docs show them) stay put.
INSTANCES = (*SAMPLE_INSTANCES, DOOMED_INSTANCE)
# The account's SSH key, for `restore --ssh-key`: the emulator's first key of
# its seed (the sandbox adds it first; a test pins the value).
SSH_KEY = "0554c89f-0006-49f0-aceb-a3dd8b557866"
SEED_DAYS = 3
_DAY = 86_400.0
_SETTLE_TURNS = 5

_IDS = " ".join(map(str, SAMPLE_INSTANCES))
_PAD = " " * (len(_IDS) + 4)
SANDBOX_HELP = f"""\b
--emulator runs the command against an in-process emulator of the API on a
virtual clock (waits finish at once; nothing persists between runs):
  {_IDS}  a manual snapshot (seed-1) and three nightly
{_PAD}ones (auto-<date>-020000) each; the oldest
{_PAD}auto- one of {SAMPLE_INSTANCES[-1]} is protected
  {DOOMED_INSTANCE:<{len(_IDS)}}  seed-1 only; every new snapshot ends Killed,
{_PAD}every restore of it ends in error
The account has one SSH key, {SSH_KEY}."""


# A test hook, not in --help: when set (to anything), the clock stands still once
# the sandbox is seeded, so every wait stays in flight until a signal stops the
# command; the tests of SIGTERM send one to a real process that way.
FROZEN_CLOCK_ENV = "ZOMRO_SANDBOX_FROZEN"


@contextlib.asynccontextmanager
async def seeded_emulator() -> AsyncIterator[ZomroEmulator]:
    """A running emulator seeded with `INSTANCES`, its call counters zeroed.

    The clock starts `SEED_DAYS` days ago and moves a day per nightly round of
    seeding, so the seeded snapshots carry past dates and the clock ends near now.
    """
    clock = VirtualClock(start=time.time() - SEED_DAYS * _DAY)
    async with ZomroEmulator(clock=clock) as emulator:
        try:
            with _logging.quiet():  # the seeding's calls: not the command's, for --debug
                await _seed(emulator, clock)
            clock.auto_advance = not os.environ.get(FROZEN_CLOCK_ENV)
            yield emulator
        finally:
            # A connection accepted just before the server closes (a request cut
            # short by Ctrl-C) must be set up first, or asyncio leaks its socket.
            for _ in range(_SETTLE_TURNS):
                await asyncio.sleep(0)


async def _seed(emulator: ZomroEmulator, clock: VirtualClock) -> None:
    emulator.add_ssh_key("sandbox")  # first, so that it is `SSH_KEY`
    for instance_id in INSTANCES:
        doomed = instance_id == DOOMED_INSTANCE
        emulator.add_instance(instance_id, 1, kill=doomed, fail_rebuild=doomed)
    oldest: dict[int, int] = {}
    async with emulator.client() as client:
        for _ in range(SEED_DAYS):
            day = datetime.datetime.fromtimestamp(clock.time(), datetime.UTC)
            for instance_id in SAMPLE_INSTANCES:
                made = await client.snapshots.create(instance_id, f"auto-{day:%Y-%m-%d}-020000")
                oldest.setdefault(instance_id, made.id)
            clock.advance(_DAY)  # every snapshot made is Active by the next night
    emulator.set_protected(SAMPLE_INSTANCES[-1], oldest[SAMPLE_INSTANCES[-1]])
    emulator.calls.clear()
