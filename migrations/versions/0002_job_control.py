"""Job control: cancellation, end-of-job callbacks, and the audit of retried failures.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

jobs gains cancel_requested_at and the callback's URL and delivery state; items gains ``retries``;
retried_failures keeps each failure that retry-failed put back to pending. Plain SQLAlchemy types, as in
0001. SQLite (3.35+) drops columns natively, so the downgrade needs no table rebuild (a rebuild of
``jobs`` would cascade-delete every item through the foreign keys).
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

JOB_COLUMNS = ("cancel_requested_at", "callback_url", "callback_state", "callback_attempts", "callback_last_error", "callback_delivered_at")


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("jobs", sa.Column("cancel_requested_at", _utc(), nullable=True))
    op.add_column("jobs", sa.Column("callback_url", sa.String(2000), nullable=True))
    op.add_column("jobs", sa.Column("callback_state", sa.String(16), nullable=True))
    op.add_column("jobs", sa.Column("callback_attempts", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("jobs", sa.Column("callback_last_error", sa.Text(), nullable=True))
    op.add_column("jobs", sa.Column("callback_delivered_at", _utc(), nullable=True))
    op.add_column("items", sa.Column("retries", sa.Integer(), nullable=False, server_default="0"))

    op.create_table(
        "retried_failures",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("job_id", BIG_ID, nullable=False),
        sa.Column("item_id", BIG_ID, nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("batch_id", BIG_ID, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("vendor_code", sa.String(128), nullable=True),
        sa.Column("vendor_message", sa.Text(), nullable=True),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("first_sent_at", _utc(), nullable=True),
        sa.Column("last_sent_at", _utc(), nullable=True),
        sa.Column("failed_at", _utc(), nullable=True),
        sa.Column("retried_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_retried_failures"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_retried_failures_job_id_jobs", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], name="fk_retried_failures_item_id_items", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name="fk_retried_failures_batch_id_batches", ondelete="SET NULL"
        ),
    )
    op.create_index("ix_retried_failures_job_id", "retried_failures", ["job_id"])
    op.create_index("ix_retried_failures_item_id", "retried_failures", ["item_id"])


def downgrade() -> None:
    op.drop_index("ix_retried_failures_item_id", table_name="retried_failures")
    op.drop_index("ix_retried_failures_job_id", table_name="retried_failures")
    op.drop_table("retried_failures")
    op.drop_column("items", "retries")
    for column in reversed(JOB_COLUMNS):
        op.drop_column("jobs", column)
