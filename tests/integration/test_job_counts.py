"""job_counts on PostgreSQL: the triggers keep them equal to counting the items, whatever writes them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select, update

from migrations.runner import upgrade
from models import Batch, Item, JobCount, make_engine, make_session_factory
from worker import audit, jobs
from worker.outcomes import CallVerdict, ItemResult, Outcome
from worker.planner import plan_job
from worker.producer import submit_job
from worker.validation import ItemValidator

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 22, 8, 0, tzinfo=timezone.utc)
VALIDATOR = ItemValidator({"huawei": {"default"}, "zego": {"default"}, "aliyun": set()})


@pytest.fixture
def sessions(pg_url):
    """Sessions on a new PostgreSQL database (tests/conftest.py's pg_url), migrated to head."""
    upgrade(pg_url)
    engine = make_engine(pg_url, pool_size=10)
    yield make_session_factory(engine)
    engine.dispose()


def _counted(sessions, job_id: int) -> dict[tuple[str, str], int]:
    with sessions() as session:
        kept = {(a, s): n for a, s, n in session.execute(
            select(JobCount.action, JobCount.status, func.sum(JobCount.n)).where(JobCount.job_id == job_id)
            .group_by(JobCount.action, JobCount.status).having(func.sum(JobCount.n) != 0))}
        real = {(a, s): n for a, s, n in session.execute(
            select(Item.action, Item.status, func.count()).where(Item.job_id == job_id).group_by(Item.action, Item.status))}
    assert kept == real
    return kept


def _job(sessions, assets: int = 200, files: int = 300) -> int:
    rows = [{"action": "huawei.DeleteAssets", "asset_id": f"a{i}"} for i in range(assets)]
    rows += [{"action": "zego.DeleteMedia", "Vendor": "Ws", "FileId": f"f{i}"} for i in range(files)]
    rows += rows[:7]  # duplicates are kept once, and counted once
    submitted = submit_job(sessions, rows, VALIDATOR, lambda job_id: None)
    with sessions() as session:
        plan_job(session, submitted.job_id)
    return submitted.job_id


def _finish_batch(sessions, batch_id: int, job_id: int) -> None:
    with sessions() as session:
        items = audit.pending_items(session, batch_id)
        outcomes = (Outcome.DELETED, Outcome.ALREADY_GONE, Outcome.FAILED, Outcome.RETRYABLE)
        verdict = CallVerdict(200, None, None, "r", items={
            item.media_id: ItemResult(outcomes[item.id % 4], None, None, "r") for item in items})
        call = audit.CallRecord(job_id, batch_id, "x", "default", NOW, 1.0)
        audit.record_call(session, call, items, verdict, max_attempts=5, now=NOW)


def test_counts_follow_submission_planning_calls_and_failures(sessions):
    job_id = _job(sessions)
    assert _counted(sessions, job_id) == {("huawei.DeleteAssets", "pending"): 200, ("zego.DeleteMedia", "pending"): 300}
    with sessions() as session:
        batch_ids = session.scalars(select(Batch.id).where(Batch.job_id == job_id)).all()
    for batch_id in batch_ids[:5]:
        _finish_batch(sessions, batch_id, job_id)
    counts = _counted(sessions, job_id)
    assert {status for _, status in counts} == {"pending", "deleted", "already_gone", "failed"}
    with sessions() as session:
        pending = session.scalars(select(Item.id).where(Item.job_id == job_id, Item.status == "pending").limit(30)).all()
        audit.fail_items(session, pending, "AccountHalted", "halted", NOW)
        # Any other writer (an operator's UPDATE, a retry of failed items) is counted the same way.
        session.execute(update(Item).where(Item.job_id == job_id, Item.status == "failed").values(status="pending"))
        session.commit()
    _counted(sessions, job_id)
    with sessions() as session:
        summary = jobs.job_status(session, job_id)
    assert summary.total == 500 and sum(summary.counts.values()) == 500


def test_concurrent_batches_keep_exact_counts(sessions):
    job_id = _job(sessions, assets=400, files=2000)
    with sessions() as session:
        batch_ids = session.scalars(select(Batch.id).where(Batch.job_id == job_id)).all()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda b: _finish_batch(sessions, b, job_id), batch_ids))
    counts = _counted(sessions, job_id)
    assert sum(counts.values()) == 2400
