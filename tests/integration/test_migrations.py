"""The migrations build exactly the schema the models declare, on PostgreSQL and on SQLite."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from pprint import pformat

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import UniqueConstraint, create_engine, inspect, pool
from sqlalchemy import text as sa_text

from migrations import runner
from models import Base, Job, make_engine, make_session_factory

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TABLES = {"jobs", "batches", "items", "vendor_calls", "account_halts", "inventory", "inventory_tags", "retention_runs", "job_counts",
          "retried_failures"}


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> str:
    """An empty database of each backend."""
    return request.getfixturevalue("pg_url" if request.param == "postgresql" else "sqlite_url")


def _inspect(url: str, fn):  # noqa: ANN001, ANN202
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            return fn(connection)
    finally:
        engine.dispose()


def _table_names(url: str) -> set[str]:
    return set(_inspect(url, lambda conn: inspect(conn).get_table_names()))


def _differences(url: str) -> list:
    def compare(connection):  # noqa: ANN001, ANN202
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)

    return _inspect(url, compare)


def test_upgrade_head_on_an_empty_database_creates_every_table(db_url: str) -> None:
    assert runner.current(db_url) is None

    runner.upgrade(db_url)

    assert runner.current(db_url) == runner.head()
    assert _table_names(db_url) == TABLES | {"alembic_version"}


def test_upgrade_of_an_upgraded_database_changes_nothing(db_url: str) -> None:
    runner.upgrade(db_url)
    runner.upgrade(db_url)

    assert runner.current(db_url) == runner.head()


def test_downgrade_base_drops_every_table_and_upgrade_rebuilds_them(db_url: str) -> None:
    runner.upgrade(db_url)

    runner.downgrade(db_url, "base")

    assert runner.current(db_url) is None
    assert _table_names(db_url) == {"alembic_version"}

    runner.upgrade(db_url)
    assert _differences(db_url) == []


def test_downgrade_of_job_control_keeps_every_job_and_item(db_url: str) -> None:
    runner.upgrade(db_url)
    engine = make_engine(db_url)
    try:
        with engine.begin() as connection:
            connection.execute(sa_text(
                "INSERT INTO jobs (status, item_count, duplicate_count, batch_count, created_at, cancel_requested_at, callback_attempts)"
                " VALUES ('cancelled', 1, 0, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 0)"
            ))
            connection.execute(sa_text(
                "INSERT INTO items (job_id, line, action, account, group_key, media_id, status, attempts, created_at, retries)"
                " VALUES (1, 1, 'huawei.DeleteAssets', 'default', '', 'a1', 'cancelled', 0, CURRENT_TIMESTAMP, 0)"
            ))
    finally:
        engine.dispose()

    runner.downgrade(db_url, "0001")

    assert runner.current(db_url) == "0001"
    columns = _inspect(db_url, lambda conn: {c["name"] for c in inspect(conn).get_columns("jobs")})
    assert "cancel_requested_at" not in columns and "callback_url" not in columns
    counts = _inspect(db_url, lambda conn: [conn.execute(sa_text(f"SELECT count(*) FROM {t}")).scalar() for t in ("jobs", "items")])
    assert counts == [1, 1]  # SQLite must not rebuild jobs: a rebuild would cascade-delete the items
    runner.upgrade(db_url)
    assert _differences(db_url) == []


def test_models_and_migrations_agree(db_url: str) -> None:
    runner.upgrade(db_url)

    differences = _differences(db_url)

    assert differences == [], "models/ and migrations/ disagree; add a revision:\n" + pformat(differences)


def test_constraint_and_index_names_are_the_naming_conventions(db_url: str) -> None:
    runner.upgrade(db_url)

    def names(connection):  # noqa: ANN001, ANN202
        inspector = inspect(connection)
        found = {}
        for table in TABLES:
            found[table] = {
                "pk": inspector.get_pk_constraint(table)["name"],
                "fk": sorted(fk["name"] for fk in inspector.get_foreign_keys(table)),
                "uq": sorted(uq["name"] for uq in inspector.get_unique_constraints(table)),
                # PostgreSQL also lists the index behind each unique constraint.
                "ix": sorted(
                    ix["name"] for ix in inspector.get_indexes(table) if not ix.get("duplicates_constraint")
                ),
            }
        return found

    declared = {
        table.name: {
            "pk": table.primary_key.name,
            "fk": sorted(fk.name for fk in table.foreign_key_constraints),
            "uq": sorted(c.name for c in table.constraints if isinstance(c, UniqueConstraint)),
            "ix": sorted(ix.name for ix in table.indexes),
        }
        for table in Base.metadata.sorted_tables
    }
    assert _inspect(db_url, names) == declared


def test_the_migrated_schema_stores_and_returns_rows(db_url: str) -> None:
    runner.upgrade(db_url)
    engine = make_engine(db_url)
    try:
        sessions = make_session_factory(engine)
        with sessions.begin() as session:
            session.add_all([Job(status="accepted"), Job(status="accepted")])
        with sessions() as session:
            jobs = session.query(Job).order_by(Job.id).all()
    finally:
        engine.dispose()

    assert [job.id for job in jobs] == [1, 2]  # the id is generated on both backends
    assert jobs[0].created_at.tzinfo is not None
    assert abs(datetime.now(timezone.utc) - jobs[0].created_at).total_seconds() < 60


def test_env_takes_the_url_from_the_settings_when_none_is_configured(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MEDIAPURGE_CONFIG", raising=False)
    monkeypatch.setenv("MEDIAPURGE_DATABASE_URL", sqlite_url)
    config = runner.make_config(sqlite_url)
    config.remove_main_option("sqlalchemy.url")

    command.upgrade(config, "head")

    assert runner.current(sqlite_url) == runner.head()


def test_alembic_command_works_at_the_repository_root(sqlite_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "-x", f"url={sqlite_url}", "upgrade", "head"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert runner.current(sqlite_url) == runner.head()


def test_offline_mode_prints_the_postgresql_ddl() -> None:
    config = runner.make_config("postgresql+psycopg://nobody@127.0.0.1:1/none")
    config.output_buffer = io.StringIO()

    command.upgrade(config, "head", sql=True)

    sql = config.output_buffer.getvalue()
    assert "CREATE TABLE jobs" in sql and "BIGSERIAL" in sql
    assert "CONSTRAINT uq_items_job_id_action_account_group_key_media_id UNIQUE" in sql
