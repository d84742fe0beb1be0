"""ZEGO server API: DeleteMedia (CDN recording files, up to 100 per call).

``GET /?Action=DeleteMedia`` with every parameter in the query, signed by signature v2.0. The answer is
always HTTP 200; its ``Code`` says what happened, and after Code 0 its ``Data`` (a JSON *string*) lists
the files deleted and the files that failed, each failure with the CDN's own code. Sources: the
DeleteMedia page (shared/seeds 002) and shared/vendor-protocols.md, whose Code table ``_CODES`` copies.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

from worker.outcomes import CallVerdict, ItemResult, Outcome
from worker.settings import ZegoAccount
from worker.signing import zego as signer
from worker.signing.encoding import rfc3986
from worker.vendors.answers import Answer, by_status, never_raises, per_item, text, whole_call
from worker.vendors.base import MalformedAnswer, Operation, json_body

_CODES: Mapping[int, Answer] = {
    2: Answer.FAILED,  # bad parameters
    3: Answer.HALT_ACCOUNT,  # permission (CDN recording) not enabled
    4: Answer.FAILED,  # CDN type does not match the files
    5: Answer.HALT_ACCOUNT,  # configuration error
    6: Answer.THROTTLED,  # too frequent
    7: Answer.HALT_ACCOUNT,  # authentication failed
    1000: Answer.RETRYABLE,  # request failed; the retry budget turns it into failed eventually
}

# Per-file errors carry the CDN's own code (Tencent "ResourceNotFound.FileNotExist", Huawei OBS
# "NoSuchKey", a bare "404", ...). Codes are matched by whole words, and messages only when they speak
# of the file itself: calling a file gone when it is not would end its deletion silently, while a
# missed "not found" only costs retries. Anything about a bucket is our configuration, never the file.
_GONE_CODE_WORDS = {"404", "notfound", "nosuchkey", "filenotexist", "filenotfound", "resourcenotfound", "notexist"}
_GONE_MESSAGE = re.compile(
    r"\b(file|object|key|resource|media)s?\b[^.;]{0,40}?\b(not found|not exists?|does not exist|doesn't exist)\b"
    r"|\bno such (file|key|object)\b|(文件|资源|对象)不存在",
    re.IGNORECASE,
)
_BUCKET = re.compile(r"bucket", re.IGNORECASE)
_HEX = set(string.hexdigits)


class DeleteMedia(Operation[ZegoAccount]):
    vendor = "zego"
    name = "DeleteMedia"
    max_batch = 100  # "最大支持 100 个媒体文件 FileId" (seed 002)
    group_field = "Vendor"
    group_choices = ("Tencent", "Ws", "Huawei")
    id_field = "FileId"
    default_rate = "20/s"  # "调用频率限制：20 次/秒" per AppId (seed 002)

    def build_request(
        self, account: ZegoAccount, group_key: str, media_ids: Sequence[str], now: datetime, nonce: str
    ) -> httpx.Request:
        if not 1 <= len(media_ids) <= self.max_batch:
            raise ValueError(f"{self.action} takes 1 to {self.max_batch} ids, not {len(media_ids)}")
        if group_key not in self.group_choices:  # type: ignore[operator]
            raise ValueError(f"{self.action}: Vendor must be one of {self.group_choices}")
        signature_nonce = _sixteen_hex(nonce)
        timestamp = int(now.timestamp())
        secret = account.server_secret.get_secret_value()  # type: ignore[union-attr]  # filled by the validator
        pairs = [
            ("Action", self.name),
            ("AppId", str(account.app_id)),
            ("SignatureNonce", signature_nonce),
            ("Timestamp", str(timestamp)),
            ("SignatureVersion", signer.SIGNATURE_VERSION),
            ("Signature", signer.signature(account.app_id, signature_nonce, secret, timestamp)),
        ]
        if account.is_test:
            pairs.append(("IsTest", "true"))
        pairs.append(("Vendor", group_key))
        pairs.extend(("FileId[]", file_id) for file_id in media_ids)
        # The name FileId[] is written as the page's example writes it (httpx sends "[]" unchanged);
        # every value is RFC 3986 encoded, so no id can add or split a parameter.
        query = "&".join(f"{name}={rfc3986(value)}" for name, value in pairs)
        return httpx.Request("GET", f"{account.base_url}/?{query}")

    @never_raises
    def classify(self, media_ids: Sequence[str], response: httpx.Response) -> CallVerdict:
        body = json_body(response)
        status = response.status_code
        request_id = text(body, "RequestId")
        message = text(body, "Message")
        code = _code(body)
        if code is None:
            # No ZEGO answer at all: a gateway's error page in JSON. Its status is all we have.
            answer = by_status(status) if status == 429 or status >= 500 else None
            if answer is None:
                raise MalformedAnswer(f"HTTP {status} answer has no integer Code")
            return whole_call(answer, media_ids, http_status=status, code=None, message=message, request_id=request_id)
        if code != 0:
            # An undocumented Code is terminal, like an unknown 4xx elsewhere: its code and message are kept.
            answer = _CODES.get(code, Answer.FAILED)
            return whole_call(answer, media_ids, http_status=status, code=str(code), message=message, request_id=request_id)
        results = _per_file(_data(body), request_id)
        return per_item(media_ids, results, http_status=status, code="0", message=message, request_id=request_id)


def _sixteen_hex(nonce: str) -> str:
    """ZEGO's samples use 16 hex characters: the nonce itself when it is hex, else a digest of it."""
    if len(nonce) >= 16 and set(nonce[:16]) <= _HEX:
        return nonce[:16].lower()
    return hashlib.sha256(nonce.encode()).hexdigest()[:16]


