"""Keeping secrets out of logs and errors: every spelling of every secret the client sent."""

from __future__ import annotations

import collections
import html
import json
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote, quote_plus

from .._exceptions import ApiError, TransportError, ZomroError

SECRET_FIELDS = frozenset({"auth", "password", "authinfo", "key", "qrcode"})
REDACTED = "***"
# Shorter values would also match ordinary text; no real secret is that short.
_MIN_SECRET = 4
# Session ids a long-lived client keeps for scrubbing: a server can only echo
# one it was sent lately, and one login an hour must not grow a set forever.
_SESSIONS_KEPT = 8
_HEX_ESCAPE = re.compile(r"%[0-9A-F]{2}")


def redact_fields(fields: Mapping[str, str]) -> dict[str, str]:
    """`fields` with every secret value replaced, for logs."""
    return {k: (REDACTED if k in SECRET_FIELDS else v) for k, v in fields.items()}


def spellings(secret: str) -> set[str]:
    """`secret` as the SDK sent it and as a server may echo it: raw, form-encoded
    (`P%40ss+w0rd`), percent-encoded, either with lower-case hex, and JSON- and
    HTML-escaped.
    """
    encoded = {quote_plus(secret, safe=""), quote(secret, safe="")}
    encoded |= {_HEX_ESCAPE.sub(lambda m: m.group(0).lower(), e) for e in encoded}
    escaped = {json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    escaped.add(html.escape(secret))
    return {s for s in {secret, *encoded, *escaped} if len(s) >= _MIN_SECRET}


class Secrets:
    """The secrets one client holds (a token, a password, its latest session ids)."""

    def __init__(self, values: Iterable[str | None] = ()) -> None:
        self._fixed: set[str] = set()
        self._sessions: collections.deque[set[str]] = collections.deque(maxlen=_SESSIONS_KEPT)
        for value in values:
            if value:
                self._fixed |= spellings(value)
        self._all = sorted(self._fixed, key=len, reverse=True)

    def add_session(self, session_id: str) -> None:
        """Remember a session id the API handed out (only the latest few are kept)."""
        self._sessions.append(spellings(session_id))
        known = self._fixed.union(*self._sessions)
        # Longest first, so a spelling that contains another is replaced whole.
        self._all = sorted(known, key=len, reverse=True)

    def spellings(self) -> set[str]:
        """Every spelling scrubbed now (for tests that check nothing leaked)."""
        return set(self._all)

    def scrub(self, text: str) -> str:
        """`text` with every spelling of every secret replaced by `***`."""
        for spelling in self._all:
            if spelling in text:
                text = text.replace(spelling, REDACTED)
        return text

    def scrub_error(self, error: ZomroError) -> ZomroError:
        """`error` with secrets replaced in its message, details, params and excerpt."""
        clean = self.scrub
        if isinstance(error, ApiError):
            error.message = clean(error.message)
            error.detail = clean(error.detail)
            # The server's own words too: an echo can land in `$type` or `$object`.
            error.type = clean(error.type)
            error.object = clean(error.object)
            error.params = {k: clean(v) for k, v in error.params.items()}
        if isinstance(error, TransportError):
            error.body_excerpt = clean(error.body_excerpt)
        error.args = tuple(clean(a) if isinstance(a, str) else a for a in error.args)
        return error
