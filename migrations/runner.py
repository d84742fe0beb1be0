"""Apply the migrations from code, with no ``alembic.ini`` in the working directory.

``mediapurge migrate``, the demo and the tests call these; the ``alembic`` command stays available for
anything else (``alembic history``, ``alembic upgrade head --sql``).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

SCRIPT_LOCATION = Path(__file__).resolve().parent


def make_config(database_url: str) -> Config:
    """An Alembic config pointing at this package's scripts and at ``database_url``."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("path_separator", "os")
    # The config is a ConfigParser: a '%' in the URL (an escaped password) must be doubled.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database to ``revision``; a database already there is left untouched."""
    command.upgrade(make_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    """Take the database back to ``revision`` (``"base"``: drop every table the migrations made)."""
    command.downgrade(make_config(database_url), revision)


def current(database_url: str) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    engine = create_engine(database_url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head() -> str:
    """The newest revision shipped in this package."""
    revision = ScriptDirectory.from_config(make_config("sqlite://")).get_current_head()
    assert revision is not None, "migrations/versions holds no revision"
    return revision
