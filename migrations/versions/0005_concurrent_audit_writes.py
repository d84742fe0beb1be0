"""Audit writes that concurrent batches do not serialize on, and that touch no index.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29

Measured with `mediapurge bench pipeline` on a 2-core machine, two costs held the pipeline at half its
speed:

- job_counts had one counter row per (job, action, status): every batch of a job updated the same few
  rows, and their row locks, held until each commit, queued all the workers' audit writes behind one
  another. Each connection now adds to a shard of its own (its backend pid modulo SHARDS); readers sum
  the shards, a few dozen rows at most per job.
- Recording a call rewrote every index of its hundred items, because ``status`` was in two of them.
  The indexes now hold only columns an audit write never changes ((job_id, id) and batch_id), and the
  items table leaves half of each page free (fillfactor 50) for the row's next version: an item's
  update is then a heap-only tuple (HOT) update, with no index entry written at all.

And accepting a submission spent two thirds of its INSERT of the items in foreign-key checks (a
locking look-up of the job and of the batch for every row). Items are only ever written by the planner,
in the transaction that creates their job and batches, and no code deletes a job or a batch, so items
keep job_id and batch_id as plain indexed columns (vendor_calls and the other tables keep theirs).
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: Union[str, Sequence[str], None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

SHARDS = 64
ITEMS_FILLFACTOR = 50


def _function(shard_column: str, shard_value: str) -> str:
    """The counting trigger's function; with a shard column ("shard, ") and its value, or without ("", "")."""
    return f"""
CREATE OR REPLACE FUNCTION mediapurge_count_items() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO job_counts (job_id, action, status, {shard_column}n)
    SELECT job_id, action, status, {shard_value}count(*) FROM new_items GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT ON CONSTRAINT pk_job_counts DO UPDATE SET n = job_counts.n + EXCLUDED.n;
  ELSE
    INSERT INTO job_counts (job_id, action, status, {shard_column}n)
    SELECT job_id, action, status, {shard_value}sum(delta) FROM (
      SELECT job_id, action, status, -1 AS delta FROM old_items
      UNION ALL
      SELECT job_id, action, status, 1 AS delta FROM new_items
    ) AS changes
    GROUP BY 1, 2, 3 HAVING sum(delta) <> 0 ORDER BY 1, 2, 3
    ON CONFLICT ON CONSTRAINT pk_job_counts DO UPDATE SET n = job_counts.n + EXCLUDED.n;
  END IF;
  RETURN NULL;
END
$$
"""


def upgrade() -> None:
    with op.batch_alter_table("job_counts") as batch:
        batch.add_column(sa.Column("shard", sa.SmallInteger(), nullable=False, server_default="0"))
        batch.drop_constraint("pk_job_counts", type_="primary")
        batch.create_primary_key("pk_job_counts", ["job_id", "action", "status", "shard"])
    with op.batch_alter_table("items") as batch:
        batch.drop_constraint("fk_items_job_id_jobs", type_="foreignkey")
        batch.drop_constraint("fk_items_batch_id_batches", type_="foreignkey")
    op.drop_index("ix_items_job_id_status", table_name="items")
    op.drop_index("ix_items_batch_id_status", table_name="items")
    op.create_index("ix_items_job_id_id", "items", ["job_id", "id"])
    op.create_index("ix_items_batch_id", "items", ["batch_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_function("shard, ", f"pg_backend_pid() % {SHARDS}, "))
        op.execute(f"ALTER TABLE items SET (fillfactor = {ITEMS_FILLFACTOR})")


def downgrade() -> None:
    op.drop_index("ix_items_batch_id", table_name="items")
    op.drop_index("ix_items_job_id_id", table_name="items")
    op.create_index("ix_items_job_id_status", "items", ["job_id", "status"])
    op.create_index("ix_items_batch_id_status", "items", ["batch_id", "status"])
    with op.batch_alter_table("items") as batch:
        batch.create_foreign_key("fk_items_job_id_jobs", "jobs", ["job_id"], ["id"], ondelete="CASCADE")
        batch.create_foreign_key("fk_items_batch_id_batches", "batches", ["batch_id"], ["id"], ondelete="SET NULL")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE items RESET (fillfactor)")
        op.execute(
            "CREATE TEMPORARY TABLE job_counts_total AS "
            "SELECT job_id, action, status, sum(n)::bigint AS n FROM job_counts GROUP BY 1, 2, 3"
        )
        op.execute("DELETE FROM job_counts")
    with op.batch_alter_table("job_counts") as batch:
        batch.drop_constraint("pk_job_counts", type_="primary")
        batch.drop_column("shard")
        batch.create_primary_key("pk_job_counts", ["job_id", "action", "status"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("INSERT INTO job_counts (job_id, action, status, n) SELECT job_id, action, status, n FROM job_counts_total")
        op.execute("DROP TABLE job_counts_total")
        op.execute(_function("", ""))

