"""Routes for jobs: submit, status, items, report, cancel, retry-failed. Each is a few lines over
worker.jobs and worker.control; database work runs on worker threads (sync routes), never on the loop.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from models.tables import Job
from models.types import utcnow
from worker import control
from worker import jobs as job_service
from worker.api import schemas
from worker.api.errors import ApiError, problem
from worker.api.streaming import consume_lines
from worker.errors import JobNotFound, PayloadTooLarge
from worker.outcomes import ItemStatus
from worker.readers import read_jsonl

log = logging.getLogger("mediapurge.api")

router = APIRouter(tags=["jobs"])

JSON_TYPES = ("application/json",)
NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-lines", "application/jsonlines")
ERRORS = {status: {"model": schemas.ErrorBody} for status in (401, 404, 409, 413, 415, 422, 503)}
JobId = Annotated[int, Path(ge=1, description="The job's id.")]

SUBMIT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": schemas.SubmitRequest.model_json_schema()},
            "application/x-ndjson": {
                "schema": {"type": "string", "description": "One item per line (JSON Lines), streamed; "
                           "idempotency key and callback URL as headers or query parameters."},
            },
        },
    }
}


def _state(request: Request):  # noqa: ANN202
    return request.app.state


@router.post(
    "/jobs", response_model=schemas.Submitted, status_code=201, responses={200: {"model": schemas.Submitted}, **ERRORS},
    openapi_extra=SUBMIT_BODY, summary="Submit a job (JSON, or JSON Lines streamed)",
)
async def submit_job(
    request: Request,
    response: Response,
    idempotency_key_query: Annotated[str | None, Query(alias="idempotency_key")] = None,
    callback_url_query: Annotated[str | None, Query(alias="callback_url")] = None,
    idempotency_key_header: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    callback_url_header: Annotated[str | None, Header(alias="Callback-Url")] = None,
) -> schemas.Submitted:
    """201 with the new job, or 200 with the existing one when the idempotency key is known. Refused
    whole (422, every problem by line and field) when any item is bad; nothing is written then."""
    state = _state(request)
    limits = state.settings.api
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    key = _one_of("idempotency_key", idempotency_key_query, idempotency_key_header)
    callback = _one_of("callback_url", callback_url_query, callback_url_header)
    declared = request.headers.get("content-length")
    if media_type in NDJSON_TYPES:
        _refuse_declared_size(declared, limits.max_stream_bytes, "api.max_stream_bytes")
        submitted = await consume_lines(
            request, limits.max_stream_bytes, lambda lines: _submit(state, read_jsonl(lines), key, callback)
        )
    elif media_type in JSON_TYPES:
        _refuse_declared_size(declared, limits.max_body_bytes, "api.max_body_bytes")
        body = await _read_body(request, limits.max_body_bytes)
        document = _parse(body)
        key = _one_of("idempotency_key", document.idempotency_key, key)
        callback = _one_of("callback_url", document.callback_url, callback)
        submitted = await run_in_threadpool(_submit, state, document.items, key, callback)
    else:
        raise ApiError(
            415, "unsupported_media_type",
            f"Content-Type must be application/json or application/x-ndjson, not {media_type or 'absent'!r}",
            [problem("unsupported media type", "Content-Type")],
        )
    response.status_code = 201 if submitted.created else 200
    return schemas.Submitted(
        job_id=submitted.job_id, created=submitted.created, status=submitted.status.value,
        item_count=submitted.item_count, duplicate_count=submitted.duplicate_count,
    )


def _submit(state, items, key: str | None, callback: str | None):  # noqa: ANN001, ANN202
    return job_service.submit(
        items, settings=state.settings, sessions=state.sessions, enqueue=state.dispatcher.plan_job,
        idempotency_key=key, callback_url=callback, source="api",
    )


def _one_of(field: str, first: str | None, second: str | None) -> str | None:
    if first is not None and second is not None and first != second:
        raise ApiError(422, "invalid_request", f"{field} is given twice with different values",
                       [problem("given twice with different values (body, header or query)", field)])
    return first if first is not None else second


def _refuse_declared_size(declared: str | None, limit: int, setting: str) -> None:
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the request body is {int(declared):,} bytes, over the {limit:,} allowed ({setting}); nothing was written")


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it passes ``limit`` (a chunked body declares no length)."""
    parts, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the request body is over the {limit:,} bytes allowed (api.max_body_bytes); "
                                  "stream large jobs as application/x-ndjson; nothing was written")
        parts.append(chunk)
    return b"".join(parts)


