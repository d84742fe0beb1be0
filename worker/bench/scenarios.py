"""The benchmark's scenarios: each starts its own stack, runs one job (or a baseline), and returns one
JSON-ready dict of figures. Sizes come from the command line; nothing here asserts anything.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

from worker.bench.figures import audit_figures, by_key, call_figures
from worker.bench.stack import ACCOUNTS, BenchStack, Services
from worker.sandbox import generate_media


@dataclass(frozen=True)
class Options:
    services: Services
    log_dir: Path
    workers: int = 4
    concurrency: int = 4
    latency: float = 0.03  # the sandbox's answer time, a vendor API's typical round trip
    stagger: float = 2.0  # seconds between worker starts: they join a running job one by one
    timeout: float = 1800.0
    headroom: float | None = None  # rate_limit_headroom for the workers (None: the settings' default)


def _vendor_keys(accounts: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> dict[str, dict[str, str]]:
    keys = {"zego": "app_id", "aliyun": "access_key_id", "huawei": "project_id"}
    return {vendor: {name: str(a[keys[vendor]]) for name, a in by_name.items()} for vendor, by_name in accounts.items()}


# Every vendor's "default" account only (the ZEGO "eu" app is for the per-key scenario).
DEFAULT_ACCOUNTS = {vendor: {"default": keys["default"]} for vendor, keys in _vendor_keys(ACCOUNTS).items()}


def _seed_and_items(stack: BenchStack, counts: Mapping[str, int], accounts: Mapping[str, Mapping[str, str]] | None = None,
                    missing: float = 0.05) -> Path:
    """Media held by the sandbox and the matching items, written as a JSON Lines file to submit."""
    seed, items = generate_media(
        counts, missing_fraction=missing, rng_seed=7, accounts=accounts or _vendor_keys(ACCOUNTS), streams_per_video=20,
    )
    stack.sandbox.post("media", seed)
    return _items_file(stack, items)


def _items_file(stack: BenchStack, items: list[dict[str, str]]) -> Path:
    """``items`` as a JSON Lines file to submit, in the stack's logs directory."""
    path = stack.log_dir / f"items-{uuid.uuid4().hex[:6]}.jsonl"
    with path.open("w", encoding="utf-8") as out:
        out.writelines(json.dumps(item) + "\n" for item in items)
    return path


def _run_job(
    stack: BenchStack, opts: Options, path: Path, *, during: Callable[[], None] | None = None, workers_first: bool = False,
) -> tuple[int, dict[str, Any]]:
    """Start one worker, submit, let the others join ``stagger`` seconds apart, wait for the end; or,
    ``workers_first``, submit to workers that are all running already (a service in steady state)."""
    stack.add_workers(opts.workers if workers_first else 1, opts.concurrency)
    job_id, _ = stack.submit(path)
    if opts.workers > 1 and not workers_first:
        time.sleep(opts.stagger)
        stack.add_workers(opts.workers - 1, opts.concurrency, stagger=opts.stagger, prefix="late")
    if during is not None:
        during()
    stack.wait(job_id, opts.timeout)
    return job_id, audit_figures(stack, job_id)


def _keep_call_log(stack: BenchStack, directory: Path, job_id: int, calls: list[dict[str, Any]]) -> None:
    """What the vendor saw (arrival times) and what the workers recorded (call start, request id), one
    JSON line each, in the logs directory: where a window went over, the two together say why."""
    with (directory / "sandbox-calls.jsonl").open("w", encoding="utf-8") as out:
        for call in calls:
            out.write(json.dumps({k: v for k, v in call.items() if k not in ("ids", "deleted")}) + "\n")
    rows = stack.query(
        "SELECT extract(epoch FROM started_at), latency_ms, request_id, verdict FROM vendor_calls WHERE job_id = :job_id ORDER BY started_at",
        job_id=job_id,
    )
    with (directory / "worker-calls.jsonl").open("w", encoding="utf-8") as out:
        for started, latency, request_id, verdict in rows:
            out.write(json.dumps({"started": float(started), "latency_ms": latency, "request_id": request_id, "verdict": verdict}) + "\n")


