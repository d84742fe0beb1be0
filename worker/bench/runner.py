"""Run the chosen scenarios in order, print one JSON object per scenario, then the comparison."""

from __future__ import annotations

import json
import platform
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any

from worker.bench import scenarios
from worker.bench.scenarios import Options
from worker.bench.submit import submit_big_job


@dataclass(frozen=True)
class Sizes:
    files: int = 200_000  # the fidelity job (ZEGO files)
    seconds: float = 30.0  # how long each key of the mixed scenarios is kept busy
    pipeline_files: int = 200_000
    baseline_files: int = 2_000  # the Celery task-per-item baseline (one file per call: slow)
    loop_files: int = 20_000  # the plain-loop baseline
    submit_items: int = 1_000_000


SCENARIOS: dict[str, Callable[[Options, Sizes], dict[str, Any]]] = {
    "fidelity": lambda o, s: scenarios.fidelity(o, s.files),
    "per_key_limits": lambda o, s: scenarios.per_key_limits(o, s.seconds),
    "all_keys_at_once": lambda o, s: scenarios.all_keys_at_once(o, s.seconds),
    "shared_quota": lambda o, s: scenarios.shared_quota(o, s.seconds),
    "storm": lambda o, s: scenarios.storm(o, s.seconds),
    "pipeline": lambda o, s: scenarios.pipeline(o, s.pipeline_files),
    "submit": lambda o, s: submit_big_job(o.services, s.submit_items),
    "baseline_plain_loop": lambda o, s: scenarios.plain_loop(o, s.loop_files),
    "baseline_celery_task_per_item": lambda o, s: scenarios.celery_per_item(o, s.baseline_files),
}


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def run(names: Sequence[str], opts: Options, sizes: Sizes, out: IO[str]) -> list[dict[str, Any]]:
    results = []
    for name in names:
        result = SCENARIOS[name](opts, sizes)
        results.append(result)
        out.write(json.dumps(result) + "\n")
        out.flush()
    comparison = compare(results)
    if comparison:
        out.write(json.dumps({"scenario": "comparison", "machine": machine(), **comparison}) + "\n")
    return results


def compare(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """mediapurge's files/s in the fidelity run against each baseline's, on the same sandbox and limit."""
    by_name = {r["scenario"]: r for r in results}
    ours = by_name.get("fidelity", {}).get("items_per_s")
    if not ours:
        return {}
    out: dict[str, Any] = {"mediapurge_files_per_s": ours}
    for name in ("baseline_plain_loop", "baseline_celery_task_per_item"):
        if name in by_name and by_name[name].get("files_per_s_end_to_end"):
            out[f"ratio_vs_{name.removeprefix('baseline_')}"] = round(ours / by_name[name]["files_per_s_end_to_end"], 1)
    return out
