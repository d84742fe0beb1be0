"""A global, reserving, adaptive rate limiter: GCRA (generic cell rate algorithm) in Redis Lua scripts.

Guarantee: calls made at the slots it hands out are at least ``period / (calls x headroom x factor)``
apart for every limit involved, across all processes sharing the Redis, so no window of ``period``
seconds ever holds more than ``calls`` of them. The time is Redis's own (``TIME``), so hosts with skewed
clocks still agree; callers only ever receive durations ("wait 0.32 s").

A caller *reserves* its slot: the slot is its own even while it waits, so a queue of batches is served
in order instead of all of them polling for the next free slot. A caller that is more than
``max_ahead`` seconds from a slot reserves nothing; it takes a place in a line of refused callers and
is told to come back at its place's time, about when a slot should be free for it. Callers visit about
once each instead of once per horizon (a refused visit costs its caller a claim, a release, a message).
Why not ``limits`` or ``pyrate-limiter``: both take time from the client host and answer yes/no without
reserving, which makes every waiting batch poll (shared/celery-notes.md, "Rate limits").

Adaptive: when something else spends part of the same vendor quota, the vendor answers "throttled"
below the configured limit. ``throttled()`` then cuts the limit's factor (the fraction of the configured
rate in use) like the AWS SDKs' adaptive retry mode, which follows TCP CUBIC: the rate drops to
``decrease`` x the rate that was throttled, and climbs back as a cubic of the time since: quickly at
first, flat near the rate that was throttled (so it probes that ceiling gently and rarely), then faster
again beyond it (three times the approach's pace), up to the configured limit (never above). The factor
is a function of Redis time, kept in one hash per limit, so every process computes the same one
without any per-call write.
A cut also restarts the limit's timeline and bumps its *epoch*: slots reserved before the cut, at the
old rate, are refused when their holders come to use them (``admit``), and those holders reserve again.

Admission: a slot says when a call may go, but a process can reach its slot late (descheduled, a slow
query), and a late call followed by an on-time one puts two calls closer than the spacing. So each call
is also *admitted* at the moment it is sent: Redis keeps, per limit, the times of the last ``calls``
admissions, and a call is admitted only if the oldest of them is more than ``period + guard`` ago. No
window of the vendor's period can then hold more than ``calls`` calls, however late anyone was; the
guard covers the few milliseconds between admission and the vendor's arrival stamp. On schedule the
spacing leaves ``period x (1/headroom - 1)`` (10 ms at 20/s and 0.99) of slack, as much as the guard, so
admission only ever delays the call that follows a late one. Late holders would still go out in bunches
(the window rule alone lets twenty calls leave in one millisecond, which a vendor counting with a small
token bucket would throttle), so admission also keeps ``smoothing`` x the spacing between two calls.
"""

from __future__ import annotations

import enum
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from worker.settings import AdaptivePolicy, parse_rate

# The factor of one limit at time `now`, from its hash {w = factor that was throttled, t = when}.
# ARGV of the caller supplies the recovery time (seconds for the cubic to come back to w) and floor.
# Beyond w the cubic runs three times faster: once the rate that was throttled is passed without a
# throttling answer, whoever shared the quota has likely stopped, and climbing from a deep cut (60%,
# say) back to the whole limit at the approach's pace took 23 s.
_FACTOR = """
local function factor(key, now, recovery, decrease, floor)
  local state = redis.call('HMGET', key .. ':adapt', 'w', 't', 'e')
  if not state[1] then return 1.0, 0 end
  local w, t, e = tonumber(state[1]), tonumber(state[2]), tonumber(state[3])
  local x = (now - t - recovery) / recovery
  if x > 0 then x = 3 * x end
  local f = w * (1 + (1 - decrease) * x * x * x)
  if f > 1 then f = 1 end
  if f < floor then f = floor end
  return f, e
end
-- The limits' epoch: how many cuts all of them have seen. A slot reserved at another epoch is void.
local function epoch_of(keys)
  local epoch = 0
  for i, key in ipairs(keys) do
    epoch = epoch + tonumber(redis.call('HGET', key .. ':adapt', 'e') or '0')
  end
  return epoch
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

# KEYS: one "next free slot" key per limit. ARGV: max_ahead, decrease, floor, lead, then per key its
# base interval and recovery time. Returns {granted (0/1), wait, slot, epoch} as strings (Lua numbers
# would be truncated to integers). Refused (the first free slot is more than max_ahead away), the caller
# reserves nothing but takes a place in the line of refused callers: `lead` before the free slot, or
# after the last place; `wait` is then the time until that place. Places are spaced at base / sqrt(f)
# of the tightest limit, between the configured rate and the cut one: a limit cut to 5% is visited at
# 22% of its configured rate (refused visits cost CPU the other vendors need), and when it climbs back
# its line still comes 4.5 times faster than the cut rate (the line cannot be called forward).
_RESERVE = _FACTOR + """
local max_ahead, decrease, floor, lead = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local slot, epoch, intervals, spacing = now, 0, {}, 0
for i, key in ipairs(KEYS) do
  local f, e = factor(key, now, tonumber(ARGV[4 + 2 * i]), decrease, floor)
  local base = tonumber(ARGV[3 + 2 * i])
  if base / math.sqrt(f) > spacing then spacing = base / math.sqrt(f) end
  intervals[i] = base / f
  epoch = epoch + e
  local next_free = tonumber(redis.call('GET', key) or '0')
  if next_free > slot then slot = next_free end
