"""The signers against the vendors' own code.

Three layers: every vector of tests/data/vendor-vectors.json (computed by the SDKs) byte for byte; the
same requests, with awkward ids, signed by the installed SDKs' signer code next to ours; and the requests
``build_request`` produces, whose signatures are recomputed from their own URL and headers.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import unquote

import httpx
import pytest
from aliyunsdkcore.auth.composer import rpc_signature_composer as aliyun_composer
from aliyunsdkcore.utils import parameter_helper as aliyun_helper
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer as HuaweiSigner

from worker.settings import AliyunAccount, HuaweiAccount, ZegoAccount
from worker.signing import aliyun, huawei, zego
from worker.vendors.aliyun import DeleteMultipartUpload, DeleteStream
from worker.vendors.huawei import DeleteAssets
from worker.vendors.zego import DeleteMedia

VECTORS = json.loads((Path(__file__).parents[1] / "data" / "vendor-vectors.json").read_text(encoding="utf-8"))

# The SDK's module-level helpers are "private" by name only; they are what the vectors were made with.
sdk_aliyun_string_to_sign = getattr(aliyun_composer, "__compose_string_to_sign")
sdk_aliyun_signature = getattr(aliyun_composer, "__get_signature")

NOW = datetime(2026, 11, 21, 8, 0, 0, tzinfo=timezone.utc)
AWKWARD_IDS = [
    "95948ddba24446b6aed5db985e78a1b2",
    "a b",  # space: %20, never '+'
    "*~/+",  # '*' is %2A, '~' stays, '/' and '+' are encoded
    "视频-ü",  # non-ASCII: UTF-8 bytes
    "x=1&y=2",  # looks like more parameters
    "100%25",  # looks already encoded
]


def wire_pairs(request: httpx.Request) -> list[tuple[str, str]]:
    """The query parameters exactly as sent, decoded (``+`` is a plus, never a space)."""
    query = request.url.query.decode("ascii")
    return [(unquote(name), unquote(value)) for name, _, value in (part.partition("=") for part in query.split("&"))]


# --- 1. the vectors -------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector(vector: dict) -> None:
    inputs, expected = vector["inputs"], vector["expected"]
    if vector["vendor"] == "aliyun" and "RPC" in vector["scheme"]:
        method, params, secret = inputs["method"], inputs["params"], inputs["access_key_secret"]
        assert aliyun.rpc_string_to_sign(method, params) == expected["string_to_sign"]
        assert aliyun.rpc_signature(secret, expected["string_to_sign"]) == expected["signature"]
        assert aliyun.rpc_signed_query(method, params, secret) == expected["signed_query_string"]
    elif vector["vendor"] == "aliyun":
        authorization = aliyun.acs3_authorization(
            inputs["method"],
            inputs["pathname"],
            inputs["query"],
            inputs["headers"],
            inputs["access_key_id"],
            inputs["access_key_secret"],
        )
        assert authorization == expected["authorization"]
    elif vector["vendor"] == "huawei":
        query = [(name, value) for name, value in inputs["query"]]
        authorization = huawei.authorization(
            inputs["method"],
            inputs["host"],
            inputs["path"],
            query,
            inputs["headers"],
            inputs["body"].encode(),
            inputs["ak"],
            inputs["sk"],
        )
        assert authorization == expected["authorization"]
        assert f"{inputs['path']}?{huawei.encoded_query(query)}" == expected["uri"]
    else:
        signature = zego.signature(
            inputs["AppId"], inputs["SignatureNonce"], inputs["ServerSecret"], inputs["Timestamp"]
        )
        assert signature == expected["signature"]


def test_every_vendor_has_vectors() -> None:
    assert {v["vendor"] for v in VECTORS} == {"aliyun", "huawei", "zego"}


# --- 2. the SDKs' own signer code, same inputs ---------------------------------------------------


def aliyun_params(**business: str) -> dict[str, str]:
    return {
        "Action": "DeleteStream",
        "Version": "2017-03-21",
        "Format": "JSON",
        "AccessKeyId": "testid",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        "Timestamp": "2026-11-21T08:00:00Z",
        **business,
    }


@pytest.mark.parametrize("method", ["POST", "GET"])
@pytest.mark.parametrize("job_id", AWKWARD_IDS)
def test_aliyun_rpc_matches_sdk(method: str, job_id: str) -> None:
    params = aliyun_params(VideoId=f"v {job_id}", JobIds=f"{job_id},plain", SecurityToken="sts/token+==")
    ours = aliyun.rpc_string_to_sign(method, params)
    assert ours == sdk_aliyun_string_to_sign(method, dict(params))
    assert aliyun.rpc_signature("testsecret", ours) == sdk_aliyun_signature(ours, "testsecret")


@pytest.mark.parametrize("job_id", AWKWARD_IDS)
def test_aliyun_signed_url_matches_sdk(job_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's whole URL builder (its own encoding of the query sent), with time and nonce pinned."""
    monkeypatch.setattr(aliyun_helper, "get_iso_8061_date", lambda: "2026-11-21T08:00:00Z")
    monkeypatch.setattr(aliyun_helper, "get_uuid", lambda: "nonce-0001")
    params = {"Action": "DeleteStream", "Version": "2017-03-21", "VideoId": "v", "JobIds": job_id}
    url, _ = aliyun_composer.get_signed_url(params, "testid", "testsecret", "JSON", "POST", {})
    # get_signed_url filled ``params`` in place (SignatureType="" included) and appended Signature.
    unsigned = {k: v for k, v in params.items() if k != "Signature"}
    assert url == "/?" + aliyun.rpc_signed_query("POST", unsigned, "testsecret")


