"""Instance operations, spoken in `func` names and models: list, get, wait, restore."""

from __future__ import annotations

import builtins
import enum
import logging
from collections.abc import Callable, Sequence

import attrs

from .._checks import (
    check_callback,
    check_id,
    check_rebuild_password,
    check_ssh_key,
    check_timeout,
)
from .._core._context import ResourceContext, ResourceManager
from .._core._converter import instance_from_row
from .._core._inferred import (
    INSTANCES_FILTER,
    REBUILD_OWN_ZONE,
    REBUILD_STATUS_LAG,
)
from .._core._poller import Judge, Listing
from .._core._row_models import RowModels
from .._core._session import filters_cleared_anew, one_operation
from .._exceptions import InstanceFailed, NotFoundError
from .._images._client import ImagesManager
from ._domain import Instance, InstanceStatus, RestorableImage

_LIST = "instances"
_REBUILD = "instances.fleio.rebuild"
# The poller's key for the account's one listing (instances have no parent).
_ACCOUNT = 0

logger = logging.getLogger("zomro_async")


def _not_listed(instance_id: int) -> NotFoundError:
    return NotFoundError(
        f"the account has no instance {instance_id}", type="missed", object="elid", func=_LIST
    )


@attrs.define
class _Rebuild:
    """A rebuild this client had accepted: until `REBUILD_STATUS_LAG` has passed,
    an instance that still reads steady may not have begun it yet."""

    sent_at: float
    seen_busy: bool = False


class _RebuildEvidence:
    """A rebuild's proof in a listing of its instance: it reads `rebuilding`.

    Only that state counts: another operation in progress may be someone else's.
    It shows only while the rebuild runs (`lasting` False).
    """

    lasting = False

    def __init__(self, instance_id: int, image_label: str) -> None:
        self.instance_id = instance_id
        self.label = image_label
        self.describe = f"the restore of instance {instance_id} from image {image_label!r}"

    def learn(self, listed: Sequence[Instance]) -> None:
        return None  # nothing listed before can be mistaken for our rebuild

    def find(
        self, listed: Sequence[Instance], *, accepted: bool, created_id: int | None
    ) -> Instance | None:
        current = next((i for i in listed if i.id == self.instance_id), None)
        if current is None:
            return None
        if accepted or current.status is InstanceStatus.REBUILDING:
            return current
        return None


