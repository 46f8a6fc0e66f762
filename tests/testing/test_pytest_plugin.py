"""The pytest plugin users get: fixtures registered by entry point, wired to one clock."""

from __future__ import annotations

from importlib.metadata import entry_points

import zomro_async as z
from zomro_async.testing import VirtualClock, ZomroEmulator


def test_the_plugin_is_registered_as_a_pytest11_entry_point() -> None:
    plugins = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert plugins.get("zomro_async") == "zomro_async.testing.pytest_plugin"


async def test_fixtures_give_a_logged_in_client_of_a_running_emulator_on_one_clock(
    zomro_emulator: ZomroEmulator, zomro_client: z.ZomroClient, zomro_clock: VirtualClock
) -> None:
    zomro_emulator.add_instance(5203773)
    snapshot = await zomro_client.snapshots.create(5203773, "nightly")
    active = await snapshot.wait_active()
    assert active.status is z.SnapshotStatus.ACTIVE
    assert zomro_clock.monotonic() >= zomro_emulator.config.time_to_active  # virtual, not real
    assert zomro_client.base_url == zomro_emulator.url
    assert zomro_emulator.calls["auth"] == 1