def fidelity(opts: Options, files: int) -> dict[str, Any]:
    """One ZEGO app at its published 20 calls/s, shared by worker processes started at different times."""
    with BenchStack.start(opts.services, opts.log_dir / "fidelity", headroom=opts.headroom) as stack:
        stack.sandbox.post("faults", {"rules": {"*": {"latency": opts.latency}}})
        path = _seed_and_items(stack, {"zego.DeleteMedia": files}, DEFAULT_ACCOUNTS)
        job_id, audit = _run_job(stack, opts, path)
        calls = stack.sandbox.calls()
        _keep_call_log(stack, opts.log_dir / "fidelity", job_id, calls)
        all_started = calls[0]["t"] + opts.stagger * opts.workers + 2.0
        return {
            "scenario": "fidelity", "limit": "zego.DeleteMedia 20/s per AppId", "files": files,
            "workers": opts.workers, "concurrency": opts.concurrency, "worker_start_stagger_s": opts.stagger,
            "sandbox_latency_s": opts.latency, **call_figures(calls, 1.0, 20),
            "once_all_workers_run": call_figures([c for c in calls if c["t"] >= all_started], 1.0, 20), **audit,
            "sandbox_rate_limited": stack.sandbox.get("stats")["rate_limited"], "peak_rss_mb": stack.peak_rss(),
        }


@dataclass(frozen=True)
class KeyCase:
    """One (vendor, account, operation) limit of the per-key scenarios."""

    action: str  # vendor.Operation
    account: str  # the account's name in mediapurge's settings
    rate: str  # the limit configured in mediapurge and enforced by the sandbox: "8/s", "100/min"
    items_per_call: float  # to size a job by calls rather than items

    @property
    def key(self) -> str:
        return f"{self.action}@{self.account}"

    @property
    def count_and_period(self) -> tuple[int, float]:
        from worker.settings import parse_rate

        count, period = parse_rate(self.rate)
        return int(count), period

    def items_for(self, seconds: float) -> int:
        count, period = self.count_and_period
        return max(1, int(count / period * seconds * self.items_per_call))


# A DeleteStream or several-asset DeleteAssets call that meets a missing id fails whole (the error names
# none), so the 5% of missing ids cost a culprit search. Measured: ~8.4 calls per 20-stream video (2.4
# streams a call), 974 calls for 2,280 Huawei assets in batches of 10 (2.3 a call).
_STREAMS_PER_CALL = 2.4
_ASSETS_PER_CALL = 2.3

# Limits configured per (vendor, account, operation), different from the published ones, told to the
# sandbox too: every key must run at its own limit and never above it. The last is Huawei's published
# limit, per minute: its windows are 60 s long.
KEY_CASES = (
    KeyCase("zego.DeleteMedia", "eu", "8/s", 100),
    KeyCase("aliyun.DeleteStream", "default", "30/s", _STREAMS_PER_CALL),
    KeyCase("aliyun.DeleteMultipartUpload", "default", "5/s", 1),
    KeyCase("huawei.DeleteAssets", "default", "12/s", _ASSETS_PER_CALL),
    KeyCase("huawei.DeleteAssets", "default", "100/min", _ASSETS_PER_CALL),
)
_ALL_AT_ONCE = (KeyCase("zego.DeleteMedia", "default", "20/s", 100), *KEY_CASES[:4])


def _limits_for(
    cases: tuple[KeyCase, ...], keys: Mapping[str, Mapping[str, str]],
) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """(mediapurge's rate_limits per "vendor.account", the sandbox's limits per scope) for ``cases``;
    ``keys``: each vendor's account keys by account name."""
    ours: dict[str, dict[str, str]] = {}
    sandbox: dict[str, str] = {}
    for case in cases:
        vendor, operation = case.action.split(".")
        ours.setdefault(f"{vendor}.{case.account}", {})[operation] = case.rate
        sandbox[f"{case.action}@{keys[vendor][case.account]}"] = case.rate
    return ours, sandbox


