"""Retention policies on SQLite with a controlled clock: periods, matching, dry runs, one job per period."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, update

from models import InventoryMedia, Item, Job, RetentionRun
from worker import context
from worker.celery_config import celery_config
from worker.errors import ConfigurationError, EnqueueFailed
from worker.executor import Runtime
from worker.inventory import MediaValidator, register_media
from worker.retention import (
    PolicyDisabled,
    PolicyNotFound,
    idempotency_key,
    period_key,
    period_start,
    run_named,
)
from worker.retention_policy import format_duration, parse_duration
from worker.settings import load_settings

NOW = datetime(2026, 11, 22, 6, 30, 15, tzinfo=timezone.utc)
ACCOUNTS = {
    "zego": {"default": {"app_id": 1, "server_secret": "s"}, "eu-app": {"app_id": 2, "server_secret": "s"}},
    "aliyun": {"default": {"access_key_id": "k", "access_key_secret": "s"}},
}
POLICIES = {
    "zego-trial": {"action": "zego.DeleteMedia", "tags": ["trial"], "older_than": "7d", "every": "1h"},
    "multipart": {"action": "aliyun.DeleteMultipartUpload", "older_than": "1d", "every": "1d", "max_items": 2},
    "eu-only": {"action": "zego.DeleteMedia", "account": "eu-app", "older_than": "1h", "every": "1h"},
    "paused": {"action": "zego.DeleteMedia", "older_than": "1d", "every": "1h", "enabled": False},
}
SETTINGS = load_settings(accounts=ACCOUNTS, retention_policies=POLICIES)


def ago(**delta) -> str:
    return (NOW - timedelta(**delta)).isoformat()


def zego(file_id: str, created_at: str, tags=(), account: str = "default") -> dict:
    return {"action": "zego.DeleteMedia", "Vendor": "Tencent", "FileId": file_id, "created_at": created_at,
            "tags": list(tags), "account": account}


def multipart(media_id: str, created_at: str) -> dict:
    return {"action": "aliyun.DeleteMultipartUpload", "MediaId": media_id, "MediaType": "video", "created_at": created_at}


def register(sessions, media) -> None:
    from worker.jobs import validator_for

    register_media(sessions, media, MediaValidator(validator_for(SETTINGS)))


class Runs:
    """Runs policies as the beat task does, recording what was enqueued."""

    def __init__(self, sessions) -> None:
        self.sessions = sessions
        self.enqueued: list[int] = []

    def __call__(self, name: str, now: datetime = NOW, dry_run: bool = False):
        return run_named(SETTINGS, self.sessions, name, now, enqueue=self.enqueued.append, dry_run=dry_run)


@pytest.fixture
def runs(sessions) -> Runs:
    return Runs(sessions)


def job_media(sessions, job_id: int) -> set[str]:
    with sessions() as s:
        return set(s.scalars(select(Item.media_id).where(Item.job_id == job_id)))


def statuses(sessions) -> dict[str, str]:
    with sessions() as s:
        return dict(s.execute(select(InventoryMedia.media_id, InventoryMedia.status)).all())


def table_counts(sessions) -> dict[str, int]:
    with sessions() as s:
        return {m.__tablename__: s.scalar(select(func.count()).select_from(m)) for m in (Job, Item, RetentionRun)}


def finish(sessions, job_id: int, outcomes: dict[str, str]) -> None:
    """What the executor would have written when the job's items ended."""
    with sessions() as s:
        for media_id, status in outcomes.items():
            s.execute(update(Item).where(Item.job_id == job_id, Item.media_id == media_id).values(status=status, finished_at=NOW))
        s.commit()


# Durations and periods

@pytest.mark.parametrize(("text", "seconds"), [
    ("7d", 7 * 86400), ("24h", 86400), ("30m", 1800), ("90s", 90), ("1w", 604800), ("1h30m", 5400), (" 2D ", 172800),
])
def test_durations_parse(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)
    assert parse_duration(format_duration(parse_duration(text))) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "7", "d", "7x", "7 days", "-1d", "0s", "1.5h", "1h-30m"])
