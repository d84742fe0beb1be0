"""The Python entrance: submit a job, read its status, write its report. The CLI is a thin shell over it."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from models.tables import Item, Job, JobCount, VendorCall
from models.types import utcnow
from worker.callbacks import callback_url_problem
from worker.errors import JobNotFound, Problem, SubmissionRejected
from worker.outcomes import ItemStatus, JobStatus
from worker.producer import Submitted, submit_job
from worker.readers import detect_format, read_items
from worker.settings import Settings
from worker.validation import ItemValidator, all_fields
from worker.vendors import OPERATIONS

RATE_WINDOW = timedelta(seconds=60)


def validator_for(settings: Settings) -> ItemValidator:
    vendors = {op.vendor for op in OPERATIONS.values()}
    return ItemValidator({vendor: settings.accounts.names(vendor) for vendor in vendors})


def celery_enqueue(job_id: int) -> None:
    from tasks.jobs import send_plan

    send_plan(job_id)


def submit(
    items: Iterable[dict[str, Any]] | str | Path,
    *,
    settings: Settings,
    sessions: sessionmaker[Session],
    idempotency_key: str | None = None,
    fmt: str | None = None,
    enqueue: Callable[[int], None] = celery_enqueue,
    callback_url: str | None = None,
    source: str | None = None,
) -> Submitted:
    """Submit a job from a list of item dicts (or reader rows) or from a JSON Lines / CSV file.

    Raises SubmissionRejected (listing every problem by line and field) and writes nothing if any item
    is bad. The same ``idempotency_key`` returns the existing job. ``callback_url`` receives a signed
    POST when the job ends (worker/callbacks.py).
    """
    validator = validator_for(settings)
    if callback_url is not None:
        check_callback_url(settings, callback_url)
    options = dict(idempotency_key=idempotency_key, callback_url=callback_url)
    if isinstance(items, (str, Path)):
        path = Path(items)
        with path.open("rb") as stream:
            rows = read_items(stream, fmt or detect_format(path), all_fields())
            return submit_job(sessions, rows, validator, enqueue, source=source or str(path)[-500:], **options)
    return submit_job(sessions, items, validator, enqueue, source=source or "python", **options)


def check_callback_url(settings: Settings, url: str) -> None:
    """Refuse (SubmissionRejected, field ``callback_url``) a URL that cannot receive signed callbacks."""
    reason = callback_url_problem(url)
    if reason is None and settings.callbacks.signing_secret is None:
        reason = "this server cannot sign callbacks: callbacks.signing_secret (or signing_secret_file) is not set"
    if reason is not None:
        raise SubmissionRejected([Problem(0, "callback_url", reason)])


@dataclass
class JobSummary:
    job_id: int
    status: JobStatus
    total: int
    counts: dict[ItemStatus, int]
    created_at: datetime
    finished_at: datetime | None
    rate_per_second: float  # items finished per second: over the last minute, or the whole run once finished
    batch_count: int
    duplicate_count: int
    source: str | None = None
    by_action: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def done(self) -> int:
        return self.total - self.counts.get(ItemStatus.PENDING, 0)

    @property
    def progress(self) -> float:
        return self.done / self.total if self.total else 1.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id, "status": self.status.value, "total": self.total, "done": self.done,
            "progress": round(self.progress, 4), "counts": {s.value: self.counts.get(s, 0) for s in ItemStatus},
            "by_action": self.by_action, "rate_per_second": round(self.rate_per_second, 2),
            "batches": self.batch_count, "duplicates_ignored": self.duplicate_count, "source": self.source,
            "created_at": self.created_at.isoformat(), "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


def job_status(session: Session, job_id: int) -> JobSummary:
    job = session.get(Job, job_id)
    if job is None:
        raise JobNotFound(f"no job {job_id}")
    counts: dict[ItemStatus, int] = {}
    by_action: dict[str, dict[str, int]] = {}
    for action, status, count in _status_counts(session, job_id):
        counts[ItemStatus(status)] = counts.get(ItemStatus(status), 0) + count
        by_action.setdefault(action, {})[status] = count
    if job.finished_at is not None:
        # A finished job's rate is its average over its whole run.
        recent, window = job.item_count, (job.finished_at - job.created_at).total_seconds() or 1.0
    else:
        # Items sent in the last minute, from the calls (indexed by job and time), not from the items.
        since = utcnow() - RATE_WINDOW
        recent = session.scalar(
            select(func.coalesce(func.sum(VendorCall.item_count), 0)).where(
                VendorCall.job_id == job_id, VendorCall.started_at > since, VendorCall.verdict != "split"
            )
        ) or 0
        window = min(RATE_WINDOW, utcnow() - job.created_at).total_seconds() or 1.0
    return JobSummary(
        job_id=job.id, status=JobStatus(job.status), total=job.item_count, counts=counts, created_at=job.created_at,
        finished_at=job.finished_at, rate_per_second=recent / window, batch_count=job.batch_count,
        duplicate_count=job.duplicate_count, source=job.source, by_action=by_action,
    )


def _status_counts(session: Session, job_id: int) -> list[tuple[str, str, int]]:
    """(action, status, count) of the job's items: PostgreSQL keeps them in job_counts (triggers,
    migrations 0004, 0005), so a million-item job costs a few rows; elsewhere the items are counted."""
    if session.get_bind().dialect.name == "postgresql":
        total = func.sum(JobCount.n)
        rows = session.execute(
            select(JobCount.action, JobCount.status, total)
            .where(JobCount.job_id == job_id).group_by(JobCount.action, JobCount.status).having(total > 0)
        )
    else:
        rows = session.execute(
            select(Item.action, Item.status, func.count()).where(Item.job_id == job_id).group_by(Item.action, Item.status)
        )
    return [(action, status, int(count)) for action, status, count in rows]


def wait_for_job(
    sessions: sessionmaker[Session],
    job_id: int,
    *,
    timeout: float | None = None,
    poll: float = 0.5,
    on_progress: Callable[[JobSummary], None] | None = None,
) -> JobSummary:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        with sessions() as session:
            summary = job_status(session, job_id)
        if on_progress:
            on_progress(summary)
        if summary.status.is_final:
            return summary
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {summary.status.value} after {timeout} s ({summary.done}/{summary.total} done)")
        time.sleep(poll)


# The report: one row per item, columns named as in a submission so a report can be re-submitted.
ID_COLUMNS = [name for name in all_fields() if name not in ("action", "account")]
AUDIT_COLUMNS = [
    "status", "attempts", "vendor_code", "vendor_message", "request_id", "batch_id",
    "created_at", "first_sent_at", "last_sent_at", "finished_at",
]
REPORT_COLUMNS = ["line", "action", "account", *ID_COLUMNS, *AUDIT_COLUMNS]


def item_row(item: Item) -> dict[str, Any]:
    """One item as the report shows it: its fields named as in a submission, then its audit."""
    op = OPERATIONS[item.action]
    row: dict[str, Any] = {"line": item.line, "action": item.action, "account": item.account}
    if op.group_field:
        row[op.group_field] = item.group_key
    row[op.id_field] = item.media_id
    for name in AUDIT_COLUMNS:
        value = getattr(item, name)
        row[name] = value.isoformat() if isinstance(value, datetime) else value
    return row


def report_rows(session: Session, job_id: int, chunk: int = 5_000) -> Iterator[dict[str, Any]]:
    rows = session.scalars(select(Item).where(Item.job_id == job_id).order_by(Item.line, Item.id)).yield_per(chunk)
    for item in rows:
        yield item_row(item)
        session.expunge(item)


REPORT_FORMATS = ("csv", "json")


def report_chunks(session: Session, job_id: int, fmt: str, rows_per_chunk: int = 500) -> Iterator[str]:
    """The completion report as CSV or a JSON array, in pieces of ``rows_per_chunk`` rows (for streaming).
    Raises JobNotFound or ValueError before the first piece."""
    if fmt not in REPORT_FORMATS:
        raise ValueError(f"unknown report format {fmt!r} (csv or json)")
    if session.get(Job, job_id) is None:
        raise JobNotFound(f"no job {job_id}")
    return _report_chunks(session, job_id, fmt, rows_per_chunk)


def _report_chunks(session: Session, job_id: int, fmt: str, rows_per_chunk: int) -> Iterator[str]:
    buffer = io.StringIO()
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(buffer, fieldnames=REPORT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
    else:
        buffer.write("[")
    for row in report_rows(session, job_id):
        if fmt == "csv":
            writer.writerow(row)
        else:
            buffer.write(("\n" if count == 0 else ",\n") + json.dumps(row, ensure_ascii=False))
        count += 1
        if count % rows_per_chunk == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    if fmt == "json":
        buffer.write("\n]\n" if count else "]\n")
    yield buffer.getvalue()


def write_report(session: Session, job_id: int, out: IO[str], fmt: str) -> int:
    """Write the completion report as CSV or a JSON array; returns the number of rows. Streams."""
    rows = -1  # one piece per row, and one more that closes the report
    for piece in report_chunks(session, job_id, fmt, rows_per_chunk=1):
        out.write(piece)
        rows += 1
    return rows
