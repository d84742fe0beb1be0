"""Retention purges on real services: concurrent runs of one period on PostgreSQL make one job, and two
Celery beats firing a policy every 2 s delete exactly the media it names at the sandbox."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from migrations.runner import upgrade
from models import InventoryMedia, Item, Job, RetentionRun, make_engine, make_session_factory
from worker import inventory
from worker.retention import run_named
from worker.sandbox import generate_media
from worker.settings import load_settings

pytestmark = pytest.mark.integration

DEFAULT_ONLY = {"aliyun": {"default": "LTAItest"}, "zego": {"default": "1234567890"}, "huawei": {"default": "proj01"}}
POLICY = {"action": "zego.DeleteMedia", "account": "default", "tags": ["trial"], "older_than": "1d", "every": "2s"}


def count(sessions, model, *where) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def run_at_once(settings, sessions, now: datetime, runs: int):
    """``runs`` threads released together, each running the policy for ``now``."""
    enqueued: list[int] = []
    outcomes, errors = [], []
    barrier = threading.Barrier(runs)

    def run() -> None:
        barrier.wait()
        try:
            outcomes.append(run_named(settings, sessions, "trial", now, enqueue=enqueued.append))
        except Exception as exc:  # noqa: BLE001 - reported by the caller with the others
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return outcomes, errors, enqueued


def test_concurrent_runs_of_one_period_make_one_job(pg_url):
    """Four runs of the same period at once (four beats, or one firing four times), five periods over."""
    upgrade(pg_url)
    engine = make_engine(pg_url, pool_size=8)
    sessions = make_session_factory(engine)
    settings = load_settings(
        accounts={"zego": {"default": {"app_id": 1, "server_secret": "s"}}},
        retention_policies={"trial": {**POLICY, "every": "1h"}},
    )
    start = datetime(2026, 11, 22, 6, 0, 1, tzinfo=timezone.utc)
    try:
        for period in range(5):
            now = start + timedelta(hours=period)
            media = [
                {"action": "zego.DeleteMedia", "Vendor": "Ws", "FileId": f"p{period}-{i}", "tags": ["trial"],
                 "created_at": (now - timedelta(days=2)).isoformat()}
                for i in range(1_500)
            ]
            inventory.register(media, settings=settings, sessions=sessions)

            outcomes, errors, enqueued = run_at_once(settings, sessions, now, runs=4)

            assert errors == [] and len(outcomes) == 4
            assert sum(o.created for o in outcomes) == 1, outcomes
            (job_id,) = {o.job_id for o in outcomes}
            assert set(enqueued) == {job_id}
            with sessions() as s:
                job = s.get(Job, job_id)
                in_job = set(s.scalars(select(Item.media_id).where(Item.job_id == job_id)))
                queued = set(s.scalars(select(InventoryMedia.media_id).where(InventoryMedia.job_id == job_id)))
            assert job.idempotency_key == f"retention:trial:{now:%Y-%m-%dT%H}:00:00Z"
            assert in_job == queued == {m["FileId"] for m in media}
        assert count(sessions, Job) == 5 and count(sessions, RetentionRun) == 5
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def stack_env() -> dict[str, str]:
    return {"MEDIAPURGE_RETENTION_POLICIES": json.dumps({"zego-trial": POLICY})}


def wait_until(condition, timeout: float, what: str, stack) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            logs = "\n".join(w.log_path.read_text(errors="replace")[-3000:] for w in stack.workers)
            raise AssertionError(f"{what} did not happen; worker logs:\n{logs}")
        time.sleep(0.25)


def test_two_beats_make_one_job_that_deletes_exactly_the_due_media(stack):
    seed, items = generate_media({"zego.DeleteMedia": 90, "huawei.DeleteAssets": 20}, accounts=DEFAULT_ONLY, rng_seed=5)
    stack.sandbox.seed(seed)
    now = datetime.now(timezone.utc)
    old, young = (now - timedelta(days=10)).isoformat(), (now - timedelta(hours=1)).isoformat()
    zego = [item for item in items if item["action"] == "zego.DeleteMedia"]
    due = zego[0::3]
    registered = (
        [{**item, "created_at": old, "tags": ["trial", "eu"]} for item in due]
        + [{**item, "created_at": old} for item in zego[1::3]]  # not tagged trial
        + [{**item, "created_at": young, "tags": ["trial"]} for item in zego[2::3]]  # not old enough
        + [{**item, "created_at": old, "tags": ["trial"]} for item in items if item["action"] != "zego.DeleteMedia"]
    )
    inventory.register(registered, settings=stack.settings, sessions=stack.sessions)

    stack.add_worker("beat-a", beat=True)
    stack.add_worker("beat-b", beat=True)  # a second beat by mistake: every firing is sent twice
    due_ids = {item["FileId"] for item in due}

    def gone() -> bool:
        return count(stack.sessions, InventoryMedia, InventoryMedia.status == "deleted") == len(due)

    wait_until(gone, 120, "the due media marked deleted", stack)
    # A few more periods: every firing finds nothing due, or its period already run.
    runs_then = count(stack.sessions, RetentionRun)
    wait_until(lambda: count(stack.sessions, RetentionRun) >= runs_then + 3, 60, "three more periods", stack)

    with stack.sessions() as s:
        jobs = s.scalars(select(Job).where(Job.idempotency_key.like("retention:%"))).all()
        runs = s.scalars(select(RetentionRun).order_by(RetentionRun.period)).all()
        statuses = Counter(s.scalars(select(InventoryMedia.status)))
    assert len(jobs) == 1 and jobs[0].status == "completed" and jobs[0].item_count == len(due)
    assert [run.job_id for run in runs if run.job_id is not None] == [jobs[0].id]
    assert len({run.period for run in runs}) == len(runs)
    assert statuses == {"deleted": len(due), "present": len(registered) - len(due)}
    deleted = stack.sandbox.deleted()
    assert {d["id"] for d in deleted} == due_ids and len(deleted) == len(due_ids)
    assert stack.sandbox.stats()["repeated_deletions"] == 0
    # Both beats fired into the same periods: more tasks ran than periods were recorded.
    logs = "".join(w.log_path.read_text(errors="replace") for w in stack.workers)
    succeeded = sum(1 for line in logs.splitlines() if "mediapurge.run_retention[" in line and "succeeded" in line)
    assert succeeded > len(runs), (succeeded, len(runs))
