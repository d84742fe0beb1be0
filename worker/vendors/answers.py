"""Shared steps of reading a vendor's answer, beside the ones in ``worker.vendors.base``.

Each vendor module keeps its own tables (code -> ``Answer``), copied from shared/vendor-protocols.md;
this module turns a table row into a ``CallVerdict`` and guarantees that classification never raises:
whatever the body, the worst case is a retryable ``MalformedResponse``.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import httpx

from worker.outcomes import CallVerdict, ItemResult, Outcome
from worker.vendors.base import MalformedAnswer, malformed, same_for_all, split_needed

# Vendor messages are kept verbatim, but an HTML page or an echoed string-to-sign has no place in the
# audit trail at full length.
MAX_MESSAGE = 1000

# A file the vendor listed neither as deleted nor as failed (ZEGO after Code 0, Huawei after 200): its
# fate is unknown, so it is retried (vendor-protocols.md: "uncertain: retry it once").
UNCERTAIN = "Uncertain"


class Answer(enum.Enum):
    """What one row of a vendor's error table means for the whole call."""

    ALREADY_GONE = "already_gone"  # every id of the call no longer exists
    UNNAMED_NOT_FOUND = "unnamed_not_found"  # one id does not exist, unnamed: gone if alone, else split
    BATCH_TOO_BIG = "batch_too_big"  # our bug: split; a single id cannot be split, so it fails
    RETRYABLE = "retryable"
    THROTTLED = "throttled"  # retryable, and the account's rate must slow down
    FAILED = "failed"
    HALT_ACCOUNT = "halt_account"  # failed, and so would every call of the account (bad key, no rights)


def whole_call(
    answer: Answer,
    media_ids: Sequence[str],
    *,
    http_status: int,
    code: str | None,
    message: str | None,
    request_id: str | None,
) -> CallVerdict:
    """The verdict of a call that one table row decides for all its ids."""
    common: dict[str, Any] = {"http_status": http_status, "code": code, "message": message, "request_id": request_id}
    if answer is Answer.UNNAMED_NOT_FOUND:
        return split_needed(media_ids, **common)
    if answer is Answer.BATCH_TOO_BIG:
        if len(media_ids) > 1:
            return CallVerdict(**common, split=True)
        return same_for_all(media_ids, Outcome.FAILED, **common)
    outcome = {
        Answer.ALREADY_GONE: Outcome.ALREADY_GONE,
        Answer.RETRYABLE: Outcome.RETRYABLE,
        Answer.THROTTLED: Outcome.RETRYABLE,
        Answer.FAILED: Outcome.FAILED,
        Answer.HALT_ACCOUNT: Outcome.FAILED,
    }[answer]
    return same_for_all(
        media_ids,
        outcome,
        **common,
        throttled=answer is Answer.THROTTLED,
        halt_account=answer is Answer.HALT_ACCOUNT,
    )


def by_status(status: int) -> Answer | None:
    """The class an unlisted error code gets from its HTTP status alone, or None below 400."""
    if status == 429:  # RFC 6585 "Too Many Requests", whatever code the body carries
        return Answer.THROTTLED
    if status >= 500:
        return Answer.RETRYABLE
    if status >= 400:
        return Answer.FAILED
    return None


def per_item(
    media_ids: Sequence[str],
    results: Mapping[str, ItemResult],
    *,
    http_status: int,
    code: str | None,
    message: str | None,
    request_id: str | None,
) -> CallVerdict:
    """A verdict from the vendor's per-id list; ids it did not mention are retryable ``Uncertain``.

    Ids the vendor named but we did not send are ignored: they are not ours to record.
    """
    uncertain = ItemResult(Outcome.RETRYABLE, UNCERTAIN, "not in the vendor's per-item answer", request_id)
    return CallVerdict(
        http_status=http_status,
        code=code,
        message=message,
        request_id=request_id,
        items={media_id: results.get(media_id, uncertain) for media_id in media_ids},
    )


def text(body: Mapping[str, Any], key: str, limit: int | None = MAX_MESSAGE) -> str | None:
    """``body[key]`` as text when it is a string or a number (ZEGO and CDNs send numeric codes), else None;
    cut to ``limit`` characters."""
    value = body.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return value[:limit]
    return None


def is_success(response: httpx.Response) -> bool:
    return 200 <= response.status_code < 300


ClassifyT = TypeVar("ClassifyT", bound=Callable[..., CallVerdict])


def never_raises(classify: ClassifyT) -> ClassifyT:
    """Wrap an ``Operation.classify`` so an unreadable body becomes a retryable ``malformed`` verdict."""

    @functools.wraps(classify)
    def wrapper(self: Any, media_ids: Sequence[str], response: httpx.Response) -> CallVerdict:
        try:
            return classify(self, media_ids, response)
        except MalformedAnswer as error:
            return malformed(media_ids, response, error)
        except RecursionError:
            # json.loads raises RecursionError, not ValueError, on very deep nesting ("[[[[...").
            return malformed(media_ids, response, MalformedAnswer(f"HTTP {response.status_code} body nests too deeply"))

    return wrapper  # type: ignore[return-value]
