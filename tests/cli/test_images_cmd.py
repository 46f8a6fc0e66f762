"""`zomro-async images list|copy|wait` against the seeded emulator."""

from __future__ import annotations

import datetime
import json
import re
import signal
import sys
from typing import Any

import pytest
from click.testing import Result

from zomro_async._cli import _progress
from zomro_async.testing import ZomroEmulator

from ._support import DOOMED, A, AsyncSetup, B, C, Setup, invoke

SEED_1 = 5_204_214  # A's seed-1 snapshot, in Netherlands-2 like every seeded image
HOME, AWAY = "Netherlands-2", "Netherlands-1"
OFFERED = "the regions offered are Netherlands-1, Germany-1, USA-1"
COPY_TIME = 60.0  # the emulator's default seconds a copy stays Saving
LINE = re.compile(
    r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) image (\d+)(?: copy (\d+))? (\w+)(?:: (.*))?$"
)


def progress(text: str) -> list[tuple[int, int | None, str]]:
    """The progress lines: (image, copy, state); every other line is not one."""
    return [(int(m[2]), int(m[3]) if m[3] else None, m[4]) for m in _lines(text)]


def _lines(text: str) -> list[re.Match[str]]:
    return [m for line in text.splitlines() if (m := LINE.match(line))]


def table_rows(text: str) -> dict[int, list[str]]:
    """Table rows by their first cell, an image id."""
    rows = (line.split() for line in text.splitlines())
    return {int(r[0]): r for r in rows if len(r) > 1 and r[0].isdigit()}


def images_on(emulator: ZomroEmulator) -> dict[int, dict[str, str]]:
    return {int(row["id"]): row for row in emulator.images()}


def image_document(result: Result) -> dict[str, Any]:
    """The JSON document on stdout; image results have no instance."""
    doc: dict[str, Any] = json.loads(result.stdout)
    assert doc["version"] == 1
    assert doc["command"].startswith("images ")
    assert doc["error"] is None or set(doc["error"]) == {"type", "message"}
    assert isinstance(doc["resume"], list)
    for row in doc["results"]:
        assert "instance_id" not in row
        assert isinstance(row["image_id"], int)
        assert (row["error"] is None) == row["ok"]
    assert doc["ok"] == (doc["error"] is None and all(r["ok"] for r in doc["results"]))
    return doc


def no_traceback(result: Result) -> None:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


# -- list ------------------------------------------------------------------------


def test_list_shows_every_image_of_the_account(emulators: list[ZomroEmulator]) -> None:
    result = invoke("images", "list", "--emulator")

    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output
    assert result.stderr == ""
    listed = images_on(emulators[0])
    rows = table_rows(result.stdout)
    assert sorted(rows) == sorted(listed)
    assert rows[SEED_1][1:6] == ["seed-1", "snapshot", HOME, "active", rows[SEED_1][5]]
    assert [r for r in rows.values() if r[-1] == "yes"] == [
        rows[i] for i, row in listed.items() if row["protected"] == "on"
    ]
    assert set(emulators[0].calls) == {"auth", "image", "image.filter"}


def test_list_json_and_a_backup_among_them(sandbox_setup: list[Setup]) -> None:
    made: list[int] = []
    sandbox_setup.append(lambda e: made.append(e.add_backup(B, "b", active=True)))

    result = invoke("images", "list", "--emulator", "--json")

    assert result.exit_code == 0, result.output
    doc = image_document(result)
    assert doc["command"] == "images list"
    by_id = {r["image_id"]: r for r in doc["results"]}
    for row in doc["results"]:
        assert set(row) == {
            "image_id",
            "name",
            "status",
            "image_type",
            "region",
            "created_date",
            "protected",
            "ok",
            "error",
        }
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", row["created_date"])
    assert by_id[SEED_1]["image_type"] == "snapshot"
    assert (by_id[made[0]]["image_type"], by_id[made[0]]["name"]) == ("backup", "b")
    assert sum(r["protected"] for r in doc["results"]) == 1


def test_list_without_credentials_is_status_3() -> None:
    result = invoke("images", "list")
    assert result.exit_code == 3
    assert "no credentials" in result.stderr


# -- copy ------------------------------------------------------------------------


