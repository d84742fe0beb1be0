"""``classify``: every row of the tables in shared/vendor-protocols.md, the malformed answers, and a
fuzz check that no body whatsoever makes classification raise."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worker.outcomes import CallVerdict, ItemResult, Outcome
from worker.vendors.aliyun import DeleteMultipartUpload, DeleteStream
from worker.vendors.base import Operation
from worker.vendors.huawei import DeleteAssets
from worker.vendors.zego import DeleteMedia

STREAM, MULTIPART, ZEGO, HUAWEI = DeleteStream(), DeleteMultipartUpload(), DeleteMedia(), DeleteAssets()
ALL_OPERATIONS = [STREAM, MULTIPART, ZEGO, HUAWEI]
ONE, THREE = ["id-1"], ["id-1", "id-2", "id-3"]

SENT = httpx.Request("GET", "https://vendor.example/?Action=x")


def answer(status: int, body: Any = None, *, content: bytes | None = None, headers: dict | None = None) -> httpx.Response:
    if content is not None:
        return httpx.Response(status, content=content, headers=headers, request=SENT)
    return httpx.Response(status, json=body, headers=headers, request=SENT)


def check_shape(verdict: CallVerdict, ids: Sequence[str]) -> None:
    """The invariants CallVerdict documents: items for every id, or a split with none."""
    assert isinstance(verdict, CallVerdict)
    if verdict.split:
        assert verdict.items == {} and not verdict.halt_account
    else:
        assert set(verdict.items) == set(ids)
        assert all(isinstance(result, ItemResult) for result in verdict.items.values())
    if verdict.halt_account:
        assert all(result.outcome is Outcome.FAILED for result in verdict.items.values())
    if verdict.throttled:
        assert all(result.outcome is Outcome.RETRYABLE for result in verdict.items.values())


def outcomes(verdict: CallVerdict) -> set[Outcome]:
    return {result.outcome for result in verdict.items.values()}


def assert_all(verdict: CallVerdict, ids: Sequence[str], outcome: Outcome, *, throttled: bool = False, halt: bool = False) -> None:
    check_shape(verdict, ids)
    assert not verdict.split
    assert outcomes(verdict) == {outcome}
    assert verdict.throttled is throttled
    assert verdict.halt_account is halt


# --- Alibaba Cloud ---------------------------------------------------------------------------------


def aliyun_error(status: int, code: str, message: str = "msg") -> httpx.Response:
    body = {"RequestId": "rid-1", "HostId": "vod.cn-shanghai.aliyuncs.com", "Code": code, "Message": message, "Recommend": "r"}
    return answer(status, body)


@pytest.mark.parametrize("operation", [STREAM, MULTIPART])
def test_aliyun_success(operation: Operation) -> None:
    ids = ONE
    verdict = operation.classify(ids, answer(200, {"RequestId": "25818875-5F78-4A7U43F6-D7393642****"}))
    assert_all(verdict, ids, Outcome.DELETED)
    assert verdict.items["id-1"].request_id == "25818875-5F78-4A7U43F6-D7393642****"


def test_job_ids_exceeded_max_splits() -> None:
    verdict = STREAM.classify(THREE, aliyun_error(400, "JobIdsExceededMax"))
    check_shape(verdict, THREE)
    assert verdict.split and verdict.code == "JobIdsExceededMax"


def test_job_ids_exceeded_max_with_one_id_fails() -> None:
    # A single id cannot be split further; calling it gone would be a lie.
    verdict = STREAM.classify(ONE, aliyun_error(400, "JobIdsExceededMax"))
    assert_all(verdict, ONE, Outcome.FAILED)


@pytest.mark.parametrize("ids", [ONE, THREE])
def test_invalid_video_not_found_is_gone_for_all(ids: list[str]) -> None:
    verdict = STREAM.classify(ids, aliyun_error(404, "InvalidVideo.NotFound", "The video does not exist."))
    assert_all(verdict, ids, Outcome.ALREADY_GONE)
    assert verdict.items["id-1"] == ItemResult(Outcome.ALREADY_GONE, "InvalidVideo.NotFound", "The video does not exist.", "rid-1")


def test_invalid_stream_not_found_single_is_gone() -> None:
    verdict = STREAM.classify(ONE, aliyun_error(404, "InvalidStream.NotFound"))
    assert_all(verdict, ONE, Outcome.ALREADY_GONE)


def test_invalid_stream_not_found_several_splits() -> None:
    verdict = STREAM.classify(THREE, aliyun_error(404, "InvalidStream.NotFound"))
    check_shape(verdict, THREE)
    assert verdict.split and verdict.request_id == "rid-1" and verdict.http_status == 404


def test_delete_stream_failed_is_retryable() -> None:
    verdict = STREAM.classify(THREE, aliyun_error(503, "DeleteStreamFailed"))
    assert_all(verdict, THREE, Outcome.RETRYABLE)
    assert verdict.items["id-2"].code == "DeleteStreamFailed"


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        ("InvalidParameter", Outcome.FAILED),
        ("InvalidMultipartUpload.NotFound", Outcome.ALREADY_GONE),
        ("InvalidVideo.NotFound", Outcome.ALREADY_GONE),
        ("InvalidFile.NotFound", Outcome.ALREADY_GONE),
        ("InvalidStorage.NotFound", Outcome.FAILED),
        ("AccessDenied", Outcome.FAILED),
    ],
)
def test_delete_multipart_upload_codes(code: str, outcome: Outcome) -> None:
    verdict = MULTIPART.classify(ONE, aliyun_error(400, code, "the vendor's words"))
    assert_all(verdict, ONE, outcome)
    assert verdict.items["id-1"] == ItemResult(outcome, code, "the vendor's words", "rid-1")


@pytest.mark.parametrize("operation", [STREAM, MULTIPART])
@pytest.mark.parametrize("status", [400, 429])
@pytest.mark.parametrize("code", ["Throttling", "Throttling.User", "Throttling.Api"])
def test_aliyun_throttling(operation: Operation, code: str, status: int) -> None:
    verdict = operation.classify(ONE, aliyun_error(status, code))
    assert_all(verdict, ONE, Outcome.RETRYABLE, throttled=True)


@pytest.mark.parametrize("operation", [STREAM, MULTIPART])
@pytest.mark.parametrize(("code", "status"), [("ServiceUnavailable", 503), ("InternalError", 500)])
def test_aliyun_common_retryable(operation: Operation, code: str, status: int) -> None:
    verdict = operation.classify(ONE, aliyun_error(status, code))
    assert_all(verdict, ONE, Outcome.RETRYABLE)


@pytest.mark.parametrize("operation", [STREAM, MULTIPART])
@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("InvalidAccessKeyId.NotFound", 404),
        ("SignatureDoesNotMatch", 400),
        ("Forbidden.RAM", 403),
        ("InvalidTimeStamp.Expired", 400),
    ],
)
def test_aliyun_configuration_errors_halt_the_account(operation: Operation, code: str, status: int) -> None:
    verdict = operation.classify(ONE, aliyun_error(status, code))
    assert_all(verdict, ONE, Outcome.FAILED, halt=True)
    assert verdict.code == code


@pytest.mark.parametrize("operation", [STREAM, MULTIPART])
@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_aliyun_unknown_code_5xx_is_retryable(operation: Operation, status: int) -> None:
    assert_all(operation.classify(ONE, aliyun_error(status, "Something.New")), ONE, Outcome.RETRYABLE)


@pytest.mark.parametrize("operation", [STREAM, MULTIPART])
@pytest.mark.parametrize("status", [400, 403, 404, 409])
def test_aliyun_unknown_code_4xx_fails(operation: Operation, status: int) -> None:
    verdict = operation.classify(ONE, aliyun_error(status, "Something.New", "new words"))
    assert_all(verdict, ONE, Outcome.FAILED)
    assert verdict.items["id-1"] == ItemResult(Outcome.FAILED, "Something.New", "new words", "rid-1")


def test_aliyun_unknown_code_429_is_throttled() -> None:
    assert_all(STREAM.classify(ONE, aliyun_error(429, "Something.New")), ONE, Outcome.RETRYABLE, throttled=True)


def test_aliyun_codes_do_not_leak_between_operations() -> None:
    # DeleteStreamFailed belongs to DeleteStream's table only; elsewhere it is an unknown 5xx (retryable),
    # and InvalidParameter is only DeleteMultipartUpload's.
    assert_all(MULTIPART.classify(ONE, aliyun_error(503, "DeleteStreamFailed")), ONE, Outcome.RETRYABLE)
    assert_all(STREAM.classify(ONE, aliyun_error(400, "InvalidMultipartUpload.NotFound")), ONE, Outcome.FAILED)


def test_aliyun_request_id_header_fallback() -> None:
    response = answer(503, {"Code": "ServiceUnavailable"}, headers={"x-acs-request-id": "hdr-rid"})
    assert STREAM.classify(ONE, response).items["id-1"].request_id == "hdr-rid"


def test_aliyun_security_token_never_reaches_the_verdict() -> None:
    token = "CAIS+sts/Token=="
    sent = httpx.Request("POST", "https://vod.example/?Action=DeleteStream&SecurityToken=CAIS%2Bsts%2FToken%3D%3D&Signature=x")
    once = "CAIS%2Bsts%2FToken%3D%3D"
    twice = "CAIS%252Bsts%252FToken%253D%253D"
    message = f"Specified signature is not matched. server string to sign is:POST&%2F&SecurityToken%3D{twice} {once} {token}"
    response = httpx.Response(400, json={"RequestId": "r", "Code": "SignatureDoesNotMatch", "Message": message}, request=sent)
    verdict = STREAM.classify(ONE, response)
    assert verdict.halt_account
    for form in (token, once, twice, "sts"):
        assert form not in repr(verdict)
    assert "***" in verdict.items["id-1"].message


def test_aliyun_long_messages_are_cut() -> None:
    verdict = STREAM.classify(ONE, aliyun_error(400, "Something.New", "x" * 50_000))
    assert len(verdict.items["id-1"].message) == 1000


# --- ZEGO ------------------------------------------------------------------------------------------


def zego_answer(code: Any = 0, data: Any = None, *, raw_data: Any = None, status: int = 200) -> httpx.Response:
    body: dict[str, Any] = {"Code": code, "Message": "success" if code == 0 else "error words", "RequestId": "zrid"}
    if raw_data is not None:
        body["Data"] = raw_data
    elif data is not None:
        body["Data"] = json.dumps(data)
    return answer(status, body)


def test_zego_documented_success_example() -> None:
    ids = ["3270835010809755971", "3270835010811335406"]
    response = answer(
        200,
        {
            "Code": 0,
            "Message": "success",
            "Data": '{"Deleted":["3270835010809755971","3270835010811335406"],"Errors":[]}',
            "RequestId": "3574501647605445341",
        },
    )
    verdict = ZEGO.classify(ids, response)
    assert_all(verdict, ids, Outcome.DELETED)
    assert verdict.items[ids[0]].request_id == "3574501647605445341"


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("ResourceNotFound", "x"),
        ("ResourceNotFound.FileNotExist", "The file does not exist."),
        ("FileNotExist", ""),
        ("NoSuchKey", "The specified key does not exist."),
        ("NotFound", None),
        ("404", "Not Found"),
        (404, None),  # a numeric code
        ("1001", "file not exist"),  # only the message says so
        ("InternalError", "The specified object does not exist"),
        ("", "文件不存在"),
    ],
)
def test_zego_per_file_not_found_is_gone(code: Any, message: str | None) -> None:
    error = {"Code": code, "Message": message, "Key": "f1", "RequestId": "cdn-rid"}
    verdict = ZEGO.classify(["f1"], zego_answer(0, {"Deleted": [], "Errors": [error]}))
    assert_all(verdict, ["f1"], Outcome.ALREADY_GONE)
    assert verdict.items["f1"].request_id == "cdn-rid"


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("NoSuchBucket", "The specified bucket does not exist"),  # our configuration, not the file
        ("InternalError", "We encountered an internal error"),
        ("AccessDenied", "user not found"),
        ("ResourceInUse", "file is being transcoded"),
    ],
)
def test_zego_per_file_other_errors_are_retryable_and_kept(code: str, message: str) -> None:
    error = {"Code": code, "Message": message, "Key": "f1", "RequestId": "cdn-rid"}
    verdict = ZEGO.classify(["f1"], zego_answer(0, {"Deleted": [], "Errors": [error]}))
    assert verdict.items["f1"] == ItemResult(Outcome.RETRYABLE, code, message, "cdn-rid")


def test_zego_mixed_answer_and_uncertain_files() -> None:
    ids = ["deleted", "gone", "busy", "silent"]
    data = {
        "Deleted": ["deleted", "not-ours"],
        "Errors": [
            {"Code": "ResourceNotFound.FileNotExist", "Message": "m1", "Key": "gone", "RequestId": "r-gone"},
            {"Code": "ResourceInUse", "Message": "m2", "Key": "busy", "RequestId": "r-busy"},
            {"Code": "NoKey", "Message": "no Key: unattributable"},
            "not an object",
        ],
    }
    verdict = ZEGO.classify(ids, zego_answer(0, data))
    check_shape(verdict, ids)
    assert verdict.items == {
        "deleted": ItemResult(Outcome.DELETED, None, None, "zrid"),
        "gone": ItemResult(Outcome.ALREADY_GONE, "ResourceNotFound.FileNotExist", "m1", "r-gone"),
        "busy": ItemResult(Outcome.RETRYABLE, "ResourceInUse", "m2", "r-busy"),
        "silent": ItemResult(Outcome.RETRYABLE, "Uncertain", "not in the vendor's per-item answer", "zrid"),
    }
    assert (verdict.code, verdict.request_id, verdict.throttled, verdict.halt_account) == ("0", "zrid", False, False)


def test_zego_data_as_object_and_numeric_ids() -> None:
    verdict = ZEGO.classify(["3270835010809755971"], zego_answer(0, raw_data={"Deleted": [3270835010809755971]}))
    assert_all(verdict, ["3270835010809755971"], Outcome.DELETED)


@pytest.mark.parametrize(
    ("code", "outcome", "throttled", "halt"),
    [
        (6, Outcome.RETRYABLE, True, False),
        (1000, Outcome.RETRYABLE, False, False),
        (2, Outcome.FAILED, False, False),
        (4, Outcome.FAILED, False, False),
        (3, Outcome.FAILED, False, True),
        (5, Outcome.FAILED, False, True),
        (7, Outcome.FAILED, False, True),
        (99, Outcome.FAILED, False, False),  # undocumented: terminal, verbatim
        ("6", Outcome.RETRYABLE, True, False),  # a string Code
    ],
)
def test_zego_codes(code: Any, outcome: Outcome, throttled: bool, halt: bool) -> None:
    verdict = ZEGO.classify(THREE, zego_answer(code))
    assert_all(verdict, THREE, outcome, throttled=throttled, halt=halt)
    assert verdict.items["id-1"] == ItemResult(outcome, str(code), "error words", "zrid")


@pytest.mark.parametrize(
    ("status", "outcome", "throttled"),
    [(502, Outcome.RETRYABLE, False), (503, Outcome.RETRYABLE, False), (429, Outcome.RETRYABLE, True)],
)
def test_zego_gateway_errors_without_code(status: int, outcome: Outcome, throttled: bool) -> None:
    verdict = ZEGO.classify(ONE, answer(status, {"message": "upstream"}))
    assert_all(verdict, ONE, outcome, throttled=throttled)


def test_zego_non_200_with_a_code_uses_the_code() -> None:
    assert_all(ZEGO.classify(ONE, zego_answer(7, status=401)), ONE, Outcome.FAILED, halt=True)


# --- Huawei Cloud ----------------------------------------------------------------------------------


def huawei_error(status: int, code: str | None, message: str = "words", **extra: Any) -> httpx.Response:
    body: dict[str, Any] = {"error_msg": message, **extra}
    if code is not None:
        body["error_code"] = code
    return answer(status, body, headers={"X-Request-Id": "hdr-rid"})


def test_huawei_per_asset_results() -> None:
    ids = ["a1", "a2", "a3"]
    body = {
        "delete_result_array": [
            {"asset_id": "a1", "status": "DELETED"},
            {"asset_id": "a2", "status": "FAILED"},
            {"asset_id": "other", "status": "DELETED"},
            {"status": "DELETED"},
            42,
        ]
    }
    verdict = HUAWEI.classify(ids, answer(200, body, headers={"X-Request-Id": "hdr-rid"}))
    check_shape(verdict, ids)
    assert verdict.items == {
        "a1": ItemResult(Outcome.DELETED, None, None, "hdr-rid"),
        "a2": ItemResult(Outcome.RETRYABLE, "FAILED", None, "hdr-rid"),
        "a3": ItemResult(Outcome.RETRYABLE, "Uncertain", "not in the vendor's per-item answer", "hdr-rid"),
    }


def test_huawei_unknown_asset_status_is_retried_verbatim() -> None:
    verdict = HUAWEI.classify(ONE, answer(200, {"delete_result_array": [{"asset_id": "id-1", "status": "DELETING"}]}))
    assert verdict.items["id-1"] == ItemResult(Outcome.RETRYABLE, "DELETING", None, None)


def test_huawei_not_found_single_is_gone() -> None:
    verdict = HUAWEI.classify(ONE, huawei_error(403, "VOD.10062", "Media asset or resource does not exist, please check."))
    assert_all(verdict, ONE, Outcome.ALREADY_GONE)
    assert verdict.items["id-1"] == ItemResult(
        Outcome.ALREADY_GONE, "VOD.10062", "Media asset or resource does not exist, please check.", "hdr-rid"
    )


def test_huawei_not_found_several_splits() -> None:
    verdict = HUAWEI.classify(THREE, huawei_error(403, "VOD.10062"))
    check_shape(verdict, THREE)
    assert verdict.split and verdict.code == "VOD.10062"


@pytest.mark.parametrize(("status", "code"), [(429, "APIGW.0308"), (429, None), (429, "APIGW.9999"), (400, "APIGW.0308")])
def test_huawei_throttled(status: int, code: str | None) -> None:
    assert_all(HUAWEI.classify(THREE, huawei_error(status, code)), THREE, Outcome.RETRYABLE, throttled=True)


@pytest.mark.parametrize(
    ("status", "code"), [(401, "APIGW.0301"), (401, "APIGW.0101"), (401, "APIGW.0305"), (401, None), (403, "APIGW.0301")]
)
def test_huawei_auth_errors_halt_the_account(status: int, code: str | None) -> None:
    verdict = HUAWEI.classify(THREE, huawei_error(status, code))
    assert_all(verdict, THREE, Outcome.FAILED, halt=True)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
@pytest.mark.parametrize("code", ["VOD.10001", "APIGW.0201", None])
def test_huawei_5xx_is_retryable(status: int, code: str | None) -> None:
    assert_all(HUAWEI.classify(THREE, huawei_error(status, code)), THREE, Outcome.RETRYABLE)


@pytest.mark.parametrize(("status", "code"), [(400, "VOD.10053"), (403, "VOD.10001"), (404, "APIGW.0101X")])
def test_huawei_other_4xx_fails(status: int, code: str) -> None:
    verdict = HUAWEI.classify(ONE, huawei_error(status, code, "kept"))
    assert_all(verdict, ONE, Outcome.FAILED)
    assert verdict.items["id-1"] == ItemResult(Outcome.FAILED, code, "kept", "hdr-rid")


def test_huawei_body_request_id_wins_over_header() -> None:
    verdict = HUAWEI.classify(ONE, huawei_error(429, "APIGW.0308", request_id="body-rid"))
    assert verdict.request_id == "body-rid"


# --- malformed answers, every vendor ---------------------------------------------------------------

HTML = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
MALFORMED_ANY_VENDOR = {
    "html 200": (200, HTML),
    "html 502": (502, HTML),
    "html 403": (403, HTML),
    "truncated json": (200, b'{"RequestId": "r", "delete_result_array": [{"asset_id"'),
    "json list": (200, b'[{"RequestId": "r"}]'),
    "json string": (200, b'"ok"'),
    "empty": (200, b""),
    "not utf-8": (200, b'{"Code": "\xff\xfe"}'),
    "deep nesting": (200, b"[" * 100_000),
    "huge number": (200, b'{"Code": ' + b"9" * 5000 + b"}"),
}


@pytest.mark.parametrize("operation", ALL_OPERATIONS, ids=lambda op: op.action)
@pytest.mark.parametrize("case", MALFORMED_ANY_VENDOR, ids=str)
def test_unreadable_bodies_are_retryable(operation: Operation, case: str) -> None:
    status, content = MALFORMED_ANY_VENDOR[case]
    verdict = operation.classify(ONE, answer(status, content=content))
    assert_all(verdict, ONE, Outcome.RETRYABLE)
    assert verdict.code == "MalformedResponse"


@pytest.mark.parametrize(
    ("operation", "status", "body"),
    [
        (STREAM, 200, {}),  # no RequestId
        (STREAM, 200, {"RequestId": ["r"]}),
        (STREAM, 400, {"RequestId": "r", "Message": "no Code"}),
        (MULTIPART, 404, {"Code": {"nested": 1}}),
        (ZEGO, 200, {"Message": "no Code", "RequestId": "r"}),
        (ZEGO, 200, {"Code": None}),
        (ZEGO, 200, {"Code": True}),
        (ZEGO, 200, {"Code": 0}),  # no Data
        (ZEGO, 200, {"Code": 0, "Data": "{not json"}),
        (ZEGO, 200, {"Code": 0, "Data": "[1, 2]"}),
        (ZEGO, 200, {"Code": 0, "Data": "{}"}),
        (ZEGO, 200, {"Code": 0, "Data": '{"Deleted": "id-1"}'}),
        (ZEGO, 200, {"Code": 0, "Data": '{"Errors": {"Key": "id-1"}}'}),
        (ZEGO, 200, {"Code": 0, "Data": 17}),
        (ZEGO, 404, {"error": "no route"}),
        (HUAWEI, 200, {}),
        (HUAWEI, 200, {"delete_result_array": {"asset_id": "id-1"}}),
        (HUAWEI, 400, {"error_msg": "no code"}),
    ],
)
def test_missing_or_mistyped_keys_are_malformed(operation: Operation, status: int, body: Any) -> None:
    verdict = operation.classify(ONE, answer(status, body))
    assert_all(verdict, ONE, Outcome.RETRYABLE)
    assert verdict.code == "MalformedResponse"
    assert verdict.http_status == status


# --- no body makes classification raise ------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
ids_strategy = st.lists(st.sampled_from(["id-1", "id-2", "f1", "3270835010809755971"]), min_size=1, max_size=4, unique=True)
statuses = st.sampled_from([200, 201, 204, 301, 400, 401, 403, 404, 409, 429, 500, 502, 503, 504])
keys = ["RequestId", "Code", "Message", "Data", "Deleted", "Errors", "Key", "error_code", "error_msg", "request_id",
        "delete_result_array", "asset_id", "status"]
vendorish = st.recursive(
    st.sampled_from(["id-1", "f1", "DELETED", "FAILED", "VOD.10062", "Throttling", "NoSuchKey", 0, 6, 7, 1000]) | json_values,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(keys), children, max_size=5)
    | st.dictionaries(st.sampled_from(keys), children, max_size=5).map(json.dumps),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operation=st.sampled_from(ALL_OPERATIONS), ids=ids_strategy, status=statuses, body=vendorish)
def test_any_json_body_never_raises(operation: Operation, ids: list[str], status: int, body: Any) -> None:
    check_shape(operation.classify(ids, answer(status, body)), ids)


@settings(max_examples=200, deadline=None)
@given(operation=st.sampled_from(ALL_OPERATIONS), ids=ids_strategy, status=statuses, content=st.binary(max_size=200))
def test_any_bytes_never_raise(operation: Operation, ids: list[str], status: int, content: bytes) -> None:
    check_shape(operation.classify(ids, answer(status, content=content)), ids)


zego_error = st.fixed_dictionaries(
    {}, optional={"Code": vendorish, "Message": vendorish, "Key": vendorish | ids_strategy.map(lambda ids: ids[0]), "RequestId": vendorish}
)
zego_data = st.fixed_dictionaries(
    {}, optional={"Deleted": st.lists(vendorish, max_size=4) | vendorish, "Errors": st.lists(zego_error | vendorish, max_size=4) | vendorish}
)
zego_bodies = st.fixed_dictionaries(
    {"Code": st.sampled_from([0, "0", 6, 1000, 3, 99]) | vendorish},
    optional={"Data": zego_data.map(json.dumps) | zego_data | vendorish, "Message": vendorish, "RequestId": vendorish},
)
huawei_entry = st.fixed_dictionaries(
    {}, optional={"asset_id": ids_strategy.map(lambda ids: ids[0]) | vendorish, "status": st.sampled_from(["DELETED", "FAILED"]) | vendorish}
)
huawei_bodies = st.fixed_dictionaries(
    {},
    optional={
        "delete_result_array": st.lists(huawei_entry | vendorish, max_size=5) | vendorish,
        "error_code": st.sampled_from(["VOD.10062", "APIGW.0308", "APIGW.0301"]) | vendorish,
        "error_msg": vendorish,
        "request_id": vendorish,
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pair=st.tuples(st.just(ZEGO), zego_bodies) | st.tuples(st.just(HUAWEI), huawei_bodies),
    ids=ids_strategy,
    status=statuses,
)
def test_vendor_shaped_bodies_never_raise(pair: tuple[Operation, Any], ids: list[str], status: int) -> None:
    operation, body = pair
    check_shape(operation.classify(ids, answer(status, body)), ids)
