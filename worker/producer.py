"""Accept a deletion job: validate every item, write the job and its items in one transaction, then
enqueue one small task that carries only the job's id.

Either the whole submission is written or nothing is: items are written as they are read (memory stays
flat), and the transaction is rolled back if any line turns out to be bad. On PostgreSQL they are
COPYed into a temporary table and planned into batches by SQL in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from models.tables import Item, Job
from models.types import utcnow
from worker.errors import EnqueueFailed, Problem, SubmissionRejected
from worker import planner
from worker.outcomes import CallbackState, ItemStatus, JobStatus
from worker.readers import Row
from worker.validation import ItemValidator, ValidItem

INSERT_CHUNK = 5_000
MAX_PROBLEMS_SHOWN = 100
IDEMPOTENCY_KEY_LENGTH = 200


@dataclass(frozen=True)
class Submitted:
    job_id: int
    created: bool  # False when the idempotency key named an existing job
    item_count: int
    duplicate_count: int
    status: JobStatus = JobStatus.SUBMITTED


def _insert_ignoring_duplicates(session: Session):
    """INSERT ... ON CONFLICT DO NOTHING: a duplicate item of the same job is kept once."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(Item).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(Item).on_conflict_do_nothing()
    return insert(Item).prefix_with("IGNORE")


def _rows(lines: Iterable[Row] | Iterable[dict[str, Any]]) -> Iterator[Row]:
    """Accept rows from a reader, or plain dicts from Python (numbered from 1)."""
    for number, row in enumerate(lines, start=1):
        if isinstance(row, Row):
            yield row
        else:
            yield Row(number, row if isinstance(row, dict) else Problem(number, None, f"expected an object, got {type(row).__name__}"))


class Screening:
    """Validate rows as they stream by. Iterating yields the valid ones, until the first problem: after
    it nothing will be kept, so nothing more is yielded, but every line is still checked and counted.
    Keeps the first MAX_PROBLEMS_SHOWN problems."""

    def __init__(self, lines: Iterable[Row] | Iterable[dict[str, Any]], validate: Callable[[int, dict[str, Any]], Any], valid: type) -> None:
        self._lines, self._validate, self._valid = lines, validate, valid
        self.problems: list[Problem] = []
        self.problem_count = 0
        self.accepted = 0

    def __iter__(self) -> Iterator[Any]:
        for number, row in _rows(self._lines):
            result = row if isinstance(row, Problem) else self._validate(number, row)
            if isinstance(result, self._valid):
                self.accepted += 1
                if not self.problem_count:
                    yield result
                continue
            for problem in [result] if isinstance(result, Problem) else result:
                self.problem_count += 1
                if len(self.problems) < MAX_PROBLEMS_SHOWN:
                    self.problems.append(problem)

    def rejection(self, when_empty: str) -> SubmissionRejected | None:
        """The refusal to raise once the rows are consumed (``when_empty`` if there were none), or None."""
        if not self.problem_count and self.accepted == 0:
            return SubmissionRejected([Problem(0, None, when_empty)], 1)
        return SubmissionRejected(self.problems, self.problem_count) if self.problem_count else None


def _existing(session: Session, key: str) -> Submitted | None:
    job = session.scalars(select(Job).where(Job.idempotency_key == key)).first()
    if job is None:
        return None
    return Submitted(job.id, False, job.item_count, job.duplicate_count, JobStatus(job.status))


def submit_job(
    sessions: sessionmaker[Session],
    lines: Iterable[Row] | Iterable[dict[str, Any]],
    validator: ItemValidator,
    enqueue: Callable[[int], None],
    *,
    idempotency_key: str | None = None,
    source: str | None = None,
    callback_url: str | None = None,
) -> Submitted:
    """Write a job and its items, then ``enqueue(job_id)``. Raises SubmissionRejected, writing nothing.

    ``callback_url`` must have been validated by the caller (worker.jobs.submit does)."""
    if idempotency_key is not None and not (0 < len(idempotency_key) <= IDEMPOTENCY_KEY_LENGTH):
        raise SubmissionRejected([Problem(0, "idempotency_key", f"must be 1 to {IDEMPOTENCY_KEY_LENGTH} characters")])
    with sessions() as session:
        if idempotency_key is not None and (found := _existing(session, idempotency_key)):
            if found.status is JobStatus.SUBMITTED:
                _enqueue(enqueue, found.job_id)  # the first submission saved it but could not enqueue it
            return found
        try:
            submitted = _write(session, lines, validator, idempotency_key, source, callback_url)
        except IntegrityError:
            # Another submission with the same key committed first: answer with its job.
            session.rollback()
            found = _existing(session, idempotency_key) if idempotency_key else None
            if found is None:
                raise
            return found
    _enqueue(enqueue, submitted.job_id)
    return submitted


def _enqueue(enqueue: Callable[[int], None], job_id: int) -> None:
    try:
        enqueue(job_id)
    except Exception as exc:
        raise EnqueueFailed(
            f"job {job_id} is saved but could not be queued ({type(exc).__name__}: {exc}); submit it again with the "
            "same idempotency key once the broker is back, and it will be queued"
        ) from exc


def _write(
    session: Session,
    lines: Iterable[Row] | Iterable[dict[str, Any]],
    validator: ItemValidator,
    idempotency_key: str | None,
    source: str | None,
    callback_url: str | None,
) -> Submitted:
    job = Job(
        idempotency_key=idempotency_key, status=JobStatus.SUBMITTED.value, source=source, callback_url=callback_url,
        callback_state=CallbackState.PENDING.value if callback_url else None, callback_attempts=0,
    )
    session.add(job)
    session.flush()
    now = utcnow()
    screening = Screening(lines, validator.validate, ValidItem)

    postgresql_copy = session.get_bind().dialect.name == "postgresql"
    if postgresql_copy:
        planner.stage_submission(session, screening)
    else:
        statement = _insert_ignoring_duplicates(session)
        rows = (
            {
                "job_id": job.id, "line": item.line, "action": item.action, "account": item.account,
                "group_key": item.group_key, "media_id": item.media_id,
                "status": ItemStatus.PENDING.value, "attempts": 0, "created_at": now,
            }
            for item in screening
        )
        while chunk := list(islice(rows, INSERT_CHUNK)):
            session.execute(statement, chunk)
    if rejection := screening.rejection("the submission holds no items"):
        session.rollback()
        raise rejection

    if postgresql_copy:
        # Deduplicated, batched and inserted in SQL: the items are born planned (worker/planner.py).
        item_count, job.batch_count = planner.plan_staged_submission(session, job.id, now)
    else:
        item_count = session.scalar(select(func.count()).select_from(Item).where(Item.job_id == job.id)) or 0
    job.item_count = item_count
    job.duplicate_count = screening.accepted - item_count
    session.commit()
    return Submitted(job.id, True, item_count, job.duplicate_count)
