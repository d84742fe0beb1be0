"""Huawei Cloud VOD: DeleteAssets at ``DELETE /huawei/v1.0/{project_id}/asset``.

``asset_id`` repeated (as the SDK sends it) or comma-separated (as the page says), optional
``delete_type=origin``. Auth by AK/SK SDK-HMAC-SHA256 or X-Auth-Token. Gateway errors carry
``request_id`` in the body; every answer carries ``X-Request-Id``. Seed 003 and vendor-protocols.md.
"""

from __future__ import annotations

import random
import re
import uuid

from worker.sandbox import verify
from worker.sandbox.config import SandboxConfig
from worker.sandbox.messages import Answer, Call, Incoming, Reply
from worker.sandbox.state import MediaStore
from worker.sandbox.vendor import VendorApp
from worker.signing.huawei import ALGORITHM

MAX_ASSET_IDS = 10
_PATH = re.compile(r"^/huawei/v1\.0/([^/]+)/asset/?$")


def _reply(call: Call, status: int, body: dict) -> Reply:
    return Reply.json(status, body, {"X-Request-Id": call.request_id})


def _gateway(call: Call, status: int, code: str, message: str, **flags: bool) -> Answer:
    body = {"error_code": code, "error_msg": message, "request_id": call.request_id}
    return Answer(_reply(call, status, body), code, **flags)


def _vod(call: Call, status: int, code: str, message: str, **flags: bool) -> Answer:
    return Answer(_reply(call, status, {"error_code": code, "error_msg": message}), code, **flags)


class HuaweiApp(VendorApp):
    vendor = "huawei"

    def __init__(self, config: SandboxConfig) -> None:
        super().__init__(config)
        self._credentials = {c.project_id: c for c in config.huawei}

    def new_request_id(self) -> str:
        return uuid.uuid4().hex

    def parse(self, req: Incoming, request_id: str) -> Call:
        call = Call(request_id, operation="DeleteAssets")
        match = _PATH.match(req.path)
        if match is None or req.method != "DELETE":
            call.operation = None
            message = "The API does not exist or has not been published in the environment"
            call.refusal = _gateway(call, 404, "APIGW.0101", message)
            return call
        call.account = match.group(1)
        call.credential = self._credentials.get(call.account)
        call.account_name = call.credential.name if call.credential else None
        call.auth_scheme = "token" if "x-auth-token" in req.headers else "aksk"
        call.ids = [a for name, value in req.query if name == "asset_id" for a in value.split(",") if a]
        call.params = {name: value for name, value in req.query if name != "asset_id"}
        return call

    def authenticate(self, call: Call, req: Incoming, now: float) -> Answer | None:
        cred = call.credential
        if call.auth_scheme == "token":
            if cred is None or req.headers["x-auth-token"] not in cred.tokens:
                return self._unauthorized(call, "the token is invalid for this project")
            return None
        fields = verify.auth_fields(req.headers.get("authorization", ""), ALGORITHM)
        if fields is None:
            return self._unauthorized(call, "no X-Auth-Token and no SDK-HMAC-SHA256 Authorization")
        if cred is None or fields.get("Access") != cred.access_key:
            return self._unauthorized(call, "the access key is unknown for this project")
        if not verify.fresh(verify.huawei_date(req.headers.get("x-sdk-date")), now, self.config.huawei_time_window):
            return self._unauthorized(call, "X-Sdk-Date is missing, malformed or expired")
        if not verify.huawei_aksk(req.method, req.path, req.query, req.headers, req.body, fields, cred.secret_key):
            return self._unauthorized(call, "verify aksk signature fail")
        return None

    def _unauthorized(self, call: Call, why: str) -> Answer:
        return _gateway(call, 401, "APIGW.0301", f"Incorrect IAM authentication information: {why}", auth_failure=True)

    def throttled(self, call: Call) -> Answer:
        return _gateway(call, 429, "APIGW.0308", "The throttling threshold has been reached", throttled=True)

    def unavailable(self, call: Call, rng: random.Random) -> Answer:
        return _gateway(call, 503, "APIGW.0203", "Backend unavailable")

    def execute(self, store: MediaStore, call: Call) -> Answer:
        ids, key = call.ids, call.account or ""
        if not ids:
            return _vod(call, 400, "VOD.10053", "The request parameter is invalid: asset_id is required.")
        if len(ids) > MAX_ASSET_IDS:
            message = f"The request parameter is invalid: at most {MAX_ASSET_IDS} asset_id."
            return _vod(call, 400, "VOD.10053", message, batch_violation=True)
        if call.params.get("delete_type", "origin") != "origin":
            return _vod(call, 400, "VOD.10053", "The request parameter is invalid: delete_type must be origin.")
        # Any unknown id fails the whole call and deletes nothing; the answer does not say which.
        if store.missing_assets(key, ids):
            return _vod(call, 403, "VOD.10062", "Media asset or resource does not exist, please check.")
        results = store.delete_assets(key, dict.fromkeys(ids))
        array = [{"asset_id": asset, "status": "DELETED" if done else "FAILED"} for asset, done in results]
        return Answer(_reply(call, 200, {"delete_result_array": array}), None, [asset for asset, done in results if done])