end
local wait = slot - now
if wait > max_ahead then
  local line = KEYS[1] .. ':line'
  local place = tonumber(redis.call('GET', line) or '0')
  if place < slot - lead then place = slot - lead end
  redis.call('SET', line, tostring(place + spacing), 'PX', math.ceil((place + spacing - now) * 1000) + 1000)
  return {'0', tostring(place - now), tostring(slot), tostring(epoch)}
end
for i, key in ipairs(KEYS) do
  local ttl = math.ceil((slot + intervals[i] - now) * 1000) + 1000
  redis.call('SET', key, tostring(slot + intervals[i]), 'PX', ttl)
end
return {'1', tostring(wait), tostring(slot), tostring(epoch)}
"""

# KEYS: the call's limits, the one to cut first. ARGV: the epoch the call's slot was reserved in,
# decrease, floor, base interval, recovery and period of the first limit, and whether a lone throttling
# answer is forgiven. A throttled call reserved before the last cut was sent at the old rate: the cut
# already answered it. A lone throttling answer (none other within one period) is remembered, not acted
# on: at the configured limit, a call delayed on its way can land one over in the vendor's window now and
# then, and cutting the rate for that would cost far more than the one retry. Below the configured limit
# (a cut still climbing back) no call can land over it, so every throttling answer is someone else's
# share: forgiving the first would let the climb overshoot that share further, throttling more calls.
# Returns the new factor, or '' when no cut was made.
_THROTTLED = _FACTOR + """
local key, epoch, decrease, floor = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local interval, recovery = tonumber(ARGV[4]), tonumber(ARGV[5])
if epoch < epoch_of(KEYS) then return '' end
local f, e = factor(key, now, recovery, decrease, floor)
if ARGV[7] == '1' and f >= 1 then
  local period = tonumber(ARGV[6])
  if redis.call('SET', key .. ':lone', '1', 'NX', 'PX', math.ceil(period * 1000)) then return '' end
  redis.call('DEL', key .. ':lone')
end
local cut = f * decrease
if cut < floor then cut = floor end
-- Already at the floor: nothing to cut, and no slot to void (voiding them all at every failing call
-- of a long outage would only make their holders queue again and again).
if cut >= f then return '' end
redis.call('HSET', key .. ':adapt', 'w', tostring(f), 't', tostring(now), 'e', tostring(e + 1))
redis.call('EXPIRE', key .. ':adapt', 86400)
local next_free = now + interval / cut
redis.call('SET', key, tostring(next_free), 'PX', math.ceil(interval / cut * 1000) + 1000)
return tostring(cut)
"""

# KEYS: limits. ARGV: the slot, the epoch it was reserved in, the guard, then per key its calls (an
# integer), period and smallest gap. Returns {verdict, seconds, epoch}: 'ok' (admitted and recorded;
# seconds = now), 'void' (a cut since the reservation: reserve again) or 'wait' (seconds until the slot,
# until the oldest of the last `calls` admissions leaves the window, or until the newest is `gap` ago).
_ADMIT = _FACTOR + """
local slot, want, guard = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local epoch = epoch_of(KEYS)
if epoch ~= want then return {'void', '0', tostring(epoch)} end
if slot > now then return {'wait', tostring(slot - now), tostring(epoch)} end
local wait = 0
for i, key in ipairs(KEYS) do
  local calls, period, gap = tonumber(ARGV[1 + 3 * i]), tonumber(ARGV[2 + 3 * i]), tonumber(ARGV[3 + 3 * i])
  local sent = redis.call('LRANGE', key .. ':sent', 0, calls - 1)
  if #sent > 0 then
    -- The earliest and latest of the last `calls` (a restamped one may be out of order).
    local oldest, newest = tonumber(sent[1]), tonumber(sent[1])
    for j = 2, #sent do
      local v = tonumber(sent[j])
      if v < oldest then oldest = v end
      if v > newest then newest = v end
    end
    local w = newest + gap - now
    if #sent >= calls and oldest + period + guard - now > w then w = oldest + period + guard - now end
    if w > wait then wait = w end
  end
