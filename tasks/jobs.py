"""Thin tasks: ids in, plain code called, its decision turned into the next message.

Arguments are ids (and a reserved rate-limit slot time), never media ids or credentials, so messages
stay tiny. What Flower shows is each message's argsrepr (worker.refs), which every send below sets:
``job=12`` for a plan, ``job=12 batch=345 zego.DeleteMedia account=default items=100`` for a batch.
"""

from __future__ import annotations

from datetime import timedelta

from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from worker import callbacks, context, planner, sweeper
from worker.celery_config import PRIORITY_FRESH, PRIORITY_HOLDING_SLOT, waiting_messages
from worker.executor import run_batch
from worker.refs import BatchRef, plan_argsrepr, slot_kwargsrepr
from worker.retry import Finished, Permit, RunAgain

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
            for chunk in planner.queued_batches(session, job_id):
                for ref in chunk:
                    send_batch(ref, producer=producer)


@app.task(name="mediapurge.delete_batch", **INFRASTRUCTURE_RETRY)
def delete_batch(batch_id: int, permit_slot: float | None = None, permit_epoch: int = 0) -> str:
    rt = context.runtime()
    decision = run_batch(rt, batch_id, Permit(permit_slot, permit_epoch) if permit_slot is not None else None)
    if isinstance(decision, RunAgain):
        # run_batch names the batch it gives back from its claim, so re-sending it reads nothing.
        assert decision.ref is not None, "run_batch gives every batch back through _requeue, which names it"
        send_batch(decision.ref, permit=decision.permit, countdown=decision.delay)
    elif isinstance(decision, Finished) and decision.job_ended is not None:
        with rt.sessions() as session:
            if callbacks.wanted(session, decision.job_id):
                notify_job.apply_async((decision.job_id,), argsrepr=plan_argsrepr(decision.job_id))
    # What Flower and the worker log show as the result, e.g. "RunAgain: rate limit queue is long".
    return f"RunAgain: {decision.reason}" if isinstance(decision, RunAgain) else type(decision).__name__


@app.task(name="mediapurge.notify_job", **INFRASTRUCTURE_RETRY)
def notify_job(job_id: int) -> str:
    """POST the ended job's signed summary to its callback URL; a failed delivery comes back later."""
    rt = context.runtime()
    with rt.sessions() as session:
        decision = callbacks.deliver(session, rt.http, rt.settings.callbacks, job_id, now=rt.clock(), rand=rt.rand)
    if isinstance(decision, callbacks.RetryLater):
        notify_job.apply_async((job_id,), countdown=decision.delay, argsrepr=plan_argsrepr(job_id))
    return type(decision).__name__


@app.task(name="mediapurge.sweep", **INFRASTRUCTURE_RETRY)
def sweep() -> dict[str, int]:
    """Re-send what the broker lost (Celery beat runs this every ``sweep_interval`` seconds)."""
    rt = context.runtime()
    settings = rt.settings
    policy = sweeper.SweepPolicy(timedelta(seconds=settings.sweep_grace), settings.sweep_queue_threshold)
    with rt.sessions() as session, app.producer_or_acquire() as producer:
        result = sweeper.sweep(
            session, rt.clock(), policy, queue_length=queue_length,
            send_plan=lambda job_id: send_plan(job_id, producer=producer),
            send_batch=lambda ref: send_batch(ref, producer=producer),
            send_callback=lambda job_id: notify_job.apply_async((job_id,), producer=producer, argsrepr=plan_argsrepr(job_id)),
        )
    return result.__dict__


def send_plan(job_id: int, **options: object) -> None:
    """Enqueue the planning of a job. ``options`` go to ``apply_async`` (producer, countdown...)."""
    plan_job.apply_async((job_id,), argsrepr=plan_argsrepr(job_id), **options)


def send_batch(ref: BatchRef, permit: Permit | None = None, **options: object) -> None:
    """Enqueue a batch: every batch message is sent here, so each shows Flower what it is about."""
    kwargs = {"permit_slot": permit.slot, "permit_epoch": permit.epoch} if permit is not None else {}
    priority = PRIORITY_HOLDING_SLOT if permit is not None else PRIORITY_FRESH
    delete_batch.apply_async(
        (ref.id,), kwargs, argsrepr=ref.argsrepr, kwargsrepr=slot_kwargsrepr(permit), priority=priority, **options
    )


def queue_length() -> int:
    """Messages waiting in the broker's ``mediapurge`` queue (not counting those a worker holds)."""
    return waiting_messages(app)
