"""The vendor sandbox over real HTTP on loopback: requests signed by hand with worker.signing, as a vendor
would receive them, and the sandbox's answers, limits, faults and records checked against the documents
(shared/vendor-protocols.md and the seed pages)."""

from __future__ import annotations

import hashlib
import json
import socket
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from worker.sandbox import (
    AliyunCredential,
    HuaweiCredential,
    Sandbox,
    SandboxConfig,
    ZegoCredential,
    generate_media,
    max_in_window,
)
from worker.sandbox.server import _kernel_stamps
from worker.sandbox.windows import LimitTable
from worker.settings import Accounts, AliyunAccount, HuaweiAccount, Settings, ZegoAccount
from worker.signing import aliyun as aliyun_signer
from worker.signing import huawei as huawei_signer
from worker.signing import zego as zego_signer
from worker.signing.encoding import rfc3986

pytestmark = pytest.mark.integration

AK, AK_SECRET = "LTAI5tSandboxKey", "aliyun-secret-do-not-leak"
APP_ID, ZEGO_SECRET = 1234567890, "zego-secret-do-not-leak"
OTHER_APP_ID, OTHER_ZEGO_SECRET = 42, "other-zego-secret"
PROJECT, HW_AK, HW_SK, HW_TOKEN = "0a1b2c3d4e5f", "HWSANDBOXAK", "huawei-secret-do-not-leak", "iam-token-do-not-leak"
SECRETS = (AK_SECRET, ZEGO_SECRET, OTHER_ZEGO_SECRET, HW_SK, HW_TOKEN)

CONFIG = SandboxConfig(
    aliyun=[AliyunCredential("default", AK, AK_SECRET)],
    zego=[ZegoCredential("default", APP_ID, ZEGO_SECRET), ZegoCredential("other", OTHER_APP_ID, OTHER_ZEGO_SECRET)],
    huawei=[HuaweiCredential("default", PROJECT, HW_AK, HW_SK, tokens=(HW_TOKEN,))],
)


@pytest.fixture(scope="module")
def running() -> Iterator[Sandbox]:
    with Sandbox(CONFIG) as sandbox:
        yield sandbox


@pytest.fixture
def sb(running: Sandbox) -> Sandbox:
    running.reset()
    return running


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as c:
        yield c


# Requests signed by hand, as each vendor's client would send them.


