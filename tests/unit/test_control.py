"""Job control on SQLite: cancel (queued batches at once, a running batch before its next call),
retry-failed (a new round, the old failure kept), item paging, and where the callback comes in."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from models import AccountHalt, Batch, Item, Job, RetriedFailure
from models.types import utcnow
from tests.unit.executor_env import items_by_media, start_job
from worker import control, leases
from worker.errors import JobNotFound, JobStateConflict
from worker.executor import run_batch
from worker.outcomes import ItemStatus, JobStatus
from worker.planner import plan_job
from worker.producer import submit_job
from worker.retry import Finished, Skipped
from worker.sweeper import SweepPolicy, sweep
from worker.validation import ItemValidator

ASSETS = [{"action": "huawei.DeleteAssets", "asset_id": f"a{i:02}"} for i in range(25)]  # 3 batches of <= 10


def huawei_answer(status_of):
    """A DeleteAssets answer giving each asset the status ``status_of(asset_id)``."""

    def handler(request: httpx.Request) -> httpx.Response:
        assets = parse_qs(urlsplit(str(request.url)).query)["asset_id"]
        return httpx.Response(200, json={"delete_result_array": [{"asset_id": a, "status": status_of(a)} for a in assets]})

    return handler


def sent_assets(calls) -> list[str]:
    return [a for c in calls for a in parse_qs(urlsplit(str(c.url)).query)["asset_id"]]


def cancel(rt, job_id):
    with rt.sessions() as s:
        return control.cancel_job(s, job_id, utcnow())


def retry(rt, job_id):
    with rt.sessions() as s:
        return control.retry_failed(s, job_id, utcnow())


def job_of(rt, job_id) -> Job:
    with rt.sessions() as s:
        return s.get(Job, job_id)


def test_cancelling_a_job_never_planned_cancels_every_item_and_ends_it(sessions):
    job_id = submit_job(sessions, ASSETS, ItemValidator({"huawei": {"default"}}), lambda j: None).job_id
    with sessions() as s:
        result = control.cancel_job(s, job_id, utcnow())
        assert plan_job(s, job_id) is False  # a plan task arriving later finds nothing to plan
    assert (result.status, result.cancelled_items, result.ended, result.already_requested) == (JobStatus.CANCELLED, 25, True, False)
    with sessions() as s:
        assert set(s.scalars(select(Item.status).where(Item.job_id == job_id))) == {"cancelled"}
        assert s.scalars(select(Batch).where(Batch.job_id == job_id)).all() == []


def test_cancelling_a_running_job_closes_its_queued_batches_and_no_vendor_is_called(env):
    rt, handlers, calls = env
    handlers.append(huawei_answer(lambda a: "DELETED"))
    job_id, batch_ids = start_job(rt, ASSETS)

    result = cancel(rt, job_id)

    assert (result.status, result.cancelled_items, result.in_flight_batches, result.ended) == (JobStatus.CANCELLED, 25, 0, True)
    # Messages already in the broker find their batches done.
    assert [type(run_batch(rt, b)).__name__ for b in batch_ids] == ["Skipped"] * 3
    assert calls == []
    items = items_by_media(rt, job_id).values()
    assert {(i.status, i.vendor_code, i.vendor_message) for i in items} == {("cancelled", "Cancelled", "not sent: the job was cancelled")}
    assert job_of(rt, job_id).finished_at is not None


def test_cancelling_twice_changes_nothing_and_says_so(env):
    rt, _, _ = env
    job_id, _ = start_job(rt, ASSETS)
    first = cancel(rt, job_id)
    requested_at = job_of(rt, job_id).cancel_requested_at

    second = cancel(rt, job_id)

    assert first.already_requested is False and first.ended is True
    assert (second.status, second.cancelled_items, second.already_requested, second.ended) == (JobStatus.CANCELLED, 0, True, False)
    assert job_of(rt, job_id).cancel_requested_at == requested_at


def test_a_batch_being_sent_stops_before_its_next_call_and_keeps_what_was_sent(env):
    rt, handlers, calls = env
    job_id, batch_ids = start_job(rt, ASSETS)
    seen = {}

    def cancel_during_the_call(request):
        # The upstream cancels while this batch's call is at the vendor, which then answers "busy".
        seen["result"] = cancel(rt, job_id)
        return httpx.Response(503, json={"error_code": "APIGW.0201", "error_msg": "busy", "request_id": "r1"})

    handlers.append(cancel_during_the_call)
    # The busy answer would queue a retry; the job being cancelled, the batch closes instead, and with
    # it the job: its items are cancelled now, not at a retry that a second cancel could count again.
    decision = run_batch(rt, batch_ids[0])
    result = seen["result"]
    assert (result.status, result.cancelled_items, result.in_flight_batches, result.ended) == (JobStatus.RUNNING, 15, 1, False)
    assert decision == Finished(job_id, JobStatus.CANCELLED)
    assert cancel(rt, job_id).cancelled_items == 0
    assert isinstance(run_batch(rt, batch_ids[0]), Skipped) and len(calls) == 1
    items = items_by_media(rt, job_id)
    assert {items[a].status for a in sent_assets(calls)} == {"cancelled"}  # sent once, answered busy, then cancelled
    assert {items[a].attempts for a in sent_assets(calls)} == {1}  # the one call stays in the item's audit
    assert {i.status for i in items.values()} == {"cancelled"}


def test_items_answered_before_the_cancel_keep_their_true_status(env):
    rt, handlers, calls = env
    handlers.append(huawei_answer(lambda a: "DELETED"))
    job_id, batch_ids = start_job(rt, ASSETS)
    run_batch(rt, batch_ids[0])

    result = cancel(rt, job_id)

    assert (result.status, result.cancelled_items) == (JobStatus.CANCELLED, 15)
    statuses = {m: i.status for m, i in items_by_media(rt, job_id).items()}
    assert {statuses[a] for a in sent_assets(calls)} == {"deleted"} and len(sent_assets(calls)) == 10
    assert sorted(statuses.values()).count("cancelled") == 15


def test_cancelling_a_job_that_ended_otherwise_is_refused(env):
    rt, handlers, _ = env
    handlers.append(huawei_answer(lambda a: "DELETED"))
    job_id, batch_ids = start_job(rt, ASSETS)
    for batch_id in batch_ids:
        run_batch(rt, batch_id)

    with pytest.raises(JobStateConflict, match=f"job {job_id} already ended completed"):
        cancel(rt, job_id)
    with pytest.raises(JobNotFound, match="no job 999"):
        cancel(rt, 999)


def test_the_sweeper_re_sends_nothing_of_a_cancelled_job(env):
    rt, _, _ = env
    job_id, batch_ids = start_job(rt, ASSETS)
    with rt.sessions() as s:
        leases.claim(s, batch_ids[0], utcnow() - timedelta(hours=1), lease_seconds=1)  # a worker that died
    cancel(rt, job_id)
    later = utcnow() + timedelta(hours=1)
    plans, batches, notified = [], [], []
    with rt.sessions() as s:
        result = sweep(s, later, SweepPolicy(timedelta(seconds=60), 10), lambda: 0, plans.append, batches.append, notified.append)
    # The dead worker's batch is handed back once; the executor then cancels its items without a call.
    assert (plans, [ref.id for ref in batches]) == ([], [batch_ids[0]])
    with rt.sessions() as s:
        s.get(Batch, batch_ids[0]).next_attempt_at = None  # the sweep ran "an hour later"; make it due now
        s.commit()
    assert run_batch(rt, batch_ids[0]) == Finished(job_id, JobStatus.CANCELLED)
    assert result.resent_batches == 0


def fail_then_retry(rt, handlers):
    """A job whose odd assets fail for good; returns its id after retry-failed."""
    handlers.append(huawei_answer(lambda a: "FAILED" if int(a[1:]) % 2 else "DELETED"))
    job_id, batch_ids = start_job(rt, ASSETS)
    for _ in range(3):  # max_attempts is 3
        for batch_id in batch_ids:
            run_batch(rt, batch_id)
        with rt.sessions() as s:
            for batch in s.scalars(select(Batch)):
                batch.next_attempt_at = None
            s.commit()
    assert job_of(rt, job_id).status == "completed_with_failures"
    return job_id, batch_ids


def test_retry_failed_starts_a_new_round_and_keeps_the_earlier_failure(env):
    rt, handlers, calls = env
    job_id, old_batches = fail_then_retry(rt, handlers)
    failed_before = {m: i for m, i in items_by_media(rt, job_id).items() if i.status == "failed"}

    result = retry(rt, job_id)

    assert (result.requeued_items, result.status) == (12, JobStatus.SUBMITTED)
    items = items_by_media(rt, job_id)
    for media_id, before in failed_before.items():
        after = items[media_id]
        assert (after.status, after.batch_id, after.attempts, after.retries, after.vendor_code) == ("pending", None, 0, 1, None)
        assert after.first_sent_at == before.first_sent_at
    with rt.sessions() as s:
        archived = {r.item_id: r for r in s.scalars(select(RetriedFailure).where(RetriedFailure.job_id == job_id))}
    assert {r.item_id for r in archived.values()} == {i.id for i in failed_before.values()}
    for before in failed_before.values():
        kept = archived[before.id]
        assert (kept.round, kept.batch_id, kept.attempts, kept.vendor_code) == (1, before.batch_id, 3, "FAILED")
        assert "gave up after 3 attempts" in kept.vendor_message and kept.failed_at == before.finished_at

    # Planned again: only the requeued items, in new batches; then the vendor deletes them.
    handlers[0] = huawei_answer(lambda a: "DELETED")
    with rt.sessions() as s:
        assert plan_job(s, job_id) is True
        new_batches = s.scalars(select(Batch.id).where(Batch.job_id == job_id, Batch.id.notin_(old_batches))).all()
    assert len(new_batches) == 2
    sent_before = len(calls)
    assert [type(run_batch(rt, b)) for b in new_batches] == [Finished, Finished]
    assert sorted(sent_assets(calls[sent_before:])) == sorted(failed_before)
    assert job_of(rt, job_id).status == "completed"
    assert {i.status for i in items_by_media(rt, job_id).values()} == {"deleted"}


def test_retry_failed_twice_in_a_row_is_refused_so_nothing_is_sent_twice(env):
    rt, handlers, _ = env
    job_id, _ = fail_then_retry(rt, handlers)
    retry(rt, job_id)

    with pytest.raises(JobStateConflict, match="is submitted; retry-failed applies to a job that has ended"):
        retry(rt, job_id)
    with rt.sessions() as s:
        assert s.query(RetriedFailure).count() == 12


def test_retry_failed_with_nothing_failed_changes_nothing(env):
    rt, handlers, _ = env
    handlers.append(huawei_answer(lambda a: "DELETED"))
    job_id, batch_ids = start_job(rt, ASSETS)
    with pytest.raises(JobStateConflict, match="is running"):
        retry(rt, job_id)
    for batch_id in batch_ids:
        run_batch(rt, batch_id)

    result = retry(rt, job_id)

    assert (result.requeued_items, result.status) == (0, JobStatus.COMPLETED)
    assert job_of(rt, job_id).status == "completed"


def test_retry_failed_lifts_the_jobs_account_halts(env):
    rt, handlers, _ = env
    handlers.append(lambda r: httpx.Response(401, json={"error_code": "APIGW.0301", "error_msg": "Incorrect IAM authentication information"}))
    job_id, batch_ids = start_job(rt, ASSETS)
    for batch_id in batch_ids:
        run_batch(rt, batch_id)
    with rt.sessions() as s:
        assert s.query(AccountHalt).filter_by(job_id=job_id).count() == 1

    assert retry(rt, job_id).requeued_items == 25

    with rt.sessions() as s:
        assert s.query(AccountHalt).filter_by(job_id=job_id).count() == 0


def test_a_retried_job_cancelled_before_planning_cancels_only_the_requeued_items(env):
    rt, handlers, _ = env
    job_id, _ = fail_then_retry(rt, handlers)
    retry(rt, job_id)

    result = cancel(rt, job_id)

    assert (result.status, result.cancelled_items, result.ended) == (JobStatus.CANCELLED, 12, True)
    statuses = sorted(i.status for i in items_by_media(rt, job_id).values())
    assert statuses.count("deleted") == 13 and statuses.count("cancelled") == 12


def test_items_are_paged_by_id_and_filtered_by_status(env):
    rt, handlers, _ = env
    job_id, _ = fail_then_retry(rt, handlers)
    with rt.sessions() as s:
        pages, after = [], None
        while True:
            page = control.list_items(s, job_id, limit=10, after=after)
            pages.append(page.items)
            if page.next_after is None:
                break
            after = page.next_after
        failed = control.list_items(s, job_id, status=ItemStatus.FAILED, limit=1000)

    assert [len(p) for p in pages] == [10, 10, 5]
    ids = [row["id"] for p in pages for row in p]
    assert ids == sorted(ids) and len(set(ids)) == 25
    assert [row["asset_id"] for row in pages[0][:2]] == ["a00", "a01"]
    assert {row["status"] for row in failed.items} == {"failed"} and len(failed.items) == 12
    assert failed.next_after is None
    assert {"line", "action", "account", "asset_id", "status", "attempts", "vendor_code", "retries"} <= set(failed.items[0])


def test_listing_the_items_of_an_unknown_job_or_with_a_bad_limit_is_refused(sessions):
    with sessions() as s:
        with pytest.raises(JobNotFound):
            control.list_items(s, 12345)
        with pytest.raises(ValueError, match="limit must be 1 to 1000"):
            control.list_items(s, 12345, limit=0)
