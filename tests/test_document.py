"""BILLmanager's JSON document rules: `$` values, one-or-list, bodies and errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import PAGE_ROW
from zomro_async._core._document import (
    api_error_class,
    as_list,
    asks_for_second_factor,
    created_id,
    error_from,
    excerpt,
    form_value,
    page_count,
    parse_body,
    parse_retry_after,
    raise_for_error,
    rows,
    session_id,
    unwrap,
)
from zomro_async._exceptions import (
    ApiError,
    AuthError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    ResponseError,
    TransportError,
)

# The sample answer of `instances.snapshots` exactly as zomro-snapshots-api.md shows it.
PAGE_SAMPLE: dict[str, Any] = {
    "doc": {
        "elem": [
            {
                "architecture": {"$": "x86_64"},
                "createdate": {"$": "2024-07-23"},
                "disk_format": {"$": "qcow2"},
                "fleio_id": {"$": "afd72725-81aa-43ad-984c-a3f3a05b4b84"},
                "fleio_status": {"$": "Active"},
                "hypervisor_type": {"$": "any_hypervisor"},
                "id": {"$": "5204214"},
                "image_size": {"$": "3"},
                "item_real_status": {"$": "2"},
                "min_disk": {"$": "20"},
                "min_ram": {"$": "0"},
                "name": {"$": "MySnapshot"},
                "os_distro": {"$": "Ubuntu"},
                "os_version": {"$": "22.04 x64"},
                "protected": {"$": "off"},
                "region": {"$": "Netherlands-2"},
                "visibility": {"$": "private"},
            }
        ]
    }
}


# --------------------------------------------------------------------------- unwrap


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        pytest.param("text", "text", id="plain-string"),
        pytest.param("", "", id="empty-string"),
        pytest.param({"$": "x86_64"}, "x86_64", id="dollar-wrapped"),
        pytest.param({"$": ""}, "", id="dollar-empty-string"),
        pytest.param({"$": "v", "$lang": "en"}, "v", id="dollar-with-attributes"),
        pytest.param({}, None, id="empty-node"),
        pytest.param({"$id": "abc"}, None, id="attributes-only-node"),
        pytest.param(None, None, id="absent"),
        pytest.param([{"$": "2024-07-23"}], "2024-07-23", id="list-of-one-createdate"),
        pytest.param(
            [{"$": "2024-07-23"}, {"$": "2024-07-24"}], "2024-07-23", id="list-first-wins"
        ),
        pytest.param([{}, {"$": "2024-07-23"}], "2024-07-23", id="list-skips-empty"),
        pytest.param([], None, id="empty-list"),
        pytest.param([{}, None], None, id="list-of-empties"),
        pytest.param(["a", "b"], "a", id="list-of-strings"),
        pytest.param(3, "3", id="int"),
        pytest.param(0, "0", id="zero"),
        pytest.param(2.5, "2.5", id="float"),
        pytest.param({"$": 7}, "7", id="dollar-int"),
    ],
)
def test_unwrap(node: object, expected: str | None) -> None:
    assert unwrap(node, "f") == expected


@pytest.mark.parametrize(
    "node",
    [
        pytest.param(True, id="bool-true"),
        pytest.param(False, id="bool-false"),
        pytest.param({"$": True}, id="dollar-bool"),
        pytest.param({"$": {"$": "x"}}, id="dollar-nested-object"),
        pytest.param({"$": ["x"]}, id="dollar-nested-list"),
        pytest.param([{"$": {"a": "b"}}], id="list-with-nested"),
        pytest.param(object(), id="arbitrary-object"),
        pytest.param(b"bytes", id="bytes"),
    ],
)
def test_unwrap_rejects_non_text(node: object) -> None:
    with pytest.raises(ResponseError) as info:
        unwrap(node, "image_size")
    assert info.value.field == "image_size"


# --------------------------------------------------------------------------- as_list


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        pytest.param(None, [], id="none"),
        pytest.param({"a": 1}, [{"a": 1}], id="one-object"),
        pytest.param({}, [{}], id="empty-object"),
        pytest.param("x", ["x"], id="string"),
        pytest.param([], [], id="empty-list"),
        pytest.param([{"a": 1}, {"b": 2}], [{"a": 1}, {"b": 2}], id="list"),
    ],
)
def test_as_list(node: object, expected: list[Any]) -> None:
    assert as_list(node) == expected


def test_as_list_returns_a_list_unchanged() -> None:
    node = [{"a": 1}]
    assert as_list(node) is node


# --------------------------------------------------------------------------- rows


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        pytest.param(PAGE_SAMPLE["doc"], [PAGE_ROW], id="page-sample"),
        pytest.param(
            {"elem": PAGE_SAMPLE["doc"]["elem"][0]}, [PAGE_ROW], id="one-object-not-a-list"
        ),
        pytest.param({}, [], id="missing-elem"),
        pytest.param({"elem": None}, [], id="null-elem"),
        pytest.param({"elem": []}, [], id="empty-list"),
        pytest.param(
            {"elem": [{"id": {"$": "1"}, "description": {}, "image_size": {}}]},
            [{"id": "1"}],
            id="empty-values-dropped",
        ),
        pytest.param(
            {"elem": [{"id": {"$": "1"}, "name": "", "image_size": {}}]},
            [{"id": "1", "name": ""}],
            id="bare-empty-text-kept-beside-an-empty-node",
        ),
        pytest.param(
            {"elem": [{"id": {"$": "1"}, "min_ram": 0, "image_size": {}}]},
            [{"id": "1", "min_ram": "0"}],
            id="bare-zero-read-as-text-beside-an-empty-node",
        ),
        pytest.param(
            {"elem": [{"id": {"$": "1"}, "tags": [], "note": None, "image_size": {}}]},
            [{"id": "1"}],
            id="empty-list-and-null-dropped",
        ),
        pytest.param(
            {"elem": [{"id": {"$": "1"}, "min_ram": {"$": 512}, "image_size": {}}]},
            [{"id": "1", "min_ram": "512"}],
            id="number-in-a-node-read-as-text",
        ),
        pytest.param(
            {"elem": [{"id": {"$": "1"}, "other": {"x": "y"}}]},
            [{"id": "1"}],
            id="node-without-text-dropped",
        ),
        pytest.param(
            {"elem": [{"id": {}, "image_size": {}}]},
            [{}],
            id="all-empty-row-kept-as-an-empty-row",
        ),
        pytest.param(
            {"elem": [{"id": {"$": "1"}, "brand_new": {"$": "x"}}]},
            [{"id": "1", "brand_new": "x"}],
            id="unknown-fields-kept",
        ),
        pytest.param(
            {"elem": [{"id": {"$": "1"}, "createdate": [{"$": "2024-07-23"}]}]},
            [{"id": "1", "createdate": "2024-07-23"}],
            id="createdate-as-list",
        ),
        pytest.param(
            {"elem": [{"id": {"$": "1"}}, {"id": {"$": "2"}}], "p_num": {"$": "1"}},
            [{"id": "1"}, {"id": "2"}],
            id="two-rows-other-doc-keys-ignored",
        ),
    ],
)
def test_rows(doc: dict[str, Any], expected: list[dict[str, str]]) -> None:
    assert rows(doc) == expected


def test_rows_reads_the_page_sample_after_a_json_round_trip() -> None:
    doc = parse_body(200, json.dumps(PAGE_SAMPLE).encode())
    assert rows(doc) == [PAGE_ROW]


@pytest.mark.parametrize(
    "elem",
    [
        pytest.param(["not-a-row"], id="string-row"),
        pytest.param([{"id": {"$": "1"}}, 5], id="int-after-good-row"),
        pytest.param([[{"id": {"$": "1"}}]], id="nested-list-row"),
        pytest.param("just-text", id="elem-is-text"),
    ],
)
def test_rows_rejects_a_non_object_row(elem: object) -> None:
    with pytest.raises(ResponseError) as info:
        rows({"elem": elem})
    assert info.value.field == "elem"


@pytest.mark.parametrize("falsy", [False, 0.0], ids=["false", "zero-float"])
def test_rows_reads_a_falsy_bare_node_as_the_long_way_does(falsy: object) -> None:
    elem = [{"id": {"$": "1"}, "flag": falsy, "image_size": {}}]
    if isinstance(falsy, bool):
        with pytest.raises(ResponseError) as info:
            rows({"elem": elem})
        assert info.value.field == "flag"
    else:
        assert rows({"elem": elem}) == [{"id": "1", "flag": "0.0"}]


def test_rows_rejects_a_nested_value_naming_its_field() -> None:
    with pytest.raises(ResponseError) as info:
        rows({"elem": [{"id": {"$": "1"}, "image_size": {"$": {"x": "y"}}}]})
    assert info.value.field == "image_size"


# --------------------------------------------------------------------------- parse_body


def test_parse_body_returns_the_doc_of_a_2xx_answer() -> None:
    body = json.dumps({"doc": {"ok": {}, "id": {"$": "9"}}}).encode()
    assert parse_body(200, body) == {"ok": {}, "id": {"$": "9"}}


@pytest.mark.parametrize("status", [200, 201, 204, 299])
def test_parse_body_accepts_every_2xx(status: int) -> None:
    assert parse_body(status, b'{"doc": {"ok": {}}}') == {"ok": {}}


@pytest.mark.parametrize(
    ("status", "body"),
    [
        pytest.param(302, b"<html>Moved</html>", id="302-redirect"),
        pytest.param(403, b"<html><body>Forbidden by WAF</body></html>", id="403-waf"),
        pytest.param(404, b"not found", id="404"),
        pytest.param(500, b"Internal   Server\n\nError", id="500"),
        pytest.param(502, b"", id="502-empty"),
        pytest.param(503, b'{"doc": {"ok": {}}}', id="503-with-valid-json"),
        pytest.param(199, b'{"doc": {}}', id="below-200"),
        pytest.param(300, b'{"doc": {}}', id="300"),
    ],
)
def test_parse_body_non_2xx_is_a_transport_error(status: int, body: bytes) -> None:
    with pytest.raises(TransportError) as info:
        parse_body(status, body)
    assert info.value.status == status
    assert info.value.body_excerpt == excerpt(body)
    assert f"HTTP {status}" in str(info.value)


def test_parse_body_non_2xx_excerpt_is_folded_and_cut() -> None:
    body = ("<html>\n  <body>" + "x" * 1000 + "</body></html>").encode()
    with pytest.raises(TransportError) as info:
        parse_body(502, body)
    assert info.value.body_excerpt.startswith("<html> <body>xxx")
    assert len(info.value.body_excerpt) == 200


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"<!DOCTYPE html><html><form action='/billmgr'>login</form>", id="html"),
        pytest.param(b'<?xml version="1.0"?><doc><ok/></doc>', id="xml"),
        pytest.param(b'{"doc": {"elem": [{"id": {"$": "1"}', id="truncated-json"),
        pytest.param(b"", id="empty"),
        pytest.param(b"https://api.zomro.com/long12345billmgr", id="long-operation-url"),
        pytest.param(b"\xff\xfe\x00garbage", id="not-utf8"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deeply-nested"),
    ],
)
def test_parse_body_2xx_without_json_is_a_transport_error(body: bytes) -> None:
    with pytest.raises(TransportError) as info:
        parse_body(200, body)
    assert info.value.status == 200
    assert info.value.body_excerpt == excerpt(body)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"elem": []}', id="no-doc-key"),
        pytest.param(b"{}", id="empty-object"),
        pytest.param(b'{"doc": null}', id="doc-null"),
        pytest.param(b'{"doc": "ok"}', id="doc-string"),
        pytest.param(b'{"doc": [{"ok": {}}]}', id="doc-list"),
        pytest.param(b"[]", id="top-level-list"),
        pytest.param(b"null", id="top-level-null"),
        pytest.param(b"42", id="top-level-number"),
        pytest.param(b'"doc"', id="top-level-string"),
    ],
)
def test_parse_body_json_without_a_doc_object_is_a_transport_error(body: bytes) -> None:
    with pytest.raises(TransportError) as info:
        parse_body(200, body)
    assert info.value.status == 200
    assert "doc" in str(info.value)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(None, None, id="absent"),
        pytest.param("120", 120.0, id="seconds"),
        pytest.param(" 5 ", 5.0, id="padded"),
        pytest.param("1.5", 1.5, id="fractional"),
        pytest.param("0", 0.0, id="zero"),
        pytest.param("-1", None, id="negative"),
        pytest.param("nan", None, id="nan"),
        pytest.param("Wed, 21 Oct 2015 07:28:00 GMT", None, id="http-date"),
        pytest.param("soon", None, id="garbage"),
        pytest.param("", None, id="empty"),
    ],
)
def test_parse_body_reads_retry_after_on_http_errors(
    header: str | None, expected: float | None
) -> None:
    with pytest.raises(TransportError) as info:
        parse_body(503, b"busy", retry_after=header)
    assert info.value.retry_after == expected


# 2015-10-21 07:28:00 UTC, the moment the dates below are measured from.
NOW = 1_445_412_480.0


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("Wed, 21 Oct 2015 07:28:20 GMT", 20.0, id="imf-fixdate"),
        pytest.param("Wednesday, 21-Oct-15 07:29:00 GMT", 60.0, id="rfc850"),
        pytest.param("Wed Oct 21 07:28:05 2015", 5.0, id="asctime"),
        pytest.param("Wed, 21 Oct 2015 10:28:30 +0300", 30.0, id="other-zone"),
        pytest.param("Wed, 21 Oct 2015 07:00:00 GMT", 0.0, id="past"),
        pytest.param("Wed, 32 Oct 2015 07:28:20 GMT", None, id="impossible-day"),
        pytest.param("120", 120.0, id="seconds-still"),
        pytest.param("soon", None, id="garbage"),
    ],
)
def test_retry_after_as_an_http_date_is_measured_from_now(
    header: str, expected: float | None
) -> None:
    assert parse_retry_after(header, NOW) == expected
    with pytest.raises(TransportError) as info:
        parse_body(429, b"slow down", retry_after=header, now=NOW)
    assert info.value.retry_after == expected


# --------------------------------------------------------------------------- excerpt


@pytest.mark.parametrize(
    ("body", "limit", "expected"),
    [
        pytest.param(b"  a \n\t b  ", 200, "a b", id="folds-and-strips-bytes"),
        pytest.param("a\r\n\r\nb", 200, "a b", id="folds-str"),
        pytest.param("", 200, "", id="empty"),
        pytest.param("abcde", 5, "abcde", id="exactly-the-limit"),
        pytest.param("abcdef", 5, "abcd…", id="cut-with-ellipsis"),
        pytest.param(b"\xffok", 200, "\ufffdok", id="bad-utf8-replaced"),
    ],
)
def test_excerpt(body: bytes | str, limit: int, expected: str) -> None:
    assert excerpt(body, limit) == expected


def test_excerpt_default_limit_is_200_characters() -> None:
    text = excerpt("y" * 5000)
    assert len(text) == 200
    assert text.endswith("…")
    assert excerpt("y" * 200) == "y" * 200


# --------------------------------------------------------------------------- api_error_class


@pytest.mark.parametrize(
    ("type_", "object_", "expected"),
    [
        pytest.param("access", "", AuthError, id="access"),
        pytest.param("access", "instances.snapshots", AuthError, id="access-with-func-object"),
        pytest.param("auth", "", AuthError, id="auth"),
        pytest.param("", "nouser", AuthError, id="nouser"),
        pytest.param("value", "account_not_found", AuthError, id="account_not_found"),
        pytest.param("auth", "badpassword", AuthError, id="badpassword"),
        pytest.param("", "runningoperation", ConflictError, id="runningoperation-no-type"),
        pytest.param("access", "runningoperation", ConflictError, id="runningoperation-access"),
        pytest.param("missed", "runningoperation", ConflictError, id="runningoperation-missed"),
        pytest.param("value", "runningoperation", ConflictError, id="runningoperation-value"),
        pytest.param("business", "runningoperation", ConflictError, id="runningoperation-other"),
        pytest.param("missed", "elid", NotFoundError, id="missed-elid"),
        pytest.param("missed", "plid", NotFoundError, id="missed-plid"),
        pytest.param("missed", "elname", NotFoundError, id="missed-elname"),
        pytest.param("missed", "name", InvalidRequestError, id="missed-name"),
        pytest.param("missed", "", InvalidRequestError, id="missed-no-object"),
        pytest.param("value", "name", InvalidRequestError, id="value"),
        pytest.param("value", "elid", InvalidRequestError, id="value-elid-is-not-not-found"),
        pytest.param("exists", "name", InvalidRequestError, id="exists"),
        pytest.param("exists", "elid", InvalidRequestError, id="exists-elid"),
        pytest.param("business", "limit", ApiError, id="unknown-type"),
        pytest.param("", "", ApiError, id="empty"),
        pytest.param("ACCESS", "", ApiError, id="type-is-case-sensitive"),
    ],
)
def test_api_error_class(type_: str, object_: str, expected: type[ApiError]) -> None:
    assert api_error_class(type_, object_) is expected


# --------------------------------------------------------------------------- error_from


def _error_doc(**error: Any) -> dict[str, Any]:
    return {"error": error}


FULL_ERROR = _error_doc(
    **{
        "$type": "access",
        "$object": "instances.snapshots",
        "$lang": "en",
        "msg": {"$": "Insufficient privileges to perform the operation"},
        "detail": {"$": "session expired"},
        "param": [
            {"$name": "value", "$": "5203773"},
            {"$name": "object", "$": "instances.snapshots"},
        ],
    }
)


@pytest.mark.parametrize(
    ("doc", "cls", "fields"),
    [
        pytest.param(
            FULL_ERROR,
            AuthError,
            {
                "type": "access",
                "object": "instances.snapshots",
                "message": "Insufficient privileges to perform the operation",
                "detail": "session expired",
                "params": {"value": "5203773", "object": "instances.snapshots"},
            },
            id="full-envelope-param-list",
        ),
        pytest.param(
            _error_doc(
                **{
                    "$type": "missed",
                    "$object": "elid",
                    "msg": [{"$": "Object not found"}],
                    "detail": [{"$": "no such instance"}],
                    "param": {"$name": "elid", "$": "42"},
                }
            ),
            NotFoundError,
            {
                "type": "missed",
                "object": "elid",
                "message": "Object not found",
                "detail": "no such instance",
                "params": {"elid": "42"},
            },
            id="param-one-object-texts-as-lists",
        ),
        pytest.param(
            _error_doc(**{"$type": "", "$object": "runningoperation"}),
            ConflictError,
            {
                "type": "",
                "object": "runningoperation",
                "message": "the API reported an error",
                "detail": "",
                "params": {},
            },
            id="missing-msg-detail-param",
        ),
        pytest.param(
            _error_doc(),
            ApiError,
            {"type": "", "object": "", "message": "the API reported an error", "params": {}},
            id="empty-error-object",
        ),
        pytest.param(
            _error_doc(**{"$type": "value", "$object": "name", "msg": {}, "detail": {}}),
            InvalidRequestError,
            {"message": "the API reported an error", "detail": ""},
            id="empty-msg-and-detail-nodes",
        ),
        pytest.param(
            _error_doc(
                **{
                    "$type": "exists",
                    "$object": "name",
                    "msg": {"$": {"nested": "x"}},
                    "detail": True,
                    "param": [
                        {"$name": "", "$": "anonymous"},
                        {"$": "no-name"},
                        "not-an-object",
                        {"$name": "name", "$": "MySnapshot"},
                        {"$name": "empty"},
                    ],
                }
            ),
            InvalidRequestError,
            {
                "message": "the API reported an error",
                "detail": "",
                "params": {"name": "MySnapshot", "empty": ""},
            },
            id="malformed-parts-ignored",
        ),
        pytest.param(
            {"error": "Something broke"},
            ApiError,
            {"type": "", "object": "", "detail": "Something broke", "params": {}},
            id="error-is-a-string",
        ),
        pytest.param(
            {"error": {"$": "oops"}},
            ApiError,
            {"type": "", "object": "", "params": {}},
            id="error-object-with-text-only",
        ),
        pytest.param(
            {"error": 500},
            ApiError,
            {"detail": "500"},
            id="error-is-a-number",
        ),
        pytest.param(
            {"error": True},
            ApiError,
            {"detail": ""},
            id="error-is-a-bool",
        ),
    ],
)
def test_error_from(doc: dict[str, Any], cls: type[ApiError], fields: dict[str, Any]) -> None:
    error = error_from(doc, "instances.snapshots")
    assert type(error) is cls
    assert error is not None
    assert error.func == "instances.snapshots"
    for name, value in fields.items():
        assert getattr(error, name) == value, name


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param({}, id="empty-doc"),
        pytest.param({"ok": {}}, id="ok"),
        pytest.param({"ok": {"$": "func=totp.confirm"}}, id="ok-redirect"),
        pytest.param(PAGE_SAMPLE["doc"], id="list-answer"),
        pytest.param({"error": None}, id="error-null"),
    ],
)
def test_error_from_a_non_error_doc_is_none(doc: dict[str, Any]) -> None:
    assert error_from(doc) is None


def test_error_from_str_names_type_object_and_func() -> None:
    error = error_from(FULL_ERROR, "image.delete")
    assert error is not None
    text = str(error)
    assert "Insufficient privileges" in text
    assert "'access'" in text
    assert "'instances.snapshots'" in text
    assert "image.delete" in text


def test_error_from_without_func() -> None:
    error = error_from(FULL_ERROR)
    assert error is not None
    assert error.func == ""
    assert str(error).endswith("(type='access', object='instances.snapshots')")


# --------------------------------------------------------------------------- raise_for_error


def test_raise_for_error_returns_the_same_doc() -> None:
    doc = {"ok": {}}
    assert raise_for_error(doc, "image.delete") is doc


@pytest.mark.parametrize(
    ("error", "cls"),
    [
        pytest.param({"$type": "access"}, AuthError, id="auth"),
        pytest.param({"$type": "missed", "$object": "plid"}, NotFoundError, id="not-found"),
        pytest.param({"$object": "runningoperation"}, ConflictError, id="conflict"),
        pytest.param({"$type": "value", "$object": "name"}, InvalidRequestError, id="invalid"),
        pytest.param({"$type": "business"}, ApiError, id="generic"),
    ],
)
def test_raise_for_error_raises_the_typed_error(error: dict[str, Any], cls: type[ApiError]) -> None:
    with pytest.raises(ApiError) as info:
        raise_for_error({"error": error}, "instances.snapshots.edit")
    assert type(info.value) is cls
    assert info.value.func == "instances.snapshots.edit"


# --------------------------------------------------------------------------- session_id


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        pytest.param(
            {"auth": {"$id": "5acd1215da7a09eaae215987"}}, "5acd1215da7a09eaae215987", id="ok"
        ),
        pytest.param(
            {"auth": {"$id": "abc123", "$": "abc123"}, "ok": {}}, "abc123", id="with-text"
        ),
        pytest.param({"auth": {"$id": "  abc123\n"}}, "abc123", id="stripped"),
    ],
)
def test_session_id(doc: dict[str, Any], expected: str) -> None:
    assert session_id(doc) == expected


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param({}, id="no-auth"),
        pytest.param({"auth": None}, id="auth-null"),
        pytest.param({"auth": {}}, id="auth-empty-node"),
        pytest.param({"auth": {"$": "abc123"}}, id="text-but-no-id-attribute"),
        pytest.param({"auth": "abc123"}, id="auth-is-a-string"),
        pytest.param({"auth": {"$id": ""}}, id="empty-id"),
        pytest.param({"auth": {"$id": "   "}}, id="blank-id"),
        pytest.param({"auth": {"$id": 12345}}, id="numeric-id"),
        pytest.param({"auth": {"$id": None}}, id="null-id"),
        pytest.param({"auth": {"$id": {"$": "abc"}}}, id="wrapped-id"),
    ],
)
def test_session_id_missing_or_bad_is_a_response_error(doc: dict[str, Any]) -> None:
    with pytest.raises(ResponseError) as info:
        session_id(doc)
    assert info.value.field == "auth.$id"


# ---------------------------------------------------------------- asks_for_second_factor


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        pytest.param({"ok": {"$": "func=totp.confirm"}}, True, id="totp-pending"),
        pytest.param({"ok": {"$": " func=totp.confirm "}}, True, id="padded"),
        pytest.param({"ok": {}, "user": {"$": "alice"}}, False, id="live-session"),
        pytest.param({"ok": {"$": "func=dashboard"}}, False, id="another-func"),
        pytest.param({}, False, id="no-ok"),
        pytest.param({"ok": 7}, False, id="hostile-ok"),
        pytest.param({"ok": [{"$": "func=totp.confirm"}]}, True, id="list"),
    ],
)
def test_asks_for_second_factor(doc: dict[str, Any], expected: bool) -> None:
    assert asks_for_second_factor(doc) is expected


# --------------------------------------------------------------------------- created_id


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        pytest.param({"id": {"$": "5204214"}}, 5204214, id="wrapped"),
        pytest.param({"id": "5204214"}, 5204214, id="bare-string"),
        pytest.param({"id": {"$": " 42 "}}, 42, id="padded"),
        pytest.param({"id": [{"$": "42"}]}, 42, id="list"),
        pytest.param({"ok": {}}, None, id="absent"),
        pytest.param({"id": {}}, None, id="empty-node"),
        pytest.param({"id": {"$": ""}}, None, id="empty-text"),
        pytest.param({"id": {"$": "abc"}}, None, id="non-numeric"),
        pytest.param({"id": {"$": "4.2"}}, None, id="decimal"),
        pytest.param({"id": {"$": "0"}}, None, id="zero"),
        pytest.param({"id": {"$": "-5"}}, None, id="negative"),
        pytest.param({"id": {"$": {"x": "1"}}}, None, id="nested"),
        pytest.param({"id": True}, None, id="bool"),
    ],
)
def test_created_id(doc: dict[str, Any], expected: int | None) -> None:
    assert created_id(doc) == expected


@pytest.mark.parametrize(
    "text", [pytest.param("²", id="superscript"), pytest.param("1²", id="mixed")]
)
def test_created_id_unicode_digit_is_none_not_a_crash(text: str) -> None:
    assert created_id({"id": {"$": text}}) is None


@pytest.mark.parametrize(
    ("doc", "pages"),
    [
        ({}, 1),
        ({"p_elems": {"$": "5"}, "p_cnt": {"$": "2"}}, 3),
        ({"p_elems": {"$": "4"}, "p_cnt": {"$": "2"}}, 2),
        ({"p_elems": {"$": "0"}, "p_cnt": {"$": "20"}}, 1),
        ({"p_elems": {"$": "7"}}, 1),
        ({"p_elems": {"$": "x"}, "p_cnt": {"$": "2"}}, 1),
        ({"p_elems": {"$": "7"}, "p_cnt": {"$": "-1"}}, 1),
        ({"p_elems": {"$": "200000"}, "p_cnt": {"$": "20"}}, 10_000),
        ({"p_elems": [{"$": "3"}], "p_cnt": {"$": {"nested": 1}}}, 1),
    ],
    ids=[
        "unpaged",
        "5-by-2",
        "4-by-2",
        "empty",
        "no-size",
        "garbage",
        "negative",
        "capped",
        "hostile",
    ],
)
def test_page_count(doc: dict[str, Any], pages: int) -> None:
    assert page_count(doc) == pages


def test_a_page_count_no_account_reaches_is_refused_not_cut_short() -> None:
    with pytest.raises(ResponseError, match="claims") as caught:
        page_count({"p_elems": {"$": str(10**9)}, "p_cnt": {"$": "1"}})
    assert caught.value.field == "p_elems"


@pytest.mark.parametrize(
    ("node", "text"),
    [
        ({"$": "on"}, "on"),
        ({"$orig": "on"}, "on"),
        ({"$orig": "off", "$": "on"}, "on"),
        ({}, None),
        (None, None),
        ({"$orig": {"$": "x"}}, "x"),
    ],
    ids=["dollar", "orig-alone", "dollar-wins", "empty", "absent", "orig-wrapped"],
)
def test_form_value(node: object, text: str | None) -> None:
    assert form_value({"protected": node} if node is not None else {}, "protected") == text
