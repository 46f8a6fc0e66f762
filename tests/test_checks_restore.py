"""Pure tables: the rebuild password and SSH key checks, and `instances` rows into models."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import pytest

import zomro_async as z
from zomro_async._checks import check_rebuild_password, check_ssh_key
from zomro_async._core._converter import instance_from_row
from zomro_async.testing._emulator import PASSWORD_FORBIDDEN, _password_problem

IS = z.InstanceStatus

# -- check_rebuild_password ------------------------------------------------------------

GOOD_PASSWORDS = [
    "Abcdefg1",  # 8: the shortest
    "Ab1" + "c" * 45,  # 48: the longest
    "P4ssw0rd!",
    "Zz9-_+=~`^$[]{}/\\.,:!",  # every printable ASCII mark the panel allows
    "1aA" * 5,
]

BAD_PASSWORDS = [
    pytest.param("Abcdef1", "8 to 48 characters", id="7"),
    pytest.param("Ab1" + "c" * 46, "8 to 48 characters", id="49"),
    pytest.param("", "8 to 48 characters", id="empty"),
    pytest.param("Abc defg1", "no spaces", id="space"),
    pytest.param("Abcdefg1\n", "printable ASCII", id="newline"),
    pytest.param("Abcdefg1\x00", "printable ASCII", id="nul"),
    pytest.param("Abcdéfg1", "printable ASCII", id="accent"),
    pytest.param("Abcdefg1\u00a0", "printable ASCII", id="nbsp"),
    pytest.param("Abcdefg\uff11", "printable ASCII", id="fullwidth-digit"),
    pytest.param("abcdefg1", "an upper-case letter", id="no-upper"),
    pytest.param("ABCDEFG1", "a lower-case letter", id="no-lower"),
    pytest.param("Abcdefgh", "a digit", id="no-digit"),
    *(
        pytest.param(f"Abc{ch}defg1", "must not contain", id=f"forbidden-{ch}")
        for ch in "\"#%&'()*;<>?@|"
    ),
]


@pytest.mark.parametrize("password", GOOD_PASSWORDS)
def test_passwords_the_panel_accepts(password: str) -> None:
    assert check_rebuild_password(password) == password
    assert _password_problem(password) is None  # the emulator agrees


@pytest.mark.parametrize(("password", "why"), BAD_PASSWORDS)
def test_passwords_the_panel_refuses_and_the_error_never_shows_them(
    password: str, why: str
) -> None:
    with pytest.raises(ValueError, match=why) as caught:
        check_rebuild_password(password)
    if password:
        assert password not in str(caught.value)
        assert password not in repr(caught.value)
    assert _password_problem(password) is not None  # the emulator refuses it too


def test_the_forbidden_characters_are_the_emulators() -> None:
    # The client's list and the server's (as the emulator guesses it) agree.
    for ch in PASSWORD_FORBIDDEN:
        with pytest.raises(ValueError):
            check_rebuild_password(f"Abc{ch}defg1")


def test_a_forbidden_character_is_not_named_in_the_error() -> None:
    # Naming which one is in the password would show part of it: the whole set is named.
    with pytest.raises(ValueError) as caught:
        check_rebuild_password("Abc@defg1")
    message = str(caught.value)
    assert all(ch in message for ch in "\"#%&'()*;<>?@|")


@pytest.mark.parametrize("value", [None, b"Abcdefg1", 12345678, ["Abcdefg1"], True])
def test_a_password_that_is_not_text_is_a_type_error(value: Any) -> None:
    with pytest.raises(TypeError):
        check_rebuild_password(value)


# -- check_ssh_key -----------------------------------------------------------------------

KEY = "0f0e0d0c-0b0a-4908-8706-050403020100"


@pytest.mark.parametrize(
    "value",
    [
        KEY,
        KEY.upper(),
        f"  {KEY}\n",
        KEY.replace("-", ""),
        "{" + KEY + "}",
        f"urn:uuid:{KEY}",
    ],
)
def test_an_ssh_key_uuid_is_made_canonical(value: str) -> None:
    assert check_ssh_key(value) == KEY


@pytest.mark.parametrize(
    "value",
    ["", "   ", "id_rsa.pub", "ssh-ed25519 AAAAC3Nza... me@host", KEY[:-1], KEY + "0", "5204214"],
)
def test_an_ssh_key_that_is_no_uuid_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="uuid"):
        check_ssh_key(value)


@pytest.mark.parametrize("value", [None, uuid.UUID(KEY), 5204214, b"x"])
def test_an_ssh_key_that_is_not_text_is_a_type_error(value: Any) -> None:
    with pytest.raises(TypeError):
        check_ssh_key(value)


# -- instance_from_row ---------------------------------------------------------------------

FULL_ROW = {
    "change_pricelist": "on",
    "cost": "0.15 EUR / Day",
    "createdate": "2024-07-23",
    "datacentername": "Netherlands-2",
    "id": "5203773",
    "instance_status": "active",
    "instances_os": "Ubuntu 22.04",
    "ip": "185.0.103.189",
    "ip_v6": "2a01:db8::4f:66bd",
    "item_status": "Active",
    "name": "vps-5203773",
    "os_distro": "Ubuntu",
    "os_version": "22.04 x64",
    "pricelist": "Cloud-2 (2 vCPU, 4 GB RAM, 40 GB NVMe)",
    "servername": "web-1",
    "status": "2",
}


def test_a_full_row_fills_every_field_and_keeps_the_rest_in_extra() -> None:
    instance = instance_from_row(FULL_ROW)
    assert instance == z.Instance(
        id=5203773,
        name="web-1",
        status=IS.ACTIVE,
        status_text="active",
        billing_status="Active",
        ip="185.0.103.189",
        ip_v6="2a01:db8::4f:66bd",
        region="Netherlands-2",
        os_distro="Ubuntu",
        os_version="22.04 x64",
        tariff="Cloud-2 (2 vCPU, 4 GB RAM, 40 GB NVMe)",
        cost="0.15 EUR / Day",
        created=datetime.date(2024, 7, 23),
        extra={
            "change_pricelist": "on",
            "instances_os": "Ubuntu 22.04",
            "name": "vps-5203773",
            "status": "2",
        },
    )


@pytest.mark.parametrize(
    ("row", "field", "expected"),
    [
        pytest.param({}, "name", "", id="no-name"),
        pytest.param({"name": "n"}, "name", "n", id="name-when-no-servername"),
        pytest.param({"servername": "", "name": "n"}, "name", "n", id="empty-servername"),
        pytest.param({"servername": "s", "name": "n"}, "name", "s", id="servername-wins"),
        pytest.param({}, "status", IS.UNKNOWN, id="no-status"),
        pytest.param({"instance_status": "Active"}, "status", IS.ACTIVE, id="case"),
        pytest.param({"instance_status": " STOPPED "}, "status", IS.STOPPED, id="spaces"),
        pytest.param(
            {"instance_status": "booted from iso"}, "status", IS.BOOTED_FROM_ISO, id="words"
        ),
        pytest.param({"instance_status": "verify-resize"}, "status", IS.VERIFY_RESIZE, id="dashes"),
        pytest.param({"instance_status": "shelved"}, "status", IS.UNKNOWN, id="undocumented"),
        pytest.param({"instance_status": "shelved"}, "status_text", "shelved", id="text-kept"),
        pytest.param({"instance_status": "Rebuilding"}, "status_text", "Rebuilding", id="as-sent"),
        pytest.param({"id": " 42 "}, "id", 42, id="id-spaces"),
        pytest.param(
            {"createdate": "2024-07-23 10:11:12"},
            "created",
            datetime.date(2024, 7, 23),
            id="date-time",
        ),
        pytest.param({}, "created", None, id="no-date"),
        pytest.param({}, "ip", None, id="no-ip"),
        pytest.param({"datacentername": "Germany-1"}, "region", "Germany-1", id="region"),
        pytest.param({"item_status": "Suspended"}, "billing_status", "Suspended", id="billing"),
    ],
)
def test_row_fields(row: dict[str, str], field: str, expected: object) -> None:
    assert getattr(instance_from_row({"id": "1", **row}), field) == expected


@pytest.mark.parametrize(
    ("row", "field"),
    [
        pytest.param({"name": "x"}, "id", id="no-id"),
        pytest.param({"id": "abc"}, "id", id="id-text"),
        pytest.param({"id": "-"}, "id", id="id-dash"),
        pytest.param({"id": "١٢"}, "id", id="id-arabic-digits"),
        pytest.param({"id": "1", "createdate": "23.07.2024"}, "createdate", id="date-dotted"),
        pytest.param({"id": "1", "createdate": "yesterday"}, "createdate", id="date-word"),
    ],
)
def test_a_row_that_cannot_be_read_names_its_field(row: dict[str, str], field: str) -> None:
    with pytest.raises(z.ResponseError) as caught:
        instance_from_row(row)
    assert caught.value.field == field
    assert caught.value.value == row.get(field)


@pytest.mark.parametrize("status", [s.value for s in IS if s is not IS.UNKNOWN])
def test_every_documented_status_reads_as_itself(status: str) -> None:
    instance = instance_from_row({"id": "1", "instance_status": status})
    assert instance.status.value == status
    assert instance.status.in_progress != (
        status
        in {
            "active",
            "stopped",
            "resized",
            "rescued",
            "suspended",
            "booted_from_iso",
            "image_uploading",
            "error",
        }
    )


def test_only_error_is_failed_and_nothing_is_being_deleted() -> None:
    assert [s for s in IS if s.failed] == [IS.ERROR]
    assert not any(s.being_deleted for s in IS)
    assert not IS.UNKNOWN.in_progress


def test_a_row_read_unbound_refuses_calls_and_a_bound_one_carries_its_client() -> None:
    unbound = instance_from_row({"id": "1"})
    with pytest.raises(RuntimeError, match="not bound"):
        unbound._bound()
    marker = object()
    bound = instance_from_row({"id": "1"}, marker)  # type: ignore[arg-type]
    assert bound._bound() is marker
    assert bound == unbound  # the binding takes no part in equality
    assert repr(bound) == repr(unbound)
