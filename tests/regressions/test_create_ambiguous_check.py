"""An ambiguous create must not end in TransportError unless the instance was actually checked."""

from aioresponses import aioresponses

import zomro_async as z
from zomro_async.testing import VirtualClock

URL = "https://api.zomro.com/"
NEW = {"id": {"$": "5204214"}, "name": {"$": "nightly"}, "fleio_status": {"$": "Saving"}}


async def test_create_keeps_looking_when_the_check_listing_fails_transiently():
    clock = VirtualClock()
    with aioresponses() as m:
        m.post(URL, payload={"doc": {"ok": {}}})  # the stored-filter clear before listing
        m.post(URL, payload={"doc": {}})  # listing before the create: nothing
        m.post(URL, status=502, body="<html>502 Bad Gateway</html>")  # create: answer lost
        for _ in range(6):  # the check listing hits a short blip (one call's retries)
            m.post(URL, status=503, body="<html>503</html>")
        m.post(URL, payload={"doc": {"elem": [NEW]}}, repeat=True)  # the snapshot was made
        async with z.ZomroClient(token="tok-123456", clock=clock) as client:
            try:
                snap = await client.snapshots.create(5203773, "nightly")
            except z.TransportError as exc:
                raise AssertionError(
                    f"create raised {exc!r} at t={clock.monotonic():.1f}s, within its 30 s "
                    "grace, without ever checking the instance; the snapshot exists "
                    "(a retry duplicates it)"
                ) from exc
    assert snap.id == 5204214
