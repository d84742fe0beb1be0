"""Job control after submission: cancel a job, retry its failed items, list its items a page at a time.

Plain code over one session, used by the CLI and the HTTP API alike. Enqueueing is the caller's part:
``cancel_job`` says when it closed the job (its callback is then due), ``retry_failed`` leaves the job
``submitted`` for ``mediapurge.plan_job``, which batches exactly the items put back to pending.

Cancellation and the executor: batches not being sent are closed here at once and their pending items
become ``cancelled``; a batch a worker holds right now checks ``cancel_requested_at`` before each vendor
call (worker/executor.py) and cancels the rest itself, so at most the call already under way is sent.
Items already sent keep the status the vendor's answer gave them. The job ends ``cancelled`` when its
last open batch closes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, literal, select, update
from sqlalchemy.orm import Session

from models.tables import AccountHalt, Batch, Item, Job, RetriedFailure
from models.types import UTCDateTime
from worker import audit
from worker.errors import JobNotFound, JobStateConflict
from worker.outcomes import BatchStatus, CallbackState, ItemStatus, JobStatus

MAX_PAGE = 1_000


def _job(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise JobNotFound(f"no job {job_id}")
    return job


@dataclass(frozen=True)
class CancelResult:
    job_id: int
    status: JobStatus  # the job's status after the request
    cancelled_items: int  # items this request cancelled
    in_flight_batches: int  # batches being sent right now: each stops before its next vendor call
    already_requested: bool  # an earlier request had cancelled the job; this one changed nothing
    ended: bool  # this request closed the job: its end-of-job callback is due

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "status": self.status.value}


def cancel_job(session: Session, job_id: int, now: datetime) -> CancelResult:
    """Cancel what has not been sent yet. Cancelling again is a no-op; a job that ended otherwise
    (completed, completed_with_failures) raises JobStateConflict."""
    job = _job(session, job_id)
    status = JobStatus(job.status)
    if status.is_final and status is not JobStatus.CANCELLED:
        raise JobStateConflict(f"job {job_id} already ended {status.value}; there is nothing left to cancel")
    already = job.cancel_requested_at is not None
    # Committed first, on its own: workers holding a batch see it before their next call. On PostgreSQL
    # this also waits for a planner holding the job's row, so the status read next is the planned one.
    session.execute(
        update(Job).where(Job.id == job_id, Job.cancel_requested_at.is_(None)).values(cancel_requested_at=now)
        .execution_options(synchronize_session=False)
    )
    session.commit()

    cancelled = 0
    ended = False
    closed = session.execute(
        update(Job).where(Job.id == job_id, Job.status == JobStatus.SUBMITTED.value)
        .values(status=JobStatus.CANCELLED.value, finished_at=now).execution_options(synchronize_session=False)
    ).rowcount
    if closed:  # never planned (or put back by retry-failed): no batch holds its pending items
        cancelled = _cancel_pending(session, job_id, Item.batch_id.is_(None), now)
        session.commit()
        ended = True
    else:
        # A queued batch is closed in the same statement that a worker's claim would need, so exactly
        # one of the two wins; the pending items of the batches closed here are cancelled with them.
        session.execute(
            update(Batch).where(Batch.job_id == job_id, Batch.status == BatchStatus.QUEUED.value)
            .values(status=BatchStatus.DONE.value, finished_at=now, next_attempt_at=None)
            .execution_options(synchronize_session=False)
        )
        done_batches = select(Batch.id).where(Batch.job_id == job_id, Batch.status == BatchStatus.DONE.value)
        cancelled = _cancel_pending(session, job_id, Item.batch_id.in_(done_batches), now)
        session.commit()
        ended = audit.finish_job_if_done(session, job_id, now) is not None
    in_flight = session.scalar(
        select(func.count()).select_from(Batch).where(Batch.job_id == job_id, Batch.status == BatchStatus.IN_FLIGHT.value)
    ) or 0
    final_status = JobStatus(session.scalar(select(Job.status).where(Job.id == job_id)))
    return CancelResult(job_id, final_status, cancelled, in_flight, already and not cancelled and not ended, ended)


def _cancel_pending(session: Session, job_id: int, where, now: datetime) -> int:  # noqa: ANN001
    return session.execute(
        update(Item).where(Item.job_id == job_id, Item.status == ItemStatus.PENDING.value, where)
        .values(
            status=ItemStatus.CANCELLED.value, vendor_code=audit.CANCELLED_CODE, vendor_message=audit.CANCELLED_MESSAGE,
            finished_at=now,
        )
        .execution_options(synchronize_session=False)
    ).rowcount


@dataclass(frozen=True)
class RetryResult:
    job_id: int
    requeued_items: int  # failed items put back to pending (0: nothing to retry, the job is unchanged)
    status: JobStatus

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "status": self.status.value}


def retry_failed(session: Session, job_id: int, now: datetime) -> RetryResult:
    """Put the failed items of an ended job back to pending and the job back to ``submitted``; the caller
    then enqueues ``mediapurge.plan_job``, which batches them anew.

    The item rows start a new round (attempts 0, no vendor code, ``retries`` + 1); each earlier failure
    is kept in retried_failures with its batch, whose vendor_calls stay. The job's account halts are
    lifted (the usual fix for a halt is new credentials). A second request while the first one's round
    runs raises JobStateConflict, so a double click never sends an item twice.
    """
    job = _job(session, job_id)
    status = JobStatus(job.status)
    if not status.is_final:
        raise JobStateConflict(
            f"job {job_id} is {status.value}; retry-failed applies to a job that has ended (wait for it, or cancel it)"
        )
    failed = Item.job_id == job_id, Item.status == ItemStatus.FAILED.value
    if not session.scalar(select(func.count()).select_from(Item).where(*failed)):
        return RetryResult(job_id, 0, status)
    reopened = session.execute(
        update(Job).where(Job.id == job_id, Job.status == status.value)
        .values(
            status=JobStatus.SUBMITTED.value, finished_at=None, cancel_requested_at=None,
            callback_state=CallbackState.PENDING.value if job.callback_url else None, callback_attempts=0,
            callback_last_error=None, callback_delivered_at=None,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if not reopened:
        session.rollback()
        raise JobStateConflict(f"job {job_id} changed while retrying it (another retry-failed?); look at its status")
    archive = select(
        Item.job_id, Item.id, Item.retries + 1, Item.batch_id, Item.attempts, Item.vendor_code, Item.vendor_message,
        Item.request_id, Item.first_sent_at, Item.last_sent_at, Item.finished_at, literal(now, UTCDateTime()),
    ).where(*failed)
    session.execute(
        insert(RetriedFailure).from_select(
            ["job_id", "item_id", "round", "batch_id", "attempts", "vendor_code", "vendor_message", "request_id",
             "first_sent_at", "last_sent_at", "failed_at", "retried_at"],
            archive,
        )
    )
    requeued = session.execute(
        update(Item).where(*failed)
        .values(
            status=ItemStatus.PENDING.value, batch_id=None, attempts=0, retries=Item.retries + 1, vendor_code=None,
            vendor_message=None, request_id=None, finished_at=None,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    session.execute(delete(AccountHalt).where(AccountHalt.job_id == job_id))
    session.commit()
    return RetryResult(job_id, requeued, JobStatus.SUBMITTED)


@dataclass(frozen=True)
class ItemsPage:
    items: list[dict[str, Any]]
    next_after: int | None  # pass as ``after`` for the next page; None on the last page


def list_items(
    session: Session, job_id: int, *, status: ItemStatus | None = None, limit: int = 100, after: int | None = None
) -> ItemsPage:
    """The job's items in id order, ``limit`` at a time after item id ``after`` (keyset paging: stable
    while the job runs, and as fast on the last page as on the first)."""
    from worker.jobs import item_row

    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be 1 to {MAX_PAGE}")
    _job(session, job_id)
    query = select(Item).where(Item.job_id == job_id)
    if status is not None:
        query = query.where(Item.status == status.value)
    if after is not None:
        query = query.where(Item.id > after)
    rows = session.scalars(query.order_by(Item.id).limit(limit + 1)).all()
    page = [{"id": item.id, **item_row(item), "retries": item.retries} for item in rows[:limit]]
    return ItemsPage(page, rows[limit - 1].id if len(rows) > limit else None)
