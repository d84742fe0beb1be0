"""Huawei Cloud VOD: DeleteAssets (up to 10 assets per call).

``DELETE /v1.0/{project_id}/asset?asset_id=a&asset_id=b`` signed with the APIG AK/SK scheme
(SDK-HMAC-SHA256). A 200 answer lists a status per asset; errors come from VOD (``VOD.10062``: an asset
does not exist) or from the API gateway (``APIGW.*``). Sources: the DeleteAssets page (shared/seeds 003)
and shared/vendor-protocols.md, whose tables ``_CODES`` and ``_STATUSES`` copy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import httpx

from worker.outcomes import CallVerdict, ItemResult, Outcome
from worker.settings import HuaweiAccount
from worker.signing import huawei as signer
from worker.vendors.answers import UNCERTAIN, Answer, by_status, is_success, never_raises, per_item, text, whole_call
from worker.vendors.base import MalformedAnswer, Operation, json_body

METHOD = "DELETE"

_CODES: Mapping[str, Answer] = {
    # "Media asset or resource does not exist": one of the ids, which the answer does not name.
    "VOD.10062": Answer.UNNAMED_NOT_FOUND,
    "APIGW.0308": Answer.THROTTLED,
    # IAM / AK-SK authentication refused: every call of the account would be.
    "APIGW.0301": Answer.HALT_ACCOUNT,
    "APIGW.0101": Answer.HALT_ACCOUNT,
}

# Per-asset status in a 200 answer. FAILED is typical of an asset still being transcoded, reviewed or
# snapshotted ("正在处理中的媒资不支持删除", seed 003): worth retrying for a while.
_STATUSES: Mapping[str, Outcome] = {"DELETED": Outcome.DELETED, "FAILED": Outcome.RETRYABLE}


class DeleteAssets(Operation[HuaweiAccount]):
    vendor = "huawei"
    name = "DeleteAssets"
    max_batch = 10  # at most 10 asset_id per call (vendor-protocols.md)
    group_field = None
    id_field = "asset_id"
    # Huawei VOD FAQ: 100 media deletions per minute per tenant, 1,000 calls per minute for all VOD APIs.
    default_rate = "100/min"
    account_rate = "1000/min"

    def build_request(
        self, account: HuaweiAccount, group_key: str, media_ids: Sequence[str], now: datetime, nonce: str
    ) -> httpx.Request:
        if not 1 <= len(media_ids) <= self.max_batch:
            raise ValueError(f"{self.action} takes 1 to {self.max_batch} ids, not {len(media_ids)}")
        # The page documents asset_id as comma-separated, so the service may split any value on commas:
        # an id holding one would name other assets too.
        if any("," in asset_id or not asset_id for asset_id in media_ids):
            raise ValueError("DeleteAssets: an asset_id must be non-empty and must not contain ','")
        query: list[tuple[str, str | Sequence[str]]] = [("asset_id", list(media_ids))]
        if account.delete_type:
            query.append(("delete_type", account.delete_type))
        base = urlsplit(account.base_url)
        url = f"{base.scheme}://{base.netloc}{base.path}/v1.0/{account.project_id}/asset?{signer.encoded_query(query)}"
        headers = {
            signer.DATE_HEADER: now.astimezone(timezone.utc).strftime(signer.DATE_FORMAT),
            "Content-Type": "application/json",
        }
        request = httpx.Request(METHOD, url, headers=headers)
        # Sign what goes on the wire: the Host header exactly as httpx writes it (a non-default port
        # included) and the decoded path, prefix included, which the signer re-encodes segment by segment.
        authorization = signer.authorization(
            METHOD,
            request.headers["Host"],
            request.url.path,
            query,
            headers,
            b"",
            account.access_key,
            account.secret_key.get_secret_value(),  # type: ignore[union-attr]  # filled by the validator
        )
        request.headers["Authorization"] = authorization
        return request

    @never_raises
    def classify(self, media_ids: Sequence[str], response: httpx.Response) -> CallVerdict:
        body = json_body(response)
        status = response.status_code
        # VOD's own errors carry no request id in the body; the gateway's X-Request-Id header always does.
        request_id = text(body, "request_id") or response.headers.get("X-Request-Id")
        if is_success(response):
            results = _per_asset(body, request_id)
            return per_item(media_ids, results, http_status=status, code=None, message=None, request_id=request_id)
        code = text(body, "error_code")
        answer = _CODES.get(code or "")
        if answer is None and status == 401:
            answer = Answer.HALT_ACCOUNT
        if answer is None and code is None and status != 429 and status < 500:
            raise MalformedAnswer(f"HTTP {status} error answer has no error_code")
        answer = answer or by_status(status) or Answer.FAILED
        message = text(body, "error_msg")
        return whole_call(answer, media_ids, http_status=status, code=code, message=message, request_id=request_id)


def _per_asset(body: Mapping[str, Any], request_id: str | None) -> dict[str, ItemResult]:
    array = body.get("delete_result_array")
    if not isinstance(array, list):
        raise MalformedAnswer("200 answer has no delete_result_array list")
    results: dict[str, ItemResult] = {}
    for entry in array:
        asset_id = text(entry, "asset_id") if isinstance(entry, dict) else None
        if asset_id is None:
            continue  # unattributable: the asset stays Uncertain
        state = text(entry, "status")
        # An undocumented or missing status is kept verbatim and retried, like FAILED.
        outcome = _STATUSES.get(state or "", Outcome.RETRYABLE)
        code = None if outcome is Outcome.DELETED else (state or UNCERTAIN)
        results[asset_id] = ItemResult(outcome, code, None, request_id)
    return results
