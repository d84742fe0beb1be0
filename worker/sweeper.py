"""The periodic sweeper: finds work the broker lost and hands it back.

The database is the source of truth and the broker only a delivery service, so anything the broker can
lose is rebuilt from the database here:
- a job still ``submitted`` a while after it was saved (its plan task was lost, or never sent);
- a batch ``in_flight`` whose lease expired (its worker was killed mid-batch);
- a batch ``queued`` and overdue (its message was lost: a Redis restart without persistence, a worker
  SIGKILLed with the message unacknowledged, a crash between the commit and the send);
- a job whose batches are all done but that is still ``running`` (a crash before it was closed);
- a job that ended with its callback never attempted (the notification's message was lost).

Re-sending is always safe: a batch is claimed under a lease, so a duplicate message finds nothing to do.
To avoid piling duplicates onto a healthy backlog, overdue batches are only re-sent while the broker's
queue is short: when it is long, messages are still flowing and the lost ones come up once it drains.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import Session

from models.tables import Batch, Job
from worker import callbacks
from worker.audit import finish_job_if_done
from worker.outcomes import BatchStatus, CallbackState, JobStatus
from worker.refs import BATCH_REF_COLUMNS, BatchRef


@dataclass(frozen=True)
class SweepPolicy:
    grace: timedelta  # how overdue a batch or a submitted job must be before it counts as lost
    queue_threshold: int  # re-send overdue batches only while the broker queue holds fewer messages
    limit: int = 5_000  # most batches re-sent per sweep


@dataclass(frozen=True)
class SweepResult:
    replanned_jobs: int
    expired_leases: int
    resent_batches: int
    closed_jobs: int
    resent_callbacks: int = 0


def sweep(
    session: Session,
    now: datetime,
    policy: SweepPolicy,
    queue_length: Callable[[], int],
    send_plan: Callable[[int], None],
    send_batch: Callable[[BatchRef], None],
    send_callback: Callable[[int], None] = lambda job_id: None,
) -> SweepResult:
    """``send_callback(job_id)`` is called for every job with a callback URL this sweep closed and for
    every ended job whose callback was never attempted."""
    stale = now - policy.grace
    lost_jobs = session.scalars(
        select(Job.id).where(Job.status == JobStatus.SUBMITTED.value, Job.created_at < stale).limit(1_000)
    ).all()
    for job_id in lost_jobs:
        send_plan(job_id)

    # A lease that expired belongs to a dead worker: the batch goes back to the queue and is re-sent now.
    expired = [BatchRef(*row) for row in session.execute(
        update(Batch)
        .where(Batch.status == BatchStatus.IN_FLIGHT.value, Batch.lease_expires_at < now)
        .values(status=BatchStatus.QUEUED.value, lease_token=None, lease_expires_at=None, next_attempt_at=now)
        .returning(*BATCH_REF_COLUMNS)
        .execution_options(synchronize_session=False)
    )]
    session.commit()
    for ref in expired:
        send_batch(ref)

    overdue: list[BatchRef] = []
    if queue_length() < policy.queue_threshold:
        # Due long ago (next_attempt_at), or never given a due time and created long ago (planned or
        # split off), yet still queued: its message is gone.
        overdue = [BatchRef(*row) for row in session.execute(
            select(*BATCH_REF_COLUMNS)
            .join(Job, Job.id == Batch.job_id)
            .where(
                Job.status == JobStatus.RUNNING.value,
                Batch.status == BatchStatus.QUEUED.value,
                Batch.id.notin_([ref.id for ref in expired]) if expired else True,
                or_(
                    and_(Batch.next_attempt_at.is_(None), Batch.created_at < stale),
                    Batch.next_attempt_at < stale,
                ),
            )
            .order_by(Batch.id)
            .limit(policy.limit)
        )]
        for ref in overdue:
            send_batch(ref)

    closed = 0
    finished_candidates = session.scalars(
        select(Job.id).where(
            Job.status == JobStatus.RUNNING.value,
            ~exists().where(Batch.job_id == Job.id, Batch.status != BatchStatus.DONE.value),
        )
    ).all()
    for job_id in finished_candidates:
        if finish_job_if_done(session, job_id, now) is not None:
            closed += 1
            if callbacks.wanted(session, job_id):
                send_callback(job_id)

    # Only never-attempted ones: a failed attempt already has its retry in the broker.
    lost_callbacks = session.scalars(
        select(Job.id).where(
            Job.status.in_([s.value for s in JobStatus if s.is_final]),
            Job.callback_state == CallbackState.PENDING.value,
            Job.callback_attempts == 0,
            Job.finished_at < stale,
        ).limit(1_000)
    ).all()
    for job_id in lost_callbacks:
        send_callback(job_id)
    return SweepResult(len(lost_jobs), len(expired), len(overdue), closed, len(lost_callbacks))
