"""Account images over aioresponses: the listing, and a copy to another region."""

from __future__ import annotations

import pytest

import zomro_async as z
from tests.conftest import FakeApi, doc, listing

REGIONS = {
    "$name": "region",
    "val": [{"$key": "7", "$": "Netherlands-1"}, {"$key": "9", "$": "Germany-1"}],
}


def image_row(
    image_id: int, name: str, region: str = "Netherlands-2", status: str = "Active", **more: str
) -> dict[str, str]:
    return {
        "id": str(image_id),
        "image_name": name,
        "image_type": "Snapshot",
        "region": region,
        "fleio_status": status,
        **more,
    }


def preview(name: str = "snap", region: str = "Netherlands-2") -> dict[str, object]:
    answer = doc(elid="5", image_name=name, region=region)
    answer["doc"]["slist"] = [REGIONS]
    return answer


async def test_list_reads_every_image_of_the_account(api: FakeApi, client: z.ZomroClient) -> None:
    api.on("image", listing(image_row(5, "snap"), image_row(6, "bk", image_type="Backup")))
    first, second = await client.images.list()
    assert (first.id, first.name, first.image_type, first.status) == (
        5,
        "snap",
        z.ImageType.SNAPSHOT,
        z.ImageStatus.ACTIVE,
    )
    assert second.image_type is z.ImageType.BACKUP
    assert [f["func"] for f in api.filter_forms] == ["image.filter"]


