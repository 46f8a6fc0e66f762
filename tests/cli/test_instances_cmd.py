"""`zomro-async instances list|wait` against the seeded emulator."""

from __future__ import annotations

import re
import signal
import sys

import pytest

import zomro_async as z
from zomro_async.testing import ZomroEmulator

from ._support import DOOMED, A, B, C, Setup, document, invoke

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ instance (\d+) (\w+)(?:: (.*))?$")
INSTANCE_KEYS = {
    "instance_id",
    "name",
    "status",
    "region",
    "ip",
    "ip_v6",
    "tariff",
    "ok",
    "error",
}


def progress(text: str) -> list[tuple[int, str]]:
    """The progress lines: (instance, state)."""
    return [(int(m[1]), m[2]) for m in map(LINE.match, text.splitlines()) if m]


def table_rows(text: str) -> dict[int, list[str]]:
    """Table rows by instance id (the first cell)."""
    rows = (line.split() for line in text.splitlines())
    return {int(r[0]): r for r in rows if len(r) > 2 and r[0].isdigit()}


# -- list ------------------------------------------------------------------------


def test_list_shows_every_instance_of_the_account(emulators: list[ZomroEmulator]) -> None:
    result = invoke("instances", "list", "--emulator")

    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output
    rows = table_rows(result.stdout)
    assert sorted(rows) == [A, B, C, DOOMED]
    for instance_id, row in rows.items():
        assert row[1:5] == [f"vps-{instance_id}", "active", "Netherlands-2", row[4]]
        assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", row[4])
        assert row[5].startswith("Cloud-")  # the tariff
    # the stored filter is cleared before the listing, so none hides an instance
    assert set(emulators[0].calls) == {"auth", "instances", "instances.filter"}


def test_list_json(emulators: list[ZomroEmulator]) -> None:
    result = invoke("instances", "list", "--emulator", "--json")

    assert result.exit_code == 0, result.output
    doc = document(result)
    assert (doc["command"], doc["ok"], doc["error"]) == ("instances list", True, None)
    assert [r["instance_id"] for r in doc["results"]] == [A, B, C, DOOMED]
    for row in doc["results"]:
        assert set(row) == INSTANCE_KEYS
        assert (row["name"], row["status"], row["ok"]) == (
            f"vps-{row['instance_id']}",
            "active",
            True,
        )
        assert row["ip_v6"].startswith("2a01:")


def test_list_shows_what_a_panel_filter_would_hide(
    emulators: list[ZomroEmulator], sandbox_setup: list[Setup]
) -> None:
    sandbox_setup.append(lambda e: e.set_stored_filter("instances.filter", name="nothing-like"))
    sandbox_setup.append(lambda e: e.set_instance_status(B, "stopped"))

    doc = document(invoke("instances", "list", "--emulator", "--json"))

    assert [r["instance_id"] for r in doc["results"]] == [A, B, C, DOOMED]
    assert [r["status"] for r in doc["results"]] == ["active", "stopped", "active", "active"]


