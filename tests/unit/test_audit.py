"""The audit write of one vendor call: every item's outcome in one statement, whatever the mix."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import event, select

from models import Item, VendorCall
from worker import audit
from worker.outcomes import CallVerdict, ItemResult, Outcome
from worker.planner import plan_job
from worker.producer import submit_job
from worker.validation import ItemValidator

SENT = datetime(2026, 11, 22, 8, 0, tzinfo=timezone.utc)
NOW = SENT + timedelta(seconds=1)


def _job(sessions, count: int) -> tuple[int, int, list[audit.PendingItem]]:
    validator = ItemValidator({"huawei": {"default"}, "aliyun": set(), "zego": set()})
    submitted = submit_job(sessions, [{"action": "huawei.DeleteAssets", "asset_id": f"a{i:03d}"} for i in range(count)], validator, lambda j: None)
    with sessions() as session:
        plan_job(session, submitted.job_id)
        batch_id = session.scalars(select(Item.batch_id).where(Item.job_id == submitted.job_id)).first()
        return submitted.job_id, batch_id, audit.pending_items(session, batch_id)


def test_a_call_is_two_statements_whatever_its_outcomes(sessions):
    job_id, batch_id, items = _job(sessions, 10)
    # Ten different answers: deleted, gone, failed with its own message, and retryable ones.
    results = {}
    for i, item in enumerate(items):
        outcome = (Outcome.DELETED, Outcome.ALREADY_GONE, Outcome.FAILED, Outcome.RETRYABLE)[i % 4]
        results[item.media_id] = ItemResult(outcome, f"code{i}", f"message {i}", f"req-{i}")
    verdict = CallVerdict(200, None, None, "req", items=results)
    statements = []
    with sessions() as session:
        event.listen(session.get_bind(), "before_cursor_execute", lambda *args: statements.append(args[2]))
        pending = audit.record_call(
            session, audit.CallRecord(job_id, batch_id, "huawei.DeleteAssets", "default", SENT, 12.5), items, verdict,
            max_attempts=5, now=NOW,
        )
    writes = [s for s in statements if s.lstrip().upper().startswith(("INSERT", "UPDATE", "WITH"))]
    assert len(writes) == 2, writes  # the vendor_calls row, and one UPDATE of the ten items
    assert [p.media_id for p in pending] == [items[i].media_id for i in (3, 7)]
    with sessions() as session:
        rows = {i.media_id: i for i in session.scalars(select(Item).where(Item.job_id == job_id))}
        assert session.scalar(select(VendorCall.item_count)) == 10
    for i, item in enumerate(items):
        row = rows[item.media_id]
        expected = ("deleted", "already_gone", "failed", "pending")[i % 4]
        assert (row.status, row.vendor_code, row.vendor_message, row.request_id, row.attempts) == (
            expected, f"code{i}", f"message {i}", f"req-{i}", 1)
        assert row.first_sent_at == SENT and row.last_sent_at == SENT
        assert row.finished_at == (None if expected == "pending" else NOW)


def test_an_item_in_a_final_state_is_never_rewritten(sessions):
    job_id, batch_id, items = _job(sessions, 2)
    deleted = CallVerdict(200, None, None, "r1", items={i.media_id: ItemResult(Outcome.DELETED, None, None, "r1") for i in items})
    call = audit.CallRecord(job_id, batch_id, "huawei.DeleteAssets", "default", SENT, 1.0)
    with sessions() as session:
        audit.record_call(session, call, items, deleted, max_attempts=5, now=NOW)
    # A late duplicate answer (another delivery of the same batch) says "failed": the audit keeps "deleted".
    failed = CallVerdict(200, None, None, "r2", items={i.media_id: ItemResult(Outcome.FAILED, "X", "late", "r2") for i in items})
    with sessions() as session:
        audit.record_call(session, call, items, failed, max_attempts=5, now=NOW + timedelta(seconds=5))
        rows = session.scalars(select(Item).where(Item.job_id == job_id)).all()
    assert {(r.status, r.request_id, r.attempts, r.finished_at) for r in rows} == {("deleted", "r1", 1, NOW)}


def test_giving_up_after_max_attempts_says_so(sessions):
    job_id, batch_id, items = _job(sessions, 1)
    busy = CallVerdict(503, "Busy", "busy", "r", items={items[0].media_id: ItemResult(Outcome.RETRYABLE, "Busy", "try later", "r")})
    items[0].attempts = 2
    with sessions() as session:
        audit.record_call(session, audit.CallRecord(job_id, batch_id, "huawei.DeleteAssets", "default", SENT, 1.0), items, busy, max_attempts=3, now=NOW)
        row = session.scalars(select(Item)).one()
    assert (row.status, row.vendor_message) == ("failed", "gave up after 3 attempts: try later")
