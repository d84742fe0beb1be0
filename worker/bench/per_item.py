"""Baseline: what a user might build instead, one Celery task per item with Celery's own rate limit.

    celery -A worker.bench.per_item worker -Q bench_per_item --concurrency 4

Each task deletes one ZEGO file in its own call; ``rate_limit="20/s"`` is per worker (celery#5732), so
four workers send up to 80 calls/s against the app's 20/s, and a throttling answer is retried after
a second. Its messages carry the file ids themselves: that is this design, not mediapurge's.
"""

from __future__ import annotations

import uuid
from functools import lru_cache

import httpx
from celery import Celery

from worker.settings import load_settings
from worker.vendors import OPERATIONS

QUEUE = "bench_per_item"

app = Celery("bench_per_item")


@lru_cache(maxsize=1)
def _settings():  # noqa: ANN202
    return load_settings()


@lru_cache(maxsize=1)
def _configure() -> None:
    settings = _settings()
    app.conf.update(
        broker_url=settings.broker_url, task_default_queue=QUEUE, task_ignore_result=True, result_backend=None,
        task_acks_late=True, worker_prefetch_multiplier=1, worker_hijack_root_logger=False,
    )


_configure()


@lru_cache(maxsize=1)
def _client() -> httpx.Client:
    return httpx.Client(timeout=10)


@app.task(name="bench.delete_one", bind=True, rate_limit="20/s", max_retries=None)
def delete_one(self, cdn: str, file_id: str) -> str:  # noqa: ANN001
    from datetime import datetime, timezone

    op = OPERATIONS["zego.DeleteMedia"]
    account = _settings().accounts.get("zego", "default")
    request = op.build_request(account, cdn, [file_id], datetime.now(timezone.utc), uuid.uuid4().hex)
    try:
        verdict = op.classify([file_id], _client().send(request))
    except httpx.HTTPError as exc:
        raise self.retry(countdown=1, exc=exc) from None
    if verdict.throttled or verdict.code in ("6", "ServiceUnavailable"):
        raise self.retry(countdown=1)
    return verdict.code or "ok"
