"""BILLmanager's JSON document rules as pure functions: `$` values, one-or-list, errors."""

from __future__ import annotations

import datetime
import email.utils
import json
import math
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from types import FrameType
from typing import Any, Literal

from .._backups._domain import Weekday
from .._exceptions import (
    ApiError,
    AuthError,
    ConflictError,
    InvalidRequestError,
    LimitExceeded,
    NotFoundError,
    ResponseError,
    TransportError,
)
from ._inferred import LIMIT_ERROR_TYPES, SCHEDULE_CLOCK_OFFSET

try:  # the `speedups` extra; without it the standard library reads every body
    import orjson  # type: ignore[import-not-found, unused-ignore]
except ImportError:
    _HAVE_ORJSON = False
else:
    _HAVE_ORJSON = True

Doc = Mapping[str, Any]
Row = dict[str, str]

_EXCERPT_CHARS = 200
# `$type` values that mean the session or the user is not allowed: re-login territory.
_AUTH_TYPES = frozenset({"access", "auth"})
_AUTH_OBJECTS = frozenset({"nouser", "account_not_found", "badpassword"})
# A `missed` error about a field the client filled with an id means that element is missing.
_ID_FIELDS = frozenset({"elid", "plid", "elname"})
_INVALID_TYPES = frozenset({"missed", "value", "exists"})
# A page count beyond this (200,000 rows at the panel's 20 a page) is a broken
# answer: refused, never followed, and never cut short into a silently partial list.
_MAX_PAGES = 10_000


