"""Exclusive claims on batches: at most one worker sends a batch's items at a time.

A claim is an UPDATE guarded by the batch's state, so two deliveries of the same message (a redelivery
after a worker died, a sweeper's re-enqueue) cannot both win. A lease that outlives its worker expires
and the batch can be claimed again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, exists, false, or_, select, update
from sqlalchemy.orm import Session

from models.tables import AccountHalt, Batch, Item, Job
from worker.outcomes import BatchStatus

# A message may arrive a little before the batch's next_attempt_at (clocks of different hosts).
EARLY_ARRIVAL_SLACK = timedelta(seconds=2)


@dataclass(frozen=True)
class Lease:
    """A claim on one batch, with what the claim read of it (the batch's row is not read again)."""

    batch_id: int
    token: str
    job_id: int = 0
    action: str = ""
    account: str = ""
    group_key: str = ""
    attempts: int = 0
    cancel_requested: bool = False  # the job's cancel was requested when the batch was claimed
    account_halted: bool = False  # the batch's account was halted for the job when it was claimed
    item_count: int = 0  # the batch's items when claimed (what its message shows; a split lowers it)


def claim(session: Session, batch_id: int, now: datetime, lease_seconds: float) -> Lease | None:
    """Take the batch if it is due and nobody holds it. One statement: the claim returns what the
    executor needs to know about the batch, its job's cancel flag and its account's halt."""
    token = str(uuid.uuid4())
    cancel = select(Job.cancel_requested_at.is_not(None)).where(Job.id == Batch.job_id).scalar_subquery()
    halted = exists().where(
        AccountHalt.job_id == Batch.job_id, AccountHalt.account == Batch.account,
        Batch.action.startswith(AccountHalt.vendor.concat(".")),
    )
    row = session.execute(
        update(Batch)
        .where(
            Batch.id == batch_id,
            or_(
                Batch.status == BatchStatus.QUEUED.value,
                (Batch.status == BatchStatus.IN_FLIGHT.value) & (Batch.lease_expires_at < now),
            ),
            or_(Batch.next_attempt_at.is_(None), Batch.next_attempt_at <= now + EARLY_ARRIVAL_SLACK),
        )
        .values(
            status=BatchStatus.IN_FLIGHT.value,
            lease_token=token,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            version=Batch.version + 1,
        )
        .returning(Batch.job_id, Batch.action, Batch.account, Batch.group_key, Batch.attempts, cancel, halted, Batch.item_count)
        .execution_options(synchronize_session=False)
    ).first()
    session.commit()
    if row is None:
        return None
    job_id, action, account, group_key, attempts, cancelled, halt, item_count = row
    return Lease(batch_id, token, job_id, action, account, group_key, attempts, bool(cancelled), bool(halt), item_count)


def release(
    session: Session, lease: Lease, *, next_attempt_at: datetime | None, count_attempt: bool, now: datetime,
    close_if_cancelled: bool = True,
) -> bool:
    """Give the batch back to the queue, due at ``next_attempt_at`` (returns True); or, when its job's
    cancel was requested meanwhile and ``close_if_cancelled``, close it instead (``done``, returns False):
    the caller then cancels its pending items. Decided in the same statement, so a cancel that closed
    the job's queued batches while this one was held never finds it queued again afterwards."""
    cancelled = exists().where(Job.id == Batch.job_id, Job.cancel_requested_at.is_not(None))
    if not close_if_cancelled:
        cancelled = false()
    values: dict = {
        "status": case((cancelled, BatchStatus.DONE.value), else_=BatchStatus.QUEUED.value),
        "finished_at": case((cancelled, now), else_=None),
        "lease_token": None,
        "lease_expires_at": None,
        "next_attempt_at": case((cancelled, None), else_=next_attempt_at),
    }
    if count_attempt:
        values["attempts"] = Batch.attempts + 1
    status = session.scalar(
        update(Batch)
        .where(Batch.id == lease.batch_id, Batch.lease_token == lease.token)
        .values(**values)
        .returning(Batch.status)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return status != BatchStatus.DONE.value


def finish(session: Session, lease: Lease, now: datetime) -> None:
    session.execute(
        update(Batch)
        .where(Batch.id == lease.batch_id, Batch.lease_token == lease.token)
        .values(status=BatchStatus.DONE.value, lease_token=None, lease_expires_at=None, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def split_off(session: Session, batch: Lease, item_ids: list[int], now: datetime) -> int:
    """Move ``item_ids`` out of ``batch`` into a new queued batch; returns its id.

    Used when the vendor refused a call for an id it did not name: each half is then its own batch, so
    the search for the culprit survives a requeue (a rate-limit wait, a crash) instead of starting over.
    The new batch's ordinal is minus the smallest item id it holds: unique, because that item stays
    first in the new batch's first half whenever the new batch is split again.
    """
    new = Batch(
        job_id=batch.job_id, action=batch.action, account=batch.account, group_key=batch.group_key,
        ordinal=-min(item_ids), status=BatchStatus.QUEUED.value, item_count=len(item_ids), attempts=batch.attempts,
        version=0, created_at=now,
    )
    session.add(new)
    session.flush()
    session.execute(
        update(Item).where(Item.id.in_(item_ids)).values(batch_id=new.id).execution_options(synchronize_session=False)
    )
    session.execute(
        update(Batch).where(Batch.id == batch.batch_id).values(item_count=Batch.item_count - len(item_ids))
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return new.id
