"""Alibaba Cloud ApsaraVideo VOD, RPC style: DeleteStream and DeleteMultipartUpload at ``/aliyun/``.

Parameters come in the query (GET or POST) or a POST form body. Signed with RPC v1 (``Signature``
parameter) or ACS3-HMAC-SHA256 (``Authorization`` header). Codes and statuses from the API pages
(shared/seeds 000, 001, 004) and shared/vendor-protocols.md.
"""

from __future__ import annotations

import random

from worker.sandbox import verify
from worker.sandbox.config import SandboxConfig
from worker.sandbox.messages import Answer, Call, Incoming, Reply
from worker.sandbox.state import MediaStore
from worker.sandbox.vendor import VendorApp
from worker.signing.aliyun import ACS3_ALGORITHM

API_VERSION = "2017-03-21"
OPERATIONS = ("DeleteStream", "DeleteMultipartUpload")
MAX_JOB_IDS = 20
HOST_ID = "vod.cn-shanghai.aliyuncs.com"
RPC_REQUIRED = ("AccessKeyId", "SignatureNonce", "Timestamp", "Signature", "SignatureMethod", "SignatureVersion")
ACS3_REQUIRED = ("x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256")


_AUTH = {"auth_failure": True}


def _missing(name: str) -> str:
    return f"The input parameter {name} that is mandatory for processing this request is not supplied."


def _error(call: Call, status: int, code: str, message: str, **flags: bool) -> Answer:
    body = {
        "RequestId": call.request_id,
        "HostId": HOST_ID,
        "Code": code,
        "Message": message,
        "Recommend": f"https://api.aliyun.com/troubleshoot?q={code}&product=Vod&requestId={call.request_id}",
    }
    return Answer(Reply.json(status, body, {"x-acs-request-id": call.request_id}), code, **flags)


def _ok(call: Call, deleted: list[str]) -> Answer:
    return Answer(Reply.json(200, {"RequestId": call.request_id}, {"x-acs-request-id": call.request_id}), None, deleted)


class AliyunApp(VendorApp):
    vendor = "aliyun"

    def __init__(self, config: SandboxConfig) -> None:
        super().__init__(config)
        self._credentials = {c.access_key_id: c for c in config.aliyun}

    def parse(self, req: Incoming, request_id: str) -> Call:
        params = dict(req.form)
        call = Call(request_id, params=params)
        acs3 = verify.auth_fields(req.headers.get("authorization", ""), ACS3_ALGORITHM)
        call.auth_scheme = "rpc" if acs3 is None else "acs3"
        if acs3 is not None:
            action, version = req.headers.get("x-acs-action"), req.headers.get("x-acs-version")
            call.account, call.nonce = acs3.get("Credential"), req.headers.get("x-acs-signature-nonce")
            missing = [h for h in ACS3_REQUIRED if not req.headers.get(h)]
        else:
            action, version = params.get("Action"), params.get("Version")
            call.account, call.nonce = params.get("AccessKeyId"), params.get("SignatureNonce")
            missing = [p for p in ("Action", "Version", *RPC_REQUIRED) if not params.get(p)]
        call.credential = self._credentials.get(call.account or "")
        call.account_name = call.credential.name if call.credential else None
        if req.path.rstrip("/") != "/aliyun":
            call.refusal = _error(call, 404, "InvalidAction.NotFound", f"Specified path {req.path} is not found.")
        elif missing:
            call.refusal = _error(call, 400, "MissingParameter", _missing(missing[0]))
        elif action not in OPERATIONS:
            call.refusal = _error(call, 404, "InvalidAction.NotFound", f"Specified api {action} is not found.")
        elif version != API_VERSION:
            call.refusal = _error(call, 400, "InvalidVersion", f"Specified parameter Version {version} is not valid.")
        call.operation = action if action in OPERATIONS else None
        if call.operation == "DeleteStream":
            call.group = params.get("VideoId")
            call.ids = [job for job in params.get("JobIds", "").split(",") if job]
        elif call.operation == "DeleteMultipartUpload":
            call.group = params.get("MediaType")
            call.ids = [params["MediaId"]] if params.get("MediaId") else []
        return call

    def authenticate(self, call: Call, req: Incoming, now: float) -> Answer | None:
        cred = call.credential
        if cred is None:
            return _error(call, 404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.", **_AUTH)
        acs3 = call.auth_scheme == "acs3"
        stamp = req.headers.get("x-acs-date") if acs3 else call.params.get("Timestamp")
        when = verify.aliyun_timestamp(stamp)
        if when is None:
            return _error(call, 400, "InvalidTimeStamp.Format", "Specified time stamp is not well formatted.", **_AUTH)
        if not verify.fresh(when, now, self.config.aliyun_time_window):
            return _error(call, 400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.", **_AUTH)
        if acs3:
            fields = verify.auth_fields(req.headers["authorization"], ACS3_ALGORITHM) or {}
            query = dict(req.query)
            secret = cred.access_key_secret
            good = verify.aliyun_acs3(req.method, req.path, query, req.headers, req.body, fields, secret)
        else:
            good = verify.aliyun_rpc(req.method, call.params, cred.access_key_secret)
        if not good:
            return _error(call, 400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation.", **_AUTH)
        return None

    def nonce_used(self, call: Call) -> Answer:
        return _error(call, 400, "SignatureNonceUsed", "Specified signature nonce was used already.", **_AUTH)

    def throttled(self, call: Call) -> Answer:
        return _error(call, 400, "Throttling.User", "Request was denied due to user flow control.", throttled=True)

    def unavailable(self, call: Call, rng: random.Random) -> Answer:
        if call.operation == "DeleteStream":
            return _error(call, 503, "DeleteStreamFailed", "Failed to delete the stream, please try again later.")
        return _error(call, 503, "ServiceUnavailable", "The request has failed due to a temporary failure of the server.")

    def execute(self, store: MediaStore, call: Call) -> Answer:
        if call.operation == "DeleteStream":
            return self._delete_stream(store, call)
        return self._delete_multipart_upload(store, call)

    def _delete_stream(self, store: MediaStore, call: Call) -> Answer:
        key, video, jobs = call.account or "", call.group, call.ids
        if not video or not jobs:
            return _error(call, 400, "MissingParameter", "The input parameters VideoId and JobIds are mandatory.")
        if len(jobs) > MAX_JOB_IDS:
            message = f"The number of JobIds exceeds the maximum of {MAX_JOB_IDS}."
            return _error(call, 400, "JobIdsExceededMax", message, batch_violation=True)
        if not store.has_video(key, video):
            return _error(call, 404, "InvalidVideo.NotFound", "The video does not exist.")
        # One unknown JobId fails the whole call and deletes nothing; the answer does not say which.
        if store.missing_streams(key, video, jobs):
            return _error(call, 404, "InvalidStream.NotFound", "The stream does not exist.")
        unique = list(dict.fromkeys(jobs))
        store.delete_streams(key, video, unique)
        return _ok(call, unique)

    def _delete_multipart_upload(self, store: MediaStore, call: Call) -> Answer:
        if call.group != "video":
            return _error(call, 400, "InvalidParameter", f"MediaType {call.group!r} is not valid; only 'video' is.")
        if not call.ids:
            return _error(call, 400, "MissingParameter", _missing("MediaId"))
        if not store.delete_upload(call.account or "", call.ids[0]):
            return _error(call, 400, "InvalidMultipartUpload.NotFound", "The multipart upload does not exist.")
        return _ok(call, call.ids)
