"""Write down what happened: one row per vendor call, each item's new state, and the job's end.

A call costs two statements whatever its size: the call's row, and one UPDATE of all its items.
Final states are written only over ``pending`` items: an item never leaves a final state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String, Text, bindparam, case, column, exists, func, insert, literal, select, text, update, values
from sqlalchemy.orm import Session

from models.tables import AccountHalt, Batch, Item, Job, JobCount, VendorCall
from models.types import UTCDateTime
from worker.outcomes import BatchStatus, CallVerdict, ItemResult, ItemStatus, JobStatus, Outcome

MESSAGE_LENGTH = 1000
# The verdict label of a call the vendor refused as too fast (retryable, but counted apart).
THROTTLED = "throttled"

_FINAL = {Outcome.DELETED: ItemStatus.DELETED, Outcome.ALREADY_GONE: ItemStatus.ALREADY_GONE, Outcome.FAILED: ItemStatus.FAILED}


@dataclass
class PendingItem:
    id: int
    media_id: str
    attempts: int


@dataclass(frozen=True)
class CallRecord:
    job_id: int
    batch_id: int
    action: str
    account: str
    started_at: datetime
    latency_ms: float


def _clip(text: str | None) -> str | None:
    return text[:MESSAGE_LENGTH] if text else text


def verdict_label(verdict: CallVerdict) -> str:
    """One word for the call in the audit: split, halt, throttled, or the outcomes it gave (e.g.
    'deleted+already_gone'). Throttled calls are told apart from other retryable ones for the metrics."""
    if verdict.split:
        return "split"
    if verdict.halt_account:
        return "halt_account"
    if verdict.throttled:
        return THROTTLED
    outcomes = sorted({result.outcome.value for result in verdict.items.values()})
    return "+".join(outcomes)[:32] or "empty"


# The statements every call or batch runs are built once, on the tables (Core): built per call through
# the ORM (its cache key, its bulk-persistence plumbing), they cost more CPU than the calls themselves.
# A Core INSERT also skips the unit of work's flush.
_INSERT_CALL = insert(VendorCall.__table__)
_items, _batches, _jobs = Item.__table__, Batch.__table__, Job.__table__
_PENDING_ITEMS = (
    select(_items.c.id, _items.c.media_id, _items.c.attempts)
    .where(_items.c.batch_id == bindparam("batch_id"), _items.c.status == ItemStatus.PENDING.value)
    .order_by(_items.c.id)
)
_CANCEL_REQUESTED = select(_jobs.c.cancel_requested_at.is_not(None)).where(_jobs.c.id == bindparam("job_id"))
# EXISTS, not COUNT: asked at the end of every batch, it must not scan a big job's open batches.
_ANY_BATCH_OPEN = select(exists().where(_batches.c.job_id == bindparam("job_id"), _batches.c.status != BatchStatus.DONE.value))


def record_call(
    session: Session,
    call: CallRecord,
    items: Sequence[PendingItem],
    verdict: CallVerdict,
    *,
    max_attempts: int,
    now: datetime,
) -> list[PendingItem]:
    """Store the call and apply its verdict to ``items``. Returns the items still pending afterwards.

    A split answer decides nothing about any item, so it does not count as an attempt.
    """
    session.execute(_INSERT_CALL, {
        "job_id": call.job_id, "batch_id": call.batch_id, "action": call.action, "account": call.account,
        "item_count": len(items), "started_at": call.started_at, "latency_ms": call.latency_ms,
        "http_status": verdict.http_status, "vendor_code": _clip(verdict.code), "vendor_message": _clip(verdict.message),
        "request_id": _clip(verdict.request_id), "verdict": verdict_label(verdict),
    })
    still_pending: list[PendingItem] = []
    if verdict.split:
        session.commit()
        return list(items)
    uncertain = ItemResult(Outcome.RETRYABLE, "Uncertain", "the vendor's answer did not mention this id", verdict.request_id)
    rows = []
    for item in items:
        result = verdict.items.get(item.media_id, uncertain)
        item.attempts += 1
        status = _FINAL.get(result.outcome)
        message = result.message
        if status is None and item.attempts >= max_attempts:
            status = ItemStatus.FAILED
            message = f"gave up after {item.attempts} attempts: {result.message or result.code}"
        if status is None:
            still_pending.append(item)
        rows.append((item.id, status.value if status else None, _clip(result.code), _clip(message), _clip(result.request_id)))
    if rows:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(_APPLY_RESULTS_PG, _array_params(rows, call.started_at, now))
        else:
            session.execute(_apply_results(rows, call.started_at, now).execution_options(synchronize_session=False))
    session.commit()
    return still_pending


# On PostgreSQL the new values travel as five arrays, so the statement text never changes: compiled
# once per process and cached, where a VALUES list of a hundred rows had to be compiled for every call
# (half of a worker's CPU at full speed).
_APPLY_RESULTS_PG = text("""
UPDATE items AS i SET
  attempts = i.attempts + 1, vendor_code = new.code, vendor_message = new.message, request_id = new.request_id,
  first_sent_at = coalesce(i.first_sent_at, :sent_at), last_sent_at = :sent_at,
  status = coalesce(new.status, i.status),
  finished_at = CASE WHEN new.status IS NOT NULL THEN :now ELSE i.finished_at END
