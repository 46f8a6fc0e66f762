"""The plain attrs model of a snapshot. No I/O happens here."""

from __future__ import annotations

import attrs

from .._images._domain import ImageStatus, InstanceImage

# A snapshot's status is an image's: one enum, under the name users know.
SnapshotStatus = ImageStatus


@attrs.frozen(kw_only=True)
class Snapshot(InstanceImage):
    """One snapshot of a Cloud VPS instance, as `instances.snapshots` lists it.

    Returned by the client, it is bound to it: `refresh()`, `wait_active()`,
    `wait_deleted()`, `delete()`, `protect()`, `unprotect()` and `restore()`
    work on it (see `InstanceImage`). The binding takes no part in equality or
    repr. Fields the API page does not list are kept in `extra`.
    """
