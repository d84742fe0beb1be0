"""ZEGO server API: DeleteMedia at ``/zego/`` (GET, everything in the query, ``FileId[]`` repeated).

Every answer is HTTP 200 ``{"Code", "Message", "RequestId", "Data"}`` with ``Data`` a JSON *string*
(seed 002); only the injected 'unavailable' fault may answer a bare HTTP 503, as ZEGO's gateway would.
"""

from __future__ import annotations

import json
import random
import uuid

from worker.sandbox import verify
from worker.sandbox.config import SandboxConfig
from worker.sandbox.messages import Answer, Call, Incoming, Reply
from worker.sandbox.state import ZEGO_VENDORS, MediaStore
from worker.sandbox.vendor import VendorApp
from worker.signing.zego import SIGNATURE_VERSION

MAX_FILE_IDS = 100
FILE_PARAM = "FileId[]"  # parse_qsl decodes FileId%5B%5D to this too
# Each CDN's own "no such file" code, as ZEGO passes it through in Errors[].Code.
NOT_FOUND_CODES = {"Tencent": "ResourceNotFound.FileNotExist", "Ws": "FileNotExist", "Huawei": "NoSuchKey"}
LOCKED_CODE = "FailedOperation"
_UNAVAILABLE_PAGE = b"<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"


def _answer(
    call: Call, code: int, message: str, data: dict | None = None, deleted: list[str] | None = None, **flags: bool
) -> Answer:
    body: dict = {"Code": code, "Message": message, "RequestId": call.request_id}
    if data is not None:
        body["Data"] = json.dumps(data, separators=(",", ":"))
    return Answer(Reply.json(200, body), str(code), deleted or [], **flags)


class ZegoApp(VendorApp):
    vendor = "zego"

    def __init__(self, config: SandboxConfig) -> None:
        super().__init__(config)
        self._credentials = {str(c.app_id): c for c in config.zego}

    def new_request_id(self) -> str:
        return str(uuid.uuid4().int >> 65)  # ZEGO's are decimal, about 19 digits

    def parse(self, req: Incoming, request_id: str) -> Call:
        params = dict(req.query)
        call = Call(request_id, params=params, auth_scheme="md5", operation=params.get("Action"))
        call.account = params.get("AppId")
        call.credential = self._credentials.get(call.account or "")
        call.account_name = call.credential.name if call.credential else None
        call.group = params.get("Vendor")
        call.ids = [value for name, value in req.query if name == FILE_PARAM]
        if req.path.rstrip("/") != "/zego" or req.method != "GET":
            call.refusal = _answer(call, 2, f"{req.method} {req.path} is not served; use GET /?Action=DeleteMedia")
        elif call.operation != "DeleteMedia":
            call.refusal = _answer(call, 2, f"unknown Action {call.operation!r}")
            call.operation = None
        return call

    def authenticate(self, call: Call, req: Incoming, now: float) -> Answer | None:
        cred, params = call.credential, call.params
        if cred is None:
            return _answer(call, 7, "authentication failed: unknown AppId", auth_failure=True)
        if params.get("SignatureVersion") != SIGNATURE_VERSION:
            return _answer(call, 7, f"authentication failed: SignatureVersion is not {SIGNATURE_VERSION}", auth_failure=True)
        stamp = params.get("Timestamp", "")
        if not stamp.isdigit() or not verify.fresh(int(stamp), now, self.config.zego_time_window):
            return _answer(call, 7, "authentication failed: Timestamp missing or too far off", auth_failure=True)
        nonce, signature = params.get("SignatureNonce", ""), params.get("Signature", "")
        if not nonce or not verify.zego(cred.app_id, nonce, int(stamp), cred.server_secret, signature):
            return _answer(call, 7, "authentication failed: signature mismatch", auth_failure=True)
        return None

    def throttled(self, call: Call) -> Answer:
        return _answer(call, 6, "request too frequent", throttled=True)

    def unavailable(self, call: Call, rng: random.Random) -> Answer:
        if rng.random() < 0.5:
            return Answer(Reply(503, _UNAVAILABLE_PAGE, {"Content-Type": "text/html"}))
        return _answer(call, 1000, "request failed")

    def execute(self, store: MediaStore, call: Call) -> Answer:
        vendor, ids = call.group, call.ids
        if vendor not in ZEGO_VENDORS:
            return _answer(call, 2, f"invalid params: Vendor must be one of {', '.join(ZEGO_VENDORS)}")
        if not ids:
            return _answer(call, 2, "invalid params: FileId[] is required")
        if len(ids) > MAX_FILE_IDS:
            return _answer(call, 2, f"invalid params: at most {MAX_FILE_IDS} FileId[]", batch_violation=True)
        deleted, locked, missing = store.delete_files(call.account or "", vendor, dict.fromkeys(ids))
        errors = [self._file_error(i, NOT_FOUND_CODES[vendor], "file does not exist") for i in missing]
        errors += [self._file_error(i, LOCKED_CODE, "the file is in use, try again later") for i in locked]
        return _answer(call, 0, "success", {"Deleted": deleted, "Errors": errors}, deleted)

    @staticmethod
    def _file_error(file_id: str, code: str, message: str) -> dict[str, str]:
        return {"Code": code, "Message": message, "Key": file_id, "RequestId": uuid.uuid4().hex}
