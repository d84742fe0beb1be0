"""A global, reserving rate limiter: GCRA (generic cell rate algorithm) in one Redis Lua script.

Guarantee: calls made at the slots it hands out are at least ``period / (calls x headroom)`` apart for
every limit involved, across all processes sharing the Redis, so no window of ``period`` seconds ever
holds more than ``calls`` of them. The time is Redis's own (``TIME``), so hosts with skewed clocks still
agree; callers only ever receive durations ("wait 0.32 s").

A caller *reserves* its slot: the slot is its own even while it waits, so a queue of batches is served
in order instead of all of them polling for the next free slot. A caller that is more than
``max_ahead`` seconds from a slot reserves nothing and is told how long to stay away.
Why not ``limits`` or ``pyrate-limiter``: both take time from the client host and answer yes/no without
reserving, which makes every waiting batch poll (shared/celery-notes.md, "Rate limits").
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from worker.settings import parse_rate

# KEYS: one "next free slot" key per limit. ARGV: max_ahead, then one interval per key.
# Returns {granted (0/1), wait seconds, slot time} as strings (Lua numbers would be truncated to integers).
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local max_ahead = tonumber(ARGV[1])
local slot = now
for i, key in ipairs(KEYS) do
  local next_free = tonumber(redis.call('GET', key) or '0')
  if next_free > slot then slot = next_free end
end
local wait = slot - now
if wait > max_ahead then
  return {'0', tostring(wait), tostring(slot)}
end
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[i + 1])
  local ttl = math.ceil((slot + interval - now) * 1000) + 1000
  redis.call('SET', key, tostring(slot + interval), 'PX', ttl)
end
return {'1', tostring(wait), tostring(slot)}
"""

_NOW = "local t = redis.call('TIME') return tostring(tonumber(t[1]) + tonumber(t[2]) / 1000000)"


@dataclass(frozen=True)
class Limit:
    """At most ``calls`` per ``period`` seconds for everything that shares ``key``."""

    key: str
    calls: float
    period: float

    def interval(self, headroom: float) -> float:
        return self.period / (self.calls * headroom)


@dataclass(frozen=True)
class Reservation:
    granted: bool
    wait: float  # seconds from now until the slot (or, not granted, until the first free slot)
    slot: float  # the slot, in Redis time (seconds since the epoch)


def limits_for(vendor: str, operation: str, identity: str, operation_rate: str, account_rate: str | None) -> list[Limit]:
    """The limits a call counts against: its operation's, and the account's total where the vendor has one.

    ``identity`` is the vendor-side account (AppId, AccessKeyId, project): two configured names for the
    same vendor account share one quota. It is hashed so no credential id appears in Redis keys.
    """
    tag = hashlib.sha256(f"{vendor}\0{identity}".encode()).hexdigest()[:16]
    limits = [Limit(f"mediapurge:rl:{vendor}:{tag}:{operation}", *parse_rate(operation_rate))]
    if account_rate:
        limits.append(Limit(f"mediapurge:rl:{vendor}:{tag}:*", *parse_rate(account_rate)))
    return limits


class RateLimiter:
    def __init__(self, client: redis.Redis, headroom: float = 1.0) -> None:
        self._client = client
        self._headroom = headroom
        self._reserve = client.register_script(_RESERVE)
        self._now = client.register_script(_NOW)

    def reserve(self, limits: Sequence[Limit], max_ahead: float) -> Reservation:
        if not limits:
            return Reservation(True, 0.0, self.now())
        args = [max_ahead, *(limit.interval(self._headroom) for limit in limits)]
        granted, wait, slot = self._reserve(keys=[limit.key for limit in limits], args=args)
        return Reservation(granted == b"1" or granted == "1", max(0.0, float(wait)), float(slot))

    def now(self) -> float:
        """Redis's clock, the one slots are measured in."""
        return float(self._now())
