"""Thin tasks: ids in, plain code called, its decision turned into the next message.

Arguments are ids (and a reserved rate-limit slot time), never media ids or credentials, so messages
stay tiny and Flower shows nothing secret.
"""

from __future__ import annotations

from datetime import timedelta

from kombu.exceptions import ChannelError
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from worker import callbacks, context, planner, sweeper
from worker.celery_config import QUEUE
from worker.executor import run_batch
from worker.retry import Finished, RunAgain

from tasks.app import app


# A database or Redis outage (restart, failover) is waited out with short, growing countdowns; every
# task is safe to run again (planning is idempotent, batches are claimed under a lease).
INFRASTRUCTURE_RETRY = dict(
    autoretry_for=(SQLAlchemyError, RedisError, OSError), retry_backoff=1, retry_backoff_max=60, retry_jitter=True, max_retries=50,
)


@app.task(name="mediapurge.plan_job", **INFRASTRUCTURE_RETRY)
def plan_job(job_id: int) -> None:
    """Split the job into batches, then enqueue every batch still queued (again, if this is a redelivery:
    a batch's lease makes duplicate messages harmless)."""
    rt = context.runtime()
    with rt.sessions() as session:
        planner.plan_job(session, job_id)
        with app.producer_or_acquire() as producer:
            for chunk in planner.queued_batch_ids(session, job_id):
                for batch_id in chunk:
                    delete_batch.apply_async((batch_id,), producer=producer)


@app.task(name="mediapurge.delete_batch", **INFRASTRUCTURE_RETRY)
def delete_batch(batch_id: int, permit_slot: float | None = None) -> str:
    decision = run_batch(context.runtime(), batch_id, permit_slot)
    if isinstance(decision, RunAgain):
        kwargs = {"permit_slot": decision.permit_slot} if decision.permit_slot is not None else {}
        delete_batch.apply_async((batch_id,), kwargs, countdown=decision.delay)
    elif isinstance(decision, Finished) and decision.job_ended is not None:
        notify_job.apply_async((decision.job_id,))
    return type(decision).__name__


@app.task(name="mediapurge.notify_job", **INFRASTRUCTURE_RETRY)
def notify_job(job_id: int) -> str:
    """POST the ended job's signed summary to its callback URL; a failed delivery comes back later."""
    rt = context.runtime()
    with rt.sessions() as session:
        decision = callbacks.deliver(session, rt.http, rt.settings.callbacks, job_id, now=rt.clock(), rand=rt.rand)
    if isinstance(decision, callbacks.RetryLater):
        notify_job.apply_async((job_id,), countdown=decision.delay)
    return type(decision).__name__


@app.task(name="mediapurge.sweep", **INFRASTRUCTURE_RETRY)
def sweep() -> dict[str, int]:
    """Re-send what the broker lost (Celery beat runs this every ``sweep_interval`` seconds)."""
    rt = context.runtime()
    settings = rt.settings
    policy = sweeper.SweepPolicy(timedelta(seconds=settings.sweep_grace), settings.sweep_queue_threshold)
    with rt.sessions() as session, app.producer_or_acquire() as producer:
        result = sweeper.sweep(
            session, rt.clock(), policy, queue_length=_queue_length,
            send_plan=lambda job_id: plan_job.apply_async((job_id,), producer=producer),
            send_batch=lambda batch_id: delete_batch.apply_async((batch_id,), producer=producer),
            send_callback=lambda job_id: notify_job.apply_async((job_id,), producer=producer),
        )
    return result.__dict__


def _queue_length() -> int:
    with app.connection_for_read() as connection:
        try:
            return connection.default_channel.queue_declare(queue=QUEUE, passive=True).message_count
        except ChannelError:
            return 0  # no such queue: a broker that restarted empty, before any worker declared it again
