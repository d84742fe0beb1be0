"""The metrics endpoint as Prometheus scrapes it: a job runs through real workers against a vendor that
throttles and fails some calls, then ``mediapurge metrics`` (a child process) is scraped over HTTP, and
every figure of its exposition must equal what the database says, and the throttled calls what the
vendor itself counted.
"""

from __future__ import annotations

import subprocess
import time

import httpx
import pytest
import redis
from celery import Celery
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import case, func, select

from models.tables import Batch, Item, Job, VendorCall
from tests.acceptance.conftest import mediapurge_executable
from tests.integration.conftest import RETRY, Stack
from worker.celery_config import QUEUE
from worker.embedded import free_port
from worker.sandbox import generate_media

pytestmark = pytest.mark.integration

DEFAULT_ONLY = {"aliyun": {"default": "LTAItest"}, "zego": {"default": "1234567890"}, "huawei": {"default": "proj01"}}
COUNTS = {"aliyun.DeleteStream": 60, "aliyun.DeleteMultipartUpload": 4, "zego.DeleteMedia": 140, "huawei.DeleteAssets": 40}
UNTAKEN = 3  # messages left in the queue with no worker to take them


def scrape(url: str, timeout: float = 30.0) -> dict[str, dict[tuple, float]]:
    """The exposition at ``url``, parsed: metric name -> labels (sorted pairs) -> value."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = httpx.get(url, timeout=10)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain; version=0.0.4")
    figures: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            figures.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return figures


def by(figures: dict, name: str, *keys: str, nonzero: bool = False) -> dict[tuple | str, float]:
    """The samples of ``name`` keyed by the values of ``keys`` (each key naming one sample)."""
    found: dict[tuple | str, float] = {}
    for labels, value in figures[name].items():
        key = tuple(dict(labels)[k] for k in keys)
        key = key[0] if len(key) == 1 else key
        assert key not in found, f"{name}: {keys} do not name one sample"
        if value or not nonzero:
            found[key] = value
    return found


def test_the_metrics_endpoint_reports_what_the_database_holds(stack: Stack) -> None:
    stack.sandbox.reset()
    seed, items = generate_media(COUNTS, missing_fraction=0.1, rng_seed=23, accounts=DEFAULT_ONLY, shuffle=True)
    stack.sandbox.seed(seed)
    stack.sandbox.set_faults({"*": {"throttle": 0.15, "unavailable": 0.1}}, seed=9)
    stack.add_worker("metrics-w", concurrency=3)
    submitted = stack.submit(items, idempotency_key="metrics-check")
    summary = stack.wait(submitted.job_id, timeout=90)
    # One call in four fails, so an item may rarely spend its whole retry budget: the metrics must tell
    # that too. Any other failure would be a bug this test has no business hiding.
    with stack.sessions() as session:
        failed = session.execute(
            select(Item.action, Item.media_id, Item.attempts, Item.vendor_code, Item.vendor_message).where(Item.status == "failed")
        ).all()
    assert all(f"gave up after {RETRY['max_attempts']} attempts" in (row.vendor_message or "") for row in failed), failed
    assert summary.status.value == ("completed_with_failures" if failed else "completed"), (summary.status, failed)
    for worker in stack.workers:
        worker.stop()
    with Celery(broker=stack.settings.broker_url) as producer:
        for _ in range(UNTAKEN):
            producer.send_task("mediapurge.sweep", queue=QUEUE)

    port = free_port()
    server = subprocess.Popen(
        [mediapurge_executable(), "metrics", "--port", str(port)], env=stack.env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    try:
        figures = scrape(f"http://127.0.0.1:{port}/metrics")
    finally:
        server.terminate()
        output = server.communicate(timeout=10)[0].decode(errors="replace")
    assert f"metrics on http://127.0.0.1:{port}/metrics" in output, output

    with stack.sessions() as session:
        items_by_status = {
            (action.split(".")[0], action, account, status): n
            for action, account, status, n in session.execute(
                select(Item.action, Item.account, Item.status, func.count()).group_by(Item.action, Item.account, Item.status)
            )
        }
        retries = dict(session.execute(
            select(Item.action, func.sum(Item.attempts - 1)).where(Item.attempts > 1).group_by(Item.action)
        ).all())
        calls = {
            (action, verdict): n
            for action, verdict, n in session.execute(
                select(VendorCall.action, VendorCall.verdict, func.count()).group_by(VendorCall.action, VendorCall.verdict)
            )
        }
        jobs = dict(session.execute(select(Job.status, func.count()).group_by(Job.status)).all())
        open_batches = session.scalar(select(func.count()).select_from(Batch).where(Batch.status != "done"))
        throttled_calls = session.scalar(select(func.sum(case((VendorCall.verdict == "throttled", 1), else_=0))))
    with redis.Redis.from_url(stack.settings.broker_url) as client:
        queued = client.llen(QUEUE)

    assert by(figures, "mediapurge_items", "vendor", "action", "account", "status", nonzero=True) == items_by_status
    assert sum(figures["mediapurge_items"].values()) == summary.total == len(items)
    assert by(figures, "mediapurge_item_retries", "action", nonzero=True) == retries and retries, retries
    assert by(figures, "mediapurge_vendor_calls", "action", "verdict") == calls
    # The run covered what the metrics tell apart: throttling, splits after an unnamed missing id, failures.
    verdicts = {verdict for _, verdict in calls}
    assert {"throttled", "split", "retryable", "deleted"} <= verdicts, verdicts
    throttled = by(figures, "mediapurge_vendor_calls_throttled", "action")
    assert sum(throttled.values()) == throttled_calls == stack.sandbox.stats()["throttled"] > 0
    assert by(figures, "mediapurge_jobs", "status", nonzero=True) == jobs == {summary.status.value: 1}
    assert set(by(figures, "mediapurge_batches_waiting", "action", "state").values()) == {0} and open_batches == 0
    assert figures["mediapurge_broker_queue_depth"] == {(): queued} and queued >= UNTAKEN
