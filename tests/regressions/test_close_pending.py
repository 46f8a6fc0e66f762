"""After `await client.aclose()` no SDK task may be left pending."""

import asyncio

import aiohttp
import pytest

import zomro_async as z
from zomro_async.testing import VirtualClock, ZomroEmulator, pending_sdk_tasks


async def _settle():
    for _ in range(200):
        await asyncio.sleep(0)


@pytest.mark.parametrize("own_session", [False, True])
async def test_aclose_leaves_no_poller_task_pending(own_session):
    clock = VirtualClock(auto_advance=False)
    async with ZomroEmulator(clock=clock) as emu:
        emu.add_instance(1, saving=1, time_to_active=1000)
        sid = emu.snapshots_of(1)[0]["id"]
        async with aiohttp.ClientSession() as http:
            kwargs = {"session": http} if own_session else {}
            client = emu.client(**kwargs)
            waiter = asyncio.create_task(client.snapshots.wait_active(1, int(sid), timeout=500))
            await _settle()  # first poll done, the poller loop now pauses
            assert client.snapshots.poller.watched == 1
            await client.aclose()
            # The client's own poller loop must be gone once aclose() returned.
            left = [t for t in pending_sdk_tasks() if "Poller._run" in repr(t)]
            with pytest.raises(z.ZomroError):
                await waiter
            await _settle()
            assert left == [], f"tasks still pending right after aclose(): {left}"
