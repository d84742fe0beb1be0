"""Alembic environment: which database, which metadata, and how to talk to each backend.

The database URL is, first found wins: an open connection handed over in ``config.attributes["connection"]``;
``-x url=...`` on the alembic command line; ``sqlalchemy.url`` in the config (set by
``migrations.runner`` or an ini file); the mediapurge settings (``MEDIAPURGE_DATABASE_URL`` or the TOML
file named by ``MEDIAPURGE_CONFIG``).
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, make_url, pool
from sqlalchemy.engine import Connection

from models import Base

config = context.config
target_metadata = Base.metadata

# Only the alembic command line configures logging; code calling migrations.runner keeps its own.
if config.config_file_name is not None and config.file_config.has_section("loggers"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _database_url() -> str:
    x_url = context.get_x_argument(as_dictionary=True).get("url")
    if x_url:
        return x_url
    configured = config.get_main_option("sqlalchemy.url")
    if configured:
        return configured
    from worker.settings import load_settings

    return load_settings().database_url


def _configure(**kwargs) -> None:  # noqa: ANN003
    if "connection" in kwargs:
        backend = kwargs["connection"].dialect.name
    else:
        backend = make_url(kwargs["url"]).get_backend_name()
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=backend == "sqlite",
        **kwargs,
    )


def _run(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Print the SQL (``alembic upgrade head --sql``) instead of running it."""
    _configure(url=_database_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    given = config.attributes.get("connection")
    if given is not None:
        _run(given)
        return
    # A plain engine, not models.db.make_engine: that one turns on SQLite's foreign_keys, and with them
    # on, the DROP TABLE of a batch-mode table rebuild runs an implicit DELETE that fires ON DELETE
    # CASCADE into the child tables (https://sqlite.org/foreignkeys.html, section 5).
    engine = create_engine(_database_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