def excerpt(body: bytes | str, limit: int = _EXCERPT_CHARS) -> str:
    """The start of a body, whitespace folded, for error messages."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds a `Retry-After` header asks to wait (RFC 9110: delay-seconds or an HTTP-date).

    A date is measured from `now` (wall-clock seconds since the epoch) and a date
    already past is 0; a date with no `now` to measure from, or garbage, is None.
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        return _seconds_until(text, now)
    return seconds if seconds >= 0 and math.isfinite(seconds) else None


def _seconds_until(http_date: str, now: float | None) -> float | None:
    if now is None:
        return None
    try:
        when = email.utils.parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)  # the asctime form carries no zone: it is GMT
    return max(0.0, when.timestamp() - now)


# -- reading a body: the standard library's json, or orjson with the `speedups` extra --
#
# Both read a body the same way, byte for byte: RFC 8259 JSON text in UTF-8.
# Refused on both (so `parse_body` raises TransportError): any other encoding
# (UTF-16/32, Latin-1, ...), a byte order mark, a lone surrogate (`"\ud800"`),
# `NaN`, `Infinity` and `-Infinity`, a number too big for a float (`1e400`),
# and nesting deeper than the standard library's scanner reaches (RecursionError;
# about 1,000 levels less the caller's frames on 3.11, 1,500 on 3.12, 10,000 on
# 3.13). Accepted on both: an integer of any size up to Python's int-string
# limit (4,300 digits unless `sys.set_int_max_str_digits` says otherwise), read
# exactly; duplicate keys, the last one kept.
#
# orjson reads a body only where it is bound to give what the standard library
# gives; every other body it hands to the standard library, which decides:
# - 19 or more digits in a row (orjson makes an integer past 64 bits a float);
# - a body orjson refuses (whatever the reason: NaN, 1e400, depth past 1,024, ...);
# - on 3.11, more brackets than the recursion limit leaves above the caller's
#   frames (there the frames and the scanner's nesting share one limit), unless
#   orjson's writer proves the document it read shallower than the scanner
#   surely reaches (it writes under 255 levels; a listing nests five). From
#   3.12 on the scanner nests deeper than orjson's 1,024 levels, so orjson's
#   own limit is enough (3.14 measures the thread's C stack instead: a thread
#   with a small one, under about 1 MB, might nest less).

_DIGIT_RUN = b"0" * 19
# Every digit as 0 and `{` as `[`: one pass finds digit runs and counts brackets.
_CLASSES = bytes.maketrans(b"0123456789{", b"0000000000[")
_FRAMES_SHARE_THE_LIMIT = sys.version_info < (3, 12)
_SCANNER_FRAMES = 50  # frames the standard library's scanner may add (measured: 4 to 6)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is too big for a float")
    return value


def _has_lone_surrogate(data: object) -> bool:
    texts: list[str] = []
    todo = [data]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            texts.extend(node)
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
        elif isinstance(node, str):
            texts.append(node)
    # The decoder joins an escaped pair into one character: any surrogate left is lone.
    return _SURROGATE.search("".join(texts)) is not None


def _read_stdlib(body: bytes) -> Any:
    data = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant, parse_float=_finite)
    if _SURROGATE_ESCAPE.search(body) and _has_lone_surrogate(data):
        raise ValueError("a string holds a lone surrogate")
    return data


def _loads_stdlib(body: bytes) -> Any:
    """`body` read by the standard library (the default without the `speedups` extra)."""
    # A call away from `_read_stdlib`, as `_loads_orjson` is: on 3.11 the
    # caller's frames count against the depth the scanner can nest.
    return _read_stdlib(body)


def _stdlib_nests(brackets: int) -> bool:
    """Whether, from here, the scanner surely nests a body with this many brackets (3.11)."""
    frame: FrameType | None = sys._getframe()
    frames = 0
    while frame is not None:
        frames += 1
        frame = frame.f_back
    return brackets + frames + _SCANNER_FRAMES < sys.getrecursionlimit()


def _orjson_writes_no_deeper_than(depth: int) -> bool:
    """Whether orjson refuses to write a document nested `depth` levels (it
    writes at most 254): then a document it writes nests less than that."""
    deep: list[Any] = []
    for _ in range(depth - 1):
        deep = [deep]
    try:
        orjson.dumps(deep)
    except orjson.JSONEncodeError:
        return True
    return False


def _shallow(data: Any) -> bool:
    """Whether a document orjson read surely nests less than `_WRITE_LIMIT` levels."""
    if not _ORJSON_WRITE_LIMITED:
        return False
    try:
        orjson.dumps(data)
    except orjson.JSONEncodeError:
        return False
    return True


def _loads_orjson(body: bytes) -> Any:
    """`body` read by orjson, or by the standard library where the two could differ."""
    classes = body.translate(_CLASSES)
    if _DIGIT_RUN in classes:
        return _read_stdlib(body)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _read_stdlib(body)
    # Past the brackets the scanner surely nests, one more pass proves the body
    # shallow: orjson writes only what nests less than _WRITE_LIMIT levels
    # (a listing nests five), cheaper than reading it again.
    deep_enough_to_ask = _FRAMES_SHARE_THE_LIMIT and not _stdlib_nests(classes.count(b"["))
    if deep_enough_to_ask and not (_shallow(data) and _stdlib_nests(_WRITE_LIMIT)):
        return _read_stdlib(body)
    return data


# A depth orjson refuses to write (its limit is 255 levels), measured once; should
# a release write it, bodies with many brackets go to the standard library again.
_WRITE_LIMIT = 300
_ORJSON_WRITE_LIMITED = _HAVE_ORJSON and _orjson_writes_no_deeper_than(_WRITE_LIMIT)

JSON_PARSER: Literal["orjson", "json"] = "orjson" if _HAVE_ORJSON else "json"
"""Which library reads the API's answers: `"orjson"` when it is installed (the
`speedups` extra), else `"json"`. The two read every body alike."""
_loads: Callable[[bytes], Any] = _loads_orjson if _HAVE_ORJSON else _loads_stdlib


def parse_body(
    status: int, body: bytes, retry_after: str | None = None, now: float | None = None
) -> Doc:
    """The `doc` of an HTTP answer, or `TransportError` when there is no usable document.

    The body is read by `JSON_PARSER` (orjson with the `speedups` extra, else
    the standard library), with one outcome either way: a body that is not
    strict UTF-8 JSON (no byte order mark, no lone surrogate, no `NaN` or
    `Infinity`, no number past a float's range, no nesting past the standard
    library's reach) is a `TransportError`, as is a document without a `doc`
    object. Integers of any size are read exactly, on both.

    `now` (wall-clock seconds) measures a `Retry-After` given as an HTTP-date.
    """
    after = parse_retry_after(retry_after, now)
    if not 200 <= status < 300:
        raise TransportError(
            "the API answered with an HTTP error",
            status=status,
            body_excerpt=excerpt(body),
            retry_after=after,
        )
    try:
        data = _loads(body)
    except (ValueError, RecursionError) as exc:
        raise TransportError(
            "the API's answer is not a JSON document", status=status, body_excerpt=excerpt(body)
        ) from exc
    doc = data.get("doc") if isinstance(data, dict) else None
    if not isinstance(doc, dict):
        raise TransportError(
            "the API's answer has no `doc` object", status=status, body_excerpt=excerpt(body)
        )
    return doc


def unwrap(node: object, field: str = "") -> str | None:
    """The text of a node: `{"$": v}` is `v`, `{}` and absence are None.

    A list (seen for `createdate`) gives its first non-empty text.
    """
    if node is None:
        return None
    if isinstance(node, str):
        return node
    if isinstance(node, bool):
        raise ResponseError(f"field {field!r} holds a boolean, not text", field=field, value=node)
    if isinstance(node, (int, float)):
        return str(node)
    if isinstance(node, list):
        for item in node:
            text = unwrap(item, field)
            if text is not None:
                return text
        return None
    if isinstance(node, dict):
        if "$" not in node:
            return None
        value = node["$"]
        if isinstance(value, (dict, list)):
            raise ResponseError(f"field {field!r} has a nested value", field=field, value=value)
        return unwrap(value, field)
    raise ResponseError(f"field {field!r} has an unexpected value", field=field, value=node)


def as_list(node: object) -> list[Any]:
    """One object or a list of them, as a list; a missing node is an empty list."""
    if node is None:
        return []
    if isinstance(node, list):
        return node
    return [node]


_NO_NODE: dict[str, Any] = {}


def rows(doc: Doc) -> list[Row]:
    """The rows of a list function (`doc.elem`), each a mapping of field to text.

    Empty fields (`{}`) are left out. A missing `elem` is an empty list.
    """
    result: list[Row] = []
    for item in as_list(doc.get("elem")):
        if item == {}:
            continue  # an empty node, BILLmanager's way of saying nothing
        if not isinstance(item, dict):
            raise ResponseError("a row of `elem` is not an object", field="elem", value=item)
        try:
            # Nearly every row is {"$": "text"} nodes and some empty ones ({}):
            # take them in one step...
            row: Row = {key: node["$"] for key, node in item.items() if node}
            # ...when what was left out is only {} and what was taken is only text
            # (join refuses anything else), ...
            left_out = len(item) - len(row)
            if left_out and [*item.values()].count(_NO_NODE) != left_out:
                raise TypeError("a falsy node other than {}")
            "".join(row.values())
        except (KeyError, TypeError):
            row = _row_the_long_way(item)  # ...and any other row node by node
        result.append(row)
    return result


def _row_the_long_way(item: Mapping[str, Any]) -> Row:
    row: Row = {}
    for key, node in item.items():
        text = node.get("$") if type(node) is dict else None
        if type(text) is not str:
            text = unwrap(node, key)
        if text is not None:
            row[key] = text
    return row


def _count(doc: Doc, field: str) -> int | None:
    try:
        text = (unwrap(doc.get(field), field) or "").strip()
    except ResponseError:
        return None
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 12 else None


def listed_total(doc: Doc) -> int | None:
    """How many rows a paged list answer says there are in all (`p_elems`)."""
    return _count(doc, "p_elems")


def page_count(doc: Doc) -> int:
    """How many pages a paged list answer has (`p_elems` over `p_cnt`); 1 if not paged.

    Raises `ResponseError` for a count no real account reaches.
    """
    total, size = _count(doc, "p_elems"), _count(doc, "p_cnt")
    if not total or not size:
        return 1
    pages = -(-total // size)
    if pages > _MAX_PAGES:
        raise ResponseError(
            f"the listing claims {pages} pages (p_elems {total}, p_cnt {size})",
            field="p_elems",
            value=str(total),
        )
    return pages


def form_value(doc: Doc, field: str) -> str | None:
    """A form field's text in an edit preview: its `$`, else its `$orig` (the value
    before an edit, which some fields carry alone), else None.
    """
    node = doc.get(field)
    if isinstance(node, dict) and "$" not in node and "$orig" in node:
        return unwrap(node["$orig"], field)
    return unwrap(node, field)


def api_error_class(type_: str, object_: str) -> type[ApiError]:
    """Which error a `doc.error` with this `$type` and `$object` is."""
    if object_ == "runningoperation":
        return ConflictError
    if type_ in LIMIT_ERROR_TYPES:
        return LimitExceeded
    if type_ in _AUTH_TYPES or object_ in _AUTH_OBJECTS:
        return AuthError
    if type_ == "missed" and object_ in _ID_FIELDS:
        return NotFoundError
    if type_ in _INVALID_TYPES:
        return InvalidRequestError
    return ApiError


def _text(node: object, field: str) -> str:
    try:
        return unwrap(node, field) or ""
    except ResponseError:
        return ""


def error_from(doc: Doc, func: str = "") -> ApiError | None:
    """The typed error `doc.error` describes, or None when the document is no error."""
    node = doc.get("error")
    if node is None:
        return None
    if isinstance(node, list):
        node = node[0] if node else {}  # the one-or-list rule reaches errors too
    if not isinstance(node, dict):
        return ApiError("the API reported an error", func=func, detail=_text(node, "error"))
    type_ = _text(node.get("$type"), "$type")
    object_ = _text(node.get("$object"), "$object")
    params: dict[str, str] = {}
    for param in as_list(node.get("param")):
        if isinstance(param, dict):
            name = _text(param.get("$name"), "$name")
            if name:
                params[name] = _text(param, name)
    cls = api_error_class(type_, object_)
    return cls(
        _text(node.get("msg"), "msg") or "the API reported an error",
        type=type_,
        object=object_,
        detail=_text(node.get("detail"), "detail"),
        params=params,
        func=func,
    )


def raise_for_error(doc: Doc, func: str = "") -> Doc:
    """`doc` itself, or the typed error it carries raised."""
    error = error_from(doc, func)
    if error is not None:
        raise error
    return doc


def session_id(doc: Doc) -> str:
    """The session id a `func=auth` answer carries in `doc.auth.$id`."""
    auth = doc.get("auth")
    sid = auth.get("$id") if isinstance(auth, dict) else None
    if not isinstance(sid, str) or not sid.strip():
        raise ResponseError("the login answer carries no session id", field="auth.$id")
    return sid.strip()


def asks_for_second_factor(doc: Doc) -> bool:
    """Whether a `func=whoami` answer says the login awaits its two-factor code
    (`doc.ok` is `func=totp.confirm`)."""
    try:
        text = unwrap(doc.get("ok"), "ok")
    except ResponseError:
        return False
    return (text or "").strip() == "func=totp.confirm"


def created_id(doc: Doc) -> int | None:
    """The new object's id from `doc.id`, when the answer happens to carry one."""
    try:
        text = unwrap(doc.get("id"), "id")
    except ResponseError:
        return None
    text = (text or "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None  # also spares int() a huge digit string
    value = int(text)
    return value if value > 0 else None


def nested_value(doc: Doc, *path: str) -> str | None:
    """The text at a path of nested nodes (`cost`, `stat_cost`), or None if any is absent."""
    node: object = doc
    for name in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(name)
    try:
        return unwrap(node, ".".join(path))
    except ResponseError:
        return None


def count_value(doc: Doc, field: str) -> int | None:
    """A page-level count (`manual_created_today`), or None when absent or unreadable."""
    return _count(doc, field)


# -- backup schedules: weekdays and the time of day ------------------------------

# The panel numbers days from Sunday = 0 and lists them back by English name.
_PANEL_DAY_NUMBER = {day: (day + 1) % 7 for day in Weekday}
_DAY_BY_NAME = {
    name.casefold(): day
    for day, full in zip(
        Weekday,
        ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
        strict=True,
    )
    for name in (full, full[:3])
}
_DAY_SPLIT = re.compile(r"[\s,;]+")
_TIME = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)(?::00)?")


