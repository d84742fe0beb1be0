"""The benchmark's arithmetic: how a key's calls become figures, and how a per-key job is sized and
configured (the figures themselves are measured by `mediapurge bench`, never asserted)."""

from __future__ import annotations

from worker.bench.figures import call_figures
from worker.bench.scenarios import KEY_CASES, KeyCase, _limits_for, _vendor_keys
from worker.bench.stack import ACCOUNTS


def _call(t: float, ids: int = 1, throttled: bool = False) -> dict:
    return {"t": t, "ids": ["x"] * ids, "deleted": [] if throttled else ["x"] * ids, "throttled": throttled}


def test_a_per_minute_key_is_measured_in_its_own_windows():
    # 100 calls 0.6 s apart: 99 intervals over 59.4 s, i.e. 100 calls a minute, all in one 60-s window.
    calls = [_call(i * 0.6) for i in range(100)] + [_call(60.0)]
    figures = call_figures(calls, 60.0, 100)
    assert figures["calls_per_s"] == round(100 / 60.0, 2)
    assert figures["calls_per_window"] == 100.0 and figures["of_limit"] == 1.0
    # [0.6, 60.6) holds calls 1..99 and the one at 60 s: 100; the window from 0 holds 100 as well.
    assert figures["max_calls_in_any_window"] == 100


def test_a_per_second_key_reports_rate_window_maximum_and_throttling():
    # 20 calls 50 ms apart from 0, then one at 1.02 s: [0.05, 1.05) holds 19 + 1, [0, 1) 20.
    calls = [_call(i * 0.05, ids=10) for i in range(20)] + [_call(1.02, throttled=True)]
    figures = call_figures(calls, 1.0, 20)
    assert figures["calls"] == 21 and figures["max_calls_in_any_window"] == 20
    assert figures["throttled_answers"] == 1 and figures["throttled_fraction"] == round(1 / 21, 4)
    assert figures["deleted"] == 200 and "calls_per_window" not in figures
    assert figures["of_limit"] == round(20 / 1.02 / 20, 4)


def test_a_key_case_is_sized_by_calls_and_configured_on_both_sides():
    huawei = KeyCase("huawei.DeleteAssets", "default", "100/min", 2.5)
    assert huawei.count_and_period == (100, 60.0) and huawei.items_for(120.0) == 500
    ours, sandbox = _limits_for(KEY_CASES, _vendor_keys(ACCOUNTS))
    assert ours == {
        "zego.eu": {"DeleteMedia": "8/s"},
        "aliyun.default": {"DeleteStream": "30/s", "DeleteMultipartUpload": "5/s"},
        # The two Huawei cases share a key: the later one (the published per-minute limit) stands.
        "huawei.default": {"DeleteAssets": "100/min"},
    }
    # The sandbox scopes a limit by the vendor's own account key, so only that account is limited.
    assert sandbox[f"zego.DeleteMedia@{ACCOUNTS['zego']['eu']['app_id']}"] == "8/s"
    assert sandbox[f"huawei.DeleteAssets@{ACCOUNTS['huawei']['default']['project_id']}"] == "100/min"