def test_bad_durations_are_refused(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_a_period_starts_at_a_multiple_of_every_since_the_epoch_in_utc():
    assert period_key(NOW, timedelta(hours=1)) == "2026-11-22T06:00:00Z"
    assert period_key(NOW, timedelta(days=1)) == "2026-11-22T00:00:00Z"
    assert period_key(NOW, timedelta(seconds=2)) == "2026-11-22T06:30:14Z"
    assert period_key(NOW, timedelta(minutes=7)) == "2026-11-22T06:24:00Z"  # 4,274,592 periods of 7 min since 1970
    in_tokyo = NOW.astimezone(timezone(timedelta(hours=9)))
    assert period_start(in_tokyo, timedelta(days=1)) == datetime(2026, 11, 22, tzinfo=timezone.utc)
    assert period_key(NOW.replace(minute=59, second=59, microsecond=999999), timedelta(hours=1)) == "2026-11-22T06:00:00Z"
    assert period_key(NOW.replace(minute=0, second=0), timedelta(hours=1)) == "2026-11-22T06:00:00Z"
    with pytest.raises(ValueError):
        period_start(NOW.replace(tzinfo=None), timedelta(hours=1))
    assert idempotency_key("zego-trial", "2026-11-22T06:00:00Z") == "retention:zego-trial:2026-11-22T06:00:00Z"


def test_policy_settings_are_checked_with_field_names():
    with pytest.raises(ConfigurationError) as caught:
        load_settings(accounts=ACCOUNTS, retention_policies={
            "p": {"action": "zego.Delete", "older_than": "a week", "every": "1.5s", "tags": ["ok", "x;y"], "max_items": 0, "color": 1},
        })
    message = str(caught.value)
    for field in ("action", "older_than", "every", "tags", "max_items", "color"):
        assert f"retention_policies.p.{field}:" in message, field
    with pytest.raises(ConfigurationError, match=r"retention_policies.p.account: no zego account named 'us-app'"):
        load_settings(accounts=ACCOUNTS, retention_policies={"p": {"action": "zego.DeleteMedia", "account": "us-app", "older_than": "1d"}})
    with pytest.raises(ConfigurationError, match="policy name 'two words'"):
        load_settings(retention_policies={"two words": {"action": "zego.DeleteMedia", "older_than": "1d"}})


def test_beat_runs_every_enabled_policy_at_its_own_period():
    schedule = celery_config(SETTINGS)["beat_schedule"]
    retention = {name: entry for name, entry in schedule.items() if entry["task"] == "mediapurge.run_retention"}
    assert retention == {
        "mediapurge-retention-eu-only": {"task": "mediapurge.run_retention", "schedule": 3600.0, "args": ("eu-only",)},
        "mediapurge-retention-multipart": {"task": "mediapurge.run_retention", "schedule": 86400.0, "args": ("multipart",)},
        "mediapurge-retention-zego-trial": {"task": "mediapurge.run_retention", "schedule": 3600.0, "args": ("zego-trial",)},
    }
    assert "mediapurge-sweep" in schedule


# Matching

def test_a_policy_takes_its_action_tags_account_and_age_and_nothing_else(sessions, runs):
    register(sessions, [
        zego("old-trial", ago(days=8), ["trial"]),
        zego("old-trial-eu", ago(days=30), ["trial", "eu"], account="eu-app"),
        zego("exactly-7d", ago(days=7), ["trial"]),
        zego("young-trial", ago(days=6, hours=23), ["trial"]),
        zego("old-paid", ago(days=8), ["paid"]),
        zego("old-untagged", ago(days=8)),
        multipart("old-multipart", ago(days=8)),
    ])

    outcome = runs("zego-trial")

    assert outcome.created and outcome.item_count == outcome.matched == 3
    assert job_media(sessions, outcome.job_id) == {"old-trial", "old-trial-eu", "exactly-7d"}
    # The only eu-app medium is in that job already: another policy does not take it twice.
    assert runs("eu-only").item_count == 0
    with sessions() as s:
        job = s.get(Job, outcome.job_id)
    assert job.idempotency_key == "retention:zego-trial:2026-11-22T06:00:00Z" and job.status == "submitted"
    assert runs.enqueued[0] == outcome.job_id
    assert {k: v for k, v in statuses(sessions).items() if v == "queued"} == {
        "old-trial": "queued", "old-trial-eu": "queued", "exactly-7d": "queued"}


def test_a_policy_naming_an_account_takes_that_account_only(sessions, runs):
    register(sessions, [zego("eu", ago(hours=2), account="eu-app"), zego("default", ago(hours=2)), zego("eu-young", ago(minutes=59), account="eu-app")])

    outcome = runs("eu-only")

    assert job_media(sessions, outcome.job_id) == {"eu"}


def test_all_tags_must_match(sessions):
    settings = load_settings(accounts=ACCOUNTS, retention_policies={
        "both": {"action": "zego.DeleteMedia", "tags": ["trial", "eu"], "older_than": "1d", "every": "1h"}})
    register(sessions, [zego("both", ago(days=2), ["eu", "trial", "x"]), zego("trial", ago(days=2), ["trial"]), zego("eu", ago(days=2), ["eu"])])

    outcome = run_named(settings, sessions, "both", NOW, enqueue=lambda job_id: None)

    assert job_media(sessions, outcome.job_id) == {"both"}


# Dry runs

def test_a_dry_run_reports_what_would_go_and_writes_nothing(sessions, runs):
    register(sessions, [zego(f"t{i}", ago(days=10 + i), ["trial"]) for i in range(15)] + [zego("young", ago(days=1), ["trial"])])
    earlier = runs("zego-trial", NOW - timedelta(days=1))  # a finished job, so a real run would reconcile
    finish(sessions, earlier.job_id, {f"t{i}": "deleted" for i in range(3)})
    register(sessions, [zego(f"n{i}", ago(days=9), ["trial"]) for i in range(2)])
    before = (table_counts(sessions), statuses(sessions))

    outcome = runs("zego-trial", dry_run=True)

    assert outcome.dry_run and not outcome.created and outcome.job_id is None
    assert outcome.matched == outcome.item_count == 2
    assert [m["FileId"] for m in outcome.sample] == ["n0", "n1"]
    assert (table_counts(sessions), statuses(sessions)) == before
    assert runs.enqueued == [earlier.job_id]


def test_a_dry_run_shows_a_sample_oldest_first_and_the_max_items_cap(sessions, runs):
    register(sessions, [multipart(f"m{i}", ago(days=2, minutes=i)) for i in range(12)])

    outcome = runs("multipart", dry_run=True)

    assert (outcome.matched, outcome.item_count) == (12, 2)
    assert [m["MediaId"] for m in outcome.sample] == ["m11", "m10"]
    assert outcome.sample[0]["created_at"] == ago(days=2, minutes=11)


def test_a_disabled_policy_only_dry_runs_and_an_unknown_one_is_named(sessions, runs):
    register(sessions, [zego("old", ago(days=2))])
    assert runs("paused", dry_run=True).item_count == 1
    with pytest.raises(PolicyDisabled, match="'paused' is disabled"):
        runs("paused")
    with pytest.raises(PolicyNotFound, match=r"no retention policy named 'nope' \(configured: eu-only, multipart, paused, zego-trial\)"):
        runs("nope")
    assert table_counts(sessions)["jobs"] == 0


# One job per period

def test_a_second_run_in_the_same_period_makes_nothing(sessions, runs):
    register(sessions, [zego("a", ago(days=8), ["trial"])])
    first = runs("zego-trial")
    register(sessions, [zego("b", ago(days=8), ["trial"])])  # due now, but this period already ran

    second = runs("zego-trial", NOW + timedelta(minutes=29))

    assert not second.created and second.job_id == first.job_id and second.item_count == 1
    assert table_counts(sessions) == {"jobs": 1, "items": 1, "retention_runs": 1}
    assert runs.enqueued == [first.job_id]
    third = runs("zego-trial", NOW + timedelta(minutes=30))  # 07:00:15, the next period
    assert third.created and job_media(sessions, third.job_id) == {"b"} and third.period == "2026-11-22T07:00:00Z"


def test_a_run_whose_job_was_saved_before_a_crash_records_that_job(sessions, runs):
    register(sessions, [zego("a", ago(days=8), ["trial"])])
    crashed = runs("zego-trial")
    with sessions() as s:  # as if the process died after the job was saved, before the run was recorded
        s.query(RetentionRun).delete()
        s.execute(update(InventoryMedia).values(status="present", job_id=None))
        s.commit()

    again = runs("zego-trial", NOW + timedelta(minutes=5))

    assert again.created and again.job_id == crashed.job_id and table_counts(sessions)["jobs"] == 1
    assert statuses(sessions) == {"a": "queued"}


def test_a_period_with_nothing_due_is_recorded_without_a_job(sessions, runs):
    register(sessions, [zego("young", ago(days=1), ["trial"])])

    outcome = runs("zego-trial")

    assert outcome.created and outcome.job_id is None and outcome.item_count == 0
    assert table_counts(sessions) == {"jobs": 0, "items": 0, "retention_runs": 1}


def test_media_in_a_running_job_are_not_taken_again(sessions, runs):
    register(sessions, [zego("a", ago(days=8), ["trial"])])
    runs("zego-trial")

    later = runs("zego-trial", NOW + timedelta(hours=1))

    assert later.created and later.job_id is None and table_counts(sessions)["jobs"] == 1


def test_finished_jobs_mark_media_gone_and_failed_media_go_again(sessions, runs):
    register(sessions, [zego(name, ago(days=8), ["trial"]) for name in ("deleted", "gone", "failed", "pending")])
    first = runs("zego-trial")
    finish(sessions, first.job_id, {"deleted": "deleted", "gone": "already_gone", "failed": "failed"})

    second = runs("zego-trial", NOW + timedelta(hours=1))

    assert job_media(sessions, second.job_id) == {"failed"}
    with sessions() as s:
        media = {m.media_id: m for m in s.scalars(select(InventoryMedia))}
    assert media["deleted"].status == "deleted" and media["deleted"].deleted_at == NOW
    assert media["gone"].status == "already_gone" and media["gone"].deleted_at == NOW
    assert media["pending"].status == "queued" and media["pending"].job_id == first.job_id
    assert media["failed"].status == "queued" and media["failed"].job_id == second.job_id and media["failed"].deleted_at is None


def test_max_items_takes_the_oldest_and_leaves_the_rest_to_the_next_period(sessions, runs):
    register(sessions, [multipart(f"m{i}", ago(days=2, minutes=i)) for i in range(5)])

    days = [runs("multipart", NOW + timedelta(days=d)) for d in range(4)]

    assert [job_media(sessions, o.job_id) if o.job_id else set() for o in days] == [{"m4", "m3"}, {"m2", "m1"}, {"m0"}, set()]
    assert [o.matched for o in days] == [5, 3, 1, 0]
    assert [o.period[:10] for o in days] == ["2026-11-22", "2026-11-23", "2026-11-24", "2026-11-25"]


def test_the_task_reads_the_runtime_clock(sessions, monkeypatch):
    """mediapurge.run_retention as beat sends it, with the runtime's clock moved by the test."""
    import tasks.retention

    clock = [NOW]
    enqueued: list[int] = []
    runtime = Runtime(settings=SETTINGS, sessions=sessions, http=None, limiter=None, dispatch=lambda batch_id: None,
                      clock=lambda: clock[0])
    monkeypatch.setattr(context, "_runtime", (os.getpid(), runtime))
    monkeypatch.setattr(tasks.retention.plan_job, "delay", enqueued.append)
    register(sessions, [zego("a", ago(days=6, hours=23, minutes=45), ["trial"])])

    fired = []
    for minutes in (0, 20, 40, 60, 80):  # beat every 20 minutes; the policy's period is an hour
        clock[0] = NOW + timedelta(minutes=minutes)
        fired.append(tasks.retention.run_retention.run("zego-trial"))

    assert [(f["period"][11:16], f["created"], f["item_count"]) for f in fired] == [
        ("06:00", True, 0), ("06:00", False, 0), ("07:00", True, 1), ("07:00", False, 1), ("07:00", False, 1)]
    assert enqueued == [fired[2]["job_id"]]
    assert tasks.retention.run_retention.run("paused")["skipped"].startswith("retention policy 'paused' is disabled")


def test_a_run_whose_job_could_not_be_queued_is_still_recorded(sessions):
    """The sweeper plans the saved job once the broker is back; the next period must not take its media again."""
    register(sessions, [zego("a", ago(days=8), ["trial"])])

    def broker_down(job_id: int) -> None:
        raise ConnectionError("broker unreachable")

    with pytest.raises(EnqueueFailed):
        run_named(SETTINGS, sessions, "zego-trial", NOW, enqueue=broker_down)

    assert table_counts(sessions) == {"jobs": 1, "items": 1, "retention_runs": 1}
    assert statuses(sessions) == {"a": "queued"}
    assert run_named(SETTINGS, sessions, "zego-trial", NOW + timedelta(hours=1), enqueue=broker_down).job_id is None