def _keys_job(opts: Options, name: str, cases: tuple[KeyCase, ...], seconds: float) -> dict[str, Any]:
    """One job over ``cases``' keys, each sized to keep its key busy ``seconds`` at its limit, on 4
    workers joining ``stagger`` apart; figures per key, each against its own limit and window."""
    keys = _vendor_keys(ACCOUNTS)
    ours, sandbox_limits = _limits_for(cases, keys)
    with BenchStack.start(opts.services, opts.log_dir / name, rate_limits=ours, headroom=opts.headroom) as stack:
        stack.sandbox.post("limits", sandbox_limits)
        stack.sandbox.post("faults", {"rules": {"*": {"latency": opts.latency}}})
        items: list[dict[str, str]] = []
        for i, case in enumerate(cases):  # one seed per key: the items of a vendor's accounts are sized apart
            vendor = case.action.split(".")[0]
            seed, key_items = generate_media(
                {case.action: case.items_for(seconds)}, missing_fraction=0.05, rng_seed=7 + i,
                accounts={vendor: {case.account: keys[vendor][case.account]}}, streams_per_video=20,
            )
            stack.sandbox.post("media", seed)
            items += key_items
        job_id, audit = _run_job(stack, opts, _items_file(stack, items))
        calls = by_key(stack.sandbox.calls())
        figures = {}
        for case in cases:
            count, period = case.count_and_period
            figures[case.key] = {"limit": case.rate, **call_figures(calls.get(case.key, []), period, count)}
        return {"keys": figures, **audit,
                "sandbox_rate_limited": stack.sandbox.get("stats")["rate_limited"], "peak_rss_mb": stack.peak_rss()}


def per_key_limits(opts: Options, seconds: float, per_minute_seconds: float = 150.0) -> dict[str, Any]:
    """Each (vendor, account, operation) limit on its own: a job of that key alone, like the fidelity
    run (4 workers joining 2 s apart). A per-minute limit runs at least ``per_minute_seconds`` (a few windows)."""
    each = {}
    for i, case in enumerate(KEY_CASES):
        _, period = case.count_and_period
        run_for = max(seconds, per_minute_seconds) if period >= 60 else seconds
        each[f"{case.key} {case.rate}"] = figures = _keys_job(opts, f"limits-{i}", (case,), run_for)
        (opts.log_dir / f"limits-{i}" / "figures.json").write_text(json.dumps(figures))  # kept if a later key fails
    return {"scenario": "per_key_limits", "seconds": seconds, "each_key_alone": each}


def all_keys_at_once(opts: Options, seconds: float) -> dict[str, Any]:
    """Five keys in one job, each sized to be busy ``seconds`` at its limit: together they ask for
    more task runs than a 2-core machine gives (see the README), so this measures the sharing."""
    result = _keys_job(opts, "limits-mixed", _ALL_AT_ONCE, seconds)
    demand = sum(c.count_and_period[0] / c.count_and_period[1] for c in _ALL_AT_ONCE)
    return {"scenario": "all_keys_at_once", "seconds": seconds, "sum_of_limits_calls_per_s": round(demand, 1), **result}


def shared_quota(opts: Options, seconds: float, outside_rate: int = 15) -> dict[str, Any]:
    """Something outside mediapurge spends part of the app's quota: the vendor throttles above
    ``outside_rate`` calls/s for ``seconds``, then the quota is whole again for ``seconds``."""
    with BenchStack.start(opts.services, opts.log_dir / "shared", headroom=opts.headroom) as stack:
        stack.sandbox.post("faults", {"rules": {"*": {"latency": opts.latency}}})
        stack.sandbox.post("limits", {"zego.DeleteMedia": f"{outside_rate}/s"})
        files = int(100 * (outside_rate + 20) * seconds)
        path = _seed_and_items(stack, {"zego.DeleteMedia": files}, DEFAULT_ACCOUNTS)
        phase: dict[str, float] = {}

        def lift_after_a_while() -> None:
            while not stack.sandbox.get("health")["calls"]:
                time.sleep(0.1)
            time.sleep(seconds)
            phase["lifted_at"] = time.time()  # the sandbox records each call's Unix time ("wall") too
            stack.sandbox.post("limits", {"zego.DeleteMedia": "20/s"})

        job_id, audit = _run_job(stack, opts, path, during=lift_after_a_while)
        calls = stack.sandbox.calls()
        lifted = phase["lifted_at"]
        shared = [c for c in calls if c["wall"] < lifted]
        whole = [c for c in calls if c["wall"] >= lifted]
        settle = 10.0  # seconds for the first cut and the climb back: steady state is measured after it
        steady = [c for c in shared if c["wall"] >= shared[0]["wall"] + settle] if shared else []
        recovered = [c for c in whole if c["wall"] >= lifted + 30.0]
        return {
            "scenario": "shared_quota", "configured": "20/s", "vendor_throttles_above": f"{outside_rate}/s",
            "files": files, "phase_s": seconds,
            "shared_phase": call_figures(shared, 1.0, outside_rate),
            "shared_phase_steady_state": call_figures(steady, 1.0, outside_rate),
            "whole_quota_phase": call_figures(whole, 1.0, 20),
            "whole_quota_after_30s": call_figures(recovered, 1.0, 20) if len(recovered) > 1 else None,
            **audit, "peak_rss_mb": stack.peak_rss(),
        }


