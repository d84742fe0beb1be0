"""Fixtures of the unit tests."""

from __future__ import annotations

import pytest

from models import Base, make_engine, make_session_factory


@pytest.fixture
def sessions(tmp_path):
    """Sessions on a fresh SQLite file holding the whole schema (from the models; the migrations are
    checked against the models in tests/integration/test_migrations.py)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    Base.metadata.create_all(engine)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def env(sessions):
    """A batch executor's runtime on ``sessions`` (tests/unit/executor_env.py): (runtime, handlers, calls)."""
    from tests.unit.executor_env import make_env

    return make_env(sessions)
