"""The media inventory and the retention runs made over it.

Upstream systems register what they hold at the vendors (``inventory`` and its ``inventory_tags``);
retention policies turn what has aged out into ordinary deletion jobs, one per policy and period
(``retention_runs``). See worker/inventory.py and worker/retention.py.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.tables import ID_LENGTH, Base
from models.types import BigId, UTCDateTime, utcnow

TAG_LENGTH = 64
POLICY_NAME_LENGTH = 64
PERIOD_KEY_LENGTH = 32


class InventoryMedia(Base):
    """One medium held at a vendor, named by its ids exactly as a job item holds them.

    ``status`` is an ``InventoryStatus``: ``present`` until a retention job takes it, ``queued`` while
    that job runs (``job_id``), then the item's final status; ``deleted_at`` is set once it is gone.
    """

    __tablename__ = "inventory"
    __table_args__ = (
        UniqueConstraint("action", "account", "group_key", "media_id"),
        # What a policy selects: an action (and account) in a status, oldest first.
        Index(None, "action", "status", "created_at"),
        Index(None, "status", "job_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    action: Mapped[str] = mapped_column(String(64))
    account: Mapped[str] = mapped_column(String(64))
    group_key: Mapped[str] = mapped_column(String(ID_LENGTH))
    media_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)  # when the vendor created it
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(16))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class InventoryTag(Base):
    """One tag of one medium: a table rather than a JSON list, so "tagged trial" is an indexed lookup on
    PostgreSQL and SQLite alike."""

    __tablename__ = "inventory_tags"
    __table_args__ = (Index(None, "tag", "inventory_id"),)

    inventory_id: Mapped[int] = mapped_column(ForeignKey("inventory.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(TAG_LENGTH), primary_key=True)


class RetentionRun(Base):
    """One run of a retention policy for one period. Unique per (policy, period): a beat firing twice, or
    two beats, find the row and make nothing; the job's idempotency key ``retention:<policy>:<period>``
    guards the step before it. ``job_id`` is empty when nothing had aged out."""

    __tablename__ = "retention_runs"
    __table_args__ = (UniqueConstraint("policy", "period"), Index(None, "policy", "created_at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    policy: Mapped[str] = mapped_column(String(POLICY_NAME_LENGTH))
    period: Mapped[str] = mapped_column(String(PERIOD_KEY_LENGTH))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    item_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
