"""Figures from what the sandbox recorded (its own arrival times, in its own process) and from the audit."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from worker.bench.stack import BenchStack
from worker.sandbox import max_in_window


def call_figures(calls: Iterable[Mapping[str, Any]], period: float = 1.0, limit: float | None = None) -> dict[str, Any]:
    """Rate, window maximum and throttling of one (vendor, account, operation)'s calls."""
    calls = sorted(calls, key=lambda c: c["t"])
    times = [c["t"] for c in calls]
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    per_second = (len(times) - 1) / span if span else 0.0
    out: dict[str, Any] = {
        "calls": len(calls),
        "calls_per_s": round(per_second, 2),
        "items_per_s": round(sum(len(c["ids"]) for c in calls) / span, 1) if span else 0.0,
        "deleted": sum(len(c["deleted"]) for c in calls),
        "span_s": round(span, 2),
        "max_calls_in_any_window": max_in_window(times, period),
        "window_s": period,
        "throttled_answers": sum(bool(c["throttled"]) for c in calls),
        "throttled_fraction": round(sum(bool(c["throttled"]) for c in calls) / len(calls), 4) if calls else 0.0,
    }
    if period != 1.0:
        out["calls_per_window"] = round(per_second * period, 2)
    if limit:
        out["limit_per_window"] = limit
        out["of_limit"] = round(per_second * period / limit, 4)
    return out


def by_key(calls: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Calls grouped as ``vendor.Operation@account_name``."""
    grouped: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for call in calls:
        grouped[f"{call['vendor']}.{call['operation']}@{call['account_name']}"].append(call)
    return dict(grouped)


def audit_figures(stack: BenchStack, job_id: int) -> dict[str, Any]:
    """From the audit: submit-to-done latency per item, retried calls, statuses, job duration."""
    [(p50, p99, worst)] = stack.query(
        """
        SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM i.finished_at - j.created_at)),
               percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM i.finished_at - j.created_at)),
               max(extract(epoch FROM i.finished_at - j.created_at))
        FROM items i JOIN jobs j ON j.id = i.job_id WHERE i.job_id = :job_id
        """,
        job_id=job_id,
    )
    [(calls, retried)] = stack.query(
        "SELECT count(*), count(*) FILTER (WHERE verdict LIKE '%retryable%' OR verdict = 'throttled') FROM vendor_calls WHERE job_id = :job_id",
        job_id=job_id,
    )
    [(items, duration, planned, first_call)] = stack.query(
        "SELECT item_count, extract(epoch FROM finished_at - created_at), extract(epoch FROM planned_at - created_at), "
        "extract(epoch FROM (SELECT min(started_at) FROM vendor_calls WHERE job_id = :job_id) - created_at) "
        "FROM jobs WHERE id = :job_id",
        job_id=job_id,
    )
    statuses = dict(stack.query("SELECT status, count(*) FROM items WHERE job_id = :job_id GROUP BY status", job_id=job_id))
    return {
        "items": items,
        "job_seconds": round(float(duration), 2) if duration is not None else None,
        "items_per_s_job": round(items / float(duration), 1) if duration else None,
        "submit_to_planned_s": round(float(planned), 2) if planned is not None else None,
        "submit_to_first_call_s": round(float(first_call), 2) if first_call is not None else None,
        "submit_to_done_p50_s": round(float(p50), 2) if p50 is not None else None,
        "submit_to_done_p99_s": round(float(p99), 2) if p99 is not None else None,
        "submit_to_done_max_s": round(float(worst), 2) if worst is not None else None,
        "vendor_calls": calls,
        "retried_calls": retried,
        "statuses": statuses,
    }
