"""The audit schema. The database is the source of truth; the broker only carries these rows' ids."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, MetaData, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from models.types import BigId, UTCDateTime, utcnow

# Stable constraint names, so Alembic migrations and the models agree on every backend.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID_LENGTH = 256  # longest id accepted in a submission (worker.submission enforces it with a message)
CALLBACK_URL_LENGTH = 2000


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Job(Base):
    """One submission: a list of items to delete."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(32))
    source: Mapped[str | None] = mapped_column(String(500))
    item_count: Mapped[int] = mapped_column(Integer, default=0)
    duplicate_count: Mapped[int] = mapped_column(Integer, default=0)
    batch_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    planned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set by a cancel request: batches not yet sent are cancelled, a batch being sent stops before its
    # next vendor call (worker/control.py, worker/executor.py).
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Where a signed POST goes when the job ends, and how its delivery went (worker/callbacks.py).
    callback_url: Mapped[str | None] = mapped_column(String(CALLBACK_URL_LENGTH))
    callback_state: Mapped[str | None] = mapped_column(String(16))
    callback_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    callback_last_error: Mapped[str | None] = mapped_column(Text)
    callback_delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Batch(Base):
    """Items sent together in one vendor call (or, after a split, several smaller ones).

    ``lease_token``/``lease_expires_at`` make a worker's claim exclusive: a second delivery of the same
    message finds the lease held and does nothing. ``next_attempt_at`` keeps backoff waits in the
    database rather than in long broker countdowns.
    """

    __tablename__ = "batches"
    __table_args__ = (
        UniqueConstraint("job_id", "action", "account", "group_key", "ordinal"),
        Index(None, "job_id", "status"),
        Index(None, "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(64))
    account: Mapped[str] = mapped_column(String(64))
    group_key: Mapped[str] = mapped_column(String(ID_LENGTH))
    # Position among the batches of the same (action, account, group_key): the planner's join key.
    ordinal: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    item_count: Mapped[int] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_token: Mapped[str | None] = mapped_column(String(36))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Item(Base):
    """One thing to delete, with its whole audit: status, attempts, the vendor's last word and when.

    ``group_key`` and ``media_id`` hold the vendor's ids: (VideoId, JobId) for DeleteStream, (MediaType,
    MediaId) for DeleteMultipartUpload, (Vendor, FileId) for DeleteMedia, ('', asset_id) for DeleteAssets.
    """

    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("job_id", "action", "account", "group_key", "media_id"),
        # No index holds a column an audit write changes, so recording a call is a heap-only (HOT)
        # update on PostgreSQL: no index entry written (migration 0005, with fillfactor 50).
        Index(None, "job_id", "id"),
        Index(None, "batch_id"),
        {"postgresql_with": {"fillfactor": 50}},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # job_id and batch_id carry no foreign keys: checking them cost two thirds of a submission's INSERT,
    # and only the planner writes items, with their job and batches (migration 0005).
    job_id: Mapped[int] = mapped_column(BigId)
    line: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(64))
    account: Mapped[str] = mapped_column(String(64))
    group_key: Mapped[str] = mapped_column(String(ID_LENGTH))
    media_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    status: Mapped[str] = mapped_column(String(16))
    batch_id: Mapped[int | None] = mapped_column(BigId)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # How many times retry-failed put this item back to pending; each earlier failure is a RetriedFailure.
    retries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    vendor_code: Mapped[str | None] = mapped_column(String(128))
    vendor_message: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    first_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class JobCount(Base):
    """How many of a job's items of one action are in one status, as the sum over ``shard``. Kept by
    PostgreSQL triggers on items (migrations 0004, 0005) so a million-item job's status is a few rows to
    read; empty on SQLite. Each database connection adds to its own shard, so concurrent batches never
    wait on one another's counter rows."""

    __tablename__ = "job_counts"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    action: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True, server_default="0")
    n: Mapped[int] = mapped_column(BigInteger)


class VendorCall(Base):
    """One HTTP call to a vendor. Never holds a signature, key or token."""

    __tablename__ = "vendor_calls"
    __table_args__ = (Index(None, "job_id", "started_at"), Index(None, "batch_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(64))
    account: Mapped[str] = mapped_column(String(64))
    item_count: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    latency_ms: Mapped[float] = mapped_column(Float)
    http_status: Mapped[int | None] = mapped_column(Integer)
    vendor_code: Mapped[str | None] = mapped_column(String(128))
    vendor_message: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(128))
    verdict: Mapped[str] = mapped_column(String(32))


class AccountHalt(Base):
    """An account whose credentials or permissions the vendor refused during a job.

    Its remaining batches in that job fail without calling the vendor, instead of burning every item
    on the same refusal.
    """

    __tablename__ = "account_halts"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    vendor: Mapped[str] = mapped_column(String(16), primary_key=True)
    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    vendor_code: Mapped[str | None] = mapped_column(String(128))
    vendor_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RetriedFailure(Base):
    """An item's failure as it stood when retry-failed put the item back to pending.

    The item row then starts a new round (pending, attempts 0, no vendor code); this row keeps the
    earlier round's audit: its attempts, the vendor's last word and request id, and the batch whose
    vendor_calls show every call made for it.
    """

    __tablename__ = "retried_failures"
    __table_args__ = (Index(None, "job_id"), Index(None, "item_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    round: Mapped[int] = mapped_column(Integer)  # 1 for the failure before the first retry
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id", ondelete="SET NULL"))
    attempts: Mapped[int] = mapped_column(Integer)
    vendor_code: Mapped[str | None] = mapped_column(String(128))
    vendor_message: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(128))
    first_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retried_at: Mapped[datetime] = mapped_column(UTCDateTime)
