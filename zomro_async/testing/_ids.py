"""The ids the emulator gives out and its seeds use, in one place, so every seed agrees.

The CLI's `--emulator` sandbox, `zomro-async demo`, `zomro-async emulator` and
the docs all take their instance ids from `fleet_ids()`: the sandbox's three
sample instances are its first three, the demo's and the emulator command's N
instances its first N. So 5203773 is the first instance wherever it appears,
and 5204214 the first image the emulator makes.
"""

from __future__ import annotations

FIRST_INSTANCE_ID = 5_203_773
# The largest fleet a seed may ask for: its ids stay below `FIRST_IMAGE_ID`, so
# no number is both an instance's and an image's.
MAX_FLEET = 400
# The sandbox's instance whose new snapshots end Killed and whose restores fail:
# past the largest fleet, so no seed has it as a healthy instance, and listed
# after the fleet's.
DOOMED_INSTANCE_ID = 5_204_200
# Snapshots, backups and copies are numbered in one sequence (the API's image
# ids), from here; backup schedules have their own.
FIRST_IMAGE_ID = 5_204_214
FIRST_SCHEDULE_ID = 31_000


def fleet_ids(size: int) -> tuple[int, ...]:
    """The first `size` instance ids of the fleet, in order.

    Raises:
        ValueError: `size` is negative or above `MAX_FLEET`.
    """
    if not 0 <= size <= MAX_FLEET:
        raise ValueError(f"a fleet has 0 to {MAX_FLEET} instances, got {size}")
    return tuple(range(FIRST_INSTANCE_ID, FIRST_INSTANCE_ID + size))
