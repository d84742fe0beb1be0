"""Typed outcomes: what happened to an item, a call and a batch.

The vocabulary follows shared/vendor-protocols.md: deleted, already gone, retryable, failed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class ItemStatus(str, enum.Enum):
    """Where an item stands. ``pending`` is the only non-final state."""

    PENDING = "pending"
    DELETED = "deleted"
    ALREADY_GONE = "already_gone"
    FAILED = "failed"
    CANCELLED = "cancelled"  # not sent: the job was cancelled first

    @property
    def is_final(self) -> bool:
        return self is not ItemStatus.PENDING


class Outcome(str, enum.Enum):
    """How one vendor answer is classified for one item."""

    DELETED = "deleted"
    ALREADY_GONE = "already_gone"
    RETRYABLE = "retryable"
    FAILED = "failed"


class JobStatus(str, enum.Enum):
    SUBMITTED = "submitted"  # items written, not yet split into batches
    RUNNING = "running"
    COMPLETED = "completed"
    COMPLETED_WITH_FAILURES = "completed_with_failures"
    CANCELLED = "cancelled"  # ended on request: items not yet sent were cancelled, the others kept their status

    @property
    def is_final(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.COMPLETED_WITH_FAILURES, JobStatus.CANCELLED)


class CallbackState(str, enum.Enum):
    """Delivery of a job's end-of-job callback (jobs submitted without a callback URL have none)."""

    PENDING = "pending"  # the job has not ended, or its notification is being delivered
    DELIVERED = "delivered"  # the receiver answered 2xx
    FAILED = "failed"  # every attempt failed; callback_last_error says why


class BatchStatus(str, enum.Enum):
    QUEUED = "queued"  # waiting for a worker (possibly until next_attempt_at)
    IN_FLIGHT = "in_flight"  # leased by one worker
    DONE = "done"  # no pending item left


@dataclass(frozen=True)
class ItemResult:
    """The verdict on one item from one vendor answer."""

    outcome: Outcome
    code: str | None = None
    message: str | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class CallVerdict:
    """A vendor answer, classified.

    Exactly one of these shapes:
    - ``items`` maps every item key sent to its result (the usual case);
    - ``split=True``: the vendor refused the whole call because of an item it did not name; send the
      items again in smaller calls to find it;
    - ``halt_account=True`` together with ``items`` (all FAILED): a configuration problem (bad key,
      no permission) that would fail every other call of the account too.
    ``throttled`` marks answers that mean "too fast" so the limiter can slow down; ``unavailable``
    (derived) marks a call that failed as a whole and may be retried: a 5xx, a timeout, a dropped
    connection.
    """

    http_status: int | None
    code: str | None
    message: str | None
    request_id: str | None
    items: dict[str, ItemResult] = field(default_factory=dict)
    split: bool = False
    halt_account: bool = False
    throttled: bool = False

    @property
    def unavailable(self) -> bool:
        if self.split or self.halt_account or self.throttled or not self.items:
            return False
        server_side = self.http_status is None or self.http_status >= 500
        return server_side and all(result.outcome is Outcome.RETRYABLE for result in self.items.values())
