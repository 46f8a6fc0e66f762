"""A bounded chaos soak: every fault at once, nothing lost, nothing doubled, the cap held."""

from __future__ import annotations

import pytest

from benchmarks.soak import soak


@pytest.mark.parametrize("seed", [7])
async def test_a_bulk_job_under_chaos_accounts_for_every_instance(seed: int) -> None:
    report = await soak(300, seed=seed, expire_every=2.0, cap=6)

    assert report.instances == 300
    assert report.wrong_outcomes == []
    assert report.duplicates == []
    assert report.lost == []
    assert report.pending_sdk_tasks == 0
    assert report.max_in_flight <= report.cap
    assert report.killed == 300 // 25
    assert report.ok == 300 - report.killed
    # The chaos really happened: every fault kind, ambiguous creates, lost sessions.
    assert set(report.faults) == {"html502", "html503", "reset", "truncated", "slow"}
    assert report.ambiguous_creates > 0
    assert report.session_expiries > 3
    assert report.logins > 3
    assert report.retries > 0
    assert report.clean
