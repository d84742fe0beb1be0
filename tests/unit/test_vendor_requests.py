"""``build_request``: the exact bytes each vendor receives.

Queries are checked on ``request.url.raw_path`` / ``request.url.query``, what httpx writes on the wire,
and once more through an ``httpx.Client`` over a ``MockTransport``. Ids are sent exactly as given, each
percent-encoded, so that no id can add, split or rename a parameter.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta, timezone
from urllib.parse import unquote

import httpx
import pytest
from pydantic import SecretStr

from worker.settings import AliyunAccount, HuaweiAccount, ZegoAccount
from worker.signing import huawei as huawei_signer
from worker.vendors import OPERATIONS
from worker.vendors.aliyun import DeleteMultipartUpload, DeleteStream
from worker.vendors.huawei import DeleteAssets
from worker.vendors.zego import DeleteMedia

NOW = datetime(2026, 11, 21, 8, 0, 0, tzinfo=timezone.utc)
NONCE = "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"
# Ids a careless encoder would turn into extra parameters, other ids, or different bytes.
HOSTILE_IDS = ["a&JobIds=evil", "x=y", "a b", "*~/+", "视频", "100%25", "q?r#s", "FileId[]=1", "tab\tnl\n"]
# What a query may hold on the wire: RFC 3986 unreserved, percent escapes, and the separators.
WIRE_QUERY = re.compile(rb"^[A-Za-z0-9\-_.~%=&\[\]]*$")


def wire_pairs(request: httpx.Request) -> list[tuple[str, str]]:
    """The query parameters exactly as sent, decoded (``+`` is a plus, never a space)."""
    query = request.url.query.decode("ascii")
    return [(unquote(name), unquote(value)) for name, _, value in (part.partition("=") for part in query.split("&"))]


def sent_through_client(request: httpx.Request) -> httpx.Request:
    """The request as a client hands it to its transport."""
    seen: list[httpx.Request] = []

    def handler(sent: httpx.Request) -> httpx.Response:
        seen.append(sent)
        return httpx.Response(200, json={})

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        client.send(request)
    return seen[0]


@pytest.fixture
def aliyun_account() -> AliyunAccount:
    return AliyunAccount(access_key_id="testid", access_key_secret="testsecret", endpoint="http://127.0.0.1:8900/aliyun")


@pytest.fixture
def zego_account() -> ZegoAccount:
    return ZegoAccount(app_id=1234567890, server_secret="0123456789abcdef0123456789abcdef")


@pytest.fixture
def huawei_account() -> HuaweiAccount:
    return HuaweiAccount(project_id="0a1b2c3d4e5f", access_key="HWTESTAK", secret_key="hwtestsecret")


def test_registry_and_declared_shapes() -> None:
    shapes = {
        action: (op.max_batch, op.group_field, op.group_choices, op.id_field, op.default_rate, op.account_rate)
        for action, op in OPERATIONS.items()
    }
    assert shapes == {
        "aliyun.DeleteStream": (20, "VideoId", None, "JobId", "50/s", None),
        "aliyun.DeleteMultipartUpload": (1, "MediaType", ("video",), "MediaId", "10/s", None),
        "zego.DeleteMedia": (100, "Vendor", ("Tencent", "Ws", "Huawei"), "FileId", "20/s", None),
        "huawei.DeleteAssets": (10, None, None, "asset_id", "100/min", "1000/min"),
    }


# --- Alibaba Cloud ---------------------------------------------------------------------------------


def test_delete_stream_exact_query(aliyun_account: AliyunAccount) -> None:
    request = DeleteStream().build_request(aliyun_account, "vid1", ["job1", "job2"], NOW, NONCE)
    assert request.method == "POST"
    assert request.content == b""
    assert request.headers["Host"] == "127.0.0.1:8900"
    raw = request.url.raw_path.decode("ascii")
    path, _, query = raw.partition("?")
    assert path == "/aliyun/"
    unsigned, _, signature = query.rpartition("&Signature=")
    assert unsigned == (
        "Action=DeleteStream&Version=2017-03-21&Format=JSON&AccessKeyId=testid&SignatureMethod=HMAC-SHA1"
        "&SignatureVersion=1.0&SignatureNonce=3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"
        "&Timestamp=2026-11-21T08%3A00%3A00Z&VideoId=vid1&JobIds=job1%2Cjob2"
    )
    assert re.fullmatch(r"[A-Za-z0-9%]+", signature)  # base64, with + / = percent-encoded


def test_delete_stream_default_endpoint(aliyun_account: AliyunAccount) -> None:
    account = aliyun_account.model_copy(update={"endpoint": None, "region": "cn-beijing"})
    request = DeleteStream().build_request(account, "v", ["j"], NOW, NONCE)
    assert str(request.url).startswith("https://vod.cn-beijing.aliyuncs.com/?Action=DeleteStream&")


def test_security_token_is_sent_after_timestamp(aliyun_account: AliyunAccount) -> None:
    account = aliyun_account.model_copy(update={"security_token": SecretStr("sts+tok/en==")})
    request = DeleteStream().build_request(account, "v", ["j"], NOW, NONCE)
    names = [name for name, _ in wire_pairs(request)]
    assert names[names.index("Timestamp") + 1] == "SecurityToken"
    assert dict(wire_pairs(request))["SecurityToken"] == "sts+tok/en=="
    assert b"SecurityToken=sts%2Btok%2Fen%3D%3D" in request.url.query


def test_timestamp_is_utc(aliyun_account: AliyunAccount) -> None:
    shanghai = NOW.astimezone(timezone(timedelta(hours=8)))
    request = DeleteStream().build_request(aliyun_account, "v", ["j"], shanghai, NONCE)
    assert dict(wire_pairs(request))["Timestamp"] == "2026-11-21T08:00:00Z"


@pytest.mark.parametrize("job_id", HOSTILE_IDS)
def test_delete_stream_ids_sent_exactly(aliyun_account: AliyunAccount, job_id: str) -> None:
    request = sent_through_client(DeleteStream().build_request(aliyun_account, f"v {job_id}", [job_id, "j2"], NOW, NONCE))
    assert WIRE_QUERY.match(request.url.query)
    pairs = wire_pairs(request)
    assert [name for name, _ in pairs][-3:] == ["VideoId", "JobIds", "Signature"]
    assert dict(pairs)["JobIds"] == f"{job_id},j2"
    assert dict(pairs)["VideoId"] == f"v {job_id}"


@pytest.mark.parametrize("ids", [[], [f"j{i}" for i in range(21)], ["a,b"], [""]], ids=["none", "21", "comma", "empty"])
def test_delete_stream_refuses_batches_it_cannot_send_exactly(aliyun_account: AliyunAccount, ids: list[str]) -> None:
    with pytest.raises(ValueError):
        DeleteStream().build_request(aliyun_account, "v", ids, NOW, NONCE)


def test_delete_stream_takes_twenty(aliyun_account: AliyunAccount) -> None:
    ids = [f"j{i}" for i in range(20)]
    request = DeleteStream().build_request(aliyun_account, "v", ids, NOW, NONCE)
    assert dict(wire_pairs(request))["JobIds"] == ",".join(ids)


@pytest.mark.parametrize("media_id", ["61ccbdb06fa3012be4d8083f6a1b2c3d", *HOSTILE_IDS])
def test_delete_multipart_upload_exact_query(aliyun_account: AliyunAccount, media_id: str) -> None:
    request = DeleteMultipartUpload().build_request(aliyun_account, "video", [media_id], NOW, "nonce-0001")
    assert request.method == "POST"
    assert WIRE_QUERY.match(request.url.query)
    pairs = wire_pairs(request)
    assert pairs[0] == ("Action", "DeleteMultipartUpload")
    assert pairs[-3:-1] == [("MediaId", media_id), ("MediaType", "video")]
    assert [name for name, _ in pairs].count("MediaId") == 1


@pytest.mark.parametrize(("group", "ids"), [("audio", ["m"]), ("video", ["m1", "m2"])])
def test_delete_multipart_upload_refuses(aliyun_account: AliyunAccount, group: str, ids: list[str]) -> None:
    with pytest.raises(ValueError):
        DeleteMultipartUpload().build_request(aliyun_account, group, ids, NOW, NONCE)


def test_aliyun_secret_is_never_sent(aliyun_account: AliyunAccount) -> None:
    request = DeleteStream().build_request(aliyun_account, "v", ["j"], NOW, NONCE)
    assert b"testsecret" not in request.url.raw_path
    assert all("testsecret" not in value for value in request.headers.values())


# --- ZEGO ------------------------------------------------------------------------------------------


def test_delete_media_exact_query(zego_account: ZegoAccount) -> None:
    request = DeleteMedia().build_request(zego_account, "Tencent", ["5285890813221514958", "5285890813221513290"], NOW, "A1B2C3D4E5F60718ffff")
    assert request.method == "GET"
    assert request.url.host == "rtc-api.zego.im"
    timestamp = int(NOW.timestamp())
    signature = hashlib.md5(f"1234567890a1b2c3d4e5f607180123456789abcdef0123456789abcdef{timestamp}".encode()).hexdigest()
    assert request.url.raw_path.decode("ascii") == (
        f"/?Action=DeleteMedia&AppId=1234567890&SignatureNonce=a1b2c3d4e5f60718&Timestamp={timestamp}"
        f"&SignatureVersion=2.0&Signature={signature}&Vendor=Tencent"
        "&FileId[]=5285890813221514958&FileId[]=5285890813221513290"
    )


def test_delete_media_is_test_and_endpoint_prefix(zego_account: ZegoAccount) -> None:
    account = zego_account.model_copy(update={"is_test": True, "endpoint": "http://127.0.0.1:8900/zego/"})
    request = sent_through_client(DeleteMedia().build_request(account, "Ws", ["p1"], NOW, NONCE))
    assert request.url.raw_path.startswith(b"/zego/?Action=DeleteMedia&")
    names = [name for name, _ in wire_pairs(request)]
    assert names == ["Action", "AppId", "SignatureNonce", "Timestamp", "SignatureVersion", "Signature", "IsTest", "Vendor", "FileId[]"]
    assert dict(wire_pairs(request))["IsTest"] == "true"


@pytest.mark.parametrize(
    ("nonce", "expected"),
    [
        ("a1b2c3d4e5f60718", "a1b2c3d4e5f60718"),
        ("ABCDEF0123456789abcdef", "abcdef0123456789"),
        (NONCE, hashlib.sha256(NONCE.encode()).hexdigest()[:16]),  # a UUID's dashes are not hex
        ("short", hashlib.sha256(b"short").hexdigest()[:16]),
    ],
)
def test_delete_media_nonce_is_sixteen_hex(zego_account: ZegoAccount, nonce: str, expected: str) -> None:
    request = DeleteMedia().build_request(zego_account, "Tencent", ["f"], NOW, nonce)
    assert dict(wire_pairs(request))["SignatureNonce"] == expected


def test_delete_media_ids_sent_exactly(zego_account: ZegoAccount) -> None:
    request = sent_through_client(DeleteMedia().build_request(zego_account, "Huawei", HOSTILE_IDS, NOW, NONCE))
    assert WIRE_QUERY.match(request.url.query)
    file_ids = [value for name, value in wire_pairs(request) if name == "FileId[]"]
    assert file_ids == HOSTILE_IDS
    assert [name for name, _ in wire_pairs(request)].count("Vendor") == 1


def test_delete_media_takes_a_hundred(zego_account: ZegoAccount) -> None:
    ids = [str(i) for i in range(100)]
    request = DeleteMedia().build_request(zego_account, "Tencent", ids, NOW, NONCE)
    assert [value for name, value in wire_pairs(request) if name == "FileId[]"] == ids


@pytest.mark.parametrize(("vendor", "ids"), [("Tencent", []), ("Tencent", [str(i) for i in range(101)]), ("Aliyun", ["f"]), ("tencent", ["f"])])
def test_delete_media_refuses(zego_account: ZegoAccount, vendor: str, ids: list[str]) -> None:
    with pytest.raises(ValueError):
        DeleteMedia().build_request(zego_account, vendor, ids, NOW, NONCE)


def test_zego_secret_is_never_sent(zego_account: ZegoAccount) -> None:
    request = DeleteMedia().build_request(zego_account, "Tencent", ["f"], NOW, NONCE)
    assert b"0123456789abcdef0123456789abcdef" not in request.url.raw_path


# --- Huawei Cloud ----------------------------------------------------------------------------------

IDS = ["f488337c31c8e4622f1590735b134c65", "f488337c31c8e4622f1590735b134c66"]


def test_delete_assets_exact_request(huawei_account: HuaweiAccount) -> None:
    request = DeleteAssets().build_request(huawei_account, "", IDS, NOW, NONCE)
    assert request.method == "DELETE"
    assert request.content == b""
    assert request.url.raw_path == (
        b"/v1.0/0a1b2c3d4e5f/asset?asset_id=f488337c31c8e4622f1590735b134c65&asset_id=f488337c31c8e4622f1590735b134c66"
    )
    assert request.headers["Host"] == "vod.cn-north-4.myhuaweicloud.com"
    assert request.headers["X-Sdk-Date"] == "20261121T080000Z"
    assert request.headers["Content-Type"] == "application/json"
    assert re.fullmatch(
        r"SDK-HMAC-SHA256 Access=HWTESTAK, SignedHeaders=content-type;host;x-sdk-date, Signature=[0-9a-f]{64}",
        request.headers["Authorization"],
    )


def test_delete_assets_delete_type(huawei_account: HuaweiAccount) -> None:
    account = huawei_account.model_copy(update={"delete_type": "origin"})
    request = DeleteAssets().build_request(account, "", IDS[:1], NOW, NONCE)
    assert request.url.query == b"asset_id=f488337c31c8e4622f1590735b134c65&delete_type=origin"


@pytest.mark.parametrize(
    ("endpoint", "host", "path"),
    [
        ("http://127.0.0.1:8900/huawei", "127.0.0.1:8900", "/huawei/v1.0/0a1b2c3d4e5f/asset"),
        ("https://vod.example:443", "vod.example", "/v1.0/0a1b2c3d4e5f/asset"),  # default port: not in Host
        ("http://vod.example:443/a/b/", "vod.example:443", "/a/b/v1.0/0a1b2c3d4e5f/asset"),
    ],
)
def test_delete_assets_signs_the_host_and_path_sent(huawei_account: HuaweiAccount, endpoint: str, host: str, path: str) -> None:
    account = huawei_account.model_copy(update={"endpoint": endpoint})
    request = sent_through_client(DeleteAssets().build_request(account, "", IDS, NOW, NONCE))
    assert request.headers["Host"] == host
    assert request.url.raw_path.split(b"?")[0] == path.encode()
    expected = huawei_signer.authorization(
        "DELETE",
        host,
        path,
        [("asset_id", IDS)],
        {"X-Sdk-Date": "20261121T080000Z", "Content-Type": "application/json"},
        b"",
        "HWTESTAK",
        "hwtestsecret",
    )
    assert request.headers["Authorization"] == expected


def test_delete_assets_ids_sent_exactly(huawei_account: HuaweiAccount) -> None:
    ids = [asset_id for asset_id in HOSTILE_IDS][:10]
    request = sent_through_client(DeleteAssets().build_request(huawei_account, "", ids, NOW, NONCE))
    assert WIRE_QUERY.match(request.url.query)
    assert [value for name, value in wire_pairs(request) if name == "asset_id"] == ids
    assert {name for name, _ in wire_pairs(request)} == {"asset_id"}


@pytest.mark.parametrize("ids", [[], [str(i) for i in range(11)], ["a,b"], [""]], ids=["none", "11", "comma", "empty"])
def test_delete_assets_refuses(huawei_account: HuaweiAccount, ids: list[str]) -> None:
    with pytest.raises(ValueError):
        DeleteAssets().build_request(huawei_account, "", ids, NOW, NONCE)


def test_huawei_secret_is_never_sent(huawei_account: HuaweiAccount) -> None:
    request = DeleteAssets().build_request(huawei_account, "", IDS, NOW, NONCE)
    assert b"hwtestsecret" not in request.url.raw_path
    assert all("hwtestsecret" not in value for value in request.headers.values())