def weekdays_form(days: Iterable[Weekday], *, shift: int = 0) -> str:
    """The `rotation_days` a schedule edit sends: panel numbers (Sunday = 0),
    comma-separated, in the panel's order (Monday first); each day moved by
    `shift` days (the time of day crossed midnight onto the panel's clock)."""
    moved = {Weekday((d + shift) % 7) for d in days}
    return ",".join(str(_PANEL_DAY_NUMBER[d]) for d in sorted(moved))


def weekdays_from_names(text: str) -> frozenset[Weekday]:
    """The weekdays a schedule row lists (`rotation_days`: "Monday Tuesday").

    Raises `ResponseError` for a word that names no day.
    """
    days = set()
    for word in _DAY_SPLIT.split(text.strip()):
        if not word:
            continue
        day = _DAY_BY_NAME.get(word.casefold())
        if day is None:
            raise ResponseError(
                f"{word!r} in rotation_days names no weekday", field="rotation_days", value=text
            )
        days.add(day)
    return frozenset(days)


def schedule_time_form(at: datetime.time) -> tuple[str, int]:
    """The `rotation_time` a schedule edit sends, `HH:MM` on the panel's clock,
    and the days that moved it by (-1, 0 or 1: pass it to `weekdays_form`).

    A naive time is taken as the panel's; an aware one (with a fixed offset) is
    moved to the panel's clock (`SCHEDULE_CLOCK_OFFSET`), which may cross
    midnight. Raises `ValueError` for seconds (the panel schedules by the
    minute) or an offset it cannot know.
    """
    if at.second or at.microsecond:
        raise ValueError(f"{at} has seconds: backup schedules are set to the minute")
    minutes = at.hour * 60 + at.minute
    if at.tzinfo is not None:
        offset = at.utcoffset()
        if offset is None:
            raise ValueError(f"{at}: its time zone gives no fixed offset; pass a naive time")
        minutes += int((SCHEDULE_CLOCK_OFFSET - offset).total_seconds()) // 60
    days, minutes = divmod(minutes, 24 * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}", days


def schedule_time_from_text(text: str) -> datetime.time:
    """The naive time of day a schedule row gives (`rotation_time`, `HH:MM`).

    Raises `ResponseError` when it is not a time of day.
    """
    match = _TIME.fullmatch(text.strip())
    if match is None:
        raise ResponseError(f"{text!r} is no HH:MM time", field="rotation_time", value=text)
    return datetime.time(int(match[1]), int(match[2]))


def choices(doc: Doc, name: str) -> dict[str, str]:
    """The choices a preview offers for a field (`doc.slist` named `name`):
    each `$key` with its label, in the server's order; none when it offers none."""
    offered: dict[str, str] = {}
    for slist in as_list(doc.get("slist")):
        if not isinstance(slist, Mapping) or slist.get("$name") != name:
            continue
        for val in as_list(slist.get("val")):
            if not isinstance(val, Mapping):
                continue
            key = val.get("$key")
            if isinstance(key, str) and key:
                offered[key] = _text(val, name) or key
    return offered
