"""Run retention policies: turn inventory media that have aged out into ordinary deletion jobs.

A policy runs once per period: the period is ``now`` floored to a multiple of the policy's ``every``
since the Unix epoch, in UTC (``every = "1d"`` periods start at 00:00 UTC), and its key is that start
(``2026-11-22T00:00:00Z``). A run

1. copies the final status of earlier retention jobs' items onto their media (``reconcile``), so media
   deleted are marked deleted and media that failed become eligible again;
2. stops if the period already has its run (``retention_runs`` is unique per policy and period);
3. selects the policy's media: its action, its account if it names one, carrying all its tags, created
   at or before ``now - older_than``, neither gone nor in a retention job still running; oldest first,
   at most ``max_items``;
4. submits them as ONE ordinary job through the usual submit path, with the idempotency key
   ``retention:<policy>:<period>``, then records the run and marks the media queued, in one transaction.

Two runs of one period at once (a beat firing twice, two beats) make one job: the second submission of
the key gets the first's job back, and the second run record hits the unique constraint and writes
nothing. A crash between the job and the run record is repaired by the next firing in the period (the
key returns the saved job) or, failing that, harmlessly: the next period's job holds the same media and
the vendor answers "already gone".

A dry run does steps 3 only and writes nothing, not even step 1.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from models.inventory import InventoryMedia, RetentionRun
from models.tables import Item, Job
from worker.errors import EnqueueFailed, MediapurgeError
from worker.inventory import ELIGIBLE, InventoryStatus, has_all_tags, reconcile
from worker.producer import Submitted, submit_job
from worker.retention_policy import RetentionPolicy
from worker.settings import Settings
from worker.validation import ItemValidator, item_fields

log = logging.getLogger("mediapurge.retention")

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
SAMPLE_SIZE = 10
READ_CHUNK = 5_000


class PolicyNotFound(MediapurgeError):
    """No retention policy of that name is configured."""


class PolicyDisabled(MediapurgeError):
    """The retention policy is disabled; a dry run still shows what it would delete."""


@dataclass(frozen=True)
class RunOutcome:
    policy: str
    period: str
    dry_run: bool
    created: bool  # False: the period already had its run, nothing was made
    matched: int  # media eligible when this run looked (before max_items); 0 when it did not look
    item_count: int  # media in the job (a dry run: that would be)
    job_id: int | None
    sample: list[dict[str, Any]] = field(default_factory=list)  # a dry run: the first media that would go

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def period_start(now: datetime, every: timedelta) -> datetime:
    """The start of the period holding ``now``: periods are ``every`` long, counted from the Unix epoch."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    step = int(every.total_seconds())
    elapsed = int((now - EPOCH).total_seconds() // 1)
    return EPOCH + timedelta(seconds=elapsed - elapsed % step)


def period_key(now: datetime, every: timedelta) -> str:
    return period_start(now, every).strftime("%Y-%m-%dT%H:%M:%SZ")


def idempotency_key(policy_name: str, period: str) -> str:
    return f"retention:{policy_name}:{period}"


def _matching(policy: RetentionPolicy, now: datetime):
    """The policy's media that are due now, oldest first."""
    query = select(InventoryMedia).where(
        InventoryMedia.action == policy.action,
        InventoryMedia.status.in_(ELIGIBLE),
        InventoryMedia.created_at <= now - policy.older_than,
        *has_all_tags(policy.tags),
    )
    if policy.account is not None:
        query = query.where(InventoryMedia.account == policy.account)
    return query.order_by(InventoryMedia.created_at, InventoryMedia.id)


def _count(session: Session, query) -> int:
    return session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0


def _as_items(session: Session, query) -> Iterator[dict[str, Any]]:
    for media in session.scalars(query).yield_per(READ_CHUNK):
        yield item_fields(media.action, media.account, media.group_key, media.media_id)


def _existing_run(session: Session, name: str, period: str) -> RetentionRun | None:
    return session.scalars(select(RetentionRun).where(RetentionRun.policy == name, RetentionRun.period == period)).first()


def run_policy(
    sessions: sessionmaker[Session],
    name: str,
    policy: RetentionPolicy,
    now: datetime,
    *,
    validator: ItemValidator,
    enqueue: Callable[[int], None],
    dry_run: bool = False,
    sample_size: int = SAMPLE_SIZE,
) -> RunOutcome:
    """Run ``policy`` for the period holding ``now`` (see the module docstring)."""
    period = period_key(now, policy.every)
    with sessions() as session:
        if not dry_run:
            reconcile(session)
        done = _existing_run(session, name, period)
        if done is not None:
            return RunOutcome(name, period, dry_run, False, 0, done.item_count, done.job_id)
        query = _matching(policy, now)
        matched = _count(session, query)
        if policy.max_items is not None:
            query = query.limit(policy.max_items)
        count = min(matched, policy.max_items or matched)
        if dry_run:
            sample = [
                {**item_fields(m.action, m.account, m.group_key, m.media_id), "created_at": m.created_at.isoformat()}
                for m in session.scalars(query.limit(min(sample_size, count)))
            ] if count else []
            return RunOutcome(name, period, True, False, matched, count, None, sample)
        key = idempotency_key(name, period)
        submitted: Submitted | None = None
        job_saved = session.scalar(select(Job.id).where(Job.idempotency_key == key)) is not None
        if count or job_saved:
            try:
                # The media are read in chunks as the job is written, never held in memory all at once.
                submitted = submit_job(
                    sessions, _as_items(session, query), validator, enqueue, idempotency_key=key,
                    source=f"retention policy {name}",
                )
            except EnqueueFailed:
                # The job is saved and the sweeper plans it once the broker is back: record the run anyway,
                # so the next period does not put the same media in a second job.
                job = session.scalars(select(Job).where(Job.idempotency_key == key)).one()
                _record(sessions, name, period, matched, Submitted(job.id, True, job.item_count, job.duplicate_count), now)
                raise
    return _record(sessions, name, period, matched, submitted, now)


def _record(
    sessions: sessionmaker[Session], name: str, period: str, matched: int, submitted: Submitted | None, now: datetime
) -> RunOutcome:
    """Save the run and mark its job's media queued, in one transaction; the unique (policy, period) makes
    a concurrent second run of the period write nothing."""
    job_id = submitted.job_id if submitted else None
    item_count = submitted.item_count if submitted else 0
    with sessions() as session:
        session.add(RetentionRun(policy=name, period=period, job_id=job_id, item_count=item_count, created_at=now))
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
            done = _existing_run(session, name, period)
            if done is None:
                raise
            return RunOutcome(name, period, False, False, matched, done.item_count, done.job_id)
        if job_id is not None:
            in_job = exists().where(
                Item.job_id == job_id, Item.action == InventoryMedia.action, Item.account == InventoryMedia.account,
                Item.group_key == InventoryMedia.group_key, Item.media_id == InventoryMedia.media_id,
            )
            session.execute(
                update(InventoryMedia)
                .where(InventoryMedia.status.in_(ELIGIBLE), in_job)
                .values(status=InventoryStatus.QUEUED.value, job_id=job_id)
                .execution_options(synchronize_session=False)
            )
        session.commit()
    log.info("retention policy %s, period %s: job %s with %d media", name, period, job_id, item_count)
    return RunOutcome(name, period, False, True, matched, item_count, job_id)


def policy_named(settings: Settings, name: str) -> RetentionPolicy:
    try:
        return settings.retention_policies[name]
    except KeyError:
        configured = ", ".join(sorted(settings.retention_policies)) or "none"
        raise PolicyNotFound(f"no retention policy named {name!r} (configured: {configured})") from None


def run_named(
    settings: Settings,
    sessions: sessionmaker[Session],
    name: str,
    now: datetime,
    *,
    enqueue: Callable[[int], None],
    dry_run: bool = False,
) -> RunOutcome:
    """Run the configured policy ``name``: what the beat task, the CLI and the API call."""
    from worker.jobs import validator_for

    policy = policy_named(settings, name)
    if not policy.enabled and not dry_run:
        raise PolicyDisabled(f"retention policy {name!r} is disabled (enabled = false); a dry run shows what it would delete")
    return run_policy(sessions, name, policy, now, validator=validator_for(settings), enqueue=enqueue, dry_run=dry_run)


def recent_runs(session: Session, name: str, limit: int = 5) -> list[dict[str, Any]]:
    rows = session.execute(
        select(RetentionRun, Job.status)
        .outerjoin(Job, Job.id == RetentionRun.job_id)
        .where(RetentionRun.policy == name)
        .order_by(RetentionRun.created_at.desc(), RetentionRun.id.desc())
        .limit(limit)
    ).all()
    return [
        {"period": run.period, "job_id": run.job_id, "item_count": run.item_count,
         "job_status": status, "created_at": run.created_at.isoformat()}
        for run, status in rows
    ]


def policy_summaries(session: Session, settings: Settings, runs: int = 5) -> list[dict[str, Any]]:
    """Every configured policy with its most recent runs, newest first."""
    return [
        {"name": name, **policy.describe(), "runs": recent_runs(session, name, runs)}
        for name, policy in sorted(settings.retention_policies.items())
    ]

