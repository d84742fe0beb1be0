"""HTTP routes of the inventory and the retention policies, as an APIRouter for the producer API.

    POST /v1/inventory                                 register media: a JSON array, or application/x-ndjson
    GET  /v1/retention/policies                        the configured policies and their latest runs
    POST /v1/retention/policies/{name}/run?dry_run=... run a policy for the current period now

Authentication is the application's business (it is attached where the router is mounted). What the
routes need (settings, sessions, how to enqueue a job, the clock) comes from the ``retention_services``
dependency, which an application or a test may override.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from tempfile import SpooledTemporaryFile
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session, sessionmaker

from worker.errors import EnqueueFailed, SubmissionRejected
from worker.settings import Settings

NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-lines")
# An NDJSON body is spooled to a temporary file past this size, then read line by line.
SPOOL_IN_MEMORY = 1 << 20


@dataclass
class RetentionServices:
    settings: Settings
    sessions: sessionmaker[Session]
    enqueue: Callable[[int], None]
    clock: Callable[[], datetime]


def retention_services() -> RetentionServices:
    """The process's runtime (worker/context.py); jobs are enqueued on the Celery broker."""
    from worker import context, jobs

    runtime = context.runtime()
    return RetentionServices(runtime.settings, runtime.sessions, jobs.celery_enqueue, runtime.clock)


Services = Annotated[RetentionServices, Depends(retention_services)]
router = APIRouter(tags=["retention"])


def _refused(exc: SubmissionRejected) -> JSONResponse:
    return JSONResponse(
        status_code=422,
        content={"detail": "registration refused, nothing was written", "problem_count": exc.total,
                 "problems": [problem.as_dict() for problem in exc.problems]},
    )


@router.post("/inventory")
async def register_inventory(request: Request, services: Services) -> JSONResponse:
    """Register media (upsert): a JSON array of media, or one medium per line as application/x-ndjson.
    All or nothing: any bad medium refuses the whole body (422, every problem by line and field)."""
    from worker.inventory import MediaValidator, register_media
    from worker.jobs import validator_for
    from worker.readers import read_jsonl

    validator = MediaValidator(validator_for(services.settings))
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if content_type in NDJSON_TYPES:
            with SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as body:
                async for chunk in request.stream():
                    body.write(chunk)
                body.seek(0)
                result = await run_in_threadpool(register_media, services.sessions, read_jsonl(body), validator)
        else:
            try:
                media = json.loads(await request.body())
            except (ValueError, RecursionError) as exc:
                return JSONResponse(status_code=400, content={"detail": f"the body is not JSON ({str(exc)[:200]})"})
            if not isinstance(media, list):
                return JSONResponse(status_code=400, content={
                    "detail": f"the body must be a JSON array of media (or application/x-ndjson), got {type(media).__name__}"})
            result = await run_in_threadpool(register_media, services.sessions, media, validator)
    except SubmissionRejected as exc:
        return _refused(exc)
    return JSONResponse({"registered": result.count})


@router.get("/retention/policies")
def list_policies(services: Services) -> dict[str, Any]:
    """Every configured policy with its most recent runs, newest first."""
    from worker.retention import policy_summaries

    with services.sessions() as session:
        return {"policies": policy_summaries(session, services.settings)}


@router.post("/retention/policies/{name}/run")
def run_policy(name: str, services: Services, dry_run: bool = False) -> JSONResponse:
    """Run the policy for the current period: 201 with the job when this call made the period's run;
    200 when the period already had its run (its job) or for a dry run, which writes nothing."""
    from worker.retention import PolicyDisabled, PolicyNotFound, run_named

    try:
        outcome = run_named(
            services.settings, services.sessions, name, services.clock(), enqueue=services.enqueue, dry_run=dry_run
        )
    except PolicyNotFound as exc:
        return JSONResponse(status_code=404, content={"detail": str(exc)})
    except PolicyDisabled as exc:
        return JSONResponse(status_code=409, content={"detail": str(exc)})
    except EnqueueFailed as exc:  # the job is saved; running the policy again in the period queues it
        return JSONResponse(status_code=503, content={"detail": str(exc)})
    return JSONResponse(status_code=201 if outcome.created else 200, content=outcome.as_dict())
