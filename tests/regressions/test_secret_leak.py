"""A login answer cut short must not leak the live session id into the error."""

import pytest
from aioresponses import aioresponses

import zomro_async as z
from zomro_async.testing import VirtualClock

URL = "https://api.zomro.com/"
SID = "c0ffee1234567890abcdef12"


async def test_truncated_login_answer_does_not_leak_session_id():
    body = f'{{"doc": {{"auth": {{"$id": "{SID}", "$": "{SID}"}}, "ok": {{'
    with aioresponses() as m:
        m.post(URL, status=200, body=body, repeat=True)
        async with z.ZomroClient(
            username="demo",
            password="pw-very-secret-42",
            clock=VirtualClock(),
            retry=z.RetryPolicy(attempts=1),
        ) as client:
            with pytest.raises(z.ZomroError) as info:
                await client.snapshots.list(5203773)
    err = info.value
    assert SID not in str(err), f"session id leaked: {err}"
    assert SID not in getattr(err, "body_excerpt", "")
