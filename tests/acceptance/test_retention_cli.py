"""``mediapurge inventory`` and ``mediapurge retention`` as a user types them, against a real worker and
the sandbox: register media, look at policies, dry-run one (nothing written), run it (one job per
period, exactly the due media deleted at the vendor), and the refusals."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.conftest import DEFAULT_ACCOUNTS, Stack, assert_no_traceback
from worker.sandbox import generate_media

NOW = datetime(2026, 11, 22, 6, 30, tzinfo=timezone.utc)
POLICIES = {
    "zego-trial": {"action": "zego.DeleteMedia", "account": "default", "tags": ["trial"], "older_than": "7d", "every": "1h"},
    "multipart": {"action": "aliyun.DeleteMultipartUpload", "older_than": "1d", "every": "1d", "max_items": 2},
    "paused": {"action": "huawei.DeleteAssets", "older_than": "1d", "enabled": False},
}


def with_policies(stack: Stack, policies: dict[str, Any] = POLICIES) -> dict[str, str]:
    return {**stack.env, "MEDIAPURGE_RETENTION_POLICIES": json.dumps(policies)}


def write_jsonl(path: Path, media: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(m) + "\n" for m in media), encoding="utf-8")
    return path


def snapshot(db: Path) -> dict[str, Any]:
    with sqlite3.connect(db) as connection:
        counts = {t: connection.execute(f"select count(*) from {t}").fetchone()[0]
                  for t in ("jobs", "items", "batches", "retention_runs", "inventory", "inventory_tags")}
        media = connection.execute("select media_id, status, job_id, deleted_at from inventory order by id").fetchall()
    return {"counts": counts, "media": media}


def aged(item: dict[str, Any], days: float, *tags: str) -> dict[str, Any]:
    return {**item, "created_at": (NOW - timedelta(days=days)).isoformat(), "tags": list(tags)}


@pytest.fixture(scope="module")
def registered(stack: Stack) -> dict[str, Any]:
    """Media held by the sandbox and registered in the inventory: some due for zego-trial, some not."""
    seed, items = generate_media(
        {"zego.DeleteMedia": 12, "aliyun.DeleteMultipartUpload": 5, "huawei.DeleteAssets": 3},
        accounts=DEFAULT_ACCOUNTS, rng_seed=77,
    )
    stack.sandbox.seed(seed)
    zego = [i for i in items if i["action"] == "zego.DeleteMedia"]
    multipart = [i for i in items if i["action"] == "aliyun.DeleteMultipartUpload"]
    media = (
        [aged(i, 8, "trial") for i in zego[:4]]
        + [aged(i, 6, "trial") for i in zego[4:8]]  # not old enough
        + [aged(i, 30) for i in zego[8:]]  # not tagged trial
        + [aged(i, 2 + n / 24) for n, i in enumerate(multipart)]
        + [aged(i, 30, "trial") for i in items if i["action"] == "huawei.DeleteAssets"]
    )
    path = write_jsonl(stack.workdir / "inventory.jsonl", media)
    run = stack.run("inventory", "add", path.name)
    assert run.returncode == 0 and f"{len(media)} media registered" in run.stdout, run
    return {"due": [i["FileId"] for i in zego[:4]], "multipart": [i["MediaId"] for i in multipart], "media": media}


def test_inventory_list_filters_by_tag_and_prints_json(stack: Stack, registered: dict[str, Any]) -> None:
    run = stack.run("inventory", "list", "--tag", "trial", "--action", "zego.DeleteMedia", "--json")

    assert run.returncode == 0, run
    listed = json.loads(run.stdout)
    assert len(listed) == 8 and all(m["tags"] == ["trial"] and m["status"] == "present" for m in listed)
    table = stack.run("inventory", "list", "--action", "huawei.DeleteAssets")
    assert table.returncode == 0 and "3 media" in table.stdout and "asset_id=" in table.stdout, table


def test_registering_a_csv_updates_media_already_registered(stack: Stack, registered: dict[str, Any]) -> None:
    first = next(m for m in registered["media"] if m["action"] == "huawei.DeleteAssets")
    path = stack.workdir / "update.csv"
    path.write_text(f"action,asset_id,created_at,tags\nhuawei.DeleteAssets,{first['asset_id']},{first['created_at']},trial;reviewed\n")
    before = snapshot(stack.database)["counts"]["inventory"]

    run = stack.run("inventory", "add", path.name)

    assert run.returncode == 0 and "1 media registered" in run.stdout, run
    listed = json.loads(stack.run("inventory", "list", "--tag", "reviewed", "--json").stdout)
    assert [m["asset_id"] for m in listed] == [first["asset_id"]] and listed[0]["tags"] == ["reviewed", "trial"]
    assert snapshot(stack.database)["counts"]["inventory"] == before


def test_a_dry_run_shows_the_due_media_and_writes_nothing(stack: Stack, registered: dict[str, Any]) -> None:
    before = snapshot(stack.database)

    run = stack.run("retention", "run", "zego-trial", "--dry-run", "--now", NOW.isoformat(), env=with_policies(stack))

    assert run.returncode == 0, run
    assert "period 2026-11-22T06:00:00Z: 4 media would be deleted" in run.stdout and "nothing was written" in run.stdout
    assert sorted(re.findall(r'"FileId": "([^"]+)"', run.stdout)) == sorted(registered["due"])
    capped = stack.run("retention", "run", "multipart", "--dry-run", "--now", NOW.isoformat(), env=with_policies(stack))
    assert "2 media would be deleted (of 5 due" in capped.stdout, capped
    assert snapshot(stack.database) == before


def test_a_run_deletes_exactly_the_due_media_once_per_period(stack: Stack, registered: dict[str, Any]) -> None:
    env = with_policies(stack)
    deleted_before = len(stack.sandbox.deleted())

    run = stack.run("retention", "run", "zego-trial", "--now", NOW.isoformat(), "--wait", env=env, timeout=120)

    assert run.returncode == 0, run
    match = re.search(r"period 2026-11-22T06:00:00Z: job (\d+) submitted with 4 media", run.stdout)
    assert match, run
    job_id = int(match.group(1))
    assert sorted(d["id"] for d in stack.sandbox.deleted(deleted_before)) == sorted(registered["due"])

    later_same_period = stack.run("retention", "run", "zego-trial", "--now", (NOW + timedelta(minutes=20)).isoformat(), env=env)
    assert f"zego-trial already ran for period 2026-11-22T06:00:00Z: job {job_id} (4 media)" in later_same_period.stdout
    next_period = stack.run("retention", "run", "zego-trial", "--now", (NOW + timedelta(hours=1)).isoformat(), env=env)
    assert "period 2026-11-22T07:00:00Z: nothing due, no job submitted" in next_period.stdout, next_period
    with sqlite3.connect(stack.database) as connection:
        keys = [row[0] for row in connection.execute("select idempotency_key from jobs where idempotency_key like 'retention:%'")]
        statuses = dict(connection.execute("select media_id, status from inventory where job_id = ?", (job_id,)).fetchall())
    assert keys == ["retention:zego-trial:2026-11-22T06:00:00Z"]
    assert statuses == dict.fromkeys(registered["due"], "deleted")  # the 07:00 run saw the job's results
    assert len(stack.sandbox.deleted(deleted_before)) == 4

    listing = stack.run("retention", "list", "--json", env=env)
    runs = {p["name"]: p["runs"] for p in json.loads(listing.stdout)}
    assert [(r["period"], r["job_id"], r["item_count"]) for r in runs["zego-trial"]] == [
        ("2026-11-22T07:00:00Z", None, 0), ("2026-11-22T06:00:00Z", job_id, 4)]
    table = stack.run("retention", "list", env=env)
    assert table.returncode == 0 and "zego-trial" in table.stdout and "never" in table.stdout, table


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("retention", "run", "nope"), "error: no retention policy named 'nope' (configured: multipart, paused, zego-trial)"),
        (("retention", "run", "paused"), "error: retention policy 'paused' is disabled"),
        (("retention", "run", "zego-trial", "--now", "2026-11-22T06:00:00"), "error: --now: '2026-11-22T06:00:00' has no time zone"),
        (("retention", "run", "zego-trial", "--now", "soon"), "error: --now: 'soon' is not an ISO 8601 time"),
        (("inventory", "list", "--status", "gone"), "error: --status: 'gone' is not one of present, queued"),
    ],
)
def test_refusals_are_one_line_and_write_nothing(stack: Stack, args: tuple[str, ...], message: str) -> None:
    before = snapshot(stack.database)

    run = stack.run(*args, env=with_policies(stack))

    assert run.returncode == 1 and message in run.stderr, run
    assert_no_traceback(run)
    assert snapshot(stack.database) == before


def test_a_bad_policy_in_the_settings_is_named(stack: Stack) -> None:
    env = with_policies(stack, {"p": {"action": "zego.DeleteMedia", "older_than": "7 days", "every": "1h", "tags": ["a b"]}})

    run = stack.run("retention", "list", env=env)

    assert run.returncode == 1, run
    assert "retention_policies.p.older_than: Value error, '7 days' is not a duration" in run.stderr
    assert "retention_policies.p.tags:" in run.stderr
    assert_no_traceback(run)


def test_a_bad_inventory_file_is_refused_whole(offline: Stack) -> None:
    path = write_jsonl(offline.workdir / "bad-inventory.jsonl", [
        {"action": "zego.DeleteMedia", "Vendor": "Tencent", "FileId": "1", "created_at": "2026-11-01T00:00:00Z", "tags": ["trial"]},
        {"action": "zego.DeleteMedia", "Vendor": "Tencent", "FileId": "2", "created_at": "2026-11-01T00:00:00"},
        {"action": "zego.DeleteMedia", "Vendor": "Tencent", "FileId": "3", "tags": ["trial"]},
        {"action": "zego.DeleteMedia", "Vendor": "Tencent", "FileId": "4", "created_at": "2026-11-01T00:00:00Z", "tags": 5},
    ])

    run = offline.run("inventory", "add", path.name)

    assert run.returncode == 3, run
    assert "line 2, field 'created_at': '2026-11-01T00:00:00' has no time zone" in run.stderr
    assert "line 3, field 'created_at': missing" in run.stderr
    assert "line 4, field 'tags': must be a list of strings" in run.stderr
    assert "nothing was written" in run.stderr
    assert_no_traceback(run)
    assert snapshot(offline.database)["counts"]["inventory"] == 0
