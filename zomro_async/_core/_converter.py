"""The one cattrs converter: every hook that turns BILLmanager text into model fields."""

from __future__ import annotations

import datetime
import functools
import typing
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override

from .._backups._domain import Backup, BackupSchedule, BackupType, Weekday
from .._exceptions import ResponseError
from .._images._domain import Image, ImageStatus, ImageType, InstanceImage
from .._instances._domain import Instance, InstanceStatus
from .._snapshots._domain import Snapshot
from . import _document

if TYPE_CHECKING:
    from .._images._domain import ImageCalls, InstanceImageCalls
    from .._instances._domain import InstanceCalls

M = TypeVar("M")
IM = TypeVar("IM", bound=InstanceImage)

_IMAGE_ROW = {"created": "createdate", "status": "fleio_status"}
# The row's field name for each model field the API names otherwise.
_RENAMED: dict[type, dict[str, str]] = {
    Snapshot: _IMAGE_ROW,
    Backup: _IMAGE_ROW,
    Image: {**_IMAGE_ROW, "name": "image_name"},
    BackupSchedule: {"days": "rotation_days", "at": "rotation_time", "created": "create_date"},
    Instance: {
        "name": "servername",
        "status": "instance_status",
        "billing_status": "item_status",
        "region": "datacentername",
        "tariff": "pricelist",
        "created": "createdate",
    },
}
# Model fields no row field fills: the reader sets them, or they are the binding.
_NOT_FROM_ROW = frozenset({"instance_id", "status_text", "extra", "_client"})


def _row_fields(model: type) -> frozenset[str]:
    renamed = _RENAMED[model]
    return frozenset(
        renamed.get(a.name, a.name) for a in attrs.fields(model) if a.name not in _NOT_FROM_ROW
    )


_ROW_FIELDS = {model: _row_fields(model) for model in _RENAMED}


def _to_int(value: Any, _: type) -> int:
    if value.__class__ is str and value.isdigit() and value.isascii():
        return int(value)  # the common case, first
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an integer")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not (text.isascii() and text.lstrip("-").isdigit()):
        raise ValueError(f"{value!r} is not an integer")
    return int(text)


# Values that repeat across rows and listings (a day's date, an image's uuid
# polled tick after tick, "20", "0") are parsed once: each text's result is
# kept, up to this many distinct texts per kind of value.
_PARSED_TEXTS = 4096


@functools.lru_cache(maxsize=_PARSED_TEXTS)
def _date_of(text: str) -> datetime.date:
    # Dates come as `YYYY-MM-DD`, sometimes with a time after them.
    return datetime.date.fromisoformat(text.strip()[:10])


@functools.lru_cache(maxsize=_PARSED_TEXTS)
def _uuid_of(text: str) -> uuid.UUID:
    return uuid.UUID(text.strip())


def _to_date(value: Any, _: type) -> datetime.date:
    if value.__class__ is str:
        return _date_of(value)
    if isinstance(value, datetime.date):
        return value
    return _date_of(str(value))


def _to_uuid(value: Any, _: type) -> uuid.UUID:
    if value.__class__ is str:
        return _uuid_of(value)
    return value if isinstance(value, uuid.UUID) else _uuid_of(str(value))


def _to_on_off(value: Any, _: type) -> bool:
    if value == "off":  # the common cases, first
        return False
    if value == "on":
        return True
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"on", "yes", "true", "1"}:
        return True
    if text in {"off", "no", "false", "0", ""}:
        return False
    raise ValueError(f"{value!r} is neither on nor off")


def _to_str(value: Any, _: type) -> str:
    if value.__class__ is str or isinstance(value, str):
        return value
    raise ValueError(f"{value!r} is not text")


def _to_time(value: Any, _: type) -> datetime.time:
    if isinstance(value, datetime.time):
        return value
    return _document.schedule_time_from_text(str(value))


def _to_weekdays(value: Any, _: type) -> frozenset[Weekday]:
    if isinstance(value, frozenset):
        return value
    return _document.weekdays_from_names(_to_str(value, str))


# Statuses repeat on every row: look each distinct text up once.
_LENIENT = (ImageStatus, InstanceStatus, ImageType, BackupType)


def _looked_up_once(status: Callable[[Any], Any]) -> Callable[[Any, Any], Any]:
    """The hook of a lenient status enum: each distinct text is looked up once
    (up to 256 of them), in one call where an LRU behind a lambda made two."""
    known: dict[Any, Any] = {}

    def hook(value: Any, _: Any) -> Any:
        try:
            return known[value]
        except KeyError:
            found = status(value)
            if len(known) < 256:
                known[value] = found
            return found

    return hook


# The generated function of each model, kept to be called directly.
StructureFns = dict[type, Callable[[Mapping[str, Any], Any], Any]]


def _make_converter(*, detailed: bool) -> tuple[cattrs.Converter, StructureFns]:
    converter = cattrs.Converter(detailed_validation=detailed)
    generated: StructureFns = {}
    converter.register_structure_hook(int, _to_int)
    converter.register_structure_hook(str, _to_str)
    converter.register_structure_hook(bool, _to_on_off)
    converter.register_structure_hook(datetime.date, _to_date)
    converter.register_structure_hook(uuid.UUID, _to_uuid)
    converter.register_structure_hook(datetime.time, _to_time)
    # A generic alias is no class for single dispatch: match it by predicate.
    converter.register_structure_hook_func(lambda t: t == frozenset[Weekday], _to_weekdays)
    for status in _LENIENT:
        converter.register_structure_hook(status, _looked_up_once(status))
    # An optional field is structured only when the row has it, and then it holds
    # text: skip cattrs' generic Optional dispatch (13 fields a row add up).
    for hook in (_to_int, _to_str, _to_date, _to_uuid, _to_time):
        field_type = typing.get_type_hints(hook)["return"]
        converter.register_structure_hook(field_type | None, hook)
    for model, renamed in _RENAMED.items():
        renames: dict[str, Any] = {field: override(rename=key) for field, key in renamed.items()}
        generated[model] = make_dict_structure_fn(
            model,
            converter,
            _cattrs_forbid_extra_keys=False,
            _client=override(omit=True),
            # Built by _from_row from text rows: no need to walk it again.
            extra=override(struct_hook=lambda value, _: dict(value)),
            **renames,
        )
        converter.register_structure_hook(model, generated[model])
    return converter, generated


