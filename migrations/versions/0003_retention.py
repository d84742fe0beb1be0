"""The media inventory and retention runs: inventory, inventory_tags, retention_runs.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

Written by hand to match models/inventory.py, constraint names included; plain SQLAlchemy types, as in
0001 (UTCDateTime stores as DateTime(timezone=True); BigId is INTEGER on SQLite).
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "inventory",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("group_key", sa.String(256), nullable=False),
        sa.Column("media_id", sa.String(256), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("registered_at", _utc(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("job_id", BIG_ID, nullable=True),
        sa.Column("deleted_at", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_inventory"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_inventory_job_id_jobs", ondelete="SET NULL"),
        sa.UniqueConstraint(
            "action", "account", "group_key", "media_id", name="uq_inventory_action_account_group_key_media_id"
        ),
    )
    op.create_index("ix_inventory_action_status_created_at", "inventory", ["action", "status", "created_at"])
    op.create_index("ix_inventory_status_job_id", "inventory", ["status", "job_id"])

    op.create_table(
        "inventory_tags",
        sa.Column("inventory_id", BIG_ID, nullable=False),
        sa.Column("tag", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("inventory_id", "tag", name="pk_inventory_tags"),
        sa.ForeignKeyConstraint(
            ["inventory_id"], ["inventory.id"], name="fk_inventory_tags_inventory_id_inventory", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_inventory_tags_tag_inventory_id", "inventory_tags", ["tag", "inventory_id"])

    op.create_table(
        "retention_runs",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("policy", sa.String(64), nullable=False),
        sa.Column("period", sa.String(32), nullable=False),
        sa.Column("job_id", BIG_ID, nullable=True),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_retention_runs"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_retention_runs_job_id_jobs", ondelete="SET NULL"),
        sa.UniqueConstraint("policy", "period", name="uq_retention_runs_policy_period"),
    )
    op.create_index("ix_retention_runs_policy_created_at", "retention_runs", ["policy", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_retention_runs_policy_created_at", table_name="retention_runs")
    op.drop_table("retention_runs")
    op.drop_index("ix_inventory_tags_tag_inventory_id", table_name="inventory_tags")
    op.drop_table("inventory_tags")
    op.drop_index("ix_inventory_status_job_id", table_name="inventory")
    op.drop_index("ix_inventory_action_status_created_at", table_name="inventory")
    op.drop_table("inventory")
