"""Celery settings that the design depends on (see shared notes on Celery and Redis)."""

from __future__ import annotations

from typing import Any

from worker.settings import Settings

QUEUE = "mediapurge"

# Kombu's Redis transport keeps a list per priority step (0, 3, 6, 9) and pops 0 first. A batch that
# holds a reserved rate-limit slot is re-sent at 0, so its message is not stuck behind a backlog of
# fresh batches (a slot used late is a slot wasted); fresh and polling batches go at 6.
PRIORITY_HOLDING_SLOT = 0
PRIORITY_FRESH = 6


def celery_config(settings: Settings) -> dict[str, Any]:
    return {
        "broker_url": settings.broker_url,
        "broker_connection_retry_on_startup": True,
        # Results live in the database; a result backend would only duplicate them.
        "task_ignore_result": True,
        "result_backend": None,
        # A task is acknowledged after it ran, and re-delivered if its worker process dies mid-batch.
        # Both flags are needed: late acks alone still ack a task whose child was SIGKILLed.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # Batches are short but many; prefetching more would park them behind a sleeping one.
        "worker_prefetch_multiplier": 1,
        # Every countdown we use is shorter than this (retry waits are capped, long waits live in the
        # database), so a message is never redelivered while a worker still holds it.
        "broker_transport_options": {"visibility_timeout": 3600},
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_default_queue": QUEUE,
        # Flower shows tasks from their events.
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "worker_hijack_root_logger": False,
        "beat_schedule": {
            "mediapurge-sweep": {"task": "mediapurge.sweep", "schedule": settings.sweep_interval},
            **retention_schedule(settings),
        },
    }


def retention_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """One beat entry per enabled retention policy, every ``every``. Each firing is safe to repeat: a
    policy makes at most one job per period (worker/retention.py)."""
    return {
        f"mediapurge-retention-{name}": {
            "task": "mediapurge.run_retention", "schedule": policy.every.total_seconds(), "args": (name,),
        }
        for name, policy in sorted(settings.retention_policies.items())
        if policy.enabled
    }


def waiting_messages(app: Any) -> int:
    """Messages waiting in the broker's ``mediapurge`` queue of a Celery ``app`` (not counting those a
    worker holds)."""
    from kombu.exceptions import ChannelError

    with app.connection_for_read() as connection:
        try:
            return connection.default_channel.queue_declare(queue=QUEUE, passive=True).message_count
        except ChannelError:
            return 0  # no such queue: a broker that restarted empty, before any worker declared it again
