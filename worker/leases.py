"""Exclusive claims on batches: at most one worker sends a batch's items at a time.

A claim is an UPDATE guarded by the batch's state, so two deliveries of the same message (a redelivery
after a worker died, a sweeper's re-enqueue) cannot both win. A lease that outlives its worker expires
and the batch can be claimed again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from models.tables import Batch, Item
from worker.outcomes import BatchStatus

# A message may arrive a little before the batch's next_attempt_at (clocks of different hosts).
EARLY_ARRIVAL_SLACK = timedelta(seconds=2)


@dataclass(frozen=True)
class Lease:
    batch_id: int
    token: str


def claim(session: Session, batch_id: int, now: datetime, lease_seconds: float) -> Lease | None:
    token = str(uuid.uuid4())
    result = session.execute(
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
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return Lease(batch_id, token) if result.rowcount == 1 else None


def release(session: Session, lease: Lease, *, next_attempt_at: datetime | None, count_attempt: bool) -> None:
    """Give the batch back to the queue, due at ``next_attempt_at``."""
    values: dict = {
        "status": BatchStatus.QUEUED.value,
        "lease_token": None,
        "lease_expires_at": None,
        "next_attempt_at": next_attempt_at,
    }
    if count_attempt:
        values["attempts"] = Batch.attempts + 1
    session.execute(
        update(Batch)
        .where(Batch.id == lease.batch_id, Batch.lease_token == lease.token)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def finish(session: Session, lease: Lease, now: datetime) -> None:
    session.execute(
        update(Batch)
        .where(Batch.id == lease.batch_id, Batch.lease_token == lease.token)
        .values(status=BatchStatus.DONE.value, lease_token=None, lease_expires_at=None, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def split_off(session: Session, batch: Batch, item_ids: list[int], now: datetime) -> int:
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
    remaining = session.scalar(select(Batch.item_count).where(Batch.id == batch.id)) - len(item_ids)
    session.execute(update(Batch).where(Batch.id == batch.id).values(item_count=remaining).execution_options(synchronize_session=False))
    session.commit()
    return new.id