async def test_copy_maps_a_region_label_to_its_key_and_finds_the_copy(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on("image.copy", preview(), doc(ok={}))
    api._script["image"] = [
        listing(image_row(5, "snap"), image_row(6, "dr", "Germany-1")),
        listing(
            image_row(5, "snap"),
            image_row(6, "dr", "Germany-1"),
            image_row(7, "dr", "Netherlands-2", "Saving"),  # the right name, the wrong region
            image_row(8, "dr", "Netherlands-1", "Saving"),
        ),
    ]
    copy = await client.images.copy(5, region="netherlands-1", name="dr")
    assert (copy.id, copy.region, copy.status) == (8, "Netherlands-1", z.ImageStatus.SAVING)
    commit = api.forms[2]
    assert {k: commit[k] for k in ("func", "elid", "image_name", "region", "sok")} == {
        "func": "image.copy",
        "elid": "5",
        "image_name": "dr",
        "region": "7",
        "sok": "ok",
    }


async def test_copy_takes_a_region_key_and_defaults_to_the_images_name(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on("image.copy", preview("named in the preview"), doc(ok={}))
    source = image_row(5, "nightly")
    api._script["image"] = [
        listing(source),
        listing(source, image_row(9, "nightly", "Germany-1", "Saving")),
    ]
    copy = await client.images.copy(5, region="9")
    assert (copy.id, copy.name) == (9, "nightly")
    assert api.forms[2]["region"] == "9"
    assert api.forms[2]["image_name"] == "nightly"  # the listed name, not the preview's


async def test_a_region_not_offered_is_a_value_error_naming_those_offered(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on("image.copy", preview())
    with pytest.raises(ValueError, match="Netherlands-1, Germany-1") as caught:
        await client.images.copy(5, region="Netherlands-2")
    assert "in Netherlands-2" in str(caught.value)
    assert api.funcs() == ["image.copy"]  # the preview only: nothing was copied
    assert "sok" not in api.forms[0]


@pytest.mark.parametrize(
    ("image_id", "region", "name", "error_type"),
    [
        (0, "Germany-1", None, ValueError),
        (5, "", None, ValueError),
        (5, None, None, TypeError),
        (5, "Germany-1", "", ValueError),
        (5, "Germany-1", "x" * 101, ValueError),
    ],
)
async def test_bad_copy_input_raises_before_anything_is_sent(
    api: FakeApi,
    client: z.ZomroClient,
    image_id: int,
    region: object,
    name: object,
    error_type: type[Exception],
) -> None:
    with pytest.raises(error_type):
        await client.images.copy(image_id, region=region, name=name)  # type: ignore[arg-type]
    assert api.forms == []


async def test_a_lost_copy_answer_that_made_the_copy_is_no_duplicate(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on("image.copy", preview(), (502, "<html>bad gateway</html>"))
    source = image_row(5, "snap")
    api._script["image"] = [listing(source), listing(source, image_row(9, "dr", "GERMANY-1 "))]
    copy = await client.images.copy(5, region="Germany-1", name="dr")
    assert copy.id == 9  # the listing's spelling of the region is not the preview's
    assert [f.get("sok") for f in api.forms if f["func"] == "image.copy"] == [None, "ok"]


async def test_a_lost_copy_answer_never_shown_is_unknown_and_never_sent_again(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on("image.copy", preview(), (502, "<html>bad gateway</html>"), doc(ok={}))
    api.on("image", listing(image_row(5, "snap")))
    with pytest.raises(z.OutcomeUnknown) as caught:
        await client.images.copy(5, region="Germany-1", name="dr")
    assert caught.value.name == "dr"
    assert [f.get("sok") for f in api.forms if f["func"] == "image.copy"] == [None, "ok"]
    # It was watched for the copy's listing lag, not only the request's grace.
    assert api.funcs().count("image") > 10


async def test_two_new_images_of_the_name_in_the_region_are_no_proof(
    api: FakeApi, client: z.ZomroClient
) -> None:
    # A backup of an instance in that region, of the same name, appeared meanwhile.
    api.on("image.copy", preview(), doc(ok={}))
    source = image_row(5, "snap")
    both = [image_row(8, "dr", "Germany-1", image_type="Backup"), image_row(9, "dr", "Germany-1")]
    api._script["image"] = [listing(source), listing(source, *both)]
    with pytest.raises(z.OutcomeUnknown, match="8, 9"):
        await client.images.copy(5, region="Germany-1", name="dr")


@pytest.mark.parametrize("state", ["Killed", "Deleting"])
async def test_copying_a_failed_or_deleted_image_is_refused_before_sending(
    api: FakeApi, client: z.ZomroClient, state: str
) -> None:
    api.on("image.copy", preview())
    api.on("image", listing(image_row(5, "snap", status=state)))
    with pytest.raises(ValueError, match=state):
        await client.images.copy(5, region="Germany-1")
    assert all("sok" not in f for f in api.forms if f["func"] == "image.copy")


async def test_copying_an_unlisted_image_is_not_found(api: FakeApi, client: z.ZomroClient) -> None:
    api.on("image.copy", preview())
    api.on("image", listing(image_row(6, "other")))
    with pytest.raises(z.NotFoundError):
        await client.images.copy(5, region="Germany-1")
    assert all("sok" not in f for f in api.forms if f["func"] == "image.copy")


async def test_a_failed_copy_fails_its_wait_with_image_failed(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on("image", listing(image_row(9, "dr", "Germany-1", "Killed")))
    with pytest.raises(z.ImageFailed) as caught:
        await client.images.wait_active(9)
    assert not isinstance(caught.value, (z.SnapshotFailed, z.BackupFailed))
    assert caught.value.image.id == 9


async def test_image_delete_sends_elid_alone(api: FakeApi, client: z.ZomroClient) -> None:
    api.on("image.delete", doc(ok={}))
    await client.images.delete(9)
    assert {k: v for k, v in api.forms[0].items() if k not in ("auth", "out", "lang")} == {
        "func": "image.delete",
        "elid": "9",
    }


async def test_a_missing_image_is_not_found_in_the_account(
    api: FakeApi, client: z.ZomroClient
) -> None:
    api.on("image", listing(image_row(5, "snap")))
    with pytest.raises(z.NotFoundError, match=r"^the account has no image 9 "):
        await client.images.wait_active(9)


async def test_copy_regions_are_the_previews_offer(api: FakeApi, client: z.ZomroClient) -> None:
    api.on("image.copy", preview())
    assert await client.images.copy_regions(5) == {"7": "Netherlands-1", "9": "Germany-1"}
    assert api.forms[0]["elid"] == "5"
    assert "sok" not in api.forms[0]