def test_a_listing_the_api_refuses_is_a_top_level_error(monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(self: z.InstancesManager) -> list[z.Instance]:
        raise z.ApiError("Insufficient privileges", type="access", func="instances")

    monkeypatch.setattr(z.InstancesManager, "list", refuse)
    result = invoke("instances", "list", "--emulator")
    assert result.exit_code == 1
    assert (
        "error: cannot list the instances of the account: ApiError: Insufficient privileges"
        in result.stderr
    )
    assert not result.stdout

    doc = document(invoke("instances", "list", "--emulator", "--json"))
    assert (doc["ok"], doc["results"]) == (False, [])
    assert doc["error"]["type"] == "ApiError"
    assert doc["error"]["message"].startswith("Insufficient privileges")


# -- wait ------------------------------------------------------------------------


def test_wait_settled_is_the_default(
    emulators: list[ZomroEmulator], sandbox_setup: list[Setup]
) -> None:
    sandbox_setup.append(lambda e: e.set_instance_status(A, "stopping", then="stopped", after=30))
    sandbox_setup.append(lambda e: e.set_instance_status(B, "rebooting", then="active", after=50))

    result = invoke("instances", "wait", str(A), str(B), str(C), "--emulator")

    assert result.exit_code == 0, result.output
    rows = table_rows(result.stdout)
    assert {i: r[1:] for i, r in rows.items()} == {
        A: [f"vps-{A}", "stopped"],
        B: [f"vps-{B}", "active"],
        C: [f"vps-{C}", "active"],
    }
    seen = progress(result.stderr)
    assert [s for i, s in seen if i == A] == ["stopping", "stopped"]
    assert [s for i, s in seen if i == B] == ["rebooting", "active"]
    assert [s for i, s in seen if i == C] == ["active"]


def test_wait_for_a_status_json(emulators: list[ZomroEmulator], sandbox_setup: list[Setup]) -> None:
    sandbox_setup.append(lambda e: e.set_instance_status(A, "stopping", then="stopped", after=40))

    result = invoke("instances", "wait", str(A), "--status", "STOPPED", "--emulator", "--json")

    assert result.exit_code == 0, result.output
    doc = document(result)
    assert doc["command"] == "instances wait"
    (row,) = doc["results"]
    assert set(row) == INSTANCE_KEYS
    assert (row["instance_id"], row["status"], row["ok"]) == (A, "stopped", True)
    assert not progress(result.stdout)  # progress goes to stderr with --json
    assert (A, "stopped") in progress(result.stderr)


def test_every_wait_shares_one_listing_per_tick(
    emulators: list[ZomroEmulator], sandbox_setup: list[Setup]
) -> None:
    for instance_id in (A, B, C, DOOMED):
        sandbox_setup.append(
            lambda e, i=instance_id: e.set_instance_status(i, "building", then="active", after=120)
        )

    assert invoke("instances", "wait", str(A), "--emulator").exit_code == 0
    assert (
        invoke("instances", "wait", str(A), str(B), str(C), str(DOOMED), "--emulator").exit_code
        == 0
    )

    one, four = (e.calls["instances"] for e in emulators)
    assert one > 3  # it did poll
    assert four <= one + 1  # not four times as many


def test_wait_fails_on_error_and_timeout_and_unknown_ids(
    emulators: list[ZomroEmulator], sandbox_setup: list[Setup]
) -> None:
    sandbox_setup.append(lambda e: e.set_instance_status(A, "rebuilding", then="error", after=20))
    sandbox_setup.append(lambda e: e.set_instance_status(B, "resizing"))

    result = invoke(
        "instances", "wait", str(A), str(B), str(C), "999", "--timeout", "60", "--emulator"
    )

    assert result.exit_code == 1
    rows = table_rows(result.stdout)
    assert [rows[i][-1] for i in (A, B, C, 999)] == ["error", "resizing", "active", "failed"]
    assert f"error: instance {A}: InstanceFailed: instance {A} is error" in result.stderr
    assert f"error: instance {B}: WaitTimeout:" in result.stderr
    assert "error: instance 999: NotFoundError" in result.stderr
    assert f"the emulator's instances are {A} {B} {C} {DOOMED}" in result.stderr
    failed = [(i, s) for i, s in progress(result.stderr) if s == "failed"]
    assert sorted(failed) == [(999, "failed"), (A, "failed"), (B, "failed")]

    doc = document(
        invoke("instances", "wait", str(A), str(C), "--timeout", "60", "--emulator", "--json")
    )
    bad, good = doc["results"]
    assert (bad["status"], bad["ok"], bad["error"]["type"]) == ("error", False, "InstanceFailed")
    assert (good["status"], good["ok"]) == ("active", True)
    assert (doc["ok"], doc["error"]) == (False, None)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_tells_the_command_that_resumes_the_waits(
    monkeypatch: pytest.MonkeyPatch, sandbox_setup: list[Setup]
) -> None:
    sandbox_setup.append(lambda e: e.set_instance_status(A, "stopping", then="stopped", after=30))
    real = z.InstancesManager.wait_status

    async def interrupted(self: z.InstancesManager, *args: object, **kwargs: object) -> z.Instance:
        signal.raise_signal(signal.SIGINT)
        return await real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(z.InstancesManager, "wait_status", interrupted)
    result = invoke("instances", "wait", str(A), str(B), "--status", "stopped", "--emulator")

    assert result.exit_code == 130
    assert result.stdout == ""
    assert result.stderr.splitlines()[-3:] == [
        "interrupted: the job was cancelled",
        "to resume, run:",
        f"  zomro-async instances wait --status stopped --emulator {A} {B}",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([str(A), str(A)], "an instance id is given twice"),
        ([str(A), "--status", "stopped", "--settled"], "not both"),
        ([str(A), "--status", "sleeping"], "'sleeping' is not one of"),
        ([str(A), "--status", "unknown"], "'unknown' is not one of"),
        ([], "Missing argument"),
        (["0"], "0 is not in the range"),
    ],
)
def test_wait_usage_errors(args: list[str], message: str) -> None:
    result = invoke("instances", "wait", *args, "--emulator")

    assert result.exit_code == 2
    assert message in result.stderr


@pytest.mark.parametrize("command", ["list", "wait"])
def test_help_documents_the_json_and_the_emulator(command: str) -> None:
    result = invoke("instances", command, "--help")

    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert '"version": 1' in text
    assert '"region", "ip", "ip_v6" and "tariff"' in text
    assert f"{A} {B} {C}" in text
