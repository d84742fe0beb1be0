"""Split a submitted job into vendor-sized batches, set-based in SQL so a million items never pass
through Python.

Items of one batch share (action, account, group_key): DeleteStream JobIds of one VideoId, DeleteMedia
FileIds of one CDN Vendor, DeleteAssets asset_ids of one project, and are at most the operation's
``max_batch``. Planning is idempotent: a job already planned is left as it is.

Only pending items without a batch are planned: at submission that is every item; after retry-failed
(worker/control.py) it is the failed items put back to pending, whose new batches take ordinals after
the job's existing ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from models.tables import Batch, Job
from models.types import utcnow
from worker.outcomes import BatchStatus, ItemStatus, JobStatus
from worker.refs import BatchRef
from worker.validation import ValidItem
from worker.vendors import OPERATIONS

# Number each item within its (account, group_key) of one action; integer division by the batch size
# gives the ordinal of the batch it belongs to. Portable: PostgreSQL and SQLite >= 3.33.
_NUMBERED = """
    SELECT id, account, group_key,
           :first_ordinal + (row_number() OVER (PARTITION BY account, group_key ORDER BY id) - 1) / :size AS ordinal
    FROM items WHERE job_id = :job_id AND action = :action AND batch_id IS NULL AND status = :pending
"""

_CREATE_BATCHES = text(f"""
    INSERT INTO batches (job_id, action, account, group_key, ordinal, status, item_count, attempts, version, created_at)
    SELECT :job_id, :action, account, group_key, ordinal, :queued, count(*), 0, 0, :now
    FROM ({_NUMBERED}) AS numbered
    GROUP BY account, group_key, ordinal
    ORDER BY min(id)
""")

# MATERIALIZED: the numbering is computed once, whatever join order the planner picks.
_ASSIGN_ITEMS = text(f"""
    WITH numbered AS MATERIALIZED ({_NUMBERED})
    UPDATE items SET batch_id = batches.id
    FROM numbered
    JOIN batches ON batches.job_id = :job_id AND batches.action = :action
         AND batches.account = numbered.account AND batches.group_key = numbered.group_key
         AND batches.ordinal = numbered.ordinal
    WHERE items.id = numbered.id
""")


def plan_job(session: Session, job_id: int) -> bool:
    """Create the job's batches and mark it running. Returns False if it was planned already."""
    query = select(Job).where(Job.id == job_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()  # two plan tasks for one job: the second waits, then sees it planned
    job = session.scalars(query).one()
    if job.status != JobStatus.SUBMITTED.value:
        return False
    actions = session.scalars(
        text("SELECT DISTINCT action FROM items WHERE job_id = :job_id AND batch_id IS NULL AND status = :pending"),
        {"job_id": job_id, "pending": ItemStatus.PENDING.value},
    ).all()
    # Split-off batches have negative ordinals; a re-planned job's new batches come after the others.
    first_ordinal = 1 + session.scalar(
        select(func.coalesce(func.max(Batch.ordinal), -1)).where(Batch.job_id == job_id)
    )
    now = utcnow()
    if actions and session.get_bind().dialect.name == "postgresql":
        # The items were just bulk-inserted: without fresh statistics PostgreSQL believes the job has
        # one item and picks nested loops that take minutes on a large job.
        session.execute(text("ANALYZE items"))
        session.execute(text("ANALYZE batches"))
    for action in actions:
        params = {
            "job_id": job_id, "action": action, "size": OPERATIONS[action].max_batch,
            "first_ordinal": first_ordinal, "pending": ItemStatus.PENDING.value,
        }
        session.execute(_CREATE_BATCHES, {**params, "queued": BatchStatus.QUEUED.value, "now": now})
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("ANALYZE batches"))
        session.execute(_ASSIGN_ITEMS, params)
    batch_count = session.scalar(text("SELECT count(*) FROM batches WHERE job_id = :job_id"), {"job_id": job_id})
    session.execute(
        update(Job).where(Job.id == job_id).values(status=JobStatus.RUNNING.value, planned_at=now, batch_count=batch_count)
    )
    session.commit()
    return True


