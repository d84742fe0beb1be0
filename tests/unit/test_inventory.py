"""Registering media in the inventory, on SQLite (PostgreSQL runs the same code in integration)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select, update

from models import InventoryMedia, InventoryTag
from worker.errors import SubmissionRejected
from worker.inventory import (
    UPSERT_CHUNK,
    InventoryStatus,
    MediaValidator,
    inventory_columns,
    list_media,
    register_media,
)
from worker.readers import read_items
from worker.validation import ItemValidator

ACCOUNTS = {"aliyun": {"default"}, "zego": {"default", "eu-app"}, "huawei": {"default"}}
VALIDATOR = MediaValidator(ItemValidator(ACCOUNTS))


def zego(file_id: str, created_at: str = "2026-11-01T08:00:00Z", **extra) -> dict:
    return {"action": "zego.DeleteMedia", "Vendor": "Tencent", "FileId": file_id, "created_at": created_at, **extra}


def count(sessions, model) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(model))


def refusal(sessions, media) -> list[tuple[int, str | None, str]]:
    with pytest.raises(SubmissionRejected) as caught:
        register_media(sessions, media, VALIDATOR)
    return [(p.line, p.field, p.reason) for p in caught.value.problems]


def test_media_are_stored_with_their_vendor_ids_created_time_and_tags(sessions):
    result = register_media(sessions, [
        zego("5285890813221514958", "2026-11-01T16:00:00+08:00", tags=["trial", "eu"]),
        {"action": "aliyun.DeleteStream", "VideoId": "v1", "JobId": "j1", "created_at": "2026-11-02T00:00:00Z"},
        {"action": "aliyun.DeleteMultipartUpload", "MediaId": "m1", "MediaType": "video", "created_at": "2026-11-03T00:00:00Z"},
        {"action": "huawei.DeleteAssets", "asset_id": "a1", "created_at": "2026-11-04T00:00:00Z", "tags": []},
    ], VALIDATOR)

    assert result.count == 4
    with sessions() as s:
        listed = list_media(s)
        stored = {(m.action, m.group_key, m.media_id) for m in s.scalars(select(InventoryMedia))}
    # The same (group_key, media_id) pairs a job item holds.
    assert stored == {
        ("zego.DeleteMedia", "Tencent", "5285890813221514958"), ("aliyun.DeleteStream", "v1", "j1"),
        ("aliyun.DeleteMultipartUpload", "video", "m1"), ("huawei.DeleteAssets", "", "a1"),
    }
    first = listed[0]
    assert first["FileId"] == "5285890813221514958" and first["Vendor"] == "Tencent" and first["account"] == "default"
    assert first["created_at"] == "2026-11-01T08:00:00+00:00"  # stored in UTC
    assert first["tags"] == ["eu", "trial"] and first["status"] == InventoryStatus.PRESENT.value
    assert [m["created_at"][:10] for m in listed] == ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"]


def test_registering_again_updates_the_medium_instead_of_adding_one(sessions):
    register_media(sessions, [zego("f1", tags=["trial", "eu"])], VALIDATOR)
    register_media(sessions, [zego("f1", "2026-10-01T00:00:00Z", tags=["paid"])], VALIDATOR)

    assert count(sessions, InventoryMedia) == 1
    with sessions() as s:
        (medium,) = list_media(s)
    assert medium["created_at"].startswith("2026-10-01") and medium["tags"] == ["paid"]


def test_the_same_medium_twice_in_one_registration_keeps_the_last(sessions):
    register_media(sessions, [zego("f1", tags=["a"]), zego("f2"), zego("f1", "2026-10-01T00:00:00Z", tags=["b"])], VALIDATOR)

    with sessions() as s:
        media = {m["FileId"]: m for m in list_media(s)}
    assert set(media) == {"f1", "f2"} and media["f1"]["tags"] == ["b"] and media["f1"]["created_at"].startswith("2026-10-01")


def test_a_deleted_medium_registered_again_stays_deleted(sessions):
    register_media(sessions, [zego("f1")], VALIDATOR)
    with sessions() as s:
        s.execute(update(InventoryMedia).values(status=InventoryStatus.DELETED.value, deleted_at=datetime.now(timezone.utc)))
        s.commit()

    register_media(sessions, [zego("f1", "2026-11-05T00:00:00Z")], VALIDATOR)

    with sessions() as s:
        (medium,) = list_media(s)
    assert medium["status"] == "deleted" and medium["deleted_at"] is not None


def test_every_problem_is_listed_by_line_and_field_and_nothing_is_written(sessions):
    problems = refusal(sessions, [
        zego("ok1", tags=["trial"]),
        {"action": "zego.DeleteMedia", "Vendor": "Tencent", "FileId": "f2"},
        zego("f3", "2026-11-01T08:00:00"),
        zego("f4", "yesterday"),
        zego("f5", 1700000000),
        zego("f6", tags="trial;two words"),
        zego("f7", tags={"trial": True}),
        zego("f8", account="us-app"),
        zego("f9", Extra="x"),
        zego("ok2"),
    ])

    by_line = {(line, field): reason for line, field, reason in problems}
    assert set(by_line) == {
        (2, "created_at"), (3, "created_at"), (4, "created_at"), (5, "created_at"), (6, "tags"), (7, "tags"),
        (8, "account"), (9, "Extra"),
    }
    assert "missing" in by_line[(2, "created_at")] and "no time zone" in by_line[(3, "created_at")]
    assert "not an ISO 8601 time" in by_line[(4, "created_at")] and "got int" in by_line[(5, "created_at")]
    assert "two words" in by_line[(6, "tags")] and "got dict" in by_line[(7, "tags")]
    assert count(sessions, InventoryMedia) == 0 and count(sessions, InventoryTag) == 0


def test_a_bad_line_after_thousands_of_good_ones_still_writes_nothing(sessions):
    media = [zego(f"f{i}", tags=["bulk"]) for i in range(UPSERT_CHUNK * 2 + 10)] + [zego("late", "not a time")]

    assert refusal(sessions, media) == [(UPSERT_CHUNK * 2 + 11, "created_at", "'not a time' is not an ISO 8601 time (e.g. 2026-11-01T08:00:00Z)")]
    assert count(sessions, InventoryMedia) == 0 and count(sessions, InventoryTag) == 0


def test_an_empty_registration_is_refused(sessions):
    assert refusal(sessions, []) == [(0, None, "the registration holds no media")]


def test_files_are_read_as_json_lines_or_csv_with_tags_separated_by_semicolons(sessions, tmp_path):
    jsonl = tmp_path / "media.jsonl"
    jsonl.write_text("\n".join(json.dumps(zego(f"j{i}", tags=["trial"])) for i in range(UPSERT_CHUNK + 5)) + "\n")
    csv_file = tmp_path / "media.csv"
    csv_file.write_text(
        "action,account,FileId,Vendor,asset_id,created_at,tags\n"
        "zego.DeleteMedia,eu-app,c1,Ws,,2026-11-01T00:00:00Z,trial; eu\n"
        "huawei.DeleteAssets,,,,a1,2026-11-02T00:00:00+01:00,\n"
    )

    for path, fmt in ((jsonl, "jsonl"), (csv_file, "csv")):
        with path.open("rb") as stream:
            register_media(sessions, read_items(stream, fmt, inventory_columns()), VALIDATOR)

    assert count(sessions, InventoryMedia) == UPSERT_CHUNK + 7
    with sessions() as s:
        assert len(list_media(s, tags=["trial"], limit=10_000)) == UPSERT_CHUNK + 6
        (eu,) = list_media(s, tags=["trial", "eu"])
        (asset,) = list_media(s, action="huawei.DeleteAssets")
    assert (eu["FileId"], eu["Vendor"], eu["account"]) == ("c1", "Ws", "eu-app")
    assert asset["tags"] == [] and asset["created_at"] == "2026-11-01T23:00:00+00:00"


def test_csv_lines_are_checked_like_json_lines(sessions, tmp_path):
    csv_file = tmp_path / "media.csv"
    csv_file.write_text("action,FileId,Vendor,created_at,tags\nzego.DeleteMedia,c1,Ws,,\nzego.DeleteMedia,c2,Ws,2026-11-01,a b\n")
    with csv_file.open("rb") as stream:
        problems = refusal(sessions, read_items(stream, "csv", inventory_columns()))
    assert [(line, field) for line, field, _ in problems] == [(2, "created_at"), (3, "created_at"), (3, "tags")]


def test_the_inventory_lists_by_action_account_tag_and_status(sessions):
    register_media(sessions, [
        zego("f1", tags=["trial"]), zego("f2", tags=["trial", "eu"], account="eu-app"), zego("f3"),
        {"action": "huawei.DeleteAssets", "asset_id": "a1", "created_at": "2026-11-01T00:00:00Z", "tags": ["trial"]},
    ], VALIDATOR)

    with sessions() as s:
        def ids(**filters):
            return sorted(m.get("FileId") or m["asset_id"] for m in list_media(s, **filters))

        assert ids(tags=["trial"]) == ["a1", "f1", "f2"]
        assert ids(tags=["trial", "eu"]) == ["f2"]
        assert ids(action="zego.DeleteMedia", account="default") == ["f1", "f3"]
        assert ids(status=InventoryStatus.PRESENT, limit=2) == ["a1", "f1"]
        assert ids(status=InventoryStatus.DELETED) == []
