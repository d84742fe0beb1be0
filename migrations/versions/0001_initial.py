"""The audit schema: jobs, batches, items, vendor_calls, account_halts.

Revision ID: 0001
Revises:
Create Date: 2025-11-22

Written by hand to match models/tables.py, constraint names included (its naming convention spelled
out). Types are plain SQLAlchemy ones, not imported from models, so this revision keeps meaning what it
meant when the models change: models.types.UTCDateTime stores as DateTime(timezone=True), and BigId is
BIGINT except on SQLite, which only auto-increments a column declared exactly INTEGER PRIMARY KEY.
tests/integration/test_migrations.py checks that an upgraded database and the models do not differ.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("source", sa.String(500), nullable=True),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("duplicate_count", sa.Integer(), nullable=False),
        sa.Column("batch_count", sa.Integer(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("planned_at", _utc(), nullable=True),
        sa.Column("finished_at", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.UniqueConstraint("idempotency_key", name="uq_jobs_idempotency_key"),
    )

    op.create_table(
        "batches",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("job_id", BIG_ID, nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("group_key", sa.String(256), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _utc(), nullable=True),
        sa.Column("lease_token", sa.String(36), nullable=True),
        sa.Column("lease_expires_at", _utc(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("finished_at", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_batches"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_batches_job_id_jobs", ondelete="CASCADE"),
        sa.UniqueConstraint(
            "job_id", "action", "account", "group_key", "ordinal",
            name="uq_batches_job_id_action_account_group_key_ordinal",
        ),
    )
    op.create_index("ix_batches_job_id_status", "batches", ["job_id", "status"])
    op.create_index("ix_batches_status_next_attempt_at", "batches", ["status", "next_attempt_at"])

    op.create_table(
        "items",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("job_id", BIG_ID, nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("group_key", sa.String(256), nullable=False),
        sa.Column("media_id", sa.String(256), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("batch_id", BIG_ID, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("vendor_code", sa.String(128), nullable=True),
        sa.Column("vendor_message", sa.Text(), nullable=True),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("first_sent_at", _utc(), nullable=True),
        sa.Column("last_sent_at", _utc(), nullable=True),
        sa.Column("finished_at", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_items"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_items_job_id_jobs", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name="fk_items_batch_id_batches", ondelete="SET NULL"
        ),
        sa.UniqueConstraint(
            "job_id",
            "action",
            "account",
            "group_key",
            "media_id",
            name="uq_items_job_id_action_account_group_key_media_id",
        ),
    )
    op.create_index("ix_items_job_id_status", "items", ["job_id", "status"])
    op.create_index("ix_items_batch_id_status", "items", ["batch_id", "status"])

    op.create_table(
        "vendor_calls",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("job_id", BIG_ID, nullable=False),
        sa.Column("batch_id", BIG_ID, nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("started_at", _utc(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("vendor_code", sa.String(128), nullable=True),
        sa.Column("vendor_message", sa.Text(), nullable=True),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("verdict", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_vendor_calls"),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name="fk_vendor_calls_job_id_jobs", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name="fk_vendor_calls_batch_id_batches", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_vendor_calls_job_id_started_at", "vendor_calls", ["job_id", "started_at"])
    op.create_index("ix_vendor_calls_batch_id", "vendor_calls", ["batch_id"])

    op.create_table(
        "account_halts",
        sa.Column("job_id", BIG_ID, nullable=False),
        sa.Column("vendor", sa.String(16), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("vendor_code", sa.String(128), nullable=True),
        sa.Column("vendor_message", sa.Text(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "vendor", "account", name="pk_account_halts"),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name="fk_account_halts_job_id_jobs", ondelete="CASCADE"
        ),
    )


def downgrade() -> None:
    op.drop_table("account_halts")
    op.drop_index("ix_vendor_calls_batch_id", table_name="vendor_calls")
    op.drop_index("ix_vendor_calls_job_id_started_at", table_name="vendor_calls")
    op.drop_table("vendor_calls")
    op.drop_index("ix_items_batch_id_status", table_name="items")
    op.drop_index("ix_items_job_id_status", table_name="items")
    op.drop_table("items")
    op.drop_index("ix_batches_status_next_attempt_at", table_name="batches")
    op.drop_index("ix_batches_job_id_status", table_name="batches")
    op.drop_table("batches")
    op.drop_table("jobs")
