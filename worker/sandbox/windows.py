"""Sliding-window rate limits, as the vendors enforce them, and the measure the tests check them with.

A call is admitted when fewer than ``count`` calls of the same (vendor, account, operation) were admitted
in the ``period`` seconds before it. Guarantee: no window of length ``period`` ever holds more than
``count`` admitted calls, and ``max_in_window`` over the recorded arrival times proves it afterwards.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from worker.settings import parse_rate

ALL = "*"


@dataclass(frozen=True, slots=True)
class Limit:
    count: int
    period: float  # seconds

    def __post_init__(self) -> None:
        if self.count < 1 or self.period <= 0:
            raise ValueError(f"a limit needs a count >= 1 and a period > 0, not {self.count}/{self.period}s")

    def as_dict(self) -> dict[str, float]:
        return {"count": self.count, "period": self.period}


# Published per-account limits (shared/vendor-protocols.md, "Rate limits and retries").
DEFAULT_LIMITS: dict[str, Limit] = {
    "zego.DeleteMedia": Limit(20, 1.0),
    "aliyun.DeleteStream": Limit(50, 1.0),
    "aliyun.DeleteMultipartUpload": Limit(10, 1.0),
    "huawei.DeleteAssets": Limit(100, 60.0),
}


def parse_limit(value: Any) -> Limit | None:
    """None (no limit), a Limit, ``"20/s"``, ``"100/min"``, ``[count, period]`` or ``{"count", "period"}``."""
    if value is None or isinstance(value, Limit):
        return value
    if isinstance(value, str):
        count, period = parse_rate(value)
        return Limit(int(count), period)
    if isinstance(value, Mapping):
        return Limit(int(value["count"]), float(value["period"]))
    if isinstance(value, Sequence) and len(value) == 2:
        return Limit(int(value[0]), float(value[1]))
    raise ValueError(f"{value!r} is not a limit (try '20/s', [20, 1.0], {{'count': 20, 'period': 1}} or null)")


def _scope(vendor: str, operation: str | None, account: str | None = None) -> str:
    return f"{vendor}.{operation}" + (f"@{account}" if account is not None else "")


def max_in_window(times: Sequence[float], period: float) -> int:
    """The most of ``times`` (sorted) falling in any half-open window [t, t + period)."""
    best = 0
    for i, start in enumerate(times):
        best = max(best, bisect_left(times, start + period, lo=i) - i)
    return best


def _busiest_window_with(times: list[float], t: float, period: float) -> int:
    """The most calls any window [s, s + period) holding ``t`` would hold with ``t`` added to ``times``."""
    first = bisect_right(times, t - period)  # the windows holding t start after t - period, at t or a call
    best = 0
    for start in [t, *times[first : bisect_right(times, t)]]:
        best = max(best, bisect_left(times, start + period) - bisect_left(times, start) + 1)
    return best


class LimitTable:
    """The limit of every ``vendor.Operation`` (or ``vendor.Operation@account``) and its admitted calls.

    ``None`` disables a limit; ``"*"`` sets every operation at once. Not thread-safe: the engine's lock
    covers it.
    """

    def __init__(self, overrides: Mapping[str, Any] | None = None) -> None:
        self._limits: dict[str, Limit | None] = dict(DEFAULT_LIMITS)
        self._admitted: dict[tuple[str, str, str], list[float]] = {}
        self.update(overrides or {})

    def update(self, changes: Mapping[str, Any]) -> None:
        parsed = {scope: parse_limit(value) for scope, value in changes.items()}
        if ALL in parsed:
            for scope in DEFAULT_LIMITS:
                self._limits[scope] = parsed[ALL]
        for scope, limit in parsed.items():
            if scope != ALL:
                if "." not in scope:
                    raise ValueError(f"limit scope {scope!r} is not 'vendor.Operation' or 'vendor.Operation@account'")
                self._limits[scope] = limit

    def limit_for(self, vendor: str, operation: str, account: str) -> Limit | None:
        specific = _scope(vendor, operation, account)
        if specific in self._limits:
            return self._limits[specific]
        return self._limits.get(_scope(vendor, operation))

    def period_for(self, vendor: str, operation: str, account: str) -> float:
        """The window to measure this key's traffic in: its limit's, else the published one's, else 1 s."""
        limit = self.limit_for(vendor, operation, account) or DEFAULT_LIMITS.get(_scope(vendor, operation))
        return limit.period if limit else 1.0

    def admit(self, vendor: str, operation: str | None, account: str | None, now: float) -> bool:
        if operation is None or account is None:
            return True
        limit = self.limit_for(vendor, operation, account)
        if limit is None:
            return True
        # Sorted arrival times: calls are handled in the order their threads get the lock, which is not
        # always the order they arrived in, so a call may land before ones already admitted.
        admitted = self._admitted.setdefault((vendor, account, operation), [])
        del admitted[: bisect_left(admitted, now - 2 * limit.period)]
        if _busiest_window_with(admitted, now, limit.period) > limit.count:
            return False
        insort(admitted, now)
        return True

    def clear_windows(self) -> None:
        self._admitted.clear()

    def as_dict(self) -> dict[str, dict[str, float] | None]:
        return {scope: limit.as_dict() if limit else None for scope, limit in sorted(self._limits.items())}