def _code(body: Mapping[str, Any]) -> int | None:
    code = body.get("Code")
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, str) and re.fullmatch(r"-?[0-9]{1,12}", code.strip()):
        return int(code)
    return None


def _data(body: Mapping[str, Any]) -> dict[str, Any]:
    """The object serialized in ``Data``. Documented as a JSON string; an object is accepted as is."""
    data = body.get("Data")
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            raise MalformedAnswer("Code 0 answer's Data is not JSON") from None
    if not isinstance(data, dict):
        raise MalformedAnswer("Code 0 answer's Data is not a JSON object")
    for key in ("Deleted", "Errors"):
        if not isinstance(data.get(key, []), list):
            raise MalformedAnswer(f"Code 0 answer's Data.{key} is not a list")
    if "Deleted" not in data and "Errors" not in data:
        raise MalformedAnswer("Code 0 answer's Data has neither Deleted nor Errors")
    return data


def _per_file(data: Mapping[str, Any], request_id: str | None) -> dict[str, ItemResult]:
    results: dict[str, ItemResult] = {}
    for file_id in data.get("Deleted", []):
        if isinstance(file_id, (str, int)) and not isinstance(file_id, bool):
            results[str(file_id)] = ItemResult(Outcome.DELETED, request_id=request_id)
    for error in data.get("Errors", []):
        if not isinstance(error, dict):
            continue
        key = text(error, "Key")
        if key is None:
            continue  # unattributable: the file stays Uncertain
        code, message = text(error, "Code"), text(error, "Message")
        outcome = Outcome.ALREADY_GONE if _means_not_found(code, message) else Outcome.RETRYABLE
        # The per-file RequestId is the CDN's, the one its support asks for.
        results[key] = ItemResult(outcome, code, message, text(error, "RequestId") or request_id)
    return results


def _means_not_found(code: str | None, message: str | None) -> bool:
    """Whether a CDN's per-file error says the file does not exist (so the deletion already happened)."""
    if any(_BUCKET.search(part or "") for part in (code, message)):
        return False
    if code:
        words = {word.lower() for word in re.split(r"[^A-Za-z0-9]+", code) if word}
        words.add(re.sub(r"[^a-z0-9]", "", code.lower()))
        if words & _GONE_CODE_WORDS:
            return True
    return bool(message and _GONE_MESSAGE.search(message))
