"""The Prometheus metrics on SQLite: known rows in, exact figures out of the text exposition."""

from __future__ import annotations

import itertools
from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families

from models import Batch, Item, Job, VendorCall
from models.types import utcnow
from worker.metrics import queue_depth_or_none, render
from worker.vendors import OPERATIONS

ZEGO, HUAWEI = "zego.DeleteMedia", "huawei.DeleteAssets"


def write_audit(sessions) -> None:
    now = utcnow()
    with sessions() as s:
        jobs = [Job(status="running"), Job(status="completed"), Job(status="completed")]
        s.add_all(jobs)
        s.flush()
        job = jobs[0].id
        ordinals = itertools.count()

        def batch(action, account, status, next_attempt_at=None):
            row = Batch(job_id=job, action=action, account=account, group_key="g", ordinal=next(ordinals),
                        status=status, item_count=1, next_attempt_at=next_attempt_at)
            s.add(row)
            s.flush()
            return row.id

        zego_batches = [
            batch(ZEGO, "default", "queued"),
            batch(ZEGO, "default", "queued", now + timedelta(seconds=30)),  # backing off
            batch(ZEGO, "default", "queued", now - timedelta(seconds=5)),  # due again
            batch(ZEGO, "default", "in_flight"),
            batch(ZEGO, "default", "done"),
            batch(ZEGO, "default", "done"),
        ]
        huawei_batch = batch(HUAWEI, "eu", "in_flight")
        items = [(ZEGO, "default", "deleted", 1), (ZEGO, "default", "deleted", 1), (ZEGO, "default", "deleted", 2),
                 (ZEGO, "default", "pending", 3), (ZEGO, "default", "failed", 8),
                 (HUAWEI, "eu", "already_gone", 1), (HUAWEI, "eu", "already_gone", 1)]
        for line, (action, account, status, attempts) in enumerate(items):
            s.add(Item(job_id=job, line=line, action=action, account=account, group_key="g", media_id=f"m{line}",
                       status=status, attempts=attempts))
        calls = [(ZEGO, "default", "deleted")] * 2 + [(ZEGO, "default", "retryable")] + [(ZEGO, "default", "throttled")] * 3
        calls += [(HUAWEI, "eu", "already_gone"), (HUAWEI, "eu", "split")]
        for action, account, verdict in calls:
            s.add(VendorCall(job_id=job, batch_id=huawei_batch if action == HUAWEI else zego_batches[0], action=action,
                             account=account, item_count=1, started_at=now, latency_ms=1.0, verdict=verdict))
        s.commit()


def scrape(sessions, queue_depth=lambda: 7):
    body, content_type = render(sessions, queue_depth)
    assert content_type.startswith("text/plain; version=")
    figures = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            figures.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return figures


def by(figures, name, *keys):
    return {tuple(dict(labels)[k] for k in keys): value for labels, value in figures[name].items()}


def test_items_calls_jobs_batches_and_queue_depth_are_read_from_the_audit(sessions):
    write_audit(sessions)
    figures = scrape(sessions)
    assert by(figures, "mediapurge_items", "vendor", "action", "account", "status") == {
        ("zego", ZEGO, "default", "pending"): 1, ("zego", ZEGO, "default", "deleted"): 3,
        ("zego", ZEGO, "default", "already_gone"): 0, ("zego", ZEGO, "default", "failed"): 1,
        ("huawei", HUAWEI, "eu", "pending"): 0, ("huawei", HUAWEI, "eu", "deleted"): 0,
        ("huawei", HUAWEI, "eu", "already_gone"): 2, ("huawei", HUAWEI, "eu", "failed"): 0,
        ("zego", ZEGO, "default", "cancelled"): 0, ("huawei", HUAWEI, "eu", "cancelled"): 0,
    }
    # (2-1) + (3-1) + (8-1): item sends beyond the first.
    assert by(figures, "mediapurge_item_retries", "action", "account") == {(ZEGO, "default"): 10, (HUAWEI, "eu"): 0}
    assert by(figures, "mediapurge_vendor_calls", "vendor", "account", "verdict") == {
        ("zego", "default", "deleted"): 2, ("zego", "default", "retryable"): 1, ("zego", "default", "throttled"): 3,
        ("huawei", "eu", "already_gone"): 1, ("huawei", "eu", "split"): 1,
    }
    assert by(figures, "mediapurge_vendor_calls_throttled", "action", "account") == {(ZEGO, "default"): 3, (HUAWEI, "eu"): 0}
    assert by(figures, "mediapurge_jobs", "status") == {("submitted",): 0, ("running",): 1, ("completed",): 2, ("completed_with_failures",): 0,
                                                      ("cancelled",): 0}
    waiting = by(figures, "mediapurge_batches_waiting", "action", "state")
    assert {key: value for key, value in waiting.items() if value} == {
        (ZEGO, "queued"): 2, (ZEGO, "backing_off"): 1, (ZEGO, "in_flight"): 1, (HUAWEI, "in_flight"): 1,
    }
    # Every operation and state has its series, so an emptied queue reads 0 rather than vanish.
    assert set(waiting) == {(action, state) for action in OPERATIONS for state in ("queued", "backing_off", "in_flight")}
    assert figures["mediapurge_broker_queue_depth"] == {(): 7}


def test_an_empty_audit_reads_zeros(sessions):
    figures = scrape(sessions, queue_depth=lambda: 0)
    assert set(figures["mediapurge_jobs"].values()) == {0}
    assert set(figures["mediapurge_batches_waiting"].values()) == {0}
    assert "mediapurge_items" not in figures and figures["mediapurge_broker_queue_depth"] == {(): 0}


def test_an_unreachable_broker_leaves_out_only_the_queue_depth(sessions):
    write_audit(sessions)

    def broker_down() -> int:
        raise ConnectionRefusedError(111, "Connection refused")

    figures = scrape(sessions, queue_depth=queue_depth_or_none(broker_down))
    assert "mediapurge_broker_queue_depth" not in figures
    assert by(figures, "mediapurge_jobs", "status")[("running",)] == 1