end
if wait > 0 then return {'wait', tostring(wait), tostring(epoch)} end
for i, key in ipairs(KEYS) do
  local calls, period = tonumber(ARGV[1 + 3 * i]), tonumber(ARGV[2 + 3 * i])
  redis.call('LPUSH', key .. ':sent', tostring(now))
  redis.call('LTRIM', key .. ':sent', 0, calls - 1)
  redis.call('PEXPIRE', key .. ':sent', math.ceil((period + guard) * 1000) + 1000)
end
return {'ok', tostring(now), tostring(epoch)}
"""

# KEYS: limits. ARGV: the admission stamp as admit returned it, the stamp it should have been.
# A call that left later than it was admitted (its process was descheduled in between) moves its
# admission to when it left, so the calls after it keep the vendor's window. Returns how many moved.
_RESTAMP = """
local moved = 0
for i, key in ipairs(KEYS) do
  local index = redis.call('LPOS', key .. ':sent', ARGV[1])
  if index then
    redis.call('LSET', key .. ':sent', index, ARGV[2])
    moved = moved + 1
  end
end
return moved
"""

# KEYS: the limit whose calls keep failing. ARGV: how long a streak is remembered (ms). Returns its length.
_FAILING = """
local n = redis.call('INCR', KEYS[1] .. ':failing')
redis.call('PEXPIRE', KEYS[1] .. ':failing', ARGV[1])
return n
"""

# KEYS: limits. Returns {now, epoch} as strings.
_CHECK = _FACTOR + """
return {tostring(now), tostring(epoch_of(KEYS))}
"""

# KEYS: limits. ARGV: decrease, floor, then per key its recovery. Returns each key's factor.
_FACTORS = _FACTOR + """
local out = {}
for i, key in ipairs(KEYS) do
  local f = factor(key, now, tonumber(ARGV[2 + i]), tonumber(ARGV[1]), tonumber(ARGV[2]))
  out[i] = tostring(f)
