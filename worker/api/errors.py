"""Every error the API answers has one JSON shape, validation errors and 404s included:

    {"error": {"code": "submission_rejected", "message": "...",
               "problems": [{"line": 3, "field": "FileId", "reason": "..."}], "problem_count": 1}}

``line`` is the item's position (1-based) in the submission, or null; ``field`` names the field or
parameter, or null.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from worker.api.streaming import BodyIncomplete
from worker.errors import EnqueueFailed, JobNotFound, JobStateConflict, PayloadTooLarge, SubmissionRejected

log = logging.getLogger("mediapurge.api")

# Where FastAPI puts a request's part first in an error's location; the field is what follows.
_PARTS = {"body", "query", "path", "header", "cookie"}


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, problems: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.problems = problems or []
        self.headers = headers


def problem(reason: str, field: str | None = None, line: int | None = None) -> dict[str, Any]:
    return {"line": line, "field": field, "reason": reason}


def error_response(
    status: int, code: str, message: str, problems: list[dict[str, Any]] | None = None, *,
    problem_count: int | None = None, headers: dict[str, str] | None = None,
) -> JSONResponse:
    problems = problems or []
    body = {"error": {"code": code, "message": message, "problems": problems,
                      "problem_count": len(problems) if problem_count is None else problem_count}}
    return JSONResponse(body, status_code=status, headers=headers)


def _field(loc: tuple[Any, ...]) -> str | None:
    parts = [str(p) for p in loc]
    if parts and parts[0] in _PARTS:
        parts = parts[1:]
    return ".".join(parts) or None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.problems, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [problem(err["msg"], _field(tuple(err["loc"]))) for err in exc.errors()]
        return error_response(422, "invalid_request", "the request is not valid; see problems", problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(SubmissionRejected)
    async def _rejected(request: Request, exc: SubmissionRejected) -> JSONResponse:
        problems = [problem(p.reason, p.field, p.line or None) for p in exc.problems]
        message = f"submission refused, {exc.total} problem(s), nothing was written"
        return error_response(422, "submission_rejected", message, problems, problem_count=exc.total)

    @app.exception_handler(JobNotFound)
    async def _not_found(request: Request, exc: JobNotFound) -> JSONResponse:
        return error_response(404, "job_not_found", str(exc))

    @app.exception_handler(JobStateConflict)
    async def _conflict(request: Request, exc: JobStateConflict) -> JSONResponse:
        return error_response(409, "job_state_conflict", str(exc))

    @app.exception_handler(PayloadTooLarge)
    async def _too_large(request: Request, exc: PayloadTooLarge) -> JSONResponse:
        return error_response(413, "payload_too_large", str(exc))

    @app.exception_handler(BodyIncomplete)
    async def _incomplete(request: Request, exc: BodyIncomplete) -> JSONResponse:
        return error_response(400, "body_incomplete", str(exc))

    @app.exception_handler(EnqueueFailed)
    async def _enqueue_failed(request: Request, exc: EnqueueFailed) -> JSONResponse:
        return error_response(503, "enqueue_failed", str(exc))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The method and path only: headers carry the bearer token.
        log.error("%s %s failed: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
        return error_response(500, "internal_error", "the server failed to answer; it has logged why")