def _parse(body: bytes) -> schemas.SubmitRequest:
    try:
        return schemas.SubmitRequest.model_validate_json(body)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            if err["type"] == "json_invalid":
                problems.append(problem(f"not valid JSON: {err['msg']}"))
            else:
                problems.append(problem(err["msg"], ".".join(str(p) for p in err["loc"]) or None))
        raise ApiError(422, "invalid_request", "the request body is not a valid job; see problems", problems) from None


@router.get("/jobs/{job_id}", response_model=schemas.JobView, responses=ERRORS, summary="A job's status and counts")
def job_status(job_id: JobId, request: Request) -> schemas.JobView:
    with _state(request).sessions() as session:
        summary = job_service.job_status(session, job_id)
        return schemas.job_view(summary.as_dict(), session.get(Job, job_id))


@router.get("/jobs/{job_id}/items", response_model=schemas.ItemsPage, responses=ERRORS, summary="A job's items, paged")
def job_items(
    job_id: JobId,
    request: Request,
    status: Annotated[ItemStatus | None, Query(description="Only items in this status.")] = None,
    limit: Annotated[int, Query(ge=1, le=control.MAX_PAGE)] = 100,
    after: Annotated[int | None, Query(ge=0, description="The previous page's next_after.")] = None,
) -> schemas.ItemsPage:
    """Items in id order; follow ``next_after`` until it is null."""
    with _state(request).sessions() as session:
        page = control.list_items(session, job_id, status=status, limit=limit, after=after)
    return schemas.ItemsPage(items=page.items, next_after=page.next_after)


@router.get(
    "/jobs/{job_id}/report", responses={**ERRORS, 200: {"content": {"text/csv": {}, "application/json": {}}}},
    response_class=StreamingResponse, summary="The completion report, streamed",
)
def job_report(job_id: JobId, request: Request, fmt: Annotated[Literal["csv", "json"], Query(alias="format")] = "csv") -> StreamingResponse:
    """One row per item (CSV, or a JSON array) with its final status, vendor code and request id."""
    session = _state(request).sessions()
    try:
        chunks = job_service.report_chunks(session, job_id, fmt)
    except JobNotFound:
        session.close()
        raise
    media_type = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
    headers = {"Content-Disposition": f'attachment; filename="job-{job_id}.{fmt}"'}
    return StreamingResponse(_closing(session, chunks), media_type=media_type, headers=headers)


def _closing(session, chunks: Iterator[str]) -> Iterator[bytes]:  # noqa: ANN001
    try:
        for chunk in chunks:
            yield chunk.encode("utf-8")
    finally:
        session.close()


@router.post("/jobs/{job_id}/cancel", response_model=schemas.Cancelled, responses=ERRORS, summary="Cancel a job")
def cancel_job(job_id: JobId, request: Request) -> schemas.Cancelled:
    """Items not sent yet are cancelled; a batch being sent stops before its next vendor call; items
    already sent keep their true status. Cancelling again is a no-op; a job that ended otherwise: 409."""
    state = _state(request)
    with state.sessions() as session:
        result = control.cancel_job(session, job_id, utcnow())
    if result.ended:
        _dispatch_quietly(state.dispatcher.notify_job, job_id, "its callback (the sweeper sends it later)")
    return schemas.Cancelled(**result.as_dict())


@router.post(
    "/jobs/{job_id}/retry-failed", response_model=schemas.Retried, status_code=202, responses=ERRORS,
    summary="Send a job's failed items again",
)
def retry_failed(job_id: JobId, request: Request) -> schemas.Retried:
    """The ended job's failed items go back to pending in new batches (their earlier failure is kept in
    the audit). 409 while the job runs, so a double click sends nothing twice."""
    state = _state(request)
    with state.sessions() as session:
        result = control.retry_failed(session, job_id, utcnow())
    if result.requeued_items:
        _dispatch_quietly(state.dispatcher.plan_job, job_id, "its plan (the sweeper re-plans it after sweep_grace)")
    return schemas.Retried(**result.as_dict())


def _dispatch_quietly(send, job_id: int, what: str) -> None:  # noqa: ANN001
    """The database already holds the change; a broker hiccup only delays it, so it is not an error."""
    try:
        send(job_id)
    except Exception as exc:  # noqa: BLE001
        log.warning("job %s: could not enqueue %s: %s", job_id, what, type(exc).__name__)
