"""Fixtures every test folder may use. Keep them generic; a folder's own fixtures go in its conftest.

PostgreSQL comes from ``MEDIAPURGE_TEST_PG_URL`` (default: the local server's ``postgres`` database as
user ``postgres``); the URL must name a role allowed to create databases. ``bash .ci/services`` starts
the local server when it is down.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

PG_URL_ENV = "MEDIAPURGE_TEST_PG_URL"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _admin_engine(server_url: str):  # noqa: ANN202
    # CREATE/DROP DATABASE cannot run inside a transaction.
    # pre-ping: a test may restart the server, which cuts pooled connections.
    return create_engine(server_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True, connect_args={"connect_timeout": 5})


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """The URL of a PostgreSQL database on the test server, used to create and drop test databases.

    Fails (does not skip) when the server cannot be reached: a test that asked for PostgreSQL and did
    not get it must not pass quietly.
    """
    url = os.environ.get(PG_URL_ENV, DEFAULT_PG_URL)
    engine = _admin_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(text("select 1"))
    except Exception as exc:  # noqa: BLE001 - any failure here means the same thing to the user
        shown = make_url(url).render_as_string(hide_password=True)
        pytest.fail(
            f"PostgreSQL at {shown} is unreachable ({type(exc).__name__}: {exc}).\n"
            f"Start it with `bash .ci/services`, or point {PG_URL_ENV} at a server whose role may create databases.",
            pytrace=False,
        )
    finally:
        engine.dispose()
    return url


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database of its own for this test, dropped after it.

    The drop uses ``WITH (FORCE)``, so connections the test left open do not keep the database alive.
    """
    name = f"mediapurge_test_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine(pg_server_url)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """The URL of a SQLite file in this test's temporary directory; the file does not exist yet."""
    return f"sqlite:///{tmp_path / 'mediapurge.sqlite'}"
