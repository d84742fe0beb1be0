"""Pooled PostgreSQL connections: tested before use only when they sat idle, and replaced when dead."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

import models.db
from models import make_engine

pytestmark = pytest.mark.integration


def _kill_pooled_connection(pg_url: str, engine) -> int:  # noqa: ANN001
    """Use one pooled connection, terminate its server process behind the pool's back; its pid."""
    with engine.connect() as connection:
        pid = connection.execute(text("SELECT pg_backend_pid()")).scalar()
    killer = make_engine(pg_url)
    try:
        with killer.connect() as connection:
            assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    finally:
        killer.dispose()
    return pid


def test_a_connection_checked_in_moments_ago_is_used_without_a_test(pg_url, monkeypatch):
    """No round trip for a connection just used: so a dead one surfaces as the statement's error
    (which the task's retry handles), proving no ping ran."""
    monkeypatch.setattr(models.db, "IDLE_BEFORE_PING", 60.0)
    engine = make_engine(pg_url)
    try:
        _kill_pooled_connection(pg_url, engine)
        with pytest.raises(OperationalError), engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        with engine.connect() as connection:  # the pool dropped it: the next checkout connects anew
            assert connection.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


def test_a_connection_that_died_while_idle_is_replaced_before_use(pg_url, monkeypatch):
    monkeypatch.setattr(models.db, "IDLE_BEFORE_PING", 0.2)
    engine = make_engine(pg_url)
    try:
        dead_pid = _kill_pooled_connection(pg_url, engine)
        time.sleep(0.3)  # idle longer than IDLE_BEFORE_PING: the checkout tests it and finds it dead
        with engine.connect() as connection:
            assert connection.execute(text("SELECT pg_backend_pid()")).scalar() != dead_pid
    finally:
        engine.dispose()
