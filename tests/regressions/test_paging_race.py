"""A paged listing read while a row vanishes must not make a live snapshot look gone."""

from aioresponses import aioresponses

import zomro_async as z
from zomro_async.testing import VirtualClock

URL = "https://api.zomro.com/"


def row(i, status="Active"):
    return {"id": {"$": str(i)}, "name": {"$": f"s{i}"}, "fleio_status": {"$": status}}


def page(num, total, *rows):
    return {
        "doc": {
            "elem": list(rows),
            "p_num": {"$": str(num)},
            "p_cnt": {"$": "2"},
            "p_elems": {"$": str(total)},
        }
    }


async def test_row_shift_between_pages_is_not_a_disappearance():
    # The user's remembered page size is 2; C (id 3) is being taken, A (id 1) is being deleted.
    with aioresponses() as m:
        # first check: A B | C D
        m.post(URL, payload=page(1, 4, row(1, "Deleting"), row(2)))
        m.post(URL, payload=page(2, 4, row(3, "Saving"), row(4)))
        # next poll: page 1 read while A is still there, page 2 after A is gone: rows shifted
        m.post(URL, payload=page(1, 4, row(1, "Deleting"), row(2)))
        m.post(URL, payload=page(2, 3, row(4)))
        # from then on, a consistent listing with C done
        m.post(URL, payload={"doc": {"elem": [row(2), row(3), row(4)]}}, repeat=True)
        async with z.ZomroClient(token="tok-123456", clock=VirtualClock()) as client:
            snap = await client.snapshots.wait_active(100, 3, timeout=600)
    assert snap.id == 3