def test_copy_and_wait_awaits_the_copy_until_active(emulators: list[ZomroEmulator]) -> None:
    result = invoke("images", "copy", str(SEED_1), "--region", AWAY, "--wait", "--emulator")

    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output
    (emulator,) = emulators
    (copy,) = set(images_on(emulator)) - set(range(SEED_1, SEED_1 + 13))
    row = images_on(emulator)[copy]
    assert (row["image_name"], row["region"], row["fleio_status"]) == ("seed-1", AWAY, "Active")
    assert table_rows(result.stdout)[SEED_1] == [str(SEED_1), str(copy), "seed-1", AWAY, "active"]
    assert progress(result.stderr) == [(SEED_1, copy, "saving"), (SEED_1, copy, "active")]
    saving, active = (datetime.datetime.fromisoformat(m[1]) for m in _lines(result.stderr))
    assert (active - saving).total_seconds() >= COPY_TIME  # on the virtual clock
    assert emulator.calls["image.copy"] == 2  # the preview, then the copy
    assert len(_lines(result.stderr)) == len(result.stderr.splitlines())  # progress alone


def test_copy_without_wait_json(emulators: list[ZomroEmulator]) -> None:
    args = ["--region", "usa-1", "--name", "dr-copy", "--json"]
    result = invoke("images", "copy", str(SEED_1), *args, "--emulator")

    assert result.exit_code == 0, result.output
    doc = image_document(result)  # stdout is the document alone
    (row,) = doc["results"]
    (copy,) = [i for i, r in images_on(emulators[0]).items() if r["image_name"] == "dr-copy"]
    assert row == {
        "image_id": SEED_1,
        "copy_id": copy,
        "name": "dr-copy",
        "status": "saving",
        "image_type": "snapshot",
        "region": "USA-1",
        "created_date": row["created_date"],
        "protected": False,
        "ok": True,
        "error": None,
    }
    assert progress(result.stderr) == [(SEED_1, copy, "saving")]
    assert images_on(emulators[0])[copy]["fleio_status"] == "Saving"


def test_copy_without_wait_tells_how_to_await_it(emulators: list[ZomroEmulator]) -> None:
    result = invoke("images", "copy", str(SEED_1), "--region", AWAY, "--emulator")

    assert result.exit_code == 0, result.output
    (copy,) = set(images_on(emulators[0])) - set(range(SEED_1, SEED_1 + 13))
    assert table_rows(result.stdout)[SEED_1][-1] == "saving"
    assert f"`zomro-async images wait --emulator {copy}` awaits it" in result.stderr


@pytest.mark.parametrize("region", ["Mars", HOME])
def test_a_region_not_offered_is_a_usage_error(region: str, emulators: list[ZomroEmulator]) -> None:
    result = invoke("images", "copy", str(SEED_1), "--region", region, "--emulator")

    assert result.exit_code == 2
    no_traceback(result)
    assert f"cannot be copied to {region!r}: {OFFERED}" in result.stderr
    assert result.stdout == ""
    (emulator,) = emulators
    assert emulator.calls["image.copy"] == 1  # the preview alone
    assert len(emulator.images()) == 13  # nothing copied

    result = invoke("images", "copy", str(SEED_1), "--region", region, "--emulator", "--json")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert OFFERED in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([str(SEED_1)], "Missing option '--region'"),
        (["--region", AWAY], "Missing argument 'IMAGE'"),
        ([str(SEED_1), "--region", " "], "region must name a region"),
        ([str(SEED_1), "--region", AWAY, "--name", " "], "must not be empty"),
        ([str(SEED_1), "--region", AWAY, "--name", "x" * 101], "100"),
        (["0", "--region", AWAY], "0 is not in the range"),
    ],
)
def test_copy_usage_errors(args: list[str], message: str, emulators: list[ZomroEmulator]) -> None:
    result = invoke("images", "copy", *args, "--emulator")

    assert result.exit_code == 2
    assert message in result.stderr
    no_traceback(result)
    assert all(e.calls["image.copy"] == 0 for e in emulators)


def test_a_killed_copy_fails(sandbox_setup: list[Setup], emulators: list[ZomroEmulator]) -> None:
    sandbox_setup.append(lambda emulator: emulator.fail_copies(1))

    result = invoke("images", "copy", str(SEED_1), "--region", AWAY, "--wait", "--emulator")

    assert result.exit_code == 1
    (copy,) = set(images_on(emulators[0])) - set(range(SEED_1, SEED_1 + 13))
    assert table_rows(result.stdout)[SEED_1][-1] == "killed"
    assert re.search(
        rf"^error: image {SEED_1} copy {copy}: ImageFailed: ", result.stderr, re.MULTILINE
    )
    assert progress(result.stderr)[-1] == (SEED_1, copy, "failed")

    doc = image_document(
        invoke("images", "copy", str(SEED_1), "--region", AWAY, "--wait", "--emulator", "--json")
    )
    (row,) = doc["results"]
    assert (row["copy_id"], row["status"], row["error"]["type"]) == (copy, "killed", "ImageFailed")


