"""Test without a Zomro account: an emulator of the API over real HTTP, and a virtual clock.

    async with ZomroEmulator(clock=VirtualClock()) as emulator:
        emulator.add_instance(5203773)
        async with emulator.client() as client:
            snap = await client.snapshots.create(5203773, "nightly")
            await snap.wait_active()

With pytest, the `zomro_emulator` and `zomro_client` fixtures do the same set-up.
"""

from ._clock import VirtualClock
from ._emulator import (
    FAULT_KINDS,
    LOGIN_FAULT_KINDS,
    LOST_ANSWER_KINDS,
    OUTAGE_MODES,
    RETRY_AFTER_STYLES,
    EmulatorConfig,
    Rebuild,
    ZomroEmulator,
)
from ._tasks import pending_sdk_tasks

__all__ = [
    "FAULT_KINDS",
    "LOGIN_FAULT_KINDS",
    "LOST_ANSWER_KINDS",
    "OUTAGE_MODES",
    "RETRY_AFTER_STYLES",
    "EmulatorConfig",
    "Rebuild",
    "VirtualClock",
    "ZomroEmulator",
    "pending_sdk_tasks",
]
