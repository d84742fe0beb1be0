"""Request and response bodies, which are also the OpenAPI document's schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from worker.producer import IDEMPOTENCY_KEY_LENGTH


class SubmitRequest(BaseModel):
    """A job as one JSON document. For large jobs stream JSON Lines instead (``application/x-ndjson``)."""

    model_config = ConfigDict(extra="forbid")

    items: list[Any] = Field(description="Items as in a JSON Lines file: {'action': ..., vendor ids..., 'account': ...}.")
    idempotency_key: str | None = Field(default=None, max_length=IDEMPOTENCY_KEY_LENGTH,
                                        description="Submitting again with the same key returns the same job.")
    callback_url: str | None = Field(default=None, description="http(s) URL that receives a signed POST when the job ends.")


class Submitted(BaseModel):
    job_id: int
    created: bool = Field(description="False when the idempotency key named an existing job.")
    status: str
    item_count: int
    duplicate_count: int


class CallbackView(BaseModel):
    url: str
    state: str | None = Field(description="pending, delivered or failed.")
    attempts: int
    last_error: str | None
    delivered_at: datetime | None


class JobView(BaseModel):
    job_id: int
    status: str = Field(description="submitted, running, completed, completed_with_failures or cancelled.")
    total: int
    done: int
    progress: float
    counts: dict[str, int] = Field(description="Items per status.")
    by_action: dict[str, dict[str, int]]
    rate_per_second: float
    batches: int
    duplicates_ignored: int
    source: str | None
    created_at: datetime
    finished_at: datetime | None
    cancel_requested_at: datetime | None
    callback: CallbackView | None


class ItemView(BaseModel):
    """One item: its fields named as in a submission (only those of its action are present), then its audit."""

    model_config = ConfigDict(extra="allow")

    id: int
    line: int
    action: str
    account: str
    status: str
    attempts: int
    retries: int = Field(description="How many times retry-failed put the item back to pending.")
    vendor_code: str | None
    vendor_message: str | None
    request_id: str | None
    batch_id: int | None
    created_at: datetime
    first_sent_at: datetime | None
    last_sent_at: datetime | None
    finished_at: datetime | None


class ItemsPage(BaseModel):
    items: list[ItemView]
    next_after: int | None = Field(description="Pass as `after` for the next page; null on the last page.")


class Cancelled(BaseModel):
    job_id: int
    status: str
    cancelled_items: int = Field(description="Items this request cancelled.")
    in_flight_batches: int = Field(description="Batches being sent now; each stops before its next vendor call.")
    already_requested: bool
    ended: bool


class Retried(BaseModel):
    job_id: int
    requeued_items: int = Field(description="Failed items put back to pending; 0 when there were none.")
    status: str


class Problem(BaseModel):
    line: int | None
    field: str | None
    reason: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    problems: list[Problem]
    problem_count: int


class ErrorBody(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: str
    database: str


def job_view(summary_dict: dict[str, Any], job: Any) -> JobView:  # noqa: ANN401
    callback = None
    if job.callback_url:
        callback = CallbackView(
            url=job.callback_url, state=job.callback_state, attempts=job.callback_attempts,
            last_error=job.callback_last_error, delivered_at=job.callback_delivered_at,
        )
    return JobView(**summary_dict, cancel_requested_at=job.cancel_requested_at, callback=callback)
