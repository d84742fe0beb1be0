"""`mediapurge bench` stays runnable: a few scenarios at tiny sizes, the figures consistent with what the
sandbox and the audit say. (The figures themselves are the benchmark's business, never asserted here.)"""

from __future__ import annotations

import io
import json

import pytest

from worker.bench.runner import Sizes, run
from worker.bench.scenarios import Options
from worker.bench.stack import Services

pytestmark = pytest.mark.integration


def test_the_benchmark_runs_its_scenarios_and_baselines(pg_server_url, redis_url, tmp_path):
    # A Redis database of its own: the benchmark flushes it.
    bench_redis = redis_url.rsplit("/", 1)[0] + "/10"
    opts = Options(Services(pg_server_url, bench_redis), tmp_path, workers=2, concurrency=2, stagger=0.5, headroom=0.85)
    sizes = Sizes(files=3_000, seconds=3, pipeline_files=2_000, baseline_files=60, loop_files=2_000, submit_items=5_000)
    out = io.StringIO()
    run(["fidelity", "pipeline", "submit", "baseline_plain_loop", "baseline_celery_task_per_item"], opts, sizes, out)
    printed = [json.loads(line) for line in out.getvalue().splitlines()]
    by_name = {entry["scenario"]: entry for entry in printed}
    assert list(by_name) == ["fidelity", "pipeline", "submit", "baseline_plain_loop", "baseline_celery_task_per_item", "comparison"]

    fidelity = by_name["fidelity"]
    assert fidelity["statuses"] == {"deleted": 2_850, "already_gone": 150}  # 5% of the generated files are missing
    # Batches of up to 100 files of one CDN: at least 30 calls; the sandbox saw every call the audit holds.
    assert fidelity["deleted"] == 2_850 and fidelity["calls"] == fidelity["vendor_calls"] >= 30
    assert fidelity["max_calls_in_any_window"] <= 20 and fidelity["sandbox_rate_limited"] == 0
    assert set(fidelity["peak_rss_mb"]) == {"sandbox", "w0", "w0-pool-max", "late0", "late0-pool-max"}

    assert by_name["pipeline"]["statuses"] == {"deleted": 2_000}
    assert by_name["submit"]["items"] == 5_000 and by_name["submit"]["status_ms_best"] > 0
    assert by_name["baseline_plain_loop"]["deleted"] == 1_900
    per_item = by_name["baseline_celery_task_per_item"]
    assert per_item["deleted"] == 60 and per_item["calls"] >= 60
    comparison = by_name["comparison"]
    assert comparison["mediapurge_files_per_s"] == fidelity["items_per_s"]
    assert {"ratio_vs_plain_loop", "ratio_vs_celery_task_per_item"} <= set(comparison)
