"""job_counts: items per (job, action, status), kept by PostgreSQL triggers so status never scans items.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22

On PostgreSQL, statement-level triggers with transition tables fold every INSERT and UPDATE of items
into the counts, whatever code path wrote them (audit, cancel, retry): one aggregated upsert per
statement, in a fixed row order so concurrent batches never deadlock on the counters. Items are only
deleted with their job (ON DELETE CASCADE), which removes the job's counts too.

SQLite (the embedded default, small jobs) gets the table but no triggers: there the status query
counts the items themselves, which is fast at that size.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: Union[str, Sequence[str], None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_FUNCTION = """
CREATE FUNCTION mediapurge_count_items() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO job_counts (job_id, action, status, n)
    SELECT job_id, action, status, count(*) FROM new_items GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (job_id, action, status) DO UPDATE SET n = job_counts.n + EXCLUDED.n;
  ELSE
    INSERT INTO job_counts (job_id, action, status, n)
    SELECT job_id, action, status, sum(delta) FROM (
      SELECT job_id, action, status, -1 AS delta FROM old_items
      UNION ALL
      SELECT job_id, action, status, 1 AS delta FROM new_items
    ) AS changes
    GROUP BY 1, 2, 3 HAVING sum(delta) <> 0 ORDER BY 1, 2, 3
    ON CONFLICT (job_id, action, status) DO UPDATE SET n = job_counts.n + EXCLUDED.n;
  END IF;
  RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "job_counts",
        sa.Column("job_id", BIG_ID, nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "action", "status", name="pk_job_counts"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_job_counts_job_id_jobs", ondelete="CASCADE"),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_FUNCTION)
    op.execute(
        "CREATE TRIGGER items_counted_on_insert AFTER INSERT ON items REFERENCING NEW TABLE AS new_items "
        "FOR EACH STATEMENT EXECUTE FUNCTION mediapurge_count_items()"
    )
    op.execute(
        "CREATE TRIGGER items_counted_on_update AFTER UPDATE ON items REFERENCING OLD TABLE AS old_items "
        "NEW TABLE AS new_items FOR EACH STATEMENT EXECUTE FUNCTION mediapurge_count_items()"
    )
    # Jobs that existed before this revision.
    op.execute(
        "INSERT INTO job_counts (job_id, action, status, n) SELECT job_id, action, status, count(*) FROM items GROUP BY 1, 2, 3"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS items_counted_on_update ON items")
        op.execute("DROP TRIGGER IF EXISTS items_counted_on_insert ON items")
        op.execute("DROP FUNCTION IF EXISTS mediapurge_count_items()")
    op.drop_table("job_counts")