def storm(opts: Options, seconds: float, storm_vendor: str = "aliyun") -> dict[str, Any]:
    """A mixed job with one vendor answering 503 to 90% of calls: the others must keep their pace.

    The same job runs twice on workers already running (a storm hits a service in its steady state):
    calm, then with the storm, each on a fresh stack. The storm lasts until every other vendor's items
    are done (their pace is what is measured), then ends, as storms do, and the stormy vendor's backlog
    drains before the job's end is awaited. ``others_pace_storm_over_calm`` is each other vendor's pace
    in the storm over its pace in the calm run: 1.0 or more means the storm cost it nothing."""
    calm = _mixed_job(opts, seconds, storm_vendor, stormy=False)
    stormy = _mixed_job(opts, seconds, storm_vendor, stormy=True)
    pace_ratio = {
        key: round(figures["calls_per_s"] / calm["keys"][key]["calls_per_s"], 3)
        for key, figures in stormy["keys"].items()
        if not key.startswith(storm_vendor + ".") and calm["keys"].get(key, {}).get("calls_per_s")
    }
    return {
        "scenario": "storm", "storm": f"{storm_vendor}: 90% of calls answered 503 until the other vendors were done",
        "others_pace_storm_over_calm": pace_ratio, "calm": calm, **stormy,
    }


def _mixed_job(opts: Options, seconds: float, storm_vendor: str, *, stormy: bool) -> dict[str, Any]:
    name = "storm" if stormy else "storm-calm"
    limits = {"zego.DeleteMedia@default": 20, "huawei.DeleteAssets@default": 12, "aliyun.DeleteStream@default": 50}
    with BenchStack.start(opts.services, opts.log_dir / name, rate_limits={"huawei.default": {"DeleteAssets": "12/s"}}, headroom=opts.headroom) as stack:
        stack.sandbox.post("limits", {"huawei.DeleteAssets": "12/s"})
        calm_rules = {"*": {"latency": opts.latency}}
        storm_rules = {**calm_rules, storm_vendor: {"latency": opts.latency, "unavailable": 0.9}}
        stack.sandbox.post("faults", {"rules": storm_rules if stormy else calm_rules, "replace": True})
        counts = {
            "zego.DeleteMedia": int(20 * 100 * seconds), "huawei.DeleteAssets": int(12 * 10 * seconds),
            "aliyun.DeleteStream": int(50 * 20 * seconds),
        }
        path = _seed_and_items(stack, counts, DEFAULT_ACCOUNTS)
        others = sorted(action for action in counts if not action.startswith(storm_vendor + "."))
        phase: dict[str, float] = {}

        def end_the_storm_when_the_others_are_done() -> None:
            deadline = time.monotonic() + opts.timeout
            while time.monotonic() < deadline:
                [(open_items,)] = stack.query(
                    "SELECT count(*) FROM items WHERE status = 'pending' AND action = ANY(:actions)", actions=others,
                )
                if not open_items:
                    break
                time.sleep(1.0)
            phase["ended_at"] = time.time()
            stack.sandbox.post("faults", {"rules": calm_rules, "replace": True})

        _, audit = _run_job(stack, opts, path, during=end_the_storm_when_the_others_are_done, workers_first=True)
        during = [c for c in stack.sandbox.calls() if c["wall"] < phase["ended_at"]]
        keys = {key: call_figures(calls, 1.0, limits.get(key)) for key, calls in sorted(by_key(during).items())}
        return {"until_the_others_were_done_s": round(phase["ended_at"] - during[0]["wall"], 1) if during else None, "keys": keys, **audit}


