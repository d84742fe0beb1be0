"""Submission on PostgreSQL: items COPYed to a temporary table and planned by SQL in the same
transaction. The result must be what the portable path (insert, then plan_job) makes: the same batches,
duplicates kept once at their first line, and nothing at all written when one line is bad."""

from __future__ import annotations


import pytest
from sqlalchemy import func, select

from migrations.runner import upgrade
from models import Base, Batch, Item, Job, make_engine, make_session_factory
from worker.errors import SubmissionRejected
from worker.planner import plan_job, queued_batches
from worker.producer import submit_job
from worker.validation import ItemValidator

pytestmark = pytest.mark.integration
VALIDATOR = ItemValidator({"huawei": {"default", "eu"}, "zego": {"default"}, "aliyun": {"default"}})


@pytest.fixture
def postgres(pg_url):
    """Sessions on a new PostgreSQL database (tests/conftest.py's pg_url), migrated to head."""
    upgrade(pg_url)
    engine = make_engine(pg_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def sqlite(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    Base.metadata.create_all(engine)
    yield make_session_factory(engine)
    engine.dispose()


def mixed_items() -> list[dict]:
    rows = []
    for i in range(45):
        rows.append({"action": "huawei.DeleteAssets", "asset_id": f"a{i}", "account": ("default", "eu")[i % 2]})
        rows.append({"action": "zego.DeleteMedia", "Vendor": ("Ws", "Tencent")[i % 2], "FileId": f"f{i}"})
        rows.append({"action": "aliyun.DeleteStream", "VideoId": f"v{i % 4}", "JobId": f"j{i}"})
    rows.insert(10, dict(rows[0]))  # duplicates: kept once, at their first line
    rows.append(dict(rows[5]))
    return rows


def shape(sessions, job_id: int):  # noqa: ANN201
    """What planning made: every batch's key and size, and each item's (line, ids, batch key)."""
    with sessions() as session:
        batches = {b.id: (b.action, b.account, b.group_key, b.ordinal) for b in session.scalars(select(Batch).where(Batch.job_id == job_id))}
        sizes = sorted((*key, n) for key, n in (
            (batches[b], n) for b, n in session.execute(
                select(Item.batch_id, func.count()).where(Item.job_id == job_id).group_by(Item.batch_id))))
        items = sorted((i.line, i.action, i.account, i.group_key, i.media_id, batches[i.batch_id]) for i in
                       session.scalars(select(Item).where(Item.job_id == job_id)))
    return sizes, items


def test_postgresql_submissions_are_born_planned_exactly_as_the_portable_path_plans(postgres, sqlite):
    rows = mixed_items()
    on_postgres = submit_job(postgres, rows, VALIDATOR, lambda job_id: None)
    on_sqlite = submit_job(sqlite, rows, VALIDATOR, lambda job_id: None)
    assert (on_postgres.item_count, on_postgres.duplicate_count) == (on_sqlite.item_count, on_sqlite.duplicate_count) == (135, 2)
    for sessions, job_id in ((postgres, on_postgres.job_id), (sqlite, on_sqlite.job_id)):
        with sessions() as session:
            assert plan_job(session, job_id)
    assert shape(postgres, on_postgres.job_id) == shape(sqlite, on_sqlite.job_id)
    with postgres() as session:
        job = session.get(Job, on_postgres.job_id)
        refs = [ref for chunk in queued_batches(session, job.id) for ref in chunk]
        assert (job.status, job.batch_count, len(refs)) == ("running", len(refs), session.scalar(select(func.count()).select_from(Batch).where(Batch.job_id == job.id)))
        assert session.scalar(select(Item.line).where(Item.job_id == job.id, Item.media_id == "a0")) == 1


def test_a_bad_line_writes_nothing_and_the_next_submission_is_unaffected(postgres):
    with postgres() as session:
        before = [session.scalar(select(func.count()).select_from(t)) for t in (Job, Item, Batch)]
    bad = mixed_items()
    bad.insert(60, {"action": "zego.DeleteMedia", "Vendor": "Ws", "FileId": "a,b"})
    with pytest.raises(SubmissionRejected) as rejected:
        submit_job(postgres, bad, VALIDATOR, lambda job_id: None)
    assert [p.line for p in rejected.value.problems] == [61]
    with postgres() as session:
        assert [session.scalar(select(func.count()).select_from(t)) for t in (Job, Item, Batch)] == before
    again = submit_job(postgres, mixed_items(), VALIDATOR, lambda job_id: None)
    assert again.item_count == 135
