"""BulkJob: an event iterator must end when the job is cancelled before it ran."""

import asyncio

from zomro_async.testing import VirtualClock, ZomroEmulator


async def test_events_iterator_ends_when_job_cancelled_before_first_step():
    clock = VirtualClock()
    async with ZomroEmulator(clock=clock) as emu:
        emu.add_instance(1)
        async with emu.client() as client:
            job = client.snapshots.create_many([1], "x")

            async def consume():
                return [e async for e in job]

            consumer = asyncio.create_task(consume())
            await asyncio.sleep(0)  # consumer subscribed and started the job task
            job.cancel()  # the job task is cancelled before its first step
            # The iterator must end (or raise), not hang forever.
            done, _ = await asyncio.wait({consumer}, timeout=2.0)
            consumer.cancel()
            assert consumer in done, "events() iterator hangs forever after job.cancel()"
