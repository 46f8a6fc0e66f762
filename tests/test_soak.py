"""A bounded chaos soak: every fault at once, an outage during the creates, lost delete
answers; nothing lost, nothing doubled, nothing left listed, the cap held."""

from __future__ import annotations

import pytest

from benchmarks.soak import soak

# Small enough to keep the suite fast (the outage multiplies the requests of
# every wait); `nox -s soak` runs 1,000 instances.
INSTANCES = 60


@pytest.mark.parametrize(
    ("seed", "outage_mode", "kind"),
    [(7, "html503", "snapshots"), (7, "refuse", "snapshots"), (7, "reset", "backups")],
)
async def test_a_bulk_job_under_chaos_accounts_for_every_instance(
    seed: int, outage_mode: str, kind: str
) -> None:
    # 60 virtual seconds of outage outlast the retries of a create caught in it
    # (a casualty, done again after it) and the first polls of most waits.
    report = await soak(
        INSTANCES,
        seed=seed,
        expire_every=2.0,
        cap=6,
        outage_seconds=60.0,
        outage_mode=outage_mode,
        outage_at=5.0,
        # Rates that make an ambiguous create and a lost delete answer certain
        # even at this size.
        ambiguous_rate=0.2,
        lost_delete_rate=0.2,
        kind=kind,
    )

    assert report.instances == INSTANCES
    assert report.wrong_outcomes == []
    assert report.duplicates == []
    assert report.lost == []
    assert report.pending_sdk_tasks == 0
    assert report.max_in_flight <= report.cap
    assert report.killed == INSTANCES // 25
    assert report.ok == INSTANCES - report.killed
    # Every snapshot made was deleted, each delete reported ok, none is listed.
    assert report.deletes == report.deleted == INSTANCES
    assert report.wrong_deletes == []
    assert report.still_listed == []
    # The chaos really happened: every fault kind, ambiguous creates, lost sessions.
    assert set(report.faults) == {"html502", "html503", "reset", "truncated", "slow"}
    assert report.ambiguous_creates > 0
    assert report.session_expiries > 3
    assert report.logins > 3
    assert report.retries > 0
    # The outage lasted as long as asked, and the client met it; delete answers were lost.
    assert report.outage_mode == outage_mode
    assert report.outage_virtual_seconds == pytest.approx(60.0, abs=0.5)
    assert report.outage_retries > 0
    if outage_mode == "html503":
        assert report.outage_answers > 0
    assert report.lost_delete_answers > 0
    assert report.clean
