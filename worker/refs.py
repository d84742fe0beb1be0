"""What a task message names, and the text Flower shows for it.

A message carries ids only (the database is the source of truth). Flower and the worker logs show a
task's ``argsrepr``/``kwargsrepr`` instead of its arguments, so each send states, next to the ids, the
work they stand for: ``job=12 batch=345 zego.DeleteMedia account=default items=100``. Account names are
configuration labels; no key, secret or media id ever appears.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.tables import Batch
from worker.retry import Permit


@dataclass(frozen=True, slots=True)
class BatchRef:
    """A batch as a message names it: its id, and what Flower shows about the work."""

    id: int
    job_id: int
    action: str
    account: str
    item_count: int

    @property
    def argsrepr(self) -> str:
        return f"job={self.job_id} batch={self.id} {self.action} account={self.account} items={self.item_count}"


# The columns a BatchRef is read from, in its field order.
BATCH_REF_COLUMNS = (Batch.id, Batch.job_id, Batch.action, Batch.account, Batch.item_count)


def batch_refs(session: Session, batch_ids: Iterable[int]) -> list[BatchRef]:
    """The refs of ``batch_ids`` that exist, in id order."""
    ids = list(batch_ids)
    if not ids:
        return []
    rows = session.execute(select(*BATCH_REF_COLUMNS).where(Batch.id.in_(ids)).order_by(Batch.id))
    return [BatchRef(*row) for row in rows]


def plan_argsrepr(job_id: int) -> str:
    return f"job={job_id}"


def slot_kwargsrepr(permit: Permit | None) -> str | None:
    """The kwargs text of a batch re-sent with a reserved rate-limit slot (Redis time, seconds)."""
    return None if permit is None else f"permit_slot={permit.slot:.3f} permit_epoch={permit.epoch}"
