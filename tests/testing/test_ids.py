"""The emulator's ids: the fleet every seed takes its instances from, and the images' and
schedules' sequences, kept apart and at the values the docs show."""

from __future__ import annotations

import datetime

import pytest

import zomro_async as z
from zomro_async.testing import VirtualClock, ZomroEmulator
from zomro_async.testing._ids import (
    DOOMED_INSTANCE_ID,
    FIRST_IMAGE_ID,
    FIRST_INSTANCE_ID,
    FIRST_SCHEDULE_ID,
    MAX_FLEET,
    fleet_ids,
)


def test_the_ids_are_the_ones_the_docs_show() -> None:
    assert fleet_ids(3) == (5203773, 5203774, 5203775)
    assert DOOMED_INSTANCE_ID == 5204200
    assert (FIRST_IMAGE_ID, FIRST_SCHEDULE_ID) == (5204214, 31000)


def test_a_fleet_counts_up_from_the_first_instance() -> None:
    assert fleet_ids(0) == ()
    largest = fleet_ids(MAX_FLEET)
    assert largest[:20] == fleet_ids(20)
    assert list(largest) == list(range(FIRST_INSTANCE_ID, FIRST_INSTANCE_ID + MAX_FLEET))


def test_no_id_is_both_a_fleet_instance_the_doomed_one_or_an_image() -> None:
    assert fleet_ids(MAX_FLEET)[-1] < DOOMED_INSTANCE_ID < FIRST_IMAGE_ID


@pytest.mark.parametrize("size", [-1, MAX_FLEET + 1])
def test_a_fleet_out_of_range_is_refused(size: int) -> None:
    with pytest.raises(ValueError, match=f"0 to {MAX_FLEET} instances, got {size}"):
        fleet_ids(size)


async def test_the_emulator_numbers_images_and_schedules_from_their_first_ids() -> None:
    (instance_id,) = fleet_ids(1)
    async with ZomroEmulator(clock=VirtualClock()) as emulator:
        emulator.add_instance(instance_id, 1)
        backup = emulator.add_backup(instance_id, "b", active=True)
        async with emulator.client() as client:
            schedule = await client.backups.add_schedule(
                instance_id, "nightly", days=[z.Weekday.MON], at=datetime.time(2, 30)
            )
    assert [row["id"] for row in emulator.snapshots_of(instance_id)] == [str(FIRST_IMAGE_ID)]
    assert backup == FIRST_IMAGE_ID + 1
    assert schedule.id == FIRST_SCHEDULE_ID
