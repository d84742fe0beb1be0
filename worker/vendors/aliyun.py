"""Alibaba Cloud ApsaraVideo VOD: DeleteStream and DeleteMultipartUpload.

Both are RPC-style calls (API version 2017-03-21) signed with RPC signature v1: every parameter travels
in the query string of a ``POST /`` with an empty body. Sources: the DeleteStream and
DeleteMultipartUpload API pages (shared/seeds 000, 001, 004) and shared/vendor-protocols.md, whose
tables ``_STREAM_CODES``, ``_MULTIPART_CODES`` and ``_COMMON_CODES`` copy.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import ClassVar

import httpx

from worker.outcomes import CallVerdict, Outcome
from worker.settings import AliyunAccount
from worker.signing import aliyun as signer
from worker.signing.encoding import rfc3986
from worker.vendors.answers import MAX_MESSAGE, Answer, by_status, is_success, never_raises, text, whole_call
from worker.vendors.base import MalformedAnswer, Operation, json_body, same_for_all

API_VERSION = "2017-03-21"
METHOD = "POST"
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

# Common to every Alibaba Cloud API (vendor-protocols.md, "Common to all Alibaba Cloud APIs").
_COMMON_CODES: Mapping[str, Answer] = {
    "Throttling": Answer.THROTTLED,
    "Throttling.User": Answer.THROTTLED,
    "Throttling.Api": Answer.THROTTLED,
    "ServiceUnavailable": Answer.RETRYABLE,
    "InternalError": Answer.RETRYABLE,
    # A configuration problem: every other call of the account would fail the same way.
    "InvalidAccessKeyId.NotFound": Answer.HALT_ACCOUNT,
    "SignatureDoesNotMatch": Answer.HALT_ACCOUNT,
    "Forbidden.RAM": Answer.HALT_ACCOUNT,
    "InvalidTimeStamp.Expired": Answer.HALT_ACCOUNT,
}

# DeleteStream's own error table (seed 001).
_STREAM_CODES: Mapping[str, Answer] = {
    "JobIdsExceededMax": Answer.BATCH_TOO_BIG,  # we never send more than 20, so a comma in an id slipped by
    "InvalidVideo.NotFound": Answer.ALREADY_GONE,  # the whole video is gone, so are all its streams
    # One JobId of several is missing and the answer does not say which.
    "InvalidStream.NotFound": Answer.UNNAMED_NOT_FOUND,
    "DeleteStreamFailed": Answer.RETRYABLE,
}

# DeleteMultipartUpload's own error table (seed 004); all of them come with HTTP 400.
_MULTIPART_CODES: Mapping[str, Answer] = {
    "InvalidParameter": Answer.FAILED,
    "InvalidMultipartUpload.NotFound": Answer.ALREADY_GONE,
    "InvalidVideo.NotFound": Answer.ALREADY_GONE,
    "InvalidFile.NotFound": Answer.ALREADY_GONE,
    "InvalidStorage.NotFound": Answer.FAILED,
    "AccessDenied": Answer.FAILED,  # VOD may not read the customer's own OSS bucket: not account-wide
}


class _AliyunOperation(Operation[AliyunAccount]):
    """What DeleteStream and DeleteMultipartUpload share: signing, and the common error codes."""

    vendor = "aliyun"
    own_codes: ClassVar[Mapping[str, Answer]]

    @abstractmethod
    def business_params(self, group_key: str, media_ids: Sequence[str]) -> dict[str, str]:
        """The operation's own query parameters for one call."""

    def build_request(
        self, account: AliyunAccount, group_key: str, media_ids: Sequence[str], now: datetime, nonce: str
    ) -> httpx.Request:
        if not 1 <= len(media_ids) <= self.max_batch:
            raise ValueError(f"{self.action} takes 1 to {self.max_batch} ids, not {len(media_ids)}")
        if self.group_choices is not None and group_key not in self.group_choices:
            raise ValueError(f"{self.action}: {self.group_field} must be one of {self.group_choices}")
        params = {
            "Action": self.name,
            "Version": API_VERSION,
            "Format": "JSON",
            "AccessKeyId": account.access_key_id,
            "SignatureMethod": signer.RPC_SIGNATURE_METHOD,
            "SignatureVersion": signer.RPC_SIGNATURE_VERSION,
            "SignatureNonce": nonce,
            "Timestamp": now.astimezone(timezone.utc).strftime(TIMESTAMP_FORMAT),
        }
        if account.security_token is not None:
            params["SecurityToken"] = account.security_token.get_secret_value()
        params.update(self.business_params(group_key, media_ids))
        secret = account.access_key_secret.get_secret_value()  # type: ignore[union-attr]  # filled by the validator
        # Every name and value is RFC 3986 encoded, so httpx sends the query byte for byte as signed.
        query = signer.rpc_signed_query(METHOD, params, secret)
        return httpx.Request(METHOD, f"{account.base_url}/?{query}")

    @never_raises
    def classify(self, media_ids: Sequence[str], response: httpx.Response) -> CallVerdict:
        body = json_body(response)
        # Alibaba also sends the request id as a header; the body's copy is the documented one.
        request_id = text(body, "RequestId") or response.headers.get("x-acs-request-id")
        status = response.status_code
        if is_success(response):
            if text(body, "RequestId") is None:
                raise MalformedAnswer(f"HTTP {status} answer has no RequestId")
            return same_for_all(media_ids, Outcome.DELETED, http_status=status, code=None, message=None, request_id=request_id)
        code = text(body, "Code")
        answer = self.own_codes.get(code or "") or _COMMON_CODES.get(code or "")
        if answer is None and code is None:
            raise MalformedAnswer(f"HTTP {status} error answer has no Code")
        answer = answer or by_status(status) or Answer.FAILED
        message = _without_token(text(body, "Message", limit=None), response)
        return whole_call(answer, media_ids, http_status=status, code=code, message=message, request_id=request_id)


