"""Thin tasks: ids in, plain code called, its decision turned into the next message.

Arguments are ids (and a reserved rate-limit slot time), never media ids or credentials, so messages
stay tiny and Flower shows nothing secret.
"""

from __future__ import annotations

from worker import context, planner
from worker.executor import run_batch
from worker.retry import RunAgain

from tasks.app import app


@app.task(name="mediapurge.plan_job")
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


@app.task(name="mediapurge.delete_batch")
def delete_batch(batch_id: int, permit_slot: float | None = None) -> str:
    decision = run_batch(context.runtime(), batch_id, permit_slot)
    if isinstance(decision, RunAgain):
        kwargs = {"permit_slot": decision.permit_slot} if decision.permit_slot is not None else {}
        delete_batch.apply_async((batch_id,), kwargs, countdown=decision.delay)
    return type(decision).__name__