FROM unnest(
  CAST(:ids AS bigint[]), CAST(:statuses AS varchar[]), CAST(:codes AS varchar[]), CAST(:messages AS text[]),
  CAST(:request_ids AS varchar[])
) AS new(id, status, code, message, request_id)
WHERE i.id = new.id AND i.status = 'pending'
""").bindparams(bindparam("sent_at", type_=UTCDateTime()), bindparam("now", type_=UTCDateTime()))


def _array_params(rows: list[tuple], sent_at: datetime, now: datetime) -> dict:
    ids, statuses, codes, messages, request_ids = (list(column) for column in zip(*rows))
    return {
        "ids": ids, "statuses": statuses, "codes": codes, "messages": messages, "request_ids": request_ids,
        "sent_at": sent_at, "now": now,
    }


def _apply_results(rows: list[tuple], sent_at: datetime, now: datetime):  # noqa: ANN202
    """One UPDATE for every item of a call, whatever their outcomes (SQLite): the new values travel as
    a VALUES list joined on the item id. A row's status is None while the item stays pending."""
    new = values(
        column("id", Item.id.type), column("status", String()), column("code", String()), column("message", Text()),
        column("request_id", String()), name="new",
    ).data(rows).cte("new")
    return (
        update(Item)
        .where(Item.id == new.c.id, Item.status == ItemStatus.PENDING.value)
        .values(
            attempts=Item.attempts + 1, vendor_code=new.c.code, vendor_message=new.c.message, request_id=new.c.request_id,
            first_sent_at=func.coalesce(Item.first_sent_at, literal(sent_at, Item.first_sent_at.type)), last_sent_at=sent_at,
            status=func.coalesce(new.c.status, Item.status),
            finished_at=case((new.c.status.is_not(None), literal(now, Item.finished_at.type)), else_=Item.finished_at),
        )
    )


def fail_items(session: Session, item_ids: Sequence[int], code: str, message: str, now: datetime) -> None:
    """Final failure decided without a vendor call (the account was halted or removed)."""
    session.execute(
        update(Item)
        .where(Item.id.in_(item_ids), Item.status == ItemStatus.PENDING.value)
        .values(status=ItemStatus.FAILED.value, vendor_code=code, vendor_message=_clip(message), finished_at=now)
        .execution_options(synchronize_session=False)
    )
    session.commit()


CANCELLED_CODE = "Cancelled"
CANCELLED_MESSAGE = "not sent: the job was cancelled"


def cancel_items(session: Session, item_ids: Sequence[int], now: datetime) -> None:
    """Items of a cancelled job that were never sent in this round: they end ``cancelled``."""
    session.execute(
        update(Item)
        .where(Item.id.in_(item_ids), Item.status == ItemStatus.PENDING.value)
        .values(status=ItemStatus.CANCELLED.value, vendor_code=CANCELLED_CODE, vendor_message=CANCELLED_MESSAGE, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def cancel_requested(session: Session, job_id: int) -> bool:
    return session.scalar(_CANCEL_REQUESTED, {"job_id": job_id}) or False


def pending_items(session: Session, batch_id: int) -> list[PendingItem]:
    return [PendingItem(*row) for row in session.execute(_PENDING_ITEMS, {"batch_id": batch_id})]


def halt_account(session: Session, job_id: int, vendor: str, account: str, verdict: CallVerdict) -> None:
    if session.get(AccountHalt, (job_id, vendor, account)) is None:
        session.add(AccountHalt(job_id=job_id, vendor=vendor, account=account, vendor_code=verdict.code, vendor_message=_clip(verdict.message)))
        session.commit()


def account_halt(session: Session, job_id: int, vendor: str, account: str) -> AccountHalt | None:
    return session.get(AccountHalt, (job_id, vendor, account))


def finish_job_if_done(session: Session, job_id: int, now: datetime) -> JobStatus | None:
    """Close the job when no batch is left undone: ``cancelled`` if a cancel was requested, else
    ``completed`` or ``completed_with_failures``. Safe to call any number of times, from any worker:
    whichever batch commits last sees zero and closes the job. Returns the status it set, or None when
    the job is still open or someone else closed it (so exactly one caller learns that the job ended)."""
    if session.scalar(_ANY_BATCH_OPEN, {"job_id": job_id}):
        return None
    if cancel_requested(session, job_id):
        status = JobStatus.CANCELLED
    else:
        failed = _any_failed(session, job_id)
        status = JobStatus.COMPLETED_WITH_FAILURES if failed else JobStatus.COMPLETED
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.RUNNING.value)
        .values(status=status.value, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return status if result.rowcount else None


def _any_failed(session: Session, job_id: int) -> bool:
    """Whether some item of the job failed. PostgreSQL reads the job's counters (no index of items
    holds the status, so asking the items would scan the whole job); SQLite asks the items."""
    if session.get_bind().dialect.name == "postgresql":
        failed = select(func.sum(JobCount.n)).where(JobCount.job_id == job_id, JobCount.status == ItemStatus.FAILED.value)
        return (session.scalar(failed) or 0) > 0
    return bool(session.scalar(select(exists().where(Item.job_id == job_id, Item.status == ItemStatus.FAILED.value))))
