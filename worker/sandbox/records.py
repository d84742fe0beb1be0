"""The record of every call the sandbox answered and of every id it deleted, and statistics over them.

Times are ``t`` (monotonic seconds since the sandbox started, for windows) and ``wall`` (Unix time, to
line up with mediapurge's audit). Not thread-safe: the engine's lock covers it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from worker.sandbox.windows import max_in_window


@dataclass(slots=True)
class CallRecord:
    seq: int
    t: float
    wall: float
    vendor: str
    operation: str | None
    account: str | None  # the vendor's key: AccessKeyId, AppId, project id
    account_name: str | None
    group: str | None
    ids: list[str]
    status: int | None  # None when the connection was dropped
    code: str | None
    request_id: str
    deleted: list[str]
    throttled: bool = False  # answered with the vendor's throttling code (by the limiter or a fault)
    rate_limited: bool = False  # refused by the sandbox's limiter
    batch_limit_violation: bool = False
    auth_failure: bool = False
    fault: str | None = None
    fault_applied: bool | None = None  # for drop / malformed: whether the deletion happened anyway
    delay: float = 0.0


@dataclass(slots=True)
class Deletion:
    seq: int
    t: float
    wall: float
    vendor: str
    operation: str
    account: str
    account_name: str | None
    group: str | None
    id: str
    request_id: str
    repeat: bool = False  # this id was deleted before (only possible after seeding it again)


@dataclass
class Recorder:
    calls: list[CallRecord] = field(default_factory=list)
    deletions: list[Deletion] = field(default_factory=list)
    _deleted_keys: set[tuple[str, str, str, str | None, str]] = field(default_factory=set)

    def add(self, record: CallRecord) -> None:
        self.calls.append(record)
        if not record.deleted or record.operation is None or record.account is None:
            return
        for media_id in record.deleted:
            key = (record.vendor, record.operation, record.account, record.group, media_id)
            repeat = key in self._deleted_keys
            self._deleted_keys.add(key)
            self.deletions.append(
                Deletion(
                    len(self.deletions), record.t, record.wall, record.vendor, record.operation, record.account,
                    record.account_name, record.group, media_id, record.request_id, repeat,
                )
            )

    def clear(self) -> None:
        self.calls.clear()
        self.deletions.clear()
        self._deleted_keys.clear()

    def calls_since(self, since: int = 0) -> list[dict[str, Any]]:
        return [asdict(r) for r in self.calls[max(since, 0):]]

    def deletions_since(self, since: int = 0) -> list[dict[str, Any]]:
        return [asdict(d) for d in self.deletions[max(since, 0):]]

    def stats(self, period_for: Callable[[str, str, str], float], window: float | None = None) -> dict[str, Any]:
        """Counts per operation, code and HTTP status; throttling, batch-limit and auth failures; faults;
        and per (vendor, account, operation) the most calls received (and admitted) in any window of the
        limit's length, or of ``window`` seconds when given."""
        by_operation: dict[str, dict[str, Any]] = {}
        arrivals: dict[tuple[str, str, str], list[float]] = defaultdict(list)
        admitted: dict[tuple[str, str, str], list[float]] = defaultdict(list)
        faults: Counter[str] = Counter()
        for r in self.calls:
            name = f"{r.vendor}.{r.operation}" if r.operation else f"{r.vendor}.?"
            entry = by_operation.setdefault(name, {"calls": 0, "codes": Counter(), "statuses": Counter(), "deleted": 0})
            entry["calls"] += 1
            entry["codes"][r.code or "OK"] += 1
            entry["statuses"][str(r.status) if r.status is not None else "dropped"] += 1
            entry["deleted"] += len(r.deleted)
            if r.fault:
                faults[r.fault] += 1
            if r.operation and r.account:
                key = (r.vendor, r.account, r.operation)
                arrivals[key].append(r.t)
                if not r.rate_limited:
                    admitted[key].append(r.t)
        windows = []
        for (vendor, account, operation), times in sorted(arrivals.items()):
            times.sort()  # arrival order, which concurrent handlers may record slightly out of turn
            admitted[(vendor, account, operation)].sort()
            period = window or period_for(vendor, operation, account)
            windows.append(
                {
                    "vendor": vendor, "account": account, "operation": operation, "period": period,
                    "calls": len(times),
                    "max_calls": max_in_window(times, period),
                    "max_admitted": max_in_window(admitted[(vendor, account, operation)], period),
                }
            )
        return {
            "calls": len(self.calls),
            "by_operation": {
                name: {**entry, "codes": dict(entry["codes"]), "statuses": dict(entry["statuses"])}
                for name, entry in sorted(by_operation.items())
            },
            "throttled": sum(r.throttled for r in self.calls),
            "rate_limited": sum(r.rate_limited for r in self.calls),
            "batch_limit_violations": sum(r.batch_limit_violation for r in self.calls),
            "auth_failures": sum(r.auth_failure for r in self.calls),
            "faults": dict(faults),
            "deleted": len(self.deletions),
            "repeated_deletions": sum(d.repeat for d in self.deletions),
            "windows": windows,
        }
