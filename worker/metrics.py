"""Prometheus metrics for dashboards, computed from the database when Prometheus scrapes.

The audit tables are the record, so every figure is an aggregate of them read at scrape time: any number
of worker processes (and any number of scrapers) see the same numbers, nothing is counted twice, and a
restart loses nothing. Only the broker's queue depth is asked of Redis.

Figures are gauges (what the audit holds now), not counters: rows leave the audit when old jobs are
deleted, which a counter would mistake for a reset. Rates come from ``deriv()``/``delta()`` over them.

Cost on a large audit: one GROUP BY over ``items`` and one over ``vendor_calls`` (sequential scans, no
index serves a GROUP BY on action and account), and index range scans over ``batches`` (status,
next_attempt_at) and ``jobs``. Scrape every 30 s or more when the audit holds many millions of items.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, sessionmaker

from models.tables import Batch, Item, Job, VendorCall
from models.types import utcnow
from worker.audit import THROTTLED
from worker.outcomes import BatchStatus, ItemStatus, JobStatus
from worker.vendors import OPERATIONS

log = logging.getLogger("mediapurge.metrics")

QueueDepth = Callable[[], "int | None"]

# A batch waiting for a worker is in one of these states (BatchStatus plus a queued one not yet due).
BACKING_OFF = "backing_off"
WAITING_STATES = (BatchStatus.QUEUED.value, BACKING_OFF, BatchStatus.IN_FLIGHT.value)


def vendor_of(action: str) -> str:
    return action.split(".", 1)[0]


class AuditCollector(Collector):
    """Reads the audit (and the broker's queue depth) on every ``collect()``."""

    def __init__(self, sessions: sessionmaker[Session], queue_depth: QueueDepth, clock: Callable[[], datetime] = utcnow) -> None:
        self.sessions = sessions
        self.queue_depth = queue_depth
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        with self.sessions() as session:
            yield from self._items(session)
            yield from self._calls(session)
            yield self._jobs(session)
            yield self._batches(session)
        depth = self.queue_depth()
        if depth is not None:
            queue = GaugeMetricFamily(
                "mediapurge_broker_queue_depth", "Messages waiting in the broker's mediapurge queue (Redis list length).",
            )
            queue.add_metric([], depth)
            yield queue

    def _items(self, session: Session) -> Iterator[Metric]:
        items = GaugeMetricFamily(
            "mediapurge_items", "Items in the audit, by status.", labels=["vendor", "action", "account", "status"],
        )
        retries = GaugeMetricFamily(
            "mediapurge_item_retries",
            "Item sends beyond each item's first: the sum over items of (attempts - 1). A call the vendor "
            "refused for an unnamed id (split) is not an attempt.",
            labels=["vendor", "action", "account"],
        )
        rows = session.execute(
            select(
                Item.action, Item.account, Item.status, func.count(),
                func.coalesce(func.sum(case((Item.attempts > 1, Item.attempts - 1), else_=0)), 0),
            ).group_by(Item.action, Item.account, Item.status)
        )
        counts: dict[tuple[str, str], dict[str, int]] = {}
        resent: dict[tuple[str, str], int] = {}
        for action, account, status, count, extra in rows:
            counts.setdefault((action, account), {})[status] = count
            resent[(action, account)] = resent.get((action, account), 0) + int(extra)
        for (action, account), by_status in sorted(counts.items()):
            # Every status of a seen (action, account), zeros included, so a series drops to 0 rather than vanish.
            for status in [s.value for s in ItemStatus] + sorted(set(by_status) - {s.value for s in ItemStatus}):
                items.add_metric([vendor_of(action), action, account, status], by_status.get(status, 0))
            retries.add_metric([vendor_of(action), action, account], resent[(action, account)])
        yield items
        yield retries

    def _calls(self, session: Session) -> Iterator[Metric]:
        calls = GaugeMetricFamily(
            "mediapurge_vendor_calls",
            "Vendor calls recorded in the audit, by verdict: the outcomes the call gave, joined by '+' "
            "(deleted, already_gone, retryable, failed), or split, halt_account, throttled.",
            labels=["vendor", "action", "account", "verdict"],
        )
        throttled = GaugeMetricFamily(
            "mediapurge_vendor_calls_throttled",
            "Vendor calls the vendor refused as too fast (retried later).",
            labels=["vendor", "action", "account"],
        )
        rows = session.execute(
            select(VendorCall.action, VendorCall.account, VendorCall.verdict, func.count())
            .group_by(VendorCall.action, VendorCall.account, VendorCall.verdict)
        )
        too_fast: dict[tuple[str, str], int] = {}
        for action, account, verdict, count in sorted(rows):
            calls.add_metric([vendor_of(action), action, account, verdict], count)
            too_fast[(action, account)] = too_fast.get((action, account), 0) + (count if verdict == THROTTLED else 0)
        for (action, account), count in sorted(too_fast.items()):
            throttled.add_metric([vendor_of(action), action, account], count)
        yield calls
        yield throttled

    def _jobs(self, session: Session) -> Metric:
        jobs = GaugeMetricFamily("mediapurge_jobs", "Jobs by status.", labels=["status"])
        found = dict(session.execute(select(Job.status, func.count()).group_by(Job.status)).all())
        for status in [s.value for s in JobStatus] + sorted(set(found) - {s.value for s in JobStatus}):
            jobs.add_metric([status], found.get(status, 0))
        return jobs

    def _batches(self, session: Session) -> Metric:
        waiting = GaugeMetricFamily(
            "mediapurge_batches_waiting",
            "Batches not done: queued (due now), backing_off (queued, next attempt in the future), in_flight "
            "(leased by a worker).",
            labels=["vendor", "action", "state"],
        )
        state = case(
            ((Batch.status == BatchStatus.QUEUED.value) & (Batch.next_attempt_at > self.clock()), BACKING_OFF),
            else_=Batch.status,
        )
        rows = session.execute(
            select(Batch.action, state, func.count())
            .where(Batch.status.in_([BatchStatus.QUEUED.value, BatchStatus.IN_FLIGHT.value]))
            .group_by(Batch.action, state)
        )
        found = {(action, name): count for action, name, count in rows}
        actions = sorted(set(OPERATIONS) | {action for action, _ in found})
        for action in actions:
            for name in WAITING_STATES:
                waiting.add_metric([vendor_of(action), action, name], found.get((action, name), 0))
        return waiting


def registry_for(sessions: sessionmaker[Session], queue_depth: QueueDepth) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AuditCollector(sessions, queue_depth))
    return registry


def render(sessions: sessionmaker[Session], queue_depth: QueueDepth) -> tuple[bytes, str]:
    """The Prometheus text exposition of the metrics, and its content type (for a GET /metrics route)."""
    return generate_latest(registry_for(sessions, queue_depth)), CONTENT_TYPE_LATEST


def queue_depth_or_none(read: Callable[[], int], errors: tuple[type[BaseException], ...] = (OSError,)) -> QueueDepth:
    """``read`` for the metrics, answering None (the metric is left out) while the broker is unreachable,
    so a Redis outage does not fail the database's figures too."""

    def depth() -> int | None:
        try:
            return read()
        except errors as exc:
            log.warning("broker queue depth unavailable: %s", type(exc).__name__)
            return None

    return depth


def serve(
    sessions: sessionmaker[Session], queue_depth: QueueDepth, host: str, port: int, ready: Callable[[], None] = lambda: None
) -> None:
    """Serve GET /metrics on ``host:port`` until the process is stopped; ``ready()`` once it listens."""
    server, thread = start_http_server(port, addr=host, registry=registry_for(sessions, queue_depth))
    ready()
    try:
        thread.join()
    finally:
        server.shutdown()
