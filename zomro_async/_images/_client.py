"""Image calls shared by every kind of image: the `image.edit` preview and its commit."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from .._checks import check_id
from .._core import _document
from .._core._session import ApiSession
from .._exceptions import NotFoundError, ResponseError

_EDIT = "image.edit"
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


class ImagesManager:
    """The `image.edit` calls: an image's details, and protecting it.

    Snapshots and backups are both images of the account; each resource that
    needs these calls speaks through this one.
    """

    def __init__(self, api: ApiSession) -> None:
        self._api = api

    def __repr__(self) -> str:
        return f"ImagesManager({self._api!r})"

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