def queued_batches(session: Session, job_id: int, chunk: int = 10_000) -> Iterator[list[BatchRef]]:
    """The job's batches waiting for a worker, in chunks, interleaving actions and accounts so every
    vendor starts at once instead of one vendor's batches queueing ahead of the others'."""
    rows = session.execute(
        select(Batch.id, Batch.action, Batch.account, Batch.item_count)
        .where(Batch.job_id == job_id, Batch.status == BatchStatus.QUEUED.value)
        .order_by(Batch.id)
    ).yield_per(chunk)
    # A lane keeps its action and account once, in its key, and bare ids and item counts (small ints,
    # shared by Python) in two lists; refs are built a chunk at a time. Memory: about one int per batch.
    lanes: dict[tuple[str, str], tuple[list[int], list[int]]] = {}
    for batch_id, action, account, item_count in rows:
        ids, counts = lanes.setdefault((action, account), ([], []))
        ids.append(batch_id)
        counts.append(item_count)
    out: list[BatchRef] = []
    queues = [(action, account, zip(ids, counts)) for (action, account), (ids, counts) in lanes.items()]
    while queues:  # round-robin over the lanes
        alive = []
        for action, account, queue in queues:
            batch = next(queue, None)
            if batch is not None:
                out.append(BatchRef(batch[0], job_id, action, account, batch[1]))
                alive.append((action, account, queue))
                if len(out) >= chunk:
                    yield out
                    out = []
        queues = alive
    if out:
        yield out


# A submission on PostgreSQL: COPY into a temporary table, then one pass of SQL deduplicates it, numbers
# it into batches and inserts the items with their batch, so a million items are never updated after
# they are written (planning by UPDATE rewrote every row a second time).
_STAGE = """
    CREATE TEMPORARY TABLE submission_items (line integer, action text, account text, group_key text, media_id text)
    ON COMMIT DROP
"""
_COPY = "COPY submission_items (line, action, account, group_key, media_id) FROM STDIN"

# Duplicates of an item keep its first line, as INSERT ... ON CONFLICT DO NOTHING does elsewhere.
_NUMBER_STAGED = """
    CREATE TEMPORARY TABLE submission_numbered ON COMMIT DROP AS
    SELECT line, action, account, group_key, media_id,
           (row_number() OVER (PARTITION BY action, account, group_key ORDER BY line) - 1) / sizes.size AS ordinal
    FROM (
        SELECT DISTINCT ON (action, account, group_key, media_id) line, action, account, group_key, media_id
        FROM submission_items ORDER BY action, account, group_key, media_id, line
    ) AS unique_items
    JOIN (VALUES {sizes}) AS sizes (size_action, size) ON sizes.size_action = unique_items.action
"""

_BATCHES_FROM_STAGED = text("""
    INSERT INTO batches (job_id, action, account, group_key, ordinal, status, item_count, attempts, version, created_at)
    SELECT :job_id, action, account, group_key, ordinal, :queued, count(*), 0, 0, :now
    FROM submission_numbered GROUP BY action, account, group_key, ordinal ORDER BY min(line)
""")

_ITEMS_FROM_STAGED = text("""
    INSERT INTO items (job_id, line, action, account, group_key, media_id, status, batch_id, attempts, retries, created_at)
    SELECT :job_id, n.line, n.action, n.account, n.group_key, n.media_id, :pending, b.id, 0, 0, :now
    FROM submission_numbered AS n
    JOIN batches AS b ON b.job_id = :job_id AND b.action = n.action AND b.account = n.account
         AND b.group_key = n.group_key AND b.ordinal = n.ordinal
    ORDER BY n.line
""")


def stage_submission(session: Session, items: Iterable[ValidItem]) -> None:
    """COPY validated items into this transaction's temporary ``submission_items`` (PostgreSQL)."""
    session.execute(text(_STAGE))
    raw = session.connection().connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(_COPY) as copy:
        for item in items:
            copy.write_row((item.line, item.action, item.account, item.group_key, item.media_id))


def plan_staged_submission(session: Session, job_id: int, now: datetime) -> tuple[int, int]:
    """Deduplicate the staged items, create their batches and insert them planned. Returns (items, batches)."""
    sizes = ", ".join(f"('{action}', {op.max_batch})" for action, op in OPERATIONS.items())
    session.execute(text(_NUMBER_STAGED.format(sizes=sizes)))
    session.execute(text("ANALYZE submission_numbered"))
    params = {"job_id": job_id, "now": now}
    batch_count = session.execute(_BATCHES_FROM_STAGED, {**params, "queued": BatchStatus.QUEUED.value}).rowcount
    session.execute(text("ANALYZE batches"))
    item_count = session.execute(_ITEMS_FROM_STAGED, {**params, "pending": ItemStatus.PENDING.value}).rowcount
    return item_count, batch_count
