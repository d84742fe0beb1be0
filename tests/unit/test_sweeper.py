"""The sweeper on SQLite: what it finds lost, and what it leaves alone."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from models import Batch, Job
from models.types import utcnow
from worker.planner import plan_job
from worker.producer import submit_job
from worker.refs import BatchRef, batch_refs
from worker.sweeper import SweepPolicy, sweep
from worker.validation import ItemValidator

POLICY = SweepPolicy(grace=timedelta(seconds=60), queue_threshold=10)


def new_job(sessions, n=25, plan=True):
    items = [{"action": "huawei.DeleteAssets", "asset_id": f"a{i}"} for i in range(n)]
    job_id = submit_job(sessions, items, ItemValidator({"huawei": {"default"}}), lambda j: None).job_id
    if plan:
        with sessions() as s:
            plan_job(s, job_id)
    return job_id


def run(sessions, now, queue_length=0):
    plans, batches = [], []
    with sessions() as s:
        result = sweep(s, now, POLICY, lambda: queue_length, plans.append, batches.append)
    return result, plans, batches


def age(sessions, model, seconds, **where):
    with sessions() as s:
        column = model.created_at
        s.execute(update(model).filter_by(**where).values({column: utcnow() - timedelta(seconds=seconds)}))
        s.commit()


def test_fresh_work_is_left_alone(sessions):
    new_job(sessions, plan=False)
    new_job(sessions)
    result, plans, batches = run(sessions, utcnow())
    assert (plans, batches) == ([], []) and result.expired_leases == 0


def test_a_job_never_planned_is_planned_again(sessions):
    job_id = new_job(sessions, plan=False)
    age(sessions, Job, 120, id=job_id)
    _, plans, _ = run(sessions, utcnow())
    assert plans == [job_id]


def test_lost_batch_messages_are_resent_only_when_the_queue_is_short(sessions):
    job_id = new_job(sessions)
    age(sessions, Batch, 120, job_id=job_id)
    _, _, busy = run(sessions, utcnow(), queue_length=500)
    assert busy == []  # a long queue: the messages may well be in it
    _, _, resent = run(sessions, utcnow(), queue_length=0)
    with sessions() as s:
        ids = s.scalars(select(Batch.id).where(Batch.job_id == job_id).order_by(Batch.id)).all()
        # Sent with their full refs (what Flower shows), as the database holds them.
        assert resent == batch_refs(s, ids) and [ref.item_count for ref in resent] == [10, 10, 5]


def test_a_batch_waiting_for_its_retry_time_is_not_lost(sessions):
    job_id = new_job(sessions)
    age(sessions, Batch, 120, job_id=job_id)
    with sessions() as s:
        s.execute(update(Batch).values(next_attempt_at=utcnow() + timedelta(seconds=30), attempts=2))
        s.commit()
    assert run(sessions, utcnow())[2] == []
    assert run(sessions, utcnow() + timedelta(seconds=30 + 61))[2] != []


def test_an_expired_lease_is_taken_back_at_once(sessions):
    job_id = new_job(sessions)
    with sessions() as s:
        [first, *_] = s.scalars(select(Batch.id).where(Batch.job_id == job_id).order_by(Batch.id)).all()
        s.execute(update(Batch).where(Batch.id == first).values(status="in_flight", lease_token="t", lease_expires_at=utcnow() - timedelta(seconds=1)))
        s.commit()
    result, _, batches = run(sessions, utcnow(), queue_length=500)
    assert result.expired_leases == 1 and batches == [BatchRef(first, job_id, "huawei.DeleteAssets", "default", 10)]
    with sessions() as s:
        batch = s.get(Batch, first)
        assert (batch.status, batch.lease_token) == ("queued", None)


def test_a_job_left_running_with_all_batches_done_is_closed(sessions):
    job_id = new_job(sessions)
    with sessions() as s:
        s.execute(update(Batch).values(status="done"))
        s.execute(update(__import__("models").Item).values(status="deleted"))
        s.commit()
    result, _, _ = run(sessions, utcnow())
    with sessions() as s:
        assert result.closed_jobs == 1 and s.get(Job, job_id).status == "completed"
