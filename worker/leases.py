"""Exclusive claims on batches: at most one worker sends a batch's items at a time.

A claim is an UPDATE guarded by the batch's state, so two deliveries of the same message (a redelivery
after a worker died, a sweeper's re-enqueue) cannot both win. A lease that outlives its worker expires
and the batch can be claimed again.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, case, exists, false, insert, or_, select, update
from sqlalchemy.orm import Session

from models.tables import AccountHalt, Batch, Item, Job
from worker.outcomes import BatchStatus

# A message may arrive a little before the batch's next_attempt_at (clocks of different hosts).
EARLY_ARRIVAL_SLACK = timedelta(seconds=2)

# Every visit of a batch runs a claim and a release or a finish. They are built once, on the tables
# (Core): an ORM UPDATE built per call (its cache key, the ORM's bulk-update plumbing) cost a quarter
# of a pool process's CPU in the mixed per-key benchmark.
_batches, _items, _jobs, _halts = Batch.__table__, Item.__table__, Job.__table__, AccountHalt.__table__
# The batch, as long as this lease still holds it (a lease that expired and was taken over does not).
_HELD = (_batches.c.id == bindparam("batch_id")) & (_batches.c.lease_token == bindparam("token"))

_CLAIM = (
    update(_batches)
    .where(
        _batches.c.id == bindparam("batch_id"),
        or_(
            _batches.c.status == BatchStatus.QUEUED.value,
            (_batches.c.status == BatchStatus.IN_FLIGHT.value) & (_batches.c.lease_expires_at < bindparam("now")),
        ),
        or_(_batches.c.next_attempt_at.is_(None), _batches.c.next_attempt_at <= bindparam("due_by")),
    )
    .values(
        status=BatchStatus.IN_FLIGHT.value,
        lease_token=bindparam("token"),
        lease_expires_at=bindparam("expires"),
        version=_batches.c.version + 1,
    )
    .returning(
        _batches.c.job_id, _batches.c.action, _batches.c.account, _batches.c.group_key, _batches.c.attempts,
        select(_jobs.c.cancel_requested_at.is_not(None)).where(_jobs.c.id == _batches.c.job_id).scalar_subquery(),
        exists().where(
            _halts.c.job_id == _batches.c.job_id, _halts.c.account == _batches.c.account,
            _batches.c.action.startswith(_halts.c.vendor.concat(".")),
        ),
        _batches.c.item_count,
    )
)

_FINISH = (
    update(_batches)
    .where(_HELD)
    .values(status=BatchStatus.DONE.value, lease_token=None, lease_expires_at=None, finished_at=bindparam("now"))
)

_SPLIT_NEW = insert(_batches).returning(_batches.c.id)
_MOVE_ITEMS = (
    update(_items).where(_items.c.id.in_(bindparam("item_ids", expanding=True))).values(batch_id=bindparam("new_id"))
)
_SHRINK = (
    update(_batches).where(_batches.c.id == bindparam("batch_id")).values(item_count=_batches.c.item_count - bindparam("moved"))
)


@functools.cache
def _release_statement(close_if_cancelled: bool, count_attempt: bool):  # noqa: ANN202
    cancelled = exists().where(_jobs.c.id == _batches.c.job_id, _jobs.c.cancel_requested_at.is_not(None))
    if not close_if_cancelled:
        cancelled = false()
    values: dict = {
        "status": case((cancelled, BatchStatus.DONE.value), else_=BatchStatus.QUEUED.value),
        "finished_at": case((cancelled, bindparam("now", type_=_batches.c.finished_at.type)), else_=None),
        "lease_token": None,
        "lease_expires_at": None,
        "next_attempt_at": case((cancelled, None), else_=bindparam("due_at", type_=_batches.c.next_attempt_at.type)),
    }
    if count_attempt:
        values["attempts"] = _batches.c.attempts + 1
    return (
        update(_batches)
        .where(_HELD)
        .values(**values)
        .returning(_batches.c.status)
    )


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
    params = {
        "batch_id": batch_id, "now": now, "due_by": now + EARLY_ARRIVAL_SLACK, "token": token,
        "expires": now + timedelta(seconds=lease_seconds),
    }
    row = session.execute(_CLAIM, params).first()
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
    params = {"batch_id": lease.batch_id, "token": lease.token, "now": now, "due_at": next_attempt_at}
    status = session.scalar(_release_statement(close_if_cancelled, count_attempt), params)
    session.commit()
    return status != BatchStatus.DONE.value


def finish(session: Session, lease: Lease, now: datetime) -> None:
    session.execute(_FINISH, {"batch_id": lease.batch_id, "token": lease.token, "now": now})
    session.commit()


def split_off(session: Session, batch: Lease, item_ids: list[int], now: datetime) -> int:
    """Move ``item_ids`` out of ``batch`` into a new queued batch; returns its id.

    Used when the vendor refused a call for an id it did not name: each half is then its own batch, so
    the search for the culprit survives a requeue (a rate-limit wait, a crash) instead of starting over.
    The new batch's ordinal is minus the smallest item id it holds: unique, because that item stays
    first in the new batch's first half whenever the new batch is split again.
    """
    new_id = session.scalar(_SPLIT_NEW, {
        "job_id": batch.job_id, "action": batch.action, "account": batch.account, "group_key": batch.group_key,
        "ordinal": -min(item_ids), "status": BatchStatus.QUEUED.value, "item_count": len(item_ids),
        "attempts": batch.attempts, "version": 0, "created_at": now,
    })
    session.execute(_MOVE_ITEMS, {"item_ids": item_ids, "new_id": new_id})
    session.execute(_SHRINK, {"batch_id": batch.batch_id, "moved": len(item_ids)})
    session.commit()
    return new_id