def test_an_unknown_image_fails(emulators: list[ZomroEmulator]) -> None:
    result = invoke("images", "copy", "999", "--region", AWAY, "--emulator")

    assert result.exit_code == 1
    assert "error: image 999: NotFoundError" in result.stderr
    assert table_rows(result.stdout)[999] == ["999", "-", "-", AWAY, "failed"]

    doc = image_document(invoke("images", "copy", "999", "--region", AWAY, "--emulator", "--json"))
    (row,) = doc["results"]
    assert (row["image_id"], row["copy_id"], row["ok"]) == (999, None, False)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_during_the_wait_resumes_with_images_wait(
    monkeypatch: pytest.MonkeyPatch, emulators: list[ZomroEmulator]
) -> None:
    real = _progress.ProgressView.state

    def then_interrupt(self: _progress.ProgressView, key: Any, state: str, **more: Any) -> None:
        real(self, key, state, **more)
        if state == "saving":
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(_progress.ProgressView, "state", then_interrupt)

    result = invoke("images", "copy", str(SEED_1), "--region", AWAY, "--wait", "--emulator")

    assert result.exit_code == 130, result.output
    no_traceback(result)
    (copy,) = set(images_on(emulators[0])) - set(range(SEED_1, SEED_1 + 13))
    out = result.stderr[result.stderr.index("interrupted") :]
    assert out.splitlines() == [
        "interrupted: the job was cancelled",
        f"the copy {copy} of image {SEED_1} was made in {AWAY}",
        "to resume, run:",
        f"  zomro-async images wait --emulator {copy}",
    ]

    result = invoke(
        "images", "copy", str(SEED_1), "--region", AWAY, "--wait", "--emulator", "--json"
    )
    assert result.exit_code == 130
    doc = json.loads(result.stdout)
    assert doc["error"]["type"] == "KeyboardInterrupt"
    assert doc["resume"] == [f"zomro-async images wait --emulator {copy}"]
    assert f"the copy {copy} of image {SEED_1} was made in {AWAY}" in result.stderr


# -- wait ------------------------------------------------------------------------


def test_wait_for_a_copy(async_setup: list[AsyncSetup], emulators: list[ZomroEmulator]) -> None:
    copies: list[int] = []

    async def copy(emulator: ZomroEmulator) -> None:
        async with emulator.client() as client:
            copies.append((await client.images.copy(SEED_1, region=AWAY, name="dr")).id)

    async_setup.append(copy)
    invoke("images", "list", "--emulator")  # to learn the copy's id (the same in each run)
    (made,) = copies[:1]

    result = invoke("images", "wait", str(made), "--emulator")

    assert result.exit_code == 0, result.output
    assert table_rows(result.stdout)[made] == [str(made), "dr", AWAY, "active"]
    assert progress(result.stderr) == [(made, None, "saving"), (made, None, "active")]
    assert images_on(emulators[-1])[made]["fleio_status"] == "Active"


def test_wait_reports_each_item() -> None:
    result = invoke("images", "wait", str(SEED_1), "42", "--emulator", "--json")

    assert result.exit_code == 1
    doc = image_document(result)
    assert doc["command"] == "images wait"
    assert [(r["image_id"], r["status"], r["ok"]) for r in doc["results"]] == [
        (SEED_1, "active", True),
        (42, None, False),
    ]
    assert doc["results"][1]["error"]["type"] == "NotFoundError"
    assert (42, None, "failed") in progress(result.stderr)

    result = invoke("images", "wait", "5", "5", "--emulator")
    assert result.exit_code == 2
    assert "an image id is given twice" in result.stderr


# -- help ------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["list", "copy", "wait"])
def test_help_documents_the_json_schema_and_the_emulator(command: str) -> None:
    result = invoke("images", command, "--help")

    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert '"version": 1' in text
    assert '"copy_id"' in text
    assert f"{A} {B} {C}" in text
    assert str(DOOMED) in text
    assert "--password" not in text


def test_copy_help_names_the_default_timeout() -> None:
    text = " ".join(invoke("images", "copy", "--help").output.split())
    assert "default: 14400" in text
    assert "--wait" in text
    assert "--no-wait" not in text