end
return out
"""


@dataclass(frozen=True)
class Limit:
    """At most ``calls`` per ``period`` seconds for everything that shares ``key``."""

    key: str
    calls: float
    period: float

    @property
    def whole_calls(self) -> int:
        """The calls a window may hold, as a count ("2.5/s" allows 2 in any second)."""
        return max(1, math.floor(self.calls + 1e-9))

    def interval(self, headroom: float) -> float:
        return self.period / (self.calls * headroom)

    def recovery(self, policy: AdaptivePolicy) -> float:
        """Seconds for the rate to climb back to the one that was throttled: about ``recovery_calls``
        calls at the configured rate, so a cut costs the same number of calls whatever the limit."""
        return max(policy.min_recovery_seconds, policy.recovery_calls * self.period / self.calls)


class Admission(enum.Enum):
    ADMITTED = "ok"
    VOID = "void"  # the limits were cut since the slot was reserved: reserve another
    WAIT = "wait"  # too early: for the slot, or for the window to make room


@dataclass(frozen=True)
class AdmissionAnswer:
    verdict: Admission
    wait: float = 0.0  # seconds to wait before asking again (WAIT only)
    epoch: int = 0
    stamp: str = ""  # ADMITTED: the admission's time as Redis recorded it (for ``restamp``)


@dataclass(frozen=True)
class Reservation:
    granted: bool
    wait: float  # seconds from now until the slot (or, not granted, until its place in the line of refused callers)
    slot: float  # the slot, in Redis time (seconds since the epoch)
    epoch: int = 0  # the limits' cut count when reserved: a slot of an older epoch is void


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
    def __init__(
        self, client: redis.Redis, headroom: float = 1.0, adaptive: AdaptivePolicy | None = None, guard: float = 0.010,
        smoothing: float = 0.0,
    ) -> None:
        self._client = client
        self._headroom = headroom
        self._guard = guard
        self._smoothing = smoothing
        self._adaptive = adaptive or AdaptivePolicy()
        self._reserve = client.register_script(_RESERVE)
        self._throttled = client.register_script(_THROTTLED)
        self._check = client.register_script(_CHECK)
        self._admit = client.register_script(_ADMIT)
        self._failing = client.register_script(_FAILING)
        self._restamp = client.register_script(_RESTAMP)
        self._factors = client.register_script(_FACTORS)

    def reserve(self, limits: Sequence[Limit], max_ahead: float, lead: float = 0.0) -> Reservation:
        """A slot at most ``max_ahead`` seconds away, or (not granted) a place in the line of callers
        without one, ``lead`` seconds before the slot it should find when it comes back."""
        if not limits:
            return Reservation(True, 0.0, self.now())
        policy = self._adaptive
        args: list[float] = [max_ahead, policy.decrease, policy.floor, lead]
        for limit in limits:
            args += [limit.interval(self._headroom), limit.recovery(policy)]
        granted, wait, slot, epoch = self._reserve(keys=[limit.key for limit in limits], args=args)
        return Reservation(granted in (b"1", "1"), max(0.0, float(wait)), float(slot), int(float(epoch)))

    def admit(self, limits: Sequence[Limit], slot: float, epoch: int) -> AdmissionAnswer:
        """Send now? Yes only if the slot has come, no cut voided it, and every limit's window has room."""
        if not limits:
            return AdmissionAnswer(Admission.ADMITTED)
        args: list[float] = [slot, epoch, self._guard]
        for limit in limits:
            args += [limit.whole_calls, limit.period, limit.interval(self._headroom) * self._smoothing]
        verdict, seconds, current = self._admit(keys=[limit.key for limit in limits], args=args)
        verdict = Admission(verdict.decode() if isinstance(verdict, bytes) else verdict)
        if verdict is Admission.ADMITTED:
            stamp = seconds.decode() if isinstance(seconds, bytes) else str(seconds)
            return AdmissionAnswer(verdict, 0.0, int(float(current)), stamp)
        wait = max(0.0, float(seconds)) if verdict is Admission.WAIT else 0.0
        return AdmissionAnswer(verdict, wait, int(float(current)))

    def restamp(self, limits: Sequence[Limit], stamp: str, late: float) -> int:
        """The call admitted at ``stamp`` left ``late`` seconds after it: count it in the vendor's window
        from then. Returns how many limits' records moved (0 once they left the last ``calls``)."""
        if not limits or not stamp:
            return 0
        return int(self._restamp(keys=[limit.key for limit in limits], args=[stamp, repr(float(stamp) + late)]))

    def check(self, limits: Sequence[Limit]) -> tuple[float, int]:
        """(Redis's clock, the limits' epoch): a reserved slot is still good if its epoch is this one."""
        now, epoch = self._check(keys=[limit.key for limit in limits])
        return float(now), int(float(epoch))

    def now(self) -> float:
        """Redis's clock, the one slots are measured in."""
        return self.check([])[0]

    def throttled(self, limits: Sequence[Limit], epoch: int) -> float | None:
        """The vendor throttled a call whose slot was reserved at ``epoch``: slow the first of its
        ``limits`` (the operation's) down. Returns the new factor, or None when a cut since that
        reservation already answered it (the other calls of the same overshoot)."""
        if not self._adaptive.enabled or not limits:
            return None
        policy, first = self._adaptive, limits[0]
        args = [
            epoch, policy.decrease, policy.floor, first.interval(self._headroom), first.recovery(policy), first.period,
            1 if policy.forgive_lone_throttle else 0,
        ]
        cut = self._throttled(keys=[limit.key for limit in limits], args=args)
        return float(cut) if cut not in (b"", "") else None

    def unavailable(self, limits: Sequence[Limit], epoch: int) -> float | None:
        """A call reserved at ``epoch`` failed as a whole (5xx, timeout). Only a streak of
        ``unavailable_streak`` such calls in a row slows the limit down as a throttling answer does: a
        vendor failing now and then is retried at full pace, one in a storm at the floor rate."""
        policy = self._adaptive
        if not policy.enabled or not policy.slow_down_when_unavailable or not limits:
            return None
        streak = int(self._failing(keys=[limits[0].key], args=[math.ceil(limits[0].period * 1000 * policy.unavailable_streak)]))
        if streak < policy.unavailable_streak:
            return None
        return self.throttled(limits, epoch)

    def succeeded(self, limits: Sequence[Limit]) -> None:
        """A call was answered: a streak of failing calls, if any, is over."""
        if limits and self._adaptive.enabled and self._adaptive.slow_down_when_unavailable:
            self._client.delete(limits[0].key + ":failing")

    def factors(self, limits: Sequence[Limit]) -> list[float]:
        """The fraction of each limit's configured rate in use now (1.0 unless throttling cut it)."""
        if not limits:
            return []
        policy = self._adaptive
        args = [policy.decrease, policy.floor, *(limit.recovery(policy) for limit in limits)]
        return [float(f) for f in self._factors(keys=[limit.key for limit in limits], args=args)]
