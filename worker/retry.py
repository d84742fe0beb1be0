"""Retry decisions as values, computed by plain functions (procrastinate's RetryDecision idea)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from worker.outcomes import JobStatus
from worker.settings import RetryPolicy

if TYPE_CHECKING:
    from worker.refs import BatchRef


def backoff_delay(policy: RetryPolicy, attempt: int, rand: Callable[[], float]) -> float:
    """Full jitter (botocore standard mode): rand(0,1) x min(base x 2^(attempt-1), cap)."""
    return rand() * min(policy.backoff_cap, policy.backoff_base * 2 ** max(0, attempt - 1))


@dataclass(frozen=True)
class Finished:
    """No item of the batch is pending any more. ``job_ended`` is the job's final status when closing
    this batch closed the job (its end-of-job callback is then due), else None."""

    job_id: int | None = None
    job_ended: JobStatus | None = None


@dataclass(frozen=True)
class Permit:
    """A rate-limit slot reserved for one call: its time (Redis clock) and the limits' epoch then."""

    slot: float
    epoch: int = 0


@dataclass(frozen=True)
class RunAgain:
    """Run the batch again in ``delay`` seconds; ``permit`` is a rate-limit slot already reserved for it."""

    delay: float
    permit: Permit | None = None
    reason: str = "retry"
    # What the re-sent message names (from the claim, so re-sending reads nothing); not part of the decision.
    ref: BatchRef | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Skipped:
    """Another worker holds the batch, it is not due yet, or it is done: this delivery has nothing to do."""

    reason: str


BatchDecision = Finished | RunAgain | Skipped
