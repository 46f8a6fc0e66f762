"""A bad server answer must surface as a ZomroError, never a bare built-in exception."""

import pytest
from aiohttp import web
from aioresponses import aioresponses

import zomro_async as z
from zomro_async.testing import VirtualClock

URL = "https://api.zomro.com/"
ROW = {"id": {"$": "5204214"}, "name": {"$": "x"}, "fleio_status": {"$": "Active"}}


async def test_create_with_absurd_doc_id_still_finds_its_snapshot():
    # The create answer carries a `doc.id` of 5000 digits (garbage): it is
    # ignored (int() would raise on it) and the listing names the snapshot.
    huge = "9" * 5000
    with aioresponses() as m:
        m.post(URL, payload={"doc": {}})  # first listing: no snapshots
        m.post(URL, payload={"doc": {"ok": {}, "id": {"$": huge}}})  # the create
        m.post(URL, payload={"doc": {"elem": [ROW]}}, repeat=True)
        async with z.ZomroClient(token="tok-123456", clock=VirtualClock()) as client:
            snapshot = await client.snapshots.create(5203773, "x")
    assert snapshot.id == 5204214


async def test_bad_content_encoding_raises_zomro_error() -> None:
    async def handler(request):
        return web.Response(
            body=b"this is not gzip at all",
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )

    app = web.Application()
    app.router.add_post("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with z.ZomroClient(
            token="tok-123456",
            base_url=f"http://127.0.0.1:{port}/",
            clock=VirtualClock(),
            retry=z.RetryPolicy(attempts=1),
        ) as client:
            with pytest.raises(z.ZomroError):
                await client.snapshots.list(5203773)
    finally:
        await runner.cleanup()