HUAWEI_HEADERS = {"X-Sdk-Date": "20261121T080000Z", "Content-Type": "application/json"}


def sdk_huawei(host: str, path: str, query: list[tuple[str, object]], headers: dict[str, str]) -> SdkRequest:
    request = SdkRequest(
        method="DELETE",
        schema="https",
        host=host,
        resource_path=path,
        query_params=[(k, list(v) if isinstance(v, list) else v) for k, v in query],
        header_params=dict(headers),
        body="",
    )
    return HuaweiSigner(SimpleNamespace(ak="HWTESTAK", sk="hwtestsecret")).sign(request)


def ours_huawei(host: str, path: str, query: list, headers: dict[str, str]) -> str:
    return huawei.authorization("DELETE", host, path, query, headers, b"", "HWTESTAK", "hwtestsecret")


@pytest.mark.parametrize(
    "ids",
    [[asset_id] for asset_id in AWKWARD_IDS]
    + [
        ["f488337c31c8e4622f1590735b134c66", "f488337c31c8e4622f1590735b134c65"],
        ["b b", "a+a", "c*c", "~d"],
    ],
    ids=repr,
)
@pytest.mark.parametrize("delete_type", [None, "origin"])
@pytest.mark.parametrize(
    ("host", "path"),
    [("vod.cn-north-4.myhuaweicloud.com", "/v1.0/0a1b2c3d4e5f/asset"), ("127.0.0.1:8900", "/huawei/v1.0/p-1/asset")],
)
def test_huawei_matches_sdk(ids: list[str], delete_type: str | None, host: str, path: str) -> None:
    query: list = [("asset_id", list(ids))] + ([("delete_type", delete_type)] if delete_type else [])
    signed = sdk_huawei(host, path, query, HUAWEI_HEADERS)
    assert ours_huawei(host, path, query, HUAWEI_HEADERS) == signed.header_params["Authorization"]


@pytest.mark.parametrize("ids", [["a.b", "a/b"], ["z", "é"]], ids=repr)
def test_huawei_repeated_values_sort_like_sdk(ids: list[str]) -> None:
    query: list = [("asset_id", list(ids))]
    signed = sdk_huawei("h", "/v1.0/p/asset", query, HUAWEI_HEADERS)
    assert ours_huawei("h", "/v1.0/p/asset", query, HUAWEI_HEADERS) == signed.header_params["Authorization"]


# --- 3. the requests build_request produces verify -------------------------------------------------


@pytest.mark.parametrize("token", [None, "sts-token/+=="])
@pytest.mark.parametrize("endpoint", [None, "http://127.0.0.1:8900/aliyun"])
@pytest.mark.parametrize(
    ("operation", "group_key", "ids"),
    [
        (DeleteStream(), "95948ddba24446b6aed5db985e78a1b2", ["35eb4dbda18c49cc0025df374b46a001", "a b*~/+视"]),
        (DeleteMultipartUpload(), "video", ["61ccbdb06fa3012be4d8083f6a1b2c3d"]),
    ],
)
def test_aliyun_request_signature_verifies(operation, group_key, ids, endpoint, token) -> None:
    account = AliyunAccount(
        access_key_id="testid", access_key_secret="testsecret", security_token=token, endpoint=endpoint
    )
    request = operation.build_request(account, group_key, ids, NOW, "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf")
    pairs = wire_pairs(request)
    params = dict(pairs)
    assert len(params) == len(pairs)  # no parameter twice
    signature = params.pop("Signature")
    string_to_sign = sdk_aliyun_string_to_sign(request.method, params)
    assert signature == sdk_aliyun_signature(string_to_sign, "testsecret")


@pytest.mark.parametrize("delete_type", [None, "origin"])
@pytest.mark.parametrize(
    "endpoint",
    [None, "http://127.0.0.1:8900/huawei", "https://vod.cn-north-4.myhuaweicloud.com:443", "https://h.example:8443"],
)
def test_huawei_request_signature_verifies(endpoint: str | None, delete_type: str | None) -> None:
    account = HuaweiAccount(
        project_id="0a1b2c3d4e5f", access_key="HWTESTAK", secret_key="hwtestsecret", delete_type=delete_type, endpoint=endpoint
    )
    ids = ["f488337c31c8e4622f1590735b134c65", "f488337c31c8e4622f1590735b134c66", "a b*~/+视"]
    request = DeleteAssets().build_request(account, "", ids, NOW, "unused")
    grouped: dict[str, list[str]] = {}
    for name, value in wire_pairs(request):
        grouped.setdefault(name, []).append(value)
    query = [(name, values if name == "asset_id" else values[0]) for name, values in grouped.items()]
    headers = {"X-Sdk-Date": request.headers["X-Sdk-Date"], "Content-Type": request.headers["Content-Type"]}
    signed = sdk_huawei(request.headers["Host"], request.url.path, query, headers)
    assert request.headers["Authorization"] == signed.header_params["Authorization"]


@pytest.mark.parametrize("nonce", ["a1b2c3d4e5f60718", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"])
def test_zego_request_signature_verifies(nonce: str) -> None:
    account = ZegoAccount(app_id=987654321, server_secret="fedcba9876543210fedcba9876543210")
    request = DeleteMedia().build_request(account, "Huawei", ["obs/object 1", "x"], NOW, nonce)
    params = dict(wire_pairs(request))
    expected = hashlib.md5(
        f"{params['AppId']}{params['SignatureNonce']}fedcba9876543210fedcba9876543210{params['Timestamp']}".encode()
    ).hexdigest()
    assert params["Signature"] == expected
    assert params["Timestamp"] == str(int(NOW.timestamp()))
