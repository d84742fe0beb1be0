"""Submitting and planning against a real SQLite database (PostgreSQL runs the same code in integration)."""

import io

import pytest
from sqlalchemy import func, select

from models import Batch, Item, Job
from worker.errors import EnqueueFailed, SubmissionRejected
from worker.planner import plan_job, queued_batches
from worker.producer import submit_job
from worker.readers import read_jsonl
from worker.refs import batch_refs
from worker.validation import ItemValidator

ACCOUNTS = {"aliyun": {"default"}, "zego": {"default", "second"}, "huawei": {"default"}}


def submit(sessions, items, key=None):
    enqueued = []
    result = submit_job(sessions, items, ItemValidator(ACCOUNTS), enqueued.append, idempotency_key=key)
    return result, enqueued


def count(sessions, model):
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_job_and_items_written_then_one_task_enqueued(sessions):
    items = [{"action": "huawei.DeleteAssets", "asset_id": f"a{i}"} for i in range(25)]
    result, enqueued = submit(sessions, items)
    assert result.created and result.item_count == 25 and result.duplicate_count == 0
    assert enqueued == [result.job_id]
    assert count(sessions, Item) == 25
    with sessions() as s:
        assert s.get(Job, result.job_id).status == "submitted"


def test_duplicates_are_kept_once(sessions):
    items = [{"action": "zego.DeleteMedia", "Vendor": "Ws", "FileId": "f1"}] * 3 + [
        {"action": "zego.DeleteMedia", "Vendor": "Tencent", "FileId": "f1"},  # another CDN: another file
        {"action": "zego.DeleteMedia", "Vendor": "Ws", "FileId": "f1", "account": "second"},  # another app
    ]
    result, _ = submit(sessions, items)
    assert (result.item_count, result.duplicate_count) == (3, 2)


def test_idempotency_key_returns_the_existing_job(sessions):
    items = [{"action": "huawei.DeleteAssets", "asset_id": "a1"}]
    first, enqueued = submit(sessions, items, key="nightly-2026-11-22")
    with sessions() as s:
        plan_job(s, first.job_id)
    second, enqueued_again = submit(sessions, items + items, key="nightly-2026-11-22")
    assert second.job_id == first.job_id and not second.created
    assert enqueued_again == [] and count(sessions, Job) == 1


def test_a_job_saved_while_the_broker_was_down_is_queued_when_submitted_again(sessions):
    items = [{"action": "huawei.DeleteAssets", "asset_id": "a1"}]

    def broker_down(job_id):
        raise ConnectionError("broker down")

    with pytest.raises(EnqueueFailed, match="job 1 is saved but could not be queued"):
        submit_job(sessions, items, ItemValidator(ACCOUNTS), broker_down, idempotency_key="k")
    again, enqueued = submit(sessions, items, key="k")
    assert (again.job_id, again.created, enqueued) == (1, False, [1])


def test_a_bad_line_refuses_everything_and_writes_nothing(sessions):
    good = [{"action": "huawei.DeleteAssets", "asset_id": f"a{i}"} for i in range(12_000)]
    bad = good[:6_000] + [{"action": "huawei.DeleteAssets", "asset_id": "x,y"}] + good[6_000:] + [{"action": "nope"}]
    with pytest.raises(SubmissionRejected) as caught:
        submit(sessions, bad)
    assert [(p.line, p.field) for p in caught.value.problems] == [(6_001, "asset_id"), (12_002, "action")]
    assert count(sessions, Item) == 0 and count(sessions, Job) == 0


def test_problems_from_the_reader_are_reported_with_valid_ones(sessions):
    data = b'{"action": "huawei.DeleteAssets", "asset_id": "a"}\nnot json\n'
    with pytest.raises(SubmissionRejected) as caught:
        submit(sessions, read_jsonl(io.BytesIO(data)))
    assert [p.line for p in caught.value.problems] == [2]
    assert count(sessions, Job) == 0


def test_empty_submission_is_refused(sessions):
    with pytest.raises(SubmissionRejected, match="no items"):
        submit(sessions, [])


def test_planner_batches_by_vendor_rules(sessions):
    items = (
        [{"action": "aliyun.DeleteStream", "VideoId": "v1", "JobId": f"j{i}"} for i in range(45)]
        + [{"action": "aliyun.DeleteStream", "VideoId": "v2", "JobId": f"j{i}"} for i in range(3)]
        + [{"action": "aliyun.DeleteMultipartUpload", "MediaId": f"m{i}", "MediaType": "video"} for i in range(3)]
        + [{"action": "zego.DeleteMedia", "Vendor": "Ws", "FileId": f"f{i}"} for i in range(250)]
        + [{"action": "zego.DeleteMedia", "Vendor": "Tencent", "FileId": f"f{i}"} for i in range(10)]
        + [{"action": "huawei.DeleteAssets", "asset_id": f"a{i}"} for i in range(21)]
    )
    result, _ = submit(sessions, items)
    with sessions() as s:
        assert plan_job(s, result.job_id) is True
        assert plan_job(s, result.job_id) is False  # idempotent
        sizes = s.execute(
            select(Batch.action, Batch.group_key, Batch.item_count).order_by(Batch.action, Batch.group_key, Batch.ordinal)
        ).all()
        assert sizes == [
            ("aliyun.DeleteMultipartUpload", "video", 1)] * 3 + [
            ("aliyun.DeleteStream", "v1", 20), ("aliyun.DeleteStream", "v1", 20), ("aliyun.DeleteStream", "v1", 5),
            ("aliyun.DeleteStream", "v2", 3),
            ("huawei.DeleteAssets", "", 10), ("huawei.DeleteAssets", "", 10), ("huawei.DeleteAssets", "", 1),
            ("zego.DeleteMedia", "Tencent", 10),
            ("zego.DeleteMedia", "Ws", 100), ("zego.DeleteMedia", "Ws", 100), ("zego.DeleteMedia", "Ws", 50),
        ]
        # Every item is in exactly one batch of its own action, account and group, and counts agree.
        mismatched = s.scalar(
            select(func.count()).select_from(Item).join(Batch, Item.batch_id == Batch.id).where(
                (Item.action != Batch.action) | (Item.account != Batch.account) | (Item.group_key != Batch.group_key)
            )
        )
        assert mismatched == 0
        assert s.scalar(select(func.count()).select_from(Item).where(Item.batch_id.is_(None))) == 0
        per_batch = dict(s.execute(select(Item.batch_id, func.count()).group_by(Item.batch_id)).all())
        assert per_batch == dict(s.execute(select(Batch.id, Batch.item_count)).all())
        job = s.get(Job, result.job_id)
        assert job.status == "running" and job.batch_count == 14
        refs = [ref for chunk in queued_batches(s, result.job_id) for ref in chunk]
        order = [ref.id for ref in refs]
        actions = dict(s.execute(select(Batch.id, Batch.action)).all())
        # Each ref names its batch as the database holds it: what Flower will show.
        assert sorted(refs, key=lambda ref: ref.id) == batch_refs(s, order)
        assert all(ref.job_id == result.job_id for ref in refs)
        assert sorted(order) == sorted(actions)
        # Interleaved: the first four batches handed out cover all four operations.
        assert {actions[bid] for bid in order[:4]} == {
            "aliyun.DeleteStream", "aliyun.DeleteMultipartUpload", "zego.DeleteMedia", "huawei.DeleteAssets"}
