"""Exclusive claims on batches: at most one worker sends a batch's items at a time.

A claim is an UPDATE guarded by the batch's state, so two deliveries of the same message (a redelivery
after a worker died, a sweeper's re-enqueue) cannot both win. A lease that outlives its worker expires
and the batch can be claimed again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from models.tables import Batch
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
