"""The account's images: listing, details, protection, and copies to another region."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from .._awaiting import returns_a_wait
from .._checks import check_id, check_name
from .._core import _document
from .._core._context import ResourceContext, ResourceManager
from .._core._converter import image_from_row
from .._core._inferred import COPY_LISTING_LAG, IMAGES_FILTER
from .._core._poller import Listing
from .._core._reconcile import NewNamedChild
from .._core._row_models import RowModels
from .._core._session import filters_cleared_anew, one_operation
from .._exceptions import ImageFailed, NotFoundError, ResponseError
from ._domain import Image

_LIST = "image"
_EDIT = "image.edit"
_COPY = "image.copy"
_DELETE = "image.delete"
# The poller's key for the account's one listing (images have no parent).
_ACCOUNT = 0
# The longest name `image.copy` takes (the panel's limit).
_COPY_NAME = 100
# What the panel sends back, from the preview, with every commit of `image.edit`
# (a field left out may be reset by the server).
_SENT_BACK = (
    "region",
    "min_disk",
    "min_ram",
    "disk_format",
    "os_distro",
    "os_version",
    "architecture",
    "url",
)


class ImagesManager(ResourceManager):
    """`client.images`: every image of the account (`image`), and the `image.edit`
    and `image.copy` calls that snapshots and backups share.

    Every wait joins the client's shared poller: one `image` listing a tick
    serves every copy awaited.
    """

    def __init__(self, context: ResourceContext) -> None:
        super().__init__(context)
        self._models: RowModels[Image] = RowModels()
        self._listing = self._new_listing()  # the account's one listing

    @one_operation
    async def list(self) -> builtins.list[Image]:
        """Every image of the account: uploaded images, snapshots, backups and copies.

        Raises:
            AuthError, TransportError, ResponseError: as for `client.snapshots.list`.
        """
        with filters_cleared_anew():  # a listing the caller reads must be whole
            return await self._listed()

    async def _listed(self) -> builtins.list[Image]:
        rows = await self._api.list_rows(_LIST, {}, stored_filter=IMAGES_FILTER)
        return self._models.models(_ACCOUNT, rows, lambda row: image_from_row(row, self))

    def _new_listing(self) -> Listing[Image]:
        return Listing(
            _LIST,
            _ACCOUNT,
            self._listed,
            what="image",
            parent_what="account",
            failure=lambda message, item: ImageFailed(message, image=item),
        )

    @one_operation
    async def get(self, image_id: int) -> Image:
        """One image of the account, as listed now.

        Raises:
            NotFoundError: it is not listed.
            TypeError, ValueError: `image_id` is not a positive int (nothing is sent).
        """
        image_id = check_id(image_id, "image_id")
        for image in await self.list():
            if image.id == image_id:
                return image
        raise NotFoundError(
            f"the account has no image {image_id}", type="missed", object="elid", func=_LIST
        )

    @one_operation
    async def copy_regions(self, image_id: int) -> dict[str, str]:
        """The regions an image can be copied to, as the copy's preview offers them:
        each region's key with its label (`{"7": "Netherlands-1", ...}`); the
        image's own region is not among them. Either may be given to `copy`.

        Raises:
            NotFoundError: no such image.
            TypeError, ValueError: a bad id (nothing is sent).
        """
        image_id = check_id(image_id, "image_id")
        return _document.choices(await self._api.call(_COPY, {"elid": str(image_id)}), "region")

    @one_operation
    async def copy(self, image_id: int, *, region: str, name: str | None = None) -> Image:
        """Copy an image (a snapshot, a backup) to another region (`image.copy`),
        e.g. for disaster recovery.

        The preview names the regions the image may go to; `region` is one of
        them, by its label ("Netherlands-1") or its key. The answer says nothing,
        so the copy is found in the account's listing: a new image of `name` in
        that region. A copy is never sent twice: after a failure that may have
        acted, the listing is watched for `COPY_LISTING_LAG` (120 s) and, the copy
        not seen, the outcome is unknown rather than risk a second copy. Another
        new image of that name in that region meanwhile (a backup of an
        instance there) makes it unknown too, never a guess. Copies into one
        region from this client run one at a time.

        Args:
            image_id: the image to copy.
            region: the target region's label or key.
            name: the copy's name (at most 100 characters); default the image's.

        Returns:
            The copy, usually `SAVING`: `await copy.wait_active()` (it may take hours).

        Raises:
            ValueError, TypeError: a bad id or name, a region the preview does
                not offer (the image's own, or an unknown one), or an image that
                failed or is being deleted; nothing is copied.
            NotFoundError: no such image.
            ConflictError: the image stayed busy (not yet Active) past `conflict_timeout`.
            OutcomeUnknown: a request may have acted and the copy was not seen
                (or could not be told from another new image of its name); list
                the images before copying again.
            TransportError: the API could not be reached, and nothing was copied.
        """
        image_id = check_id(image_id, "image_id")
        if not isinstance(region, str):
            raise TypeError(f"region must be a str, not {type(region).__name__}")
        if not region.strip():
            raise ValueError("region must name a region, e.g. 'Netherlands-1'")
        if name is not None:
            name = check_name(name, "a copy's name", limit=_COPY_NAME)
        preview = await self._api.call(_COPY, {"elid": str(image_id)})
        key, label = _region_offered(preview, region, image_id)
        spellings = {key.strip().casefold(), label.strip().casefold()}
        async with self._locks.held((_COPY, key)):
            # Which images were there before, and whether a lost copy made one,
            # are decided by absences: each listing clears the filter itself.
            with filters_cleared_anew():
                before = await self.list()
                source = _copyable(before, image_id)
                if name is None:
                    name = check_name(source.name, "a copy's name", limit=_COPY_NAME)
                return await self._reconciler(
                    func=_COPY,
                    fields={"elid": str(image_id), "image_name": name, "region": key, "sok": "ok"},
                    list_children=self.list,
                    parent_id=_ACCOUNT,
                    evidence=NewNamedChild(
                        name=name,
                        before={i.id for i in before},
                        describe=f"the copy {name!r} of image {image_id} in {label}",
                        where=lambda i: (i.region or "").strip().casefold() in spellings,
                        one_candidate=True,
                    ),
                    # A copy may show late: a lost one is watched for, never re-sent.
                    min_watch=COPY_LISTING_LAG,
                    resend_unseen=False,
                ).run()

    # No operation of its own: it sends nothing, the client's poller lists, and
    # aclose() ends the poller (and its waits). The wait is what the caller awaits.
    @returns_a_wait
    def wait_active(
        self,
        image_id: int,
        *,
        timeout: float = 4 * 3600.0,
        on_update: Callable[[Image], object] | None = None,
    ) -> Coroutine[Any, Any, Image]:
        """Await an image's `ACTIVE` state (a copy's end); the default allows four hours.

        All waits share one `image` listing a tick, whatever their number. As
        `snapshots.wait_active`, the wait starts at the call.

        Raises:
            ImageFailed: it reached a failed state, or disappeared.
            WaitTimeout: the deadline passed; `.last` is the last state seen.
            NotFoundError: it was not there.
            TypeError, ValueError: bad id, timeout or callback (nothing is sent).
        """
        image_id = check_id(image_id, "image_id")
        return self._await_active(self._listing, image_id, timeout, on_update)

    @one_operation
    async def delete(self, image_id: int) -> None:
        """Ask the API to delete an image (`image.delete elid`, as the panel sends it).

        A repeat that finds it gone after an attempt whose answer was lost is a
        success; so is a delete whose retries ran out while the listing shows it
        being deleted.

        Raises:
            NotFoundError: no such image (on the first attempt).
            InvalidRequestError: the API refused, e.g. it is protected.
        """
        image_id = check_id(image_id, "image_id")
        await self._delete(_DELETE, {"elid": str(image_id)}, self._listed, image_id)

    # As wait_active: the poller lists, aclose() ends it, the wait starts at the call.
    @returns_a_wait
    def wait_deleted(self, image_id: int, *, timeout: float = 600.0) -> Coroutine[Any, Any, None]:
        """Await the moment an image is no longer listed.

        Raises:
            WaitTimeout: still listed at the deadline.
        """
        image_id = check_id(image_id, "image_id")
        return self._await_gone(self._listing, image_id, timeout)

    @one_operation
    async def details(self, image_id: int, *, instance_id: int | None = None) -> dict[str, str]:
        """The preview of `image.edit elid=<image_id>`: each field's text.

        Args:
            image_id: the image (a snapshot's or a backup's id).
            instance_id: when given, the instance the image must have been made of.

        Raises:
            NotFoundError: no such image, or it is not one of `instance_id`.
        """
        image_id = check_id(image_id, "image_id")
        doc = await self._api.call(_EDIT, {"elid": str(image_id)})
        fields = {}
        for name in doc:
            if name in {"slist", "error"}:
                continue
            try:
                text = _document.form_value(doc, name)
            except ResponseError:
                continue  # a nested node (a choice list): not a field of the image
            if text is not None:
                fields[name] = text
        if instance_id is not None and fields.get("instances_id") != str(instance_id):
            raise NotFoundError(
                f"instance {instance_id} has no image {image_id}",
                type="missed",
                object="elid",
                func=_EDIT,
            )
        return fields

    @one_operation
    async def fleio_id(self, image_id: int) -> tuple[uuid.UUID, Mapping[str, str]]:
        """The image's Glance UUID (`fleio_id`), with the details it came in.

        Raises:
            NotFoundError: no such image.
            ResponseError: the details carry no readable `fleio_id`.
        """
        fields = await self.details(image_id)
        text = fields.get("fleio_id", "")
        try:
            return uuid.UUID(text.strip()), fields
        except ValueError:
            raise ResponseError(
                f"image {image_id} has no readable fleio_id", field="fleio_id", value=text
            ) from None

    @one_operation
    async def set_protected(
        self, image_id: int, protected: bool, *, instance_id: int | None = None
    ) -> None:
        """Protect an image from deletion, or lift it: the preview, then the commit
        with every preview field sent back, as the panel does. Setting the state
        it already has is harmless (so a lost answer is simply retried).

        Raises:
            NotFoundError: no such image (or not one of `instance_id`).
        """
        fields = await self.details(image_id, instance_id=instance_id)
        form = {name: fields.get(name, "") for name in _SENT_BACK}
        form.update(
            elid=str(image_id),
            image_name=fields.get("image_name", ""),
            protected="on" if protected else "off",
            clicked_button="ok",
            sok="ok",
        )
        await self._api.call(_EDIT, form)


def _copyable(listed: builtins.list[Image], image_id: int) -> Image:
    """The image to copy, from the account's listing: `NotFoundError` when it is
    not there, `ValueError` when it failed or is being deleted (waiting would not help)."""
    for image in listed:
        if image.id == image_id:
            if image.status.failed or image.status.being_deleted:
                state = image.status_text or image.status.value
                raise ValueError(f"image {image_id} is {state}: only an Active image is copied")
            return image
    raise NotFoundError(
        f"the account has no image {image_id}", type="missed", object="elid", func=_LIST
    )


def _region_offered(preview: _document.Doc, region: str, image_id: int) -> tuple[str, str]:
    """The key and label of the region the copy preview offers as `region` (by
    label, case-insensitively, or by key); `ValueError` naming those it offers."""
    offered = _document.choices(preview, "region")
    wanted = region.strip().casefold()
    for key, label in offered.items():
        if wanted in (key.casefold(), label.casefold()):
            return key, label
    here = _document.form_value(preview, "region") or "?"
    listed = ", ".join(offered.values()) or "none"
    raise ValueError(
        f"image {image_id} (in {here}) cannot be copied to {region!r}: "
        f"the regions offered are {listed}"
    )