class DeleteStream(_AliyunOperation):
    name = "DeleteStream"
    max_batch = 20  # "A maximum of 20 IDs can be specified for one video" (seed 001)
    group_field = "VideoId"
    id_field = "JobId"
    default_rate = "50/s"
    own_codes = _STREAM_CODES

    def business_params(self, group_key: str, media_ids: Sequence[str]) -> dict[str, str]:
        # JobIds is one comma-separated value: an id holding a comma would name other jobs too.
        if any("," in job_id or not job_id for job_id in media_ids):
            raise ValueError("DeleteStream: a JobId must be non-empty and must not contain ','")
        return {"VideoId": group_key, "JobIds": ",".join(media_ids)}


class DeleteMultipartUpload(_AliyunOperation):
    name = "DeleteMultipartUpload"
    max_batch = 1
    group_field = "MediaType"
    group_choices = ("video",)  # "Set the value to video" (seed 004)
    id_field = "MediaId"
    default_rate = "10/s"
    own_codes = _MULTIPART_CODES

    def business_params(self, group_key: str, media_ids: Sequence[str]) -> dict[str, str]:
        return {"MediaId": media_ids[0], "MediaType": group_key}


def _without_token(message: str | None, response: httpx.Response) -> str | None:
    """The message with the STS SecurityToken blanked out.

    SignatureDoesNotMatch echoes the server's string-to-sign, which holds every query parameter,
    SecurityToken included (doubly percent-encoded): the audit trail must not keep it.
    """
    if not message:
        return message
    try:
        token = httpx.QueryParams(response.request.url.query.decode("ascii")).get("SecurityToken")
    except (RuntimeError, UnicodeDecodeError):  # a response built without its request
        return message[:MAX_MESSAGE]
    if token:
        for form in (rfc3986(rfc3986(token)), rfc3986(token), token):
            message = message.replace(form, "***")
    return message[:MAX_MESSAGE]
