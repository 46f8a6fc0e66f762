"""A status enum that reads the API's text leniently and never fails on a new state."""

from __future__ import annotations

import enum
from typing import Any


class LenientStatus(enum.Enum):
    """Matched case-insensitively, spaces and dashes as underscores; any other
    text is the subclass's `UNKNOWN` member (every subclass has one)."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        # Fleio capitalises ("Active"), the panel trims and lower-cases: do the same,
        # and never fail on a state nobody has documented yet.
        if isinstance(value, str):
            key = value.strip().lower().replace(" ", "_").replace("-", "_")
            for member in cls:
                if member.value == key:
                    return member
        return cls["UNKNOWN"]
