"""Engines and sessions, configured for each backend's concurrency."""

from __future__ import annotations

import time

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.orm import Session, sessionmaker

# A pooled connection idle longer than this is tested before use (a PostgreSQL restart or an idle
# timeout may have closed it). SQLAlchemy's pool_pre_ping tests every checkout: a round trip each
# time a worker process opens a session, several per batch, on connections used milliseconds ago.
IDLE_BEFORE_PING = 1.0


def make_engine(url: str, **kwargs) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
            # WAL lets the demo's worker threads read while one writes; busy_timeout makes writers queue
            # instead of failing with "database is locked".
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.close()

        return engine
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_when_idle(engine, IDLE_BEFORE_PING)
    return engine


def _ping_when_idle(engine: Engine, idle: float) -> None:
    """Test a connection on checkout when it sat in the pool over ``idle`` seconds (SQLAlchemy's
    documented recipe: raising DisconnectionError makes the pool replace it and try again)."""

    @event.listens_for(engine, "checkin")
    def _note_checkin(dbapi_conn, record) -> None:  # noqa: ANN001
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn, record, proxy) -> None:  # noqa: ANN001
        checked_in_at = record.info.get("checked_in_at")  # none yet: a connection made just now
        if checked_in_at is None or time.monotonic() - checked_in_at <= idle:
            return
        try:
            with dbapi_conn.cursor() as cursor:
                cursor.execute("SELECT 1")
            dbapi_conn.rollback()
        except Exception as error:  # noqa: BLE001  (any failure: the connection is no good)
            raise exc.DisconnectionError(f"stale pooled connection: {error}") from error


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
