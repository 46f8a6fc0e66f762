"""Argument checks, made before anything is sent: for the client, every resource and the CLI."""

from __future__ import annotations

import inspect
import ipaddress
import math
import unicodedata
import uuid
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")
C = TypeVar("C", bound=Callable[..., Any])

MAX_NAME_LENGTH = 255
MAX_ID = 2**63 - 1  # the API's ids are signed 64-bit
_LOOPBACK_NAMES = frozenset({"localhost"})


def check_id(value: object, what: str) -> int:
    """`value` as an API id: a positive int (a bool is not one).

    Raises `TypeError` or `ValueError` otherwise.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not 0 < value <= MAX_ID:
        raise ValueError(f"{what} must be a positive integer, got {value}")
    return value


def check_name(
    value: object, what: str = "a snapshot name", *, limit: int = MAX_NAME_LENGTH
) -> str:
    """`value` as a name: non-empty, at most `limit` characters, no control characters."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{what} must not be empty")
    if len(value) > limit:
        raise ValueError(f"{what} is at most {limit} characters, got {len(value)}")
    if any(unicodedata.category(ch) in {"Cc", "Cs"} for ch in value):
        raise ValueError(f"{what} must not contain control characters")
    return value


# The panel's rules for a rebuild's root password (Zomro's page asks for less).
_PASSWORD_LENGTH = (8, 48)
_PASSWORD_FORBIDDEN = frozenset("\"#%&'()*;<>?@|")


def check_rebuild_password(value: object) -> str:
    """`value` as a rebuild's root password, by the panel's rules; the errors
    never show it.
    """
    if not isinstance(value, str):
        raise TypeError(f"password must be a str, not {type(value).__name__}")
    low, high = _PASSWORD_LENGTH
    if not low <= len(value) <= high:
        raise ValueError(f"password must be {low} to {high} characters, got {len(value)}")
    if not all(value.isascii() and ch.isprintable() for ch in value) or " " in value:
        raise ValueError("password must be printable ASCII with no spaces")
    # Which of them it holds is not said: that would show part of the password.
    if _PASSWORD_FORBIDDEN.intersection(value):
        raise ValueError(
            "password must not contain any of " + " ".join(sorted(_PASSWORD_FORBIDDEN))
        )
    for kind, test in (
        ("an upper-case letter", str.isupper),
        ("a lower-case letter", str.islower),
        ("a digit", str.isdigit),
    ):
        if not any(test(ch) for ch in value):
            raise ValueError(f"password must contain {kind}")
    return value


def check_ssh_key(value: object) -> str:
    """`value` as an SSH key's uuid (from the account's key list), canonical."""
    if not isinstance(value, str):
        raise TypeError(f"ssh_key must be a str (the key's uuid), not {type(value).__name__}")
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        raise ValueError("ssh_key must be the uuid of one of the account's SSH keys") from None


def check_timeout(value: object, what: str = "timeout") -> float:
    """`value` as seconds to wait: a finite number, zero or more."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, not {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} must be a finite number of seconds >= 0, got {value}")
    return float(value)


def check_positive_seconds(value: object, what: str) -> float:
    """`value` as seconds more than zero (aiohttp reads 0 as "no timeout at all")."""
    seconds = check_timeout(value, what)
    if seconds <= 0:
        raise ValueError(f"{what} must be more than 0 seconds")
    return seconds


def check_concurrency(value: object) -> int | None:
    """`value` as a bulk job's concurrency: None (no limit) or an int of at least 1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("concurrency must be an int or None")
    if value < 1:
        raise ValueError("concurrency must be at least 1")
    return value


def check_callback(value: C | None, what: str) -> C | None:
    """`value` as a plain callback, or None.

    The SDK calls hooks from inside its shared loops and cannot await them: an
    `async def` would be called, its coroutine never run. Refuse it at the call.
    """
    if value is None:
        return None
    if not callable(value):
        raise TypeError(f"{what} must be callable, not {type(value).__name__}")
    if inspect.iscoroutinefunction(value) or inspect.iscoroutinefunction(
        getattr(value, "__call__", None)  # noqa: B004 - an object with an async __call__
    ):
        raise TypeError(
            f"{what} must be a plain function; an async def is never awaited here "
            "(schedule your coroutine from a plain function, or iterate the job's events)"
        )
    return value


def unique(items: Iterable[T], what: str) -> list[T]:
    """`items` as a list, or `ValueError` naming the first duplicate."""
    seen: set[T] = set()
    result = []
    for value in items:
        if value in seen:
            raise ValueError(f"duplicate {what} {value!r}")
        seen.add(value)
        result.append(value)
    return result


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine: `localhost`, 127.0.0.0/8 or ::1."""
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(url: object) -> str:
    """`url` if it is safe to send credentials to: https, or http on a loopback host only."""
    if not isinstance(url, str):
        raise TypeError(f"base_url must be a str, not {type(url).__name__}")
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        raise ValueError("base_url must not carry credentials; pass token= or username=/password=")
    if parts.query or parts.fragment:
        raise ValueError("base_url must not carry a query or a fragment")
    host = parts.hostname or ""
    if not host:
        raise ValueError(f"base_url has no host: {url!r}")
    try:
        parts.port  # noqa: B018 - reading it checks it
    except ValueError:
        raise ValueError(f"base_url has no valid port: {url!r}") from None
    if parts.scheme == "https":
        return url
    if parts.scheme == "http" and is_loopback(host):
        return url
    raise ValueError(
        f"refusing {parts.scheme or 'a schemeless'} URL {url!r}: credentials go over https, "
        "or plain http to a loopback host (127.0.0.1, localhost, ::1) only"
    )


def check_credentials(token: object, username: object, password: object) -> None:
    """One way to authenticate: a token, or a username with a password; no empty values."""
    for name, value in (("token", token), ("username", username), ("password", password)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name} must be a str")
        if value is not None and not value:
            raise ValueError(f"{name} must not be empty")
    if token is not None and (username is not None or password is not None):
        raise ValueError("pass either token= or username= and password=, not both")
    if token is None and (username is None or password is None):
        raise ValueError("pass token=, or both username= and password=")