def pipeline(opts: Options, files: int) -> dict[str, Any]:
    """mediapurge's own overhead: the sandbox's limits lifted and no latency, audit in PostgreSQL."""
    unlimited = {"zego.default": {"DeleteMedia": "1000000/s"}}
    with BenchStack.start(opts.services, opts.log_dir / "pipeline", rate_limits=unlimited) as stack:
        stack.sandbox.post("limits", {"*": None})
        path = _seed_and_items(stack, {"zego.DeleteMedia": files}, DEFAULT_ACCOUNTS, missing=0.0)
        job_id, audit = _run_job(stack, opts, path, workers_first=True)
        calls = stack.sandbox.calls()
        return {
            "scenario": "pipeline", "files": files, "workers": opts.workers, "concurrency": opts.concurrency,
            **call_figures(calls, 1.0), **audit, "peak_rss_mb": stack.peak_rss(),
        }


def plain_loop(opts: Options, files: int) -> dict[str, Any]:
    """Baseline: one process calling DeleteMedia one 100-file batch at a time, as a script written with
    the vendor's SDK does; a throttling answer is retried after a second."""
    from worker.settings import Settings
    from worker.vendors import OPERATIONS

    with BenchStack.start(opts.services, opts.log_dir / "loop") as stack:
        stack.sandbox.post("faults", {"rules": {"*": {"latency": opts.latency}}})
        seed, items = generate_media({"zego.DeleteMedia": files}, missing_fraction=0.05, rng_seed=7,
                                     accounts=DEFAULT_ACCOUNTS)
        stack.sandbox.post("media", seed)
        account = Settings(accounts=stack.settings.accounts.model_dump()).accounts.get("zego", "default")
        op = OPERATIONS["zego.DeleteMedia"]
        by_cdn: dict[str, list[str]] = {}
        for item in items:
            by_cdn.setdefault(item["Vendor"], []).append(item["FileId"])
        started = time.perf_counter()
        with httpx.Client(timeout=10) as client:
            for cdn, ids in by_cdn.items():
                for i in range(0, len(ids), op.max_batch):
                    chunk = ids[i : i + op.max_batch]
                    while True:
                        request = op.build_request(account, cdn, chunk, datetime.now(timezone.utc), uuid.uuid4().hex)
                        verdict = op.classify(chunk, client.send(request))
                        if not verdict.throttled:
                            break
                        time.sleep(1.0)
        elapsed = time.perf_counter() - started
        calls = stack.sandbox.calls()
        return {"scenario": "baseline_plain_loop", "files": files, "seconds": round(elapsed, 2),
                "files_per_s_end_to_end": round(files / elapsed, 1), **call_figures(calls, 1.0, 20)}


def celery_per_item(opts: Options, files: int) -> dict[str, Any]:
    """Baseline: one Celery task per file, Celery's rate_limit="20/s" on each of the workers."""
    from celery import Celery

    from worker.bench import per_item

    with BenchStack.start(opts.services, opts.log_dir / "per-item") as stack:
        stack.sandbox.post("faults", {"rules": {"*": {"latency": opts.latency}}})
        seed, items = generate_media({"zego.DeleteMedia": files}, missing_fraction=0.0, rng_seed=7,
                                     accounts=DEFAULT_ACCOUNTS)
        stack.sandbox.post("media", seed)
        stack.add_workers(opts.workers, opts.concurrency, prefix="per-item", app="worker.bench.per_item", queue=per_item.QUEUE)
        started = time.perf_counter()
        with Celery(broker=stack.redis_url) as producer_app, producer_app.producer_or_acquire() as producer:
            for item in items:
                producer_app.send_task("bench.delete_one", args=[item["Vendor"], item["FileId"]], queue=per_item.QUEUE, producer=producer)
        deadline = time.monotonic() + opts.timeout
        while stack.sandbox.get("health")["held"]["zego.DeleteMedia"] and time.monotonic() < deadline:
            time.sleep(0.5)
        elapsed = time.perf_counter() - started
        calls = stack.sandbox.calls()
        return {"scenario": "baseline_celery_task_per_item", "files": files, "workers": opts.workers,
                "celery_rate_limit": "20/s per worker", "seconds": round(elapsed, 2),
                "files_per_s_end_to_end": round(files / elapsed, 1), **call_figures(calls, 1.0, 20),
                "peak_rss_mb": stack.peak_rss()}
