"""The two JSON parsers, the standard library's and orjson (the `speedups` extra),
read every body alike: the same `doc`, or the same `TransportError`."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import PAGE_ROW
from zomro_async._core import _document
from zomro_async._core._document import parse_body
from zomro_async._exceptions import TransportError

HAVE_ORJSON = importlib.util.find_spec("orjson") is not None
needs_orjson = pytest.mark.skipif(not HAVE_ORJSON, reason="orjson (the speedups extra) is absent")
# Each parser's half of a test: the standard library's always, orjson's where it is installed.
PARSERS = ["json", pytest.param("orjson", marks=needs_orjson)]

Loader = Callable[[bytes], Any]


def loader(name: str) -> Loader:
    return _document._loads_orjson if name == "orjson" else _document._loads_stdlib


def fingerprint(node: object) -> list[tuple[str, object]]:
    """`node` flattened, key order, types and float signs kept; any depth (no recursion)."""
    out: list[tuple[str, object]] = []
    todo: list[tuple[str, object]] = [("node", node)]
    while todo:
        kind, item = todo.pop()
        if kind == "key":
            out.append(("key", item))
        elif isinstance(item, dict):
            out.append(("dict", len(item)))
            for key, value in reversed(item.items()):
                todo += [("node", value), ("key", key)]
        elif isinstance(item, list):
            out.append(("list", len(item)))
            todo += [("node", value) for value in reversed(item)]
        else:
            out.append((type(item).__name__, repr(item)))
    return out


Outcome = tuple[object, ...]


def outcome(parser: Loader, body: bytes) -> Outcome:
    """What `parse_body(200, body)` gives with `parser` reading: the doc, or the error."""
    saved, _document._loads = _document._loads, parser
    try:
        doc = parse_body(200, body)
    except TransportError as exc:
        cause = type(exc.__cause__).__name__ if exc.__cause__ else None
        return ("refused", exc.args[0], exc.status, exc.body_excerpt, cause)
    finally:
        _document._loads = saved
    return ("doc", fingerprint(doc))


def both(body: bytes) -> tuple[Outcome, Outcome]:
    return outcome(_document._loads_stdlib, body), outcome(_document._loads_orjson, body)


NOT_JSON = "the API's answer is not a JSON document"
NO_DOC = "the API's answer has no `doc` object"


def wrap(text: str) -> bytes:
    return ('{"doc": {"v": ' + text + "}}").encode()


PLAIN = b'{"doc": {"ok": {}}}'
ROWS = {"elem": [{k: {"$": v} for k, v in PAGE_ROW.items()}] * 3, "p_elems": {"$": "3"}}
FOUR_THOUSAND_THREE_HUNDRED_NINES = int("9" * 4300)

# Each body and what both parsers must make of it: a doc, NOT_JSON or NO_DOC.
TABLE = [
    # -- documents read alike
    pytest.param(PLAIN, {"ok": {}}, id="plain"),
    pytest.param(json.dumps({"doc": ROWS}).encode(), ROWS, id="rows"),
    pytest.param(b' \t\r\n{"doc" : { } }\n ', {}, id="json-whitespace"),
    pytest.param('{"doc": {"n": "Снимок 😀"}}'.encode(), {"n": "Снимок 😀"}, id="raw-utf8"),
    pytest.param(json.dumps({"doc": {"n": "Снимок"}}).encode(), {"n": "Снимок"}, id="escaped"),
    pytest.param(wrap(r'"\ud83d\ude00"'), {"v": "😀"}, id="escaped-pair"),
    pytest.param(wrap(r'"\uD83D\uDE00"'), {"v": "😀"}, id="escaped-pair-uppercase"),
    pytest.param(wrap(r'"\\ud800"'), {"v": "\\ud800"}, id="backslash-then-ud800-text"),
    pytest.param(
        wrap(r'"\" \\ \/ \b \f \n \r \t \u0000"'), {"v": '" \\ / \b \f \n \r \t \0'}, id="escapes"
    ),
    pytest.param(
        wrap('"\x7f \u2028 \uffff \U0010ffff"'),
        {"v": "\x7f \u2028 \uffff \U0010ffff"},
        id="odd-chars",
    ),
    pytest.param(b'{"doc": {"a": "1", "b": "2", "a": "3"}}', {"a": "3", "b": "2"}, id="dup-key"),
    pytest.param(b'{"doc": {"x": "1"}, "doc": {"y": "2"}}', {"y": "2"}, id="dup-doc"),
    pytest.param(wrap("[true, false, null]"), {"v": [True, False, None]}, id="literals"),
    pytest.param(
        wrap("[0, -0, 9223372036854775807, -9223372036854775808, 18446744073709551615]"),
        {"v": [0, 0, 2**63 - 1, -(2**63), 2**64 - 1]},
        id="ints-within-64-bits",
    ),
    pytest.param(
        wrap(f"[18446744073709551616, -9223372036854775809, {10**30}, {-(10**40)}]"),
        {"v": [2**64, -(2**63) - 1, 10**30, -(10**40)]},
        id="ints-past-64-bits",
    ),
    pytest.param(wrap("1" * 400), {"v": int("1" * 400)}, id="int-past-a-float"),
    pytest.param(wrap("9" * 4300), {"v": FOUR_THOUSAND_THREE_HUNDRED_NINES}, id="int-4300-digits"),
    pytest.param(
        b'{"doc": {"id": {"$": "12345678901234567890"}}}',
        {"id": {"$": "12345678901234567890"}},
        id="long-digit-string",
    ),
    pytest.param(
        wrap(
            "[0.1, -0.0, 1.5e300, 5e-324, 2.2250738585072011e-308, 1.7976931348623157e308,"
            " 1E5, 1e+5, 1e-5, 0e0, -0.0E-0, 1e-400, 9007199254740993.0, 1e19]"
        ),
        {
            "v": [
                *(0.1, -0.0, 1.5e300, 5e-324, 2.2250738585072011e-308, 1.7976931348623157e308),
                *(1e5, 1e5, 1e-5, 0.0, -0.0, 0.0, 9007199254740992.0, 1e19),
            ]
        },
        id="floats",
    ),
    pytest.param(
        wrap("[123456789012345678.123456789012345678, 0.1000000000000000055511151231257827]"),
        {"v": [123456789012345678.123456789012345678, 0.1]},
        id="long-mantissas",
    ),
    pytest.param(
        wrap("[1e00000000000000001, 1e0000000000000000001]"),
        {"v": [10.0, 10.0]},
        id="long-exponents",
    ),
    pytest.param(b'{"doc": {"v": ' + b"[" * 300 + b"]" * 300 + b"}}", None, id="nested-300"),
    # -- not JSON, or not strict UTF-8 JSON: refused alike
    pytest.param(b"", NOT_JSON, id="empty"),
    pytest.param(b" \n\t", NOT_JSON, id="whitespace-only"),
    pytest.param(b"<!DOCTYPE html><html>login</html>", NOT_JSON, id="html"),
    pytest.param(b'{"doc": {"elem": [{"id": {"$": "1"}', NOT_JSON, id="truncated"),
    pytest.param(b"\xef\xbb\xbf" + PLAIN, NOT_JSON, id="utf8-bom"),
    pytest.param(PLAIN.decode().encode("utf-16"), NOT_JSON, id="utf16"),
    pytest.param(PLAIN.decode().encode("utf-16-le"), NOT_JSON, id="utf16le-no-bom"),
    pytest.param(PLAIN.decode().encode("utf-32"), NOT_JSON, id="utf32"),
    pytest.param('{"doc": {"n": "é"}}'.encode("latin-1"), NOT_JSON, id="latin1"),
    pytest.param(b'{"doc": {"n": "\xc0\xaf"}}', NOT_JSON, id="overlong-utf8"),
    pytest.param(b'{"doc": {"n": "\xed\xa0\x80"}}', NOT_JSON, id="utf8-encoded-surrogate"),
    pytest.param(b'{"doc": {"n": "\xe2\x82"}}', NOT_JSON, id="cut-utf8-sequence"),
    pytest.param(wrap(r'"\ud800"'), NOT_JSON, id="lone-high-surrogate"),
    pytest.param(wrap(r'"\uDC00"'), NOT_JSON, id="lone-low-surrogate"),
    pytest.param(wrap(r'"\ude00\ud83d"'), NOT_JSON, id="reversed-pair"),
    pytest.param(wrap(r'"\ud800\u0041"'), NOT_JSON, id="high-then-letter"),
    pytest.param(b'{"doc": {"\\ud800": "x"}}', NOT_JSON, id="lone-surrogate-in-key"),
    pytest.param(wrap("NaN"), NOT_JSON, id="nan"),
    pytest.param(wrap("Infinity"), NOT_JSON, id="infinity"),
    pytest.param(wrap("-Infinity"), NOT_JSON, id="minus-infinity"),
    pytest.param(b"NaN", NOT_JSON, id="nan-alone"),
    pytest.param(wrap("1e400"), NOT_JSON, id="float-overflow"),
    pytest.param(wrap("-1e400"), NOT_JSON, id="negative-float-overflow"),
    pytest.param(wrap("1e99999999999999999999"), NOT_JSON, id="huge-exponent"),
    pytest.param(wrap("9" * 4301), NOT_JSON, id="int-past-the-digit-limit"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, NOT_JSON, id="deep-lists"),
    pytest.param(b'{"a": ' * 100_000 + b"1" + b"}" * 100_000, NOT_JSON, id="deep-objects"),
    pytest.param(wrap('"a\x01b"'), NOT_JSON, id="raw-control-char"),
    pytest.param(wrap('"a\tb"'), NOT_JSON, id="raw-tab-in-string"),
    pytest.param(wrap(r'"\x41"'), NOT_JSON, id="bad-escape"),
    pytest.param(wrap(r'"\U00000041"'), NOT_JSON, id="capital-u-escape"),
    pytest.param(wrap("[1,]"), NOT_JSON, id="trailing-comma"),
    pytest.param(b'{"doc": {},}', NOT_JSON, id="trailing-comma-in-object"),
    pytest.param(wrap("01"), NOT_JSON, id="leading-zero"),
    pytest.param(wrap("+1"), NOT_JSON, id="plus-sign"),
    pytest.param(wrap(".5"), NOT_JSON, id="no-integer-part"),
    pytest.param(wrap("1."), NOT_JSON, id="no-fraction-digits"),
    pytest.param(wrap("-"), NOT_JSON, id="minus-alone"),
    pytest.param(wrap("0x1F"), NOT_JSON, id="hex"),
    pytest.param(wrap("'x'"), NOT_JSON, id="single-quotes"),
    pytest.param(wrap("[1/* c */]"), NOT_JSON, id="comment"),
    pytest.param(wrap("True"), NOT_JSON, id="python-true"),
    pytest.param(b'{"doc": {1: "x"}}', NOT_JSON, id="number-key"),
    pytest.param(PLAIN + PLAIN, NOT_JSON, id="two-documents"),
    pytest.param(PLAIN + b"\x00", NOT_JSON, id="nul-after"),
    pytest.param(b"\x0c" + PLAIN, NOT_JSON, id="form-feed-before"),
    pytest.param(b"\x0b" + PLAIN, NOT_JSON, id="vertical-tab-before"),
    pytest.param("\u00a0".encode() + PLAIN, NOT_JSON, id="nbsp-before"),
    pytest.param("\u3000".encode() + PLAIN, NOT_JSON, id="ideographic-space-before"),
    # -- JSON, but no BILLmanager document
    pytest.param(b"[]", NO_DOC, id="top-level-list"),
    pytest.param(b"null", NO_DOC, id="top-level-null"),
    pytest.param(b"42", NO_DOC, id="top-level-number"),
    pytest.param(b"99999999999999999999", NO_DOC, id="top-level-big-int"),
    pytest.param(b'"doc"', NO_DOC, id="top-level-string"),
    pytest.param(b"{}", NO_DOC, id="empty-object"),
    pytest.param(b'{"doc": null}', NO_DOC, id="doc-null"),
    pytest.param(b'{"doc": []}', NO_DOC, id="doc-list"),
    pytest.param(b'{"doc": "ok"}', NO_DOC, id="doc-string"),
]


def expected_outcome(body: bytes, expected: object) -> Outcome:
    if expected in (NOT_JSON, NO_DOC):
        return ("refused", expected, 200, _document.excerpt(body))
    if expected is None:  # the body's own doc, as the standard library reads it
        expected = json.loads(body)["doc"]
    return ("doc", fingerprint(expected))


@pytest.mark.parametrize("name", PARSERS)
@pytest.mark.parametrize(("body", "expected"), TABLE)
def test_each_parser_reads_the_table(name: str, body: bytes, expected: object) -> None:
    got = outcome(loader(name), body)
    want = expected_outcome(body, expected)
    if want[0] == "refused":
        assert got[:4] == want[:4]
        assert (got[4] is None) == (expected == NO_DOC)  # a parse error is kept as the cause
    else:
        assert got == want


@needs_orjson
@pytest.mark.parametrize(("body", "expected"), TABLE)
def test_both_parsers_agree_on_the_table(body: bytes, expected: object) -> None:
    by_stdlib, by_orjson = both(body)
    assert by_orjson == by_stdlib  # the error's cause included


def _nests(parser: Loader, depth: int) -> bool:
    body = b'{"doc": {"v": ' + b"[" * depth + b"]" * depth + b"}}"
    return outcome(parser, body)[0] == "doc"


def _reach() -> int:
    """About the deepest nesting the standard library reads from here (3.11 counts frames)."""
    low, high = 1, 200_000  # low nests; beyond high is never asked
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if _nests(_document._loads_stdlib, mid) else (low, mid - 1)
    return low


def _nesting(parser: Loader, depths: list[int]) -> list[bool]:
    return [_nests(parser, depth) for depth in depths]


@needs_orjson
def test_both_parsers_nest_exactly_as_deep() -> None:
    reach = _reach()
    assert reach >= 300
    near = {reach + step for step in (-60, -2, -1, 0, 1, 2, 3)}
    depths = sorted(near | {1023, 1024, 1025, 1026})
    # Both asked from the same frame, so that on 3.11 both have the same room.
    by_stdlib = _nesting(_document._loads_stdlib, depths)
    assert _nesting(_document._loads_orjson, depths) == by_stdlib
    assert True in by_stdlib
    assert False in by_stdlib  # the edge itself was tried


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.11's limit counts frames too")
def test_on_3_11_orjson_leaves_a_body_deeper_than_the_frames_allow_to_the_stdlib() -> None:
    assert _document._stdlib_nests(100)
    assert not _document._stdlib_nests(sys.getrecursionlimit())


@needs_orjson
@pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.11's limit counts frames too")
def test_on_3_11_a_long_but_shallow_body_is_still_orjson_s(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 600 rows are some 12,000 brackets, far more than the recursion limit, but
    # five levels deep: orjson's writer proves it, no second reading is needed.
    elem = ", ".join(f'{{"id": {{"$": "{n}"}}, "image_size": {{}}}}' for n in range(600))
    body = ('{"doc": {"elem": [' + elem + "]}}").encode()
    assert not _document._stdlib_nests(body.count(b"[") + body.count(b"{"))
    read_by_stdlib: list[bytes] = []
    real = _document._read_stdlib
    monkeypatch.setattr(_document, "_read_stdlib", lambda b: read_by_stdlib.append(b) or real(b))
    assert _document._loads_orjson(body) == real(body)
    assert read_by_stdlib == []


@needs_orjson
def test_orjson_writes_nothing_nested_as_deep_as_the_proof_needs() -> None:
    # What the shallowness proof above rests on, for the orjson installed.
    assert _document._ORJSON_WRITE_LIMITED
    assert _document._orjson_writes_no_deeper_than(_document._WRITE_LIMIT)
    assert not _document._orjson_writes_no_deeper_than(10)


def test_the_default_parser_is_orjson_when_it_is_installed() -> None:
    expected = "orjson" if HAVE_ORJSON else "json"
    assert expected == _document.JSON_PARSER
    default = _document._loads_orjson if HAVE_ORJSON else _document._loads_stdlib
    assert _document._loads is default


def test_without_orjson_the_standard_library_reads() -> None:
    code = (
        "import sys; sys.modules['orjson'] = None\n"  # `import orjson` now fails
        "from zomro_async._core import _document as d\n"
        "print(d.JSON_PARSER, d._loads.__name__)"
    )
    done = subprocess.run(  # noqa: S603 - our own code
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["json", "_loads_stdlib"]


# -- property tests ----------------------------------------------------------------

keys = st.sampled_from(["$", "$name", "elem", "id", "doc"]) | st.text(max_size=8)
clean_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=30,
)
clean_docs = st.dictionaries(keys, clean_values, max_size=6)


@st.composite
def bodies_of(draw: st.DrawFn, docs: st.SearchStrategy[Any]) -> bytes:
    """A document as some server might write it: escaped or raw, compact or indented."""
    text = json.dumps(
        {"doc": draw(docs)},
        ensure_ascii=draw(st.booleans()),
        indent=draw(st.sampled_from([None, 0, 2, "\t"])),
        separators=draw(st.sampled_from([None, (",", ":")])),
    )
    return text.encode("utf-8", "surrogatepass")  # a raw lone surrogate is bytes orjson refuses


@pytest.mark.parametrize("name", PARSERS)
@given(st.data())
def test_each_parser_reads_any_document_as_written(name: str, data: st.DataObject) -> None:
    doc = data.draw(clean_docs)
    body = data.draw(bodies_of(st.just(doc)))
    assert outcome(loader(name), body) == ("doc", fingerprint(doc))


# Values neither parser should read quietly: NaN, infinities, lone surrogates.
messy_texts = st.lists(st.sampled_from(["a", "\ud800", "\udc00", "\ud83d", "\ude00", "😀"]))
messy_keys = keys | messy_texts.map("".join)
messy_values = st.recursive(
    st.none() | st.integers() | st.floats() | st.text(max_size=8) | messy_texts.map("".join),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(messy_keys, inner, max_size=4),
    max_leaves=20,
)
messy_docs = st.dictionaries(messy_keys, messy_values, max_size=5)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A document's body with a few bytes replaced, put in or taken out."""
    body = bytearray(draw(bodies_of(clean_docs)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(body)))
        byte = draw(st.sampled_from(b'0123456789-+.eE[]{}",:\\u \x00\x80\xc3\xed\xff'))
        edit = draw(st.sampled_from(["replace", "insert", "delete"]))
        if edit == "insert" or at == len(body):
            body.insert(at, byte)
        elif edit == "replace":
            body[at] = byte
        else:
            del body[at]
    return bytes(body)


@needs_orjson
@settings(max_examples=300)
@given(bodies_of(messy_docs) | bodies_of(messy_values) | mutated() | st.binary(max_size=100))
def test_both_parsers_agree_on_any_bytes(body: bytes) -> None:
    by_stdlib, by_orjson = both(body)
    assert by_orjson == by_stdlib