class InstancesManager(ResourceManager):
    """`client.instances`: the account's Cloud VPS instances.

    Every wait joins the client's shared poller, where one `instances` listing
    (all its pages) per tick serves every instance wait on the client. A
    restore and a snapshot create of one instance run one at a time.
    """

    def __init__(self, context: ResourceContext, *, images: ImagesManager) -> None:
        super().__init__(context)
        self._models: RowModels[Instance] = RowModels()
        self._images = images
        self._rebuilds: dict[int, _Rebuild] = {}
        self._listing = Listing(
            _LIST, _ACCOUNT, self._listed, what="instance", parent_what="account"
        )

    @one_operation
    async def list(self) -> builtins.list[Instance]:
        """Every instance of the account (`instances`), every page, in the API's order.

        The filter the server keeps for the account's `instances` list (one the
        web panel left) is cleared first, by this listing itself, as the panel
        does, so no instance is hidden.

        Returns:
            The instances, bound to this client.

        Raises:
            AuthError: the session is refused and cannot be renewed.
            TransportError: the API could not be reached, after retries.
            ResponseError: a row could not be read.
        """
        with filters_cleared_anew():  # a listing the caller reads must be whole
            return await self._listed()

    async def _listed(self) -> builtins.list[Instance]:
        # The poll's listing: it may reuse a recent clear (the poller proves absences).
        rows = await self._api.list_rows(_LIST, {}, stored_filter=INSTANCES_FILTER)
        return self._models.models(_ACCOUNT, rows, lambda row: instance_from_row(row, self))

    @one_operation
    async def get(self, instance_id: int) -> Instance:
        """One instance, as listed now.

        Raises:
            NotFoundError: the account has no such instance.
            TypeError, ValueError: `instance_id` is not a positive int (nothing is sent).
            ZomroError: as for `list`.
        """
        instance_id = check_id(instance_id, "instance_id")
        for instance in await self.list():  # whole: an absence raises
            if instance.id == instance_id:
                return instance
        raise _not_listed(instance_id)

    @one_operation
    async def wait_status(
        self,
        instance_id: int,
        status: InstanceStatus | str,
        *,
        timeout: float = 1800.0,
        on_update: Callable[[Instance], object] | None = None,
    ) -> Instance:
        """Await an instance's `status` (e.g. `InstanceStatus.ACTIVE`).

        Checked at once, then on the poll schedule, until the hard deadline; a
        listing that fails transiently does not end the wait. Right after a
        restore by this client, a status the instance may still read from
        before the rebuild does not count (see `restore`).

        Args:
            instance_id: the instance.
            status: the state to await (an `InstanceStatus`, or its text).
            timeout: seconds to wait, on the client's clock; 0 checks once.
            on_update: a plain function, called with each observation while
                not there yet; an exception it raises is logged and ignored.

        Returns:
            The instance, refreshed, in `status`.

        Raises:
            InstanceFailed: it reached `ERROR` (when that is not the status
                awaited) or disappeared; `.instance` is the last state seen.
            WaitTimeout: the deadline passed; `.last` is the last state seen.
            NotFoundError: the account has no such instance.
            TypeError, ValueError: bad id, status, timeout or callback (nothing is sent).
        """
        instance_id = check_id(instance_id, "instance_id")
        target = _check_status(status)
        return await self._wait(
            instance_id,
            lambda i: i.status is target,
            goal=target.value,
            timeout=timeout,
            on_update=on_update,
        )

    @one_operation
    async def wait_settled(
        self,
        instance_id: int,
        *,
        timeout: float = 1800.0,
        on_update: Callable[[Instance], object] | None = None,
    ) -> Instance:
        """Await the end of the operation under way: a steady state (not in progress).

        After a restore by this client, the instance counts as settled only once
        it was seen in progress (rebuilding) and left it, or, if that was never
        seen (too quick, or the status lagged), with a listing that started
        `REBUILD_STATUS_LAG` seconds after the rebuild was accepted (or, if its
        outcome was unknown, after the last attempt).

        Args:
            instance_id: the instance.
            timeout: seconds to wait, on the client's clock; 0 checks once.
            on_update: as for `wait_status`.

        Returns:
            The instance in the steady state it reached (`ACTIVE`, `STOPPED`,
            ...; a state `InstanceStatus` does not know is not taken for one).

        Raises:
            InstanceFailed: it reached `ERROR`, or disappeared.
            WaitTimeout, NotFoundError, TypeError, ValueError: as for `wait_status`.
        """
        instance_id = check_id(instance_id, "instance_id")
        return await self._wait(
            instance_id,
            # An undocumented state (UNKNOWN) is not taken for the end of anything.
            lambda i: (
                not (i.status.in_progress or i.status.failed)
                and i.status is not InstanceStatus.UNKNOWN
            ),
            goal="settled",
            timeout=timeout,
            on_update=on_update,
        )

    async def _wait(
        self,
        instance_id: int,
        reached: Callable[[Instance], bool],
        *,
        goal: str,
        timeout: float,
        on_update: Callable[[Instance], object] | None,
    ) -> Instance:
        timeout = check_timeout(timeout)
        on_update = check_callback(on_update, "on_update")
        self._forget_old_rebuilds()
        return await self.poller.wait(
            self._listing,
            instance_id,
            timeout=timeout,
            judge=self._judge(instance_id, reached),
            goal=goal,
            on_update=on_update,
        )

    def _judge(
        self, instance_id: int, reached: Callable[[Instance], bool]
    ) -> Judge[Instance, Instance]:
        rebuild = self._rebuilds.get(instance_id)

        def judge(
            listing: Listing[Instance],
            item_id: int,
            current: Instance | None,
            last: Instance | None,
            listed_at: float,
        ) -> tuple[bool, Instance]:
            if current is None:
                if last is None:
                    raise _not_listed(instance_id)
                raise InstanceFailed(
                    f"instance {instance_id} disappeared while awaited", instance=last
                )
            if rebuild is not None and not rebuild.seen_busy:
                if current.status.in_progress:  # rebuilding, or any work under way
                    rebuild.seen_busy = True
                elif listed_at < rebuild.sent_at + REBUILD_STATUS_LAG:
                    return False, current  # it may still read its state from before
            if reached(current):
                return True, current
            if current.status.failed:
                raise InstanceFailed(
                    f"instance {instance_id} is {current.status_text or current.status.value}",
                    instance=current,
                )
            return False, current

        return judge

    def _forget_old_rebuilds(self) -> None:
        # Past the lag, a listing tells the truth whatever was seen: the memory
        # of a rebuild is needed no longer, and stays bounded.
        now = self._clock.monotonic()
        for instance_id, rebuild in list(self._rebuilds.items()):
            if now >= rebuild.sent_at + REBUILD_STATUS_LAG:
                del self._rebuilds[instance_id]

    @one_operation
    async def restore(
        self,
        instance_id: int,
        image: RestorableImage | int,
        *,
        password: str | None = None,
        ssh_key: str | None = None,
        wait: bool = False,
        timeout: float = 3600.0,
    ) -> Instance:
        """Rebuild an instance from one of the account's images (`instances.fleio.rebuild`).

        **The instance's disk is overwritten with the image**: whatever was
        written since the image was taken is lost. The instance must exist; the
        image must be `ACTIVE`; access is set by exactly one of `password` (the
        new root password) and `ssh_key` (the uuid of one of the account's SSH
        keys). The rebuild is never blindly sent twice: after a failure that
        may have acted (no answer, a reset, any 5xx, an unreadable answer), the
        instance is watched for at least `REBUILD_STATUS_LAG` seconds for the
        rebuild to show (`rebuilding`). Seen, it is the result; not seen, it
        did not begin, and it is sent again under the client's `RetryPolicy`
        (whose budget does not count that watch). A failure that certainly did
        not act (a refused connection, a 429) is retried as any call. A busy
        instance (`runningoperation`) is waited out for up to
        `conflict_timeout`. The instance is locked against this client's other
        changes (snapshot creates) only until the rebuild is accepted.

        Args:
            instance_id: the instance to rebuild (`elid`).
            image: a `Snapshot` (any instance's, of this account), or an image id.
            password: the new root password: 8 to 48 printable ASCII characters,
                an upper-case letter, a lower-case letter and a digit, no spaces
                and none of `" # % & ' ( ) * ; < > ? @ |`. Never logged, never in
                a repr, an error or an event.
            ssh_key: the uuid of an SSH key of the account, instead of a password.
            wait: also await the end of the rebuild (`wait_settled`).
            timeout: seconds that wait may take.

        Returns:
            The instance as listed after the rebuild was accepted (it may still
            read its old status), or, with `wait`, in the steady state it reached.

        Raises:
            ValueError, TypeError: bad ids, an image that is not Active, both or
                neither of `password` and `ssh_key`, a password the panel would
                refuse; raised before the rebuild is sent.
            NotFoundError: no such instance or image.
            InvalidRequestError: the API refused a value.
            ConflictError: the instance stayed busy past `conflict_timeout`.
            OutcomeUnknown: a request may have acted and the instance could not
                be listed to tell, or the API accepted the rebuild and the
                listing after it failed (`accepted` is True); list it before
                restoring again.
            TransportError: the API could not be reached within the retry
                budget, and the rebuild was not seen to begin: it is safe to call
                `restore` again.
            InstanceFailed, WaitTimeout: with `wait`, as for `wait_settled`.
        """
        instance_id = check_id(instance_id, "instance_id")
        if (password is None) == (ssh_key is None):
            raise ValueError("pass exactly one of password= and ssh_key=")
        access = (
            {"enablessh": "off", "password": check_rebuild_password(password)}
            if password is not None
            else {"enablessh": "on", "ssh_keys": check_ssh_key(ssh_key)}
        )
        timeout = check_timeout(timeout)
        image_id, label, fleio_id = await self._image_to_restore(image)
        fields = {
            "elid": str(instance_id),
            "zone": REBUILD_OWN_ZONE,
            "select_rebuild": fleio_id,
            **access,
            "sok": "ok",
        }
        # Whether the rebuild showed decides a re-send: each listing clears the filter itself.
        async with self._locks.held(instance_id):
            with filters_cleared_anew():
                deadline = self._clock.monotonic() + self._conflict_timeout
                reconciler = self._reconciler(
                    func=_REBUILD,
                    fields=fields,
                    list_children=self.list,
                    parent_id=instance_id,
                    evidence=_RebuildEvidence(instance_id, label),
                    conflict_deadline=deadline,
                    confirm=False,
                    min_watch=REBUILD_STATUS_LAG,
                )
                try:
                    instance = await reconciler.run()
                finally:
                    if reconciler.may_have_acted:
                        # Also when the outcome is unknown: a wait on this client must
                        # not take the state from before the rebuild for its end.
                        self._forget_old_rebuilds()
                        self._rebuilds[instance_id] = _Rebuild(sent_at=self._clock.monotonic())
                self._rebuilds[instance_id].seen_busy = instance.status.in_progress
        logger.info("instance %d: restore from image %d accepted", instance_id, image_id)
        if not wait:
            return instance
        return await self.wait_settled(instance_id, timeout=timeout)

    async def _image_to_restore(self, image: RestorableImage | int) -> tuple[int, str, str]:
        """The image's id, a label for messages, and its Glance UUID; refuses one
        that is not Active (a model is judged by the state it carries)."""
        if isinstance(image, bool):
            raise TypeError("image must be a Snapshot or an image id, not bool")
        if isinstance(image, int):
            image_id = check_id(image, "image")
            fleio_id, details = await self._images.fleio_id(image_id)
            state = details.get("fleio_status", "")
            if state.strip().lower() != "active":
                raise ValueError(f"image {image_id} is {state or 'of unknown status'}, not Active")
            return image_id, details.get("image_name", "") or str(image_id), str(fleio_id)
        if not all(hasattr(image, a) for a in ("id", "fleio_id", "status", "name")):
            raise TypeError(f"image must be a Snapshot or an image id, not {type(image).__name__}")
        image_id = check_id(image.id, "image.id")
        status = image.status
        if not isinstance(status, enum.Enum) or status.value != "active":
            shown = getattr(status, "value", status)
            raise ValueError(
                f"image {image_id} is {shown}, not Active: await its wait_active() first"
            )
        label = image.name or str(image_id)
        if image.fleio_id is not None:
            return image_id, label, str(image.fleio_id)
        found, _ = await self._images.fleio_id(image_id)  # the row lacked it
        return image_id, label, str(found)


def _check_status(status: object) -> InstanceStatus:
    text = status if isinstance(status, str) and not isinstance(status, InstanceStatus) else None
    if text is not None:
        status = InstanceStatus(text)
    if not isinstance(status, InstanceStatus):
        raise TypeError(
            f"status must be an InstanceStatus or its text, not {type(status).__name__}"
        )
    if status is InstanceStatus.UNKNOWN:
        what = f"{text!r} is no state of InstanceStatus" if text is not None else "UNKNOWN"
        raise ValueError(f"status {what} cannot be awaited: name a state of InstanceStatus")
    return status