# The fast converter reads every row; only a row it fails on is read again by
# the detailed one, to name the field at fault. A row is one call of its model's
# generated function, without the converter's dispatch on the way.
converter, _STRUCTURE = _make_converter(detailed=False)
_detailed, _ = _make_converter(detailed=True)


def _failing_field(exc: BaseException, model: type) -> str:
    """The row field a cattrs validation error is about, from the notes it carries."""
    for sub in getattr(exc, "exceptions", ()):
        for note in getattr(sub, "__notes__", ()):
            name = getattr(note, "name", None)
            if isinstance(name, str):
                return _RENAMED[model].get(name, name)
    return ""


# How messages name a row of each model.
_WHAT = {
    Snapshot: "a snapshot",
    Backup: "a backup",
    Image: "an image",
    Instance: "an instance",
    BackupSchedule: "a backup schedule",
}


def _from_row(model: type[M], row: Mapping[str, str], data: dict[str, Any]) -> M:
    """`model` from one unwrapped row: the row's own fields fill it, any other goes
    to `extra`; `data` holds what the caller knows besides the row.
    """
    fields = _ROW_FIELDS[model]
    if row.keys() <= fields:  # the common case: every field is the model's
        extra: dict[str, str] = {}
        data = {**row, **data}
    else:
        extra = {key: value for key, value in row.items() if key not in fields}
        data = {**{k: v for k, v in row.items() if k in fields}, **data}
    if "id" not in data:
        raise ResponseError(f"{_WHAT[model]} row has no id", field="id", value=None)
    data["extra"] = extra
    try:
        return cast(M, _STRUCTURE[model](data, model))
    except (cattrs.BaseValidationError, ValueError, TypeError, AttributeError):
        raise _explain(model, data, row) from None


def instance_image_from_row(
    model: type[IM],
    row: Mapping[str, str],
    instance_id: int,
    client: InstanceImageCalls | None = None,
) -> IM:
    """A `Snapshot` or a `Backup` (`model`) from one unwrapped row of its
    instance's listing (`instances.snapshots`, `instances.fleio_bckps`).

    Fields the page lists fill the model; any other goes to `extra`. A value that
    cannot be read raises `ResponseError` naming the field and the value. With
    `client`, the new model comes bound to it.
    """
    data = {"instance_id": instance_id, "status_text": row.get("fleio_status", "")}
    image = _from_row(model, row, data)
    if client is not None:
        # Binding a fresh object nobody else holds yet: cheaper than attrs.evolve.
        object.__setattr__(image, "_client", client)
    return image


def snapshot_from_row(
    row: Mapping[str, str], instance_id: int, client: InstanceImageCalls | None = None
) -> Snapshot:
    """A `Snapshot` from one unwrapped `instances.snapshots` row (see `instance_image_from_row`)."""
    return instance_image_from_row(Snapshot, row, instance_id, client)


def image_from_row(row: Mapping[str, str], client: ImageCalls | None = None) -> Image:
    """An `Image` from one unwrapped `image` row (the account's images); bound to
    `client` when given. `ResponseError` as for snapshots."""
    data: dict[str, Any] = {"status_text": row.get("fleio_status", "")}
    image = _from_row(Image, row, data)
    if client is not None:
        object.__setattr__(image, "_client", client)
    return image


def schedule_from_row(row: Mapping[str, str], instance_id: int) -> BackupSchedule:
    """A `BackupSchedule` from one unwrapped `instances.fleio_bckps.schedule` row:
    `rotation_days` names the weekdays, `rotation_time` is `HH:MM`."""
    # The row repeats the instance the caller named: not an extra.
    fields = {k: v for k, v in row.items() if k != "instance_id"}
    return _from_row(BackupSchedule, fields, {"instance_id": instance_id})


def instance_from_row(row: Mapping[str, str], client: InstanceCalls | None = None) -> Instance:
    """An `Instance` from one unwrapped `instances` row (`servername`, else `name`,
    is its name); bound to `client` when given. `ResponseError` as for snapshots.
    """
    data: dict[str, Any] = {"status_text": row.get("instance_status", "")}
    if not row.get("servername") and row.get("name"):
        data["servername"] = row["name"]
    instance = _from_row(Instance, row, data)
    if client is not None:
        object.__setattr__(instance, "_client", client)
    return instance


def _explain(model: type, data: dict[str, Any], row: Mapping[str, str]) -> ResponseError:
    what = _WHAT[model]
    try:
        _detailed.structure(data, model)
    except (cattrs.BaseValidationError, ValueError, TypeError) as exc:
        field = _failing_field(exc, model)
        error = ResponseError(
            f"could not read field {field or '?'!r} of {what} row",
            field=field,
            value=row.get(field),
        )
        error.__cause__ = exc
        return error
    return ResponseError(f"could not read {what} row", field="", value=None)