def _aliyun_time(now: datetime | None = None) -> str:
    return (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")


def aliyun_params(action: str, business: dict[str, str], *, when: datetime | None = None, nonce: str | None = None) -> dict[str, str]:
    return {
        "Action": action,
        "Version": "2017-03-21",
        "Format": "JSON",
        "AccessKeyId": AK,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": nonce or uuid.uuid4().hex,
        "Timestamp": _aliyun_time(when),
        **business,
    }


def aliyun_rpc(
    sb: Sandbox, client: httpx.Client, action: str, business: dict[str, str], *, method: str = "POST",
    secret: str = AK_SECRET, in_body: bool = False, **kw: Any,
) -> httpx.Response:
    query = aliyun_signer.rpc_signed_query(method, aliyun_params(action, business, **kw), secret)
    if in_body:
        return client.request(method, sb.endpoint("aliyun") + "/", content=query, headers={"Content-Type": "application/x-www-form-urlencoded"})
    return client.request(method, f"{sb.endpoint('aliyun')}/?{query}")


def aliyun_acs3(sb: Sandbox, client: httpx.Client, action: str, business: dict[str, str], *, secret: str = AK_SECRET) -> httpx.Response:
    headers = {
        "host": f"127.0.0.1:{sb.port}",
        "x-acs-action": action,
        "x-acs-version": "2017-03-21",
        "x-acs-date": _aliyun_time(),
        "x-acs-signature-nonce": uuid.uuid4().hex,
        "x-acs-content-sha256": hashlib.sha256(b"").hexdigest(),
    }
    authorization = aliyun_signer.acs3_authorization("POST", "/", business, headers, AK, secret)
    query = "&".join(f"{rfc3986(k)}={rfc3986(v)}" for k, v in business.items())
    return client.post(f"{sb.endpoint('aliyun')}/?{query}", headers={**headers, "Authorization": authorization})


def zego_call(
    sb: Sandbox, client: httpx.Client, vendor: str | None, file_ids: Sequence[str], *, app_id: int = APP_ID,
    secret: str = ZEGO_SECRET, timestamp: int | None = None, literal_brackets: bool = False,
) -> httpx.Response:
    ts = int(time.time()) if timestamp is None else timestamp
    nonce = uuid.uuid4().hex[:16]
    params = [
        ("Action", "DeleteMedia"), ("AppId", str(app_id)), ("SignatureNonce", nonce), ("Timestamp", str(ts)),
        ("SignatureVersion", "2.0"), ("Signature", zego_signer.signature(app_id, nonce, secret, ts)),
    ]
    if vendor is not None:
        params.append(("Vendor", vendor))
    if literal_brackets:  # FileId[] as the page writes it, brackets not percent-encoded
        query = "&".join([f"{k}={rfc3986(v)}" for k, v in params] + [f"FileId[]={rfc3986(f)}" for f in file_ids])
        return client.get(f"{sb.endpoint('zego')}/?{query}")
    # httpx encodes the name as FileId%5B%5D
    return client.get(sb.endpoint("zego") + "/", params=[*params, *(("FileId[]", f) for f in file_ids)])


def zego(sb: Sandbox, client: httpx.Client, vendor: str | None, file_ids: Sequence[str], **kw: Any) -> dict[str, Any]:
    """A ZEGO call whose answer must be ZEGO's HTTP 200 JSON."""
    response = zego_call(sb, client, vendor, file_ids, **kw)
    assert response.status_code == 200, response.text
    return response.json()


def zego_data(body: dict[str, Any]) -> dict[str, Any]:
    assert isinstance(body["Data"], str), "Data is a JSON string, not an object"
    return json.loads(body["Data"])


def huawei(
    sb: Sandbox, client: httpx.Client, asset_ids: Sequence[str], *, comma: bool = False, secret: str = HW_SK,
    when: datetime | None = None, token: str | None = None, project: str = PROJECT,
) -> httpx.Response:
    path = f"/huawei/v1.0/{project}/asset"
    query = [("asset_id", ",".join(asset_ids))] if comma else [("asset_id", a) for a in asset_ids]
    url = f"{sb.url}{path}?{huawei_signer.encoded_query(query)}"
    if token is not None:
        return client.delete(url, headers={"X-Auth-Token": token})
    date = (when or datetime.now(timezone.utc)).strftime(huawei_signer.DATE_FORMAT)
    headers = {"X-Sdk-Date": date}
    authorization = huawei_signer.authorization("DELETE", f"127.0.0.1:{sb.port}", path, query, headers, b"", HW_AK, secret)
    return client.delete(url, headers={**headers, "Authorization": authorization})


def held(sb: Sandbox) -> dict[str, int]:
    return sb.media()["counts"]


# Alibaba Cloud


def test_aliyun_rpc_signature_accepted_in_query_or_form_by_get_or_post(sb: Sandbox, client: httpx.Client) -> None:
    sb.seed({"aliyun": {"default": {"streams": {"v1": ["j1", "j2", "j3"]}}}})
    r = aliyun_rpc(sb, client, "DeleteStream", {"VideoId": "v1", "JobIds": "j1"})
    assert r.status_code == 200 and set(r.json()) == {"RequestId"}
    assert aliyun_rpc(sb, client, "DeleteStream", {"VideoId": "v1", "JobIds": "j2"}, method="GET").status_code == 200
    assert aliyun_rpc(sb, client, "DeleteStream", {"VideoId": "v1", "JobIds": "j3"}, in_body=True).status_code == 200
    assert sb.media()["media"]["aliyun"][AK]["streams"]["v1"] == []
    assert [d["id"] for d in sb.deleted()] == ["j1", "j2", "j3"]


def test_aliyun_acs3_signature_accepted_and_a_wrong_one_refused(sb: Sandbox, client: httpx.Client) -> None:
    sb.seed({"aliyun": {AK: {"streams": {"v1": ["j1", "j2"]}}}})
    assert aliyun_acs3(sb, client, "DeleteStream", {"VideoId": "v1", "JobIds": "j1"}).status_code == 200
    r = aliyun_acs3(sb, client, "DeleteStream", {"VideoId": "v1", "JobIds": "j2"}, secret="wrong")
    assert (r.status_code, r.json()["Code"]) == (400, "SignatureDoesNotMatch")
    assert sb.media()["media"]["aliyun"][AK]["streams"]["v1"] == ["j2"]


def test_aliyun_bad_signature_and_unknown_key_refused_with_the_documented_error_body(sb: Sandbox, client: httpx.Client) -> None:
    sb.seed({"aliyun": {"default": {"streams": {"v1": ["j1"]}}}})
    r = aliyun_rpc(sb, client, "DeleteStream", {"VideoId": "v1", "JobIds": "j1"}, secret="wrong")
    assert r.status_code == 400
    assert set(r.json()) == {"RequestId", "HostId", "Code", "Message", "Recommend"}
    assert r.json()["Code"] == "SignatureDoesNotMatch"
    params = aliyun_params("DeleteStream", {"VideoId": "v1", "JobIds": "j1"}) | {"AccessKeyId": "nobody"}
    r = client.post(f"{sb.endpoint('aliyun')}/?{aliyun_signer.rpc_signed_query('POST', params, AK_SECRET)}")
    assert (r.status_code, r.json()["Code"]) == (404, "InvalidAccessKeyId.NotFound")
    assert held(sb)["aliyun.DeleteStream"] == 1
    assert sb.stats()["auth_failures"] == 2


def test_aliyun_stale_timestamp_refused(sb: Sandbox, client: httpx.Client) -> None:
    sb.seed({"aliyun": {"default": {"multipart_uploads": ["m1"]}}})
    stale = datetime.now(timezone.utc) - timedelta(minutes=16)
    r = aliyun_rpc(sb, client, "DeleteMultipartUpload", {"MediaId": "m1", "MediaType": "video"}, when=stale)
    assert (r.status_code, r.json()["Code"]) == (400, "InvalidTimeStamp.Expired")
    assert held(sb)["aliyun.DeleteMultipartUpload"] == 1


def test_aliyun_nonce_reuse_refused(sb: Sandbox, client: httpx.Client) -> None:
    sb.seed({"aliyun": {"default": {"multipart_uploads": ["m1", "m2"]}}})
    assert aliyun_rpc(sb, client, "DeleteMultipartUpload", {"MediaId": "m1", "MediaType": "video"}, nonce="n-1").status_code == 200
    r = aliyun_rpc(sb, client, "DeleteMultipartUpload", {"MediaId": "m2", "MediaType": "video"}, nonce="n-1")
    assert (r.status_code, r.json()["Code"]) == (400, "SignatureNonceUsed")
    assert sb.media()["media"]["aliyun"][AK]["multipart_uploads"] == ["m2"]


def test_aliyun_delete_stream_batch_limit_and_not_found(sb: Sandbox, client: httpx.Client) -> None:
    jobs = [f"j{i}" for i in range(21)]
    sb.seed({"aliyun": {"default": {"streams": {"v1": jobs}}}})
    r = aliyun_rpc(sb, client, "DeleteStream", {"VideoId": "v1", "JobIds": ",".join(jobs)})
    assert (r.status_code, r.json()["Code"]) == (400, "JobIdsExceededMax")
    r = aliyun_rpc(sb, client, "DeleteStream", {"VideoId": "nope", "JobIds": "j1"})
    assert (r.status_code, r.json()["Code"]) == (404, "InvalidVideo.NotFound")
    r = aliyun_rpc(sb, client, "DeleteStream", {"VideoId": "v1", "JobIds": "j1,j2,missing"})
    assert (r.status_code, r.json()["Code"]) == (404, "InvalidStream.NotFound")
    assert held(sb)["aliyun.DeleteStream"] == 21, "InvalidStream.NotFound deletes nothing"
    assert aliyun_rpc(sb, client, "DeleteStream", {"VideoId": "v1", "JobIds": ",".join(jobs[:20])}).status_code == 200
    stats = sb.stats()
    assert stats["batch_limit_violations"] == 1
    assert stats["by_operation"]["aliyun.DeleteStream"]["codes"] == {
        "JobIdsExceededMax": 1, "InvalidVideo.NotFound": 1, "InvalidStream.NotFound": 1, "OK": 1,
    }


def test_aliyun_delete_multipart_upload_answers(sb: Sandbox, client: httpx.Client) -> None:
    sb.seed({"aliyun": {"default": {"multipart_uploads": ["m1"]}}})
    r = aliyun_rpc(sb, client, "DeleteMultipartUpload", {"MediaId": "m1", "MediaType": "audio"})
    assert (r.status_code, r.json()["Code"]) == (400, "InvalidParameter")
    r = aliyun_rpc(sb, client, "DeleteMultipartUpload", {"MediaId": "nope", "MediaType": "video"})
    assert (r.status_code, r.json()["Code"]) == (400, "InvalidMultipartUpload.NotFound")
    r = aliyun_rpc(sb, client, "DeleteMultipartUpload", {"MediaId": "m1", "MediaType": "video"})
    assert r.status_code == 200 and r.headers["x-acs-request-id"] == r.json()["RequestId"]
    assert held(sb)["aliyun.DeleteMultipartUpload"] == 0


# ZEGO


def test_zego_signature_accepted_and_refusals_are_code_7(sb: Sandbox, client: httpx.Client) -> None:
    sb.seed({"zego": {str(APP_ID): {"files": {"Tencent": ["f1", "f2", "f3"]}}}})
    body = zego(sb, client, "Tencent", ["f1"])
    assert (body["Code"], zego_data(body)) == (0, {"Deleted": ["f1"], "Errors": []})
    assert zego_data(zego(sb, client, "Tencent", ["f2"], literal_brackets=True))["Deleted"] == ["f2"]
    assert zego(sb, client, "Tencent", ["f3"], secret="wrong")["Code"] == 7
    assert zego(sb, client, "Tencent", ["f3"], app_id=999)["Code"] == 7
    assert zego(sb, client, "Tencent", ["f3"], timestamp=int(time.time()) - 11 * 60)["Code"] == 7
    assert held(sb)["zego.DeleteMedia"] == 1
    assert sb.stats()["auth_failures"] == 3


def test_zego_parameter_errors_and_batch_limit(sb: Sandbox, client: httpx.Client) -> None:
    sb.seed({"zego": {"default": {"files": {"Ws": [f"f{i}" for i in range(101)]}}}})
    assert zego(sb, client, "Ws", [f"f{i}" for i in range(101)])["Code"] == 2
    assert zego(sb, client, None, ["f1"])["Code"] == 2
    assert zego(sb, client, "Akamai", ["f1"])["Code"] == 2
    assert zego(sb, client, "Ws", [])["Code"] == 2
    assert held(sb)["zego.DeleteMedia"] == 101
    assert sb.stats()["batch_limit_violations"] == 1
    assert zego_data(zego(sb, client, "Ws", [f"f{i}" for i in range(100)]))["Deleted"][-1] == "f99"


def test_zego_per_file_errors_for_missing_and_locked_files(sb: Sandbox, client: httpx.Client) -> None:
    sb.seed({"zego": {"default": {
        "files": {"Tencent": ["t1"], "Ws": ["w1"], "Huawei": ["h1"]},
        "locked": {"Tencent": ["t-locked"], "Huawei": {"h-busy": 1}},
    }}})
    data = zego_data(zego(sb, client, "Tencent", ["t1", "t-missing", "t-locked"]))
    assert data["Deleted"] == ["t1"]
    errors = {e["Key"]: e for e in data["Errors"]}
    assert errors["t-missing"]["Code"] == "ResourceNotFound.FileNotExist"
    assert errors["t-locked"]["Code"] == "FailedOperation"
    assert all(set(e) == {"Code", "Message", "Key", "RequestId"} for e in data["Errors"])
    assert zego_data(zego(sb, client, "Ws", ["w-missing"]))["Errors"][0]["Code"] == "FileNotExist"
    assert zego_data(zego(sb, client, "Huawei", ["h-missing"]))["Errors"][0]["Code"] == "NoSuchKey"
    # A file seeded with one refusal is deletable on the second try; the plain locked one never is.
    assert zego_data(zego(sb, client, "Huawei", ["h-busy"]))["Errors"][0]["Code"] == "FailedOperation"
    assert zego_data(zego(sb, client, "Huawei", ["h-busy"]))["Deleted"] == ["h-busy"]
    assert zego_data(zego(sb, client, "Tencent", ["t-locked"]))["Errors"][0]["Code"] == "FailedOperation"


def test_zego_rate_limit_admits_exactly_20_per_second_per_app_id(sb: Sandbox, client: httpx.Client) -> None:
    sb.seed({"zego": {"default": {"files": {"Tencent": [f"f{i}" for i in range(30)]}}, "other": {"files": {"Ws": ["o1"]}}}})
    started = time.monotonic()
    codes = [zego(sb, client, "Tencent", [f"f{i}"])["Code"] for i in range(30)]
    assert time.monotonic() - started < 1.0, "the 30 calls must fall in one window for this test to mean anything"
    assert codes == [0] * 20 + [6] * 10
    assert zego(sb, client, "Ws", ["o1"], app_id=OTHER_APP_ID, secret=OTHER_ZEGO_SECRET)["Code"] == 0, "limits are per AppId"
    stats = sb.stats()
    window = next(w for w in stats["windows"] if w["account"] == str(APP_ID))
    assert (window["period"], window["calls"], window["max_calls"], window["max_admitted"]) == (1.0, 30, 30, 20)
    assert (stats["throttled"], stats["rate_limited"]) == (10, 10)
    assert held(sb)["zego.DeleteMedia"] == 10


def test_rate_limit_holds_under_concurrent_clients(sb: Sandbox) -> None:
    sb.seed({"zego": {"default": {"files": {"Ws": [f"w{i}" for i in range(60)]}}}})

    def send(start: int) -> list[int]:
        with httpx.Client(timeout=5.0) as own:
            return [zego(sb, own, "Ws", [f"w{i}"])["Code"] for i in range(start, start + 15)]

    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        codes = [code for chunk in pool.map(send, range(0, 60, 15)) for code in chunk]
    assert time.monotonic() - started < 1.0
    assert (codes.count(0), codes.count(6)) == (20, 40)
    window = sb.stats()["windows"][0]
    assert (window["max_calls"], window["max_admitted"]) == (60, 20)
    assert len({d["id"] for d in sb.deleted()}) == len(sb.deleted()) == 20


def test_a_call_handled_after_a_later_one_is_counted_in_every_window_it_falls_in() -> None:
    """Threads take the engine's lock in any order: admission sees arrival times out of order and must
    still never let a window hold more than the limit, nor refuse a call no window is full for."""
    table = LimitTable({"zego.DeleteMedia": [2, 1.0]})
    admit = lambda t: table.admit("zego", "DeleteMedia", "app", t)  # noqa: E731
    assert admit(10.0) and admit(10.9)
    assert not admit(10.5)  # handled last, arrived between them: [10.0, 11.0) would hold 3
    assert admit(11.0)  # [10.0, 11.0) still holds 2; [10.9, 11.9) now holds 2
    assert not admit(10.95)
    assert admit(11.95)  # 10.9 has left its window
    assert not admit(11.5)  # [10.9, 11.9) would hold 10.9, 11.0, 11.5


@pytest.mark.skipif(sys.platform != "linux", reason="kernel receive timestamps (SO_TIMESTAMPNS) are Linux's")
def test_arrival_is_the_kernels_receive_time_not_when_a_thread_got_to_it() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    with listener, socket.create_connection(listener.getsockname()) as sender:
        receiver, _ = listener.accept()
        with receiver:
            reader = _kernel_stamps(receiver)
            assert reader is not None
            sender.sendall(b"GET / HTTP/1.1\r\n\r\n")
            sent = time.time()
            time.sleep(0.2)  # the handler thread is late
            buffer = bytearray(100)
            assert reader.readinto(buffer) == 18
            assert reader.received_at is not None and abs(reader.received_at - sent) < 0.05


def test_limits_change_at_run_time_and_each_vendor_answers_its_throttling_code(sb: Sandbox, client: httpx.Client) -> None:
    sb.seed({"aliyun": {"default": {"multipart_uploads": ["m1", "m2"]}}, "huawei": {"default": {"assets": ["a1", "a2"]}}})
    sb.set_limits({"aliyun.DeleteMultipartUpload": "1/s", "huawei.DeleteAssets": [1, 60]})
    assert aliyun_rpc(sb, client, "DeleteMultipartUpload", {"MediaId": "m1", "MediaType": "video"}).status_code == 200
    r = aliyun_rpc(sb, client, "DeleteMultipartUpload", {"MediaId": "m2", "MediaType": "video"})
    assert (r.status_code, r.json()["Code"]) == (400, "Throttling.User")
    assert huawei(sb, client, ["a1"]).status_code == 200
    r = huawei(sb, client, ["a2"])
    assert (r.status_code, r.json()["error_code"]) == (429, "APIGW.0308") and r.json()["request_id"] == r.headers["X-Request-Id"]
    sb.set_limits({"*": None})
    assert aliyun_rpc(sb, client, "DeleteMultipartUpload", {"MediaId": "m2", "MediaType": "video"}).status_code == 200
    assert huawei(sb, client, ["a2"]).status_code == 200
    assert sb.limits()["zego.DeleteMedia"] is None


# Huawei Cloud


def test_huawei_aksk_repeated_or_comma_separated_and_token_accepted(sb: Sandbox, client: httpx.Client) -> None:
    sb.seed({"huawei": {"default": {"assets": ["a1", "a2", "a3", "a4", "a5"]}}})
    r = huawei(sb, client, ["a1", "a2"])
    assert r.status_code == 200 and r.headers["X-Request-Id"]
    assert r.json() == {"delete_result_array": [{"asset_id": "a1", "status": "DELETED"}, {"asset_id": "a2", "status": "DELETED"}]}
    assert huawei(sb, client, ["a3", "a4"], comma=True).status_code == 200
    assert huawei(sb, client, ["a5"], token=HW_TOKEN).status_code == 200
    assert held(sb)["huawei.DeleteAssets"] == 0


def test_huawei_bad_signature_stale_date_and_bad_token_refused(sb: Sandbox, client: httpx.Client) -> None:
    sb.seed({"huawei": {"default": {"assets": ["a1"]}}})
    for r in (
        huawei(sb, client, ["a1"], secret="wrong"),
        huawei(sb, client, ["a1"], when=datetime.now(timezone.utc) - timedelta(minutes=16)),
        huawei(sb, client, ["a1"], token="forged"),
    ):
        assert (r.status_code, r.json()["error_code"]) == (401, "APIGW.0301")
        assert set(r.json()) == {"error_code", "error_msg", "request_id"} and r.headers["X-Request-Id"] == r.json()["request_id"]
    assert held(sb)["huawei.DeleteAssets"] == 1
    assert sb.stats()["auth_failures"] == 3


def test_huawei_batch_limit_unknown_ids_and_processing_assets(sb: Sandbox, client: httpx.Client) -> None:
    assets = [f"a{i}" for i in range(11)]
    sb.seed({"huawei": {"default": {"assets": assets, "processing": ["busy"]}}})
    sb.seed({"huawei": {PROJECT: {"processing": {"soon": 1}}}})
    r = huawei(sb, client, assets)
    assert (r.status_code, r.json()["error_code"]) == (400, "VOD.10053")
    r = huawei(sb, client, ["a0", "missing"])
    assert r.status_code == 403
    assert r.json() == {"error_code": "VOD.10062", "error_msg": "Media asset or resource does not exist, please check."}
    assert held(sb)["huawei.DeleteAssets"] == 13, "an unknown id deletes nothing"
    r = huawei(sb, client, ["a0", "busy", "soon"])
    assert [e["status"] for e in r.json()["delete_result_array"]] == ["DELETED", "FAILED", "FAILED"]
    r = huawei(sb, client, ["busy", "soon"])
    assert [e["status"] for e in r.json()["delete_result_array"]] == ["FAILED", "DELETED"]
    assert sb.stats()["batch_limit_violations"] == 1


# Faults


def test_fault_unavailable_in_each_vendors_words(sb: Sandbox, client: httpx.Client) -> None:
    sb.seed({
        "aliyun": {"default": {"streams": {"v1": ["j1"]}}},
        "zego": {"default": {"files": {"Ws": ["w1"]}}},
        "huawei": {"default": {"assets": ["a1"]}},
    })
    before = held(sb)
    sb.set_faults({"*": {"unavailable": 1.0}})
    r = aliyun_rpc(sb, client, "DeleteStream", {"VideoId": "v1", "JobIds": "j1"})
    assert (r.status_code, r.json()["Code"]) == (503, "DeleteStreamFailed")
    r = aliyun_rpc(sb, client, "DeleteMultipartUpload", {"MediaId": "x", "MediaType": "video"})
    assert (r.status_code, r.json()["Code"]) == (503, "ServiceUnavailable")
    assert client.get(sb.endpoint("zego") + "/", params=[("Action", "DeleteMedia")]).json()["Code"] == 7, "auth comes first"
    zego_answers = set()
    for _ in range(8):  # HTTP 503 or Code 1000, drawn half and half
        r = zego_call(sb, client, "Ws", ["w1"])
        zego_answers.add(503 if r.status_code == 503 else r.json()["Code"])
    assert zego_answers <= {503, 1000} and zego_answers
    r = huawei(sb, client, ["a1"])
    assert (r.status_code, r.json()["error_code"]) == (503, "APIGW.0203")
    assert held(sb) == before
    assert sb.stats()["faults"] == {"unavailable": 11}


def test_fault_throttle_answers_the_throttling_code_without_counting_as_rate_limited(sb: Sandbox, client: httpx.Client) -> None:
    sb.seed({"zego": {"default": {"files": {"Ws": ["w1"]}}}})
    sb.set_faults({"zego.DeleteMedia": {"throttle": 1.0}})
    assert zego(sb, client, "Ws", ["w1"])["Code"] == 6
    stats = sb.stats()
    assert (stats["throttled"], stats["rate_limited"], stats["faults"]) == (1, 0, {"throttle": 1})
    sb.set_faults({"zego.DeleteMedia": None})
    assert zego(sb, client, "Ws", ["w1"])["Code"] == 0


def test_fault_slow_answer_and_base_latency(sb: Sandbox, client: httpx.Client) -> None:
    sb.seed({"zego": {"default": {"files": {"Ws": ["w1", "w2"]}}}})
    sb.set_faults({"zego": {"slow": 1.0, "slow_seconds": 0.3, "latency": 0.05}})
    started = time.monotonic()
    assert zego(sb, client, "Ws", ["w1"])["Code"] == 0
    assert time.monotonic() - started >= 0.35
    with pytest.raises(httpx.ReadTimeout):  # the deletion happened; only the answer is late
        with httpx.Client(timeout=0.1) as impatient:
            zego(sb, impatient, "Ws", ["w2"])
    assert held(sb)["zego.DeleteMedia"] == 0
    assert sb.calls()[-1]["fault"] == "slow" and sb.calls()[-1]["delay"] == pytest.approx(0.35)


@pytest.mark.parametrize("applied", [False, True])
def test_fault_drop_closes_the_connection_with_or_without_the_deletion(sb: Sandbox, client: httpx.Client, applied: bool) -> None:
    sb.seed({"huawei": {"default": {"assets": ["a1"]}}})
    sb.set_faults({"huawei": {"drop": 1.0, "apply_before_drop": applied}})
    with pytest.raises(httpx.RemoteProtocolError):
        huawei(sb, client, ["a1"])
    assert held(sb)["huawei.DeleteAssets"] == (0 if applied else 1)
    call = sb.calls()[-1]
    assert (call["status"], call["fault"], call["fault_applied"]) == (None, "drop", applied)
    assert call["deleted"] == (["a1"] if applied else [])
    sb.set_faults({}, replace=True)
    assert huawei(sb, client, ["a1"]).status_code == (403 if applied else 200), "the next call gets a fresh connection"


@pytest.mark.parametrize("kind", ["html", "truncated", "shape"])
def test_fault_malformed_bodies(sb: Sandbox, client: httpx.Client, kind: str) -> None:
    sb.seed({"aliyun": {"default": {"multipart_uploads": ["m1", "m2"]}}})
    sb.set_faults({"aliyun.DeleteMultipartUpload": {"malformed": 1.0, "malformed_kinds": [kind], "apply_before_malformed": 1.0}})
    r = aliyun_rpc(sb, client, "DeleteMultipartUpload", {"MediaId": "m1", "MediaType": "video"})
    if kind == "html":
        assert r.status_code == 502 and r.headers["content-type"].startswith("text/html")
    elif kind == "truncated":
        with pytest.raises(json.JSONDecodeError):
            json.loads(r.content)
    else:
        assert not isinstance(r.json(), dict)
    assert held(sb)["aliyun.DeleteMultipartUpload"] == 1, "applied before the malformed answer"
    sb.set_faults({"aliyun.DeleteMultipartUpload": {"malformed": 1.0, "malformed_kinds": [kind]}})
    aliyun_rpc(sb, client, "DeleteMultipartUpload", {"MediaId": "m2", "MediaType": "video"})
    assert held(sb)["aliyun.DeleteMultipartUpload"] == 1, "not applied"
    assert [c["fault"] for c in sb.calls()] == [f"malformed:{kind}"] * 2


def test_faults_are_reproducible_from_their_seed(sb: Sandbox, client: httpx.Client) -> None:
    sb.seed({"zego": {"default": {"files": {"Ws": [f"w{i}" for i in range(40)]}}}})
    sb.set_limits({"zego.DeleteMedia": None})

    def run(first: int) -> list[str | None]:
        sb.set_faults({"zego": {"throttle": 0.3, "malformed": 0.2, "malformed_kinds": ["shape"]}}, seed=7, replace=True)
        since = len(sb.calls())
        for i in range(first, first + 20):
            zego(sb, client, "Ws", [f"w{i}"])
        return [c["fault"] for c in sb.calls(since)]

    first, second = run(0), run(20)
    assert first == second
    assert set(first) <= {None, "throttle", "malformed:shape"} and len(set(first)) > 1


# Records, statistics and the control API


def test_max_in_window_counts_calls_in_any_half_open_window() -> None:
    assert max_in_window([], 1.0) == 0
    assert max_in_window([0.0, 0.5, 0.99, 1.0, 1.5, 1.6, 1.7], 1.0) == 5  # [0.99, 1.99): 0.99..1.7
    assert max_in_window([0.0, 1.0, 2.0], 1.0) == 1
    assert max_in_window([0.0, 1.0, 2.0], 1.0001) == 2


def test_stats_window_override_and_counts(sb: Sandbox, client: httpx.Client) -> None:
    sb.seed({"zego": {"default": {"files": {"Tencent": ["a", "b", "c"]}}}})
    for file_id in ("a", "b", "c"):
        zego(sb, client, "Tencent", [file_id])
    stats = sb.stats(window=60.0)
    assert stats["windows"][0]["period"] == 60.0 and stats["windows"][0]["max_calls"] == 3
    assert stats["by_operation"]["zego.DeleteMedia"] == {"calls": 3, "codes": {"0": 3}, "statuses": {"200": 3}, "deleted": 3}
    assert stats["deleted"] == 3 and stats["repeated_deletions"] == 0


def test_generated_workload_deletes_each_held_id_once_and_the_log_never_repeats(sb: Sandbox, client: httpx.Client) -> None:
    seed, items = generate_media(
        {"aliyun.DeleteStream": 30, "zego.DeleteMedia": 30, "huawei.DeleteAssets": 10}, missing_fraction=0.2, rng_seed=3, accounts=CONFIG
    )
    assert len(items) == 70 and items == generate_media(
        {"aliyun.DeleteStream": 30, "zego.DeleteMedia": 30, "huawei.DeleteAssets": 10}, missing_fraction=0.2, rng_seed=3, accounts=CONFIG
    )[1]
    added = sb.seed(seed)
    assert added == {"aliyun.DeleteStream": 24, "aliyun.DeleteMultipartUpload": 0, "zego.DeleteMedia": 24, "huawei.DeleteAssets": 8}
    sb.set_limits({"*": None})
    for _ in range(2):  # a second pass deletes nothing more
        for item in items:
            if item["action"] == "aliyun.DeleteStream":
                aliyun_rpc(sb, client, "DeleteStream", {"VideoId": item["VideoId"], "JobIds": item["JobId"]})
            elif item["action"] == "zego.DeleteMedia":
                app_id, secret = (APP_ID, ZEGO_SECRET) if item["account"] == "default" else (OTHER_APP_ID, OTHER_ZEGO_SECRET)
                zego(sb, client, item["Vendor"], [item["FileId"]], app_id=app_id, secret=secret)
            else:
                huawei(sb, client, [item["asset_id"]])
    log = sb.deleted()
    keys = [(d["vendor"], d["operation"], d["account"], d["group"], d["id"]) for d in log]
    assert len(keys) == len(set(keys)) == 56
    assert held(sb) == {"aliyun.DeleteStream": 0, "aliyun.DeleteMultipartUpload": 0, "zego.DeleteMedia": 0, "huawei.DeleteAssets": 0}
    # Seeding a deleted id again and deleting it again is flagged.
    sb.seed({"huawei": {"default": {"assets": [log[-1]["id"]]}}})
    assert huawei(sb, client, [log[-1]["id"]]).status_code == 200
    assert sb.deleted()[-1]["repeat"] is True and sb.stats()["repeated_deletions"] == 1


def test_control_api(sb: Sandbox, client: httpx.Client) -> None:
    base = sb.url + "/_sandbox"
    assert client.get(base + "/health").json()["ok"] is True
    r = client.post(base + "/media", json={"zego": {"default": {"files": {"Ws": ["w1", "w2"]}}}})
    assert r.json()["added"]["zego.DeleteMedia"] == 2
    assert client.get(base + "/media").json()["media"]["zego"][str(APP_ID)]["files"]["Ws"] == ["w1", "w2"]
    assert client.post(base + "/limits", json={"zego.DeleteMedia": {"count": 1, "period": 1}}).json()["zego.DeleteMedia"] == {"count": 1, "period": 1.0}
    assert zego(sb, client, "Ws", ["w1"])["Code"] == 0
    assert zego(sb, client, "Ws", ["w2"])["Code"] == 6
    r = client.post(base + "/faults", json={"rules": {"zego": {"unavailable": 0.5}}, "seed": 3})
    assert r.json() == client.get(base + "/faults").json() and r.json()["rules"]["zego"]["unavailable"] == 0.5
    calls = client.get(base + "/calls", params={"since": 1}).json()
    assert [c["code"] for c in calls["calls"]] == ["6"] and calls["next"] == 2
    assert [d["id"] for d in client.get(base + "/deleted").json()["deleted"]] == ["w1"]
    assert client.get(base + "/stats").json()["rate_limited"] == 1
    assert client.post(base + "/limits", json={"zego.DeleteMedia": "often"}).status_code == 400
    assert client.post(base + "/media", json={"zego": {"default": {"files": {"Akamai": ["x"]}}}}).status_code == 400
    assert client.post(base + "/faults", json={"rules": {"*": {"drop": 0.8, "throttle": 0.8}}}).status_code == 400
    assert client.get(base + "/nothing").status_code == 404
    assert client.post(base + "/reset", json={"media": False}).json() == {"reset": ["records", "faults", "limits"]}
    assert client.get(base + "/stats").json()["calls"] == 0 and client.get(base + "/health").json()["held"]["zego.DeleteMedia"] == 1
    assert client.get(base + "/faults").json()["rules"] == {} and client.get(base + "/limits").json()["zego.DeleteMedia"] == {"count": 20, "period": 1.0}


def test_secrets_never_leave_the_sandbox(sb: Sandbox, client: httpx.Client) -> None:
    sb.seed({"zego": {"default": {"files": {"Ws": ["w1"]}}}, "huawei": {"default": {"assets": ["a1"]}}})
    zego(sb, client, "Ws", ["w1"])
    huawei(sb, client, ["a1"], token=HW_TOKEN)
    aliyun_rpc(sb, client, "DeleteStream", {"VideoId": "v", "JobIds": "j"})
    shown = repr(CONFIG) + json.dumps([sb.calls(), sb.stats(), sb.media(), sb.deleted(), sb.faults(), sb.limits()])
    assert not [s for s in SECRETS if s in shown]


def test_config_from_settings_takes_every_account() -> None:
    settings = Settings(accounts=Accounts(
        aliyun={"a": AliyunAccount(access_key_id="AK1", access_key_secret=SecretStr("s1"))},
        zego={"z": ZegoAccount(app_id=7, server_secret=SecretStr("s2"))},
        huawei={"h": HuaweiAccount(project_id="p1", access_key="HAK", secret_key=SecretStr("s3"))},
    ))
    config = SandboxConfig.from_settings(settings, busy_clears_after=2)
    assert config.aliyun == [AliyunCredential("a", "AK1", "s1")]
    assert config.zego == [ZegoCredential("z", 7, "s2")]
    assert config.huawei == [HuaweiCredential("h", "p1", "HAK", "s3")]
    assert config.busy_clears_after == 2 and config.account_key("zego", "z") == "7"
