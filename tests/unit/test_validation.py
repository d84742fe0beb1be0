import pytest

from worker.errors import Problem
from worker.validation import ItemValidator, ValidItem, id_problem

ACCOUNTS = {"aliyun": {"default", "cn"}, "zego": {"default"}, "huawei": {"default"}}


@pytest.fixture
def validator():
    return ItemValidator(ACCOUNTS)


def problems(result):
    assert isinstance(result, list), result
    return {(p.field, p.reason.split(" ")[0]) for p in result}


@pytest.mark.parametrize(
    "item, expected",
    [
        ({"action": "aliyun.DeleteStream", "VideoId": "v1", "JobId": "j1"}, ValidItem(7, "aliyun.DeleteStream", "default", "v1", "j1")),
        ({"action": "aliyun.DeleteStream", "VideoId": "v1", "JobId": "j1", "account": "cn"}, ValidItem(7, "aliyun.DeleteStream", "cn", "v1", "j1")),
        ({"action": "aliyun.DeleteMultipartUpload", "MediaId": "m", "MediaType": "video"}, ValidItem(7, "aliyun.DeleteMultipartUpload", "default", "video", "m")),
        ({"action": "zego.DeleteMedia", "Vendor": "Ws", "FileId": 5285890813221514958}, ValidItem(7, "zego.DeleteMedia", "default", "Ws", "5285890813221514958")),
        ({"action": "huawei.DeleteAssets", "asset_id": "f488337c"}, ValidItem(7, "huawei.DeleteAssets", "default", "", "f488337c")),
        ({"action": "zego.DeleteMedia", "Vendor": "Huawei", "FileId": "record/2026/视频.mp4"}, ValidItem(7, "zego.DeleteMedia", "default", "Huawei", "record/2026/视频.mp4")),
    ],
)
def test_valid_items(validator, item, expected):
    assert validator.validate(7, item) == expected


@pytest.mark.parametrize(
    "item, expected",
    [
        ({}, {("action", "missing")}),
        ({"action": "aliyun.DeleteVideo"}, {("action", "unknown")}),
        ({"action": 3}, {("action", "unknown")}),
        ({"action": "aliyun.DeleteStream", "VideoId": "v"}, {("JobId", "missing")}),
        ({"action": "aliyun.DeleteStream", "VideoId": "v", "JobId": "j", "MediaId": "x"}, {("MediaId", "unexpected")}),
        ({"action": "aliyun.DeleteStream", "VideoId": "v", "JobId": "j", "account": "eu"}, {("account", "no")}),
        ({"action": "huawei.DeleteAssets", "asset_id": "a", "account": ""}, {("account", "must")}),
        ({"action": "aliyun.DeleteMultipartUpload", "MediaId": "m", "MediaType": "audio"}, {("MediaType", "must")}),
        ({"action": "zego.DeleteMedia", "Vendor": "Aws", "FileId": "f"}, {("Vendor", "must")}),
        ({"action": "huawei.DeleteAssets", "asset_id": ""}, {("asset_id", "must")}),
        ({"action": "huawei.DeleteAssets", "asset_id": "a,b"}, {("asset_id", "contains")}),
        ({"action": "zego.DeleteMedia", "Vendor": "Ws", "FileId": "a&Vendor=Tencent"}, {("FileId", "contains")}),
        ({"action": "zego.DeleteMedia", "Vendor": "Ws", "FileId": "a]"}, {("FileId", "contains")}),
        ({"action": "huawei.DeleteAssets", "asset_id": "a b"}, {("asset_id", "contains")}),
        ({"action": "huawei.DeleteAssets", "asset_id": "a\tb"}, {("asset_id", "contains")}),
        ({"action": "huawei.DeleteAssets", "asset_id": "a\x00"}, {("asset_id", "contains")}),
        ({"action": "huawei.DeleteAssets", "asset_id": "a\u200bb"}, {("asset_id", "contains")}),
        ({"action": "huawei.DeleteAssets", "asset_id": "x" * 257}, {("asset_id", "is")}),
        ({"action": "huawei.DeleteAssets", "asset_id": 1.5}, {("asset_id", "must")}),
        ({"action": "huawei.DeleteAssets", "asset_id": True}, {("asset_id", "must")}),
        ({"action": "huawei.DeleteAssets", "asset_id": ["a", "b"]}, {("asset_id", "must")}),
        (
            {"action": "aliyun.DeleteStream", "VideoId": "", "JobId": "a,b", "account": "nope", "extra": 1},
            {("VideoId", "must"), ("JobId", "contains"), ("account", "no"), ("extra", "unexpected")},
        ),
    ],
)
def test_every_problem_is_named_by_field(validator, item, expected):
    result = validator.validate(3, item)
    assert problems(result) == expected
    assert all(isinstance(p, Problem) and p.line == 3 for p in result)


def test_problem_text_names_line_and_field(validator):
    [problem] = validator.validate(12, {"action": "huawei.DeleteAssets", "asset_id": "a,b"})
    assert str(problem).startswith("line 12, field 'asset_id': contains a comma")


@pytest.mark.parametrize("value", ["a", "A-b_c.d~e/f:g+h*i", "95948ddba24446b6aed5db985e78a1b2", "x" * 256])
def test_ids_that_are_sent_as_is(value):
    assert id_problem(value) is None
