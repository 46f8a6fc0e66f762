"""Every guess about the live API the client's behaviour rests on, in one place.

The notes (`cloud-vps-notes.md`) mark these *inferred*: no source shows them
literally. Each is named here, with what the SDK does because of it, so that
a correction is one edit. (The emulator keeps its own list of the same guesses
in its module docstring.)
"""

from __future__ import annotations

import datetime

import attrs


@attrs.frozen
class StoredFilter:
    """A list function's filter, which BILLmanager saves for the user (`sok=ok`).

    *Inferred, strongly supported*: a saved filter also applies to the API's
    listings, so a filter left by the web panel could hide rows from the SDK.
    The panel posts the filter with every field empty each time a list opens;
    the SDK does the same before it lists (`ApiSession.list_rows`). The filter
    is kept per user and list function, whatever instance it was set on, so one
    clear serves every instance's listing of that function.
    """

    func: str
    fields: tuple[str, ...]

    def clearing_form(self) -> dict[str, str]:
        """The form that empties the filter, as the panel sends it."""
        return {**dict.fromkeys(self.fields, ""), "sok": "ok"}


INSTANCES_FILTER = StoredFilter(
    "instances.filter",
    (
        "autoprolong",
        "cost_from",
        "cost_to",
        "datacenter",
        "domain",
        "expiredate",
        "id",
        "ip",
        "opendate",
        "orderdatefrom",
        "orderdateto",
        "period",
        "pricelist",
        "instance_status",
        "name",
    ),
)
SNAPSHOTS_FILTER = StoredFilter(
    "instances.snapshots.filter", ("name", "id", "fleio_status", "os_distro", "protected")
)
IMAGES_FILTER = StoredFilter(
    "image.filter",
    ("name", "id", "fleio_status", "os_distro", "image_type", "region", "disk_format"),
)
# The backups listing (`instances.fleio_bckps`) has no filter in the notes: none is cleared.

# A clear of a stored filter serves the listings of its function that start
# within this many seconds of it: a poll tick of a thousand waits clears once.
# A filter saved in the web panel inside that window can only hide rows, so
# whatever an absence decides is checked by a listing that clears the filter
# itself (`filters_cleared_anew`): a wait that sees its item gone lists once
# more so before it believes it, and a create, a restore and a `get` clear
# before each of their listings.
FILTER_CLEAR_REUSE = 2.0

# *Inferred*: BILLmanager answers an ended session (expired, logged out) and a
# call the account has no rights for with the same `access` error. `whoami`, a
# call any user may make that changes nothing, is answered by a live session
# and refused with that error by an ended one (as every call is). So a refused
# call's session is checked with it: refused, it has ended and the client logs
# in again; answered, the refusal was the call's and is raised at once. (Its
# answer for an unfinished two-factor login, `doc.ok` = `func=totp.confirm`, is
# in the notes, not inferred.)
SESSION_CHECK_FUNC = "whoami"

# *Inferred*: right after a rebuild is accepted, the instance may still read
# its old status (Fleio syncs it from OpenStack later). A wait after a rebuild
# takes a steady state for done only once it saw the instance in progress, or
# with a listing that started this many seconds after the rebuild was sent.
REBUILD_STATUS_LAG = 60.0

# `instances.fleio.rebuild` restores one of the account's own images with
# `zone=own` (what the panel sends; Zomro's page says `image` for an OS
# reinstall, which the SDK does not do).
REBUILD_OWN_ZONE = "own"

# -- backups, schedules, copies -----------------------------------------------------

# The panel's limits on the backups of one instance: five manual ones a day, a
# hundred in all (it allows five snapshots a day too). Whether the server itself
# refuses past them, and how, is unknown: `usage()` reports against these, and
# a refusal is read by `LIMIT_ERROR_TYPES`.
BACKUPS_PER_DAY = 5
BACKUPS_IN_ALL = 100
# The panel's limit on manual snapshots of one instance a day: `rotate` refuses
# a policy that keeps more hourly snapshots than that (`rotation_retention`).
SNAPSHOTS_PER_DAY = 5

# *Inferred*: the `$type` of a refusal for a limit (`LimitExceeded`), of any
# call. Any other refusal stays an `InvalidRequestError` or an `ApiError`.
LIMIT_ERROR_TYPES = frozenset({"limit"})

# *Inferred*: the clock a schedule's `rotation_time` is on. The panel labels
# it GMT+3 and warns that it moves with daylight saving; the server's zone is
# unknown. The SDK takes and returns naive times on that clock, and moves an
# aware time to it by this offset.
SCHEDULE_CLOCK_OFFSET = datetime.timedelta(hours=3)

# *Inferred*: `backup_type` reads `manual` or `scheduled` (`BackupType`);
# anything else is `BackupType.UNKNOWN`.

# *Inferred*: `image.copy` answers nothing but an error or success; the copy is
# found as an image of its name, new since the copy was sent, listed by `image`
# in the target region (its spelling compared case-insensitively). Its
# `image_type` is not relied on. Another image of that name that appears in
# that region meanwhile (a backup of an instance there) makes the result
# ambiguous: `OutcomeUnknown`, never a guess.
# How long after the request a copy shows in the listing is unknown: a copy
# whose answer was lost is watched for this long, and never sent again
# (`OutcomeUnknown` if it does not show), since a late one would be a second copy.
COPY_LISTING_LAG = 120.0
