"""The one small interface every vendor operation implements.

An operation knows three things: how its items are shaped and grouped (for validation and batching),
how to turn one group of ids into a signed ``httpx.Request``, and how to classify the vendor's answer
into a ``CallVerdict``. It never sends, sleeps, retries or touches the database: the executor does.
Adding a vendor is one new module registered in ``worker.vendors``; no other vendor's file changes.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

import httpx

from worker.outcomes import CallVerdict, ItemResult, Outcome
from worker.settings import _Account

AccountT = TypeVar("AccountT", bound=_Account)


class Operation(ABC, Generic[AccountT]):
    vendor: ClassVar[str]  # "aliyun", "zego", "huawei": the key of its accounts in the settings
    name: ClassVar[str]  # the vendor's own operation name, e.g. "DeleteMedia"
    max_batch: ClassVar[int]  # most ids one call may carry (the vendor's documented limit)
    id_field: ClassVar[str]  # the item field holding the id to delete, e.g. "FileId"
    # The item field every id of one call must share (VideoId, Vendor, MediaType), or None.
    group_field: ClassVar[str | None] = None
    # When the group field is an enumeration (Vendor, MediaType): its allowed values.
    group_choices: ClassVar[tuple[str, ...] | None] = None
    # Published per-account limit of this operation, e.g. "20/s"; accounts may override it.
    default_rate: ClassVar[str]
    # A second limit that every operation of the account shares (Huawei VOD: 1,000 calls/min), or None.
    account_rate: ClassVar[str | None] = None

    @property
    def action(self) -> str:
        """The name items use: ``"zego.DeleteMedia"``."""
        return f"{self.vendor}.{self.name}"

    @property
    def item_fields(self) -> tuple[str, ...]:
        return (self.group_field, self.id_field) if self.group_field else (self.id_field,)

    @abstractmethod
    def build_request(
        self, account: AccountT, group_key: str, media_ids: Sequence[str], now: datetime, nonce: str
    ) -> httpx.Request:
        """A signed request deleting exactly ``media_ids`` (all sharing ``group_key``), nothing else.

        ``now`` is timezone-aware; ``nonce`` is unique per request (the executor passes a uuid4 hex).
        """

    @abstractmethod
    def classify(self, media_ids: Sequence[str], response: httpx.Response) -> CallVerdict:
        """The verdict on every id of the call, from the vendor's answer (any status, any body)."""


OperationT = TypeVar("OperationT", bound=Operation[Any])


# Shared steps of classification, so no vendor module repeats them.


class MalformedAnswer(ValueError):
    """The vendor's body is not the JSON shape its documentation promises."""


def json_body(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object, or MalformedAnswer (an HTML error page, truncated JSON, a list...)."""
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError, RecursionError):  # json raises RecursionError on "[[[[..."
        raise MalformedAnswer(f"HTTP {response.status_code} body is not JSON") from None
    if not isinstance(body, dict):
        raise MalformedAnswer(f"HTTP {response.status_code} body is JSON but not an object")
    return body


def same_for_all(
    media_ids: Sequence[str],
    outcome: Outcome,
    *,
    http_status: int | None,
    code: str | None,
    message: str | None,
    request_id: str | None,
    throttled: bool = False,
    halt_account: bool = False,
) -> CallVerdict:
    """A verdict that gives every id of the call the same result."""
    result = ItemResult(outcome, code, message, request_id)
    return CallVerdict(
        http_status=http_status,
        code=code,
        message=message,
        request_id=request_id,
        items={media_id: result for media_id in media_ids},
        throttled=throttled,
        halt_account=halt_account,
    )


def split_needed(
    media_ids: Sequence[str], *, http_status: int, code: str, message: str | None, request_id: str | None
) -> CallVerdict:
    """The vendor refused the call for one id it did not name: for a single id that id is already gone,
    for several the executor sends smaller calls to find it."""
    if len(media_ids) == 1:
        return same_for_all(
            media_ids, Outcome.ALREADY_GONE, http_status=http_status, code=code, message=message, request_id=request_id
        )
    return CallVerdict(http_status=http_status, code=code, message=message, request_id=request_id, split=True)


def malformed(media_ids: Sequence[str], response: httpx.Response, error: MalformedAnswer) -> CallVerdict:
    """An answer we cannot read: the deletion may or may not have happened, so retry (a repeated delete
    is answered "not found", which counts as already gone)."""
    return same_for_all(
        media_ids,
        Outcome.RETRYABLE,
        http_status=response.status_code,
        code="MalformedResponse",
        message=str(error),
        request_id=None,
    )


def transport_failure(media_ids: Sequence[str], error: Exception) -> CallVerdict:
    """A timeout or dropped connection: effect unknown, safe to retry."""
    return same_for_all(
        media_ids,
        Outcome.RETRYABLE,
        http_status=None,
        code=type(error).__name__,
        message=str(error)[:500] or type(error).__name__,
        request_id=None,
    )
