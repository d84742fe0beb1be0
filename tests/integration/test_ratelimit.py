"""The shared limiter on a real Redis, used by several processes at once."""

from __future__ import annotations

import multiprocessing
import time

import pytest
import redis

from worker.ratelimit import Admission, Limit, RateLimiter, limits_for
from worker.settings import AdaptivePolicy

pytestmark = pytest.mark.integration


def _reserve_many(url: str, limits: list[Limit], count: int, out) -> None:  # noqa: ANN001
    limiter = RateLimiter(redis.Redis.from_url(url))
    slots = []
    while len(slots) < count:
        reservation = limiter.reserve(limits, max_ahead=0.5)
        if reservation.granted:
            slots.append(reservation.slot)
    out.put(slots)


@pytest.fixture
def client(redis_url):
    connection = redis.Redis.from_url(redis_url)
    connection.flushdb()
    yield connection
    connection.flushdb()


def test_processes_share_one_limit(redis_url, client):
    limits = limits_for("zego", "DeleteMedia", "1234567890", "50/s", None)
    queue = multiprocessing.get_context("spawn").Queue()
    processes = [multiprocessing.get_context("spawn").Process(target=_reserve_many, args=(redis_url, limits, 25, queue)) for _ in range(4)]
    for process in processes:
        process.start()
    slots = sorted(slot for _ in processes for slot in queue.get(timeout=60))
    for process in processes:
        process.join(10)
    assert len(slots) == 100
    gaps = [b - a for a, b in zip(slots, slots[1:])]
    assert min(gaps) >= 0.02 - 1e-6  # 50/s: one slot every 20 ms, whoever asked
    # No one-second window holds more than 50 slots.
    assert max(sum(1 for s in slots if start <= s < start + 1.0) for start in slots) <= 50


def test_a_call_counts_against_its_operation_and_its_account(client):
    limiter = RateLimiter(client)
    account = limits_for("huawei", "DeleteAssets", "proj", "100/s", "10/s")
    other_operation = limits_for("huawei", "OtherOperation", "proj", "100/s", "10/s")
    first = limiter.reserve(account, max_ahead=5)
    second = limiter.reserve(other_operation, max_ahead=5)
    # The account-wide 10/s applies across operations: 100 ms apart, not 10 ms.
    assert second.slot - first.slot == pytest.approx(0.1, abs=1e-6)


def test_far_slots_are_not_reserved(client):
    limiter = RateLimiter(client)
    limits = [Limit("mediapurge:rl:test:slow", 1, 10.0)]  # one call per 10 s
    first = limiter.reserve(limits, max_ahead=1)
    assert first.granted
    refused = limiter.reserve(limits, max_ahead=1, lead=0.5)
    # Back half a second (the lead) before the next slot, 10 s out.
    assert not refused.granted and 9.4 < refused.wait <= 9.5
    # The next refused caller takes the next place in the line, one configured interval later.
    second_refused = limiter.reserve(limits, max_ahead=1, lead=0.5)
    assert not second_refused.granted and second_refused.wait == pytest.approx(refused.wait + 10, abs=0.05)
    # Being refused reserved no slot: a caller with a longer horizon gets the very next one.
    granted_far = limiter.reserve(limits, max_ahead=20)
    assert granted_far.granted and granted_far.slot == pytest.approx(first.slot + 10, abs=1e-6)


def test_refused_callers_of_a_cut_limit_come_back_between_the_cut_and_the_configured_rate(client):
    """Refused callers of a slowed-down limit come back spaced base / sqrt(factor): a long queue behind
    a slowed-down vendor costs a visit per such interval, not one per caller per horizon."""
    limiter = RateLimiter(client, adaptive=AdaptivePolicy(floor=0.1, forgive_lone_throttle=False))
    limits = [Limit("mediapurge:rl:test:line", 10, 1.0)]
    epoch = limiter.reserve(limits, max_ahead=0.5).epoch
    assert limiter.throttled(limits, epoch) is not None
    while limiter.reserve(limits, max_ahead=0.5).granted:
        pass
    waits = [limiter.reserve(limits, max_ahead=0.5).wait for _ in range(20)]
    gaps = [b - a for a, b in zip(waits, waits[1:])]
    assert all(gap == pytest.approx(0.1 / 0.7**0.5, abs=0.005) for gap in gaps), gaps


def test_headroom_spaces_slots_further(client):
    limiter = RateLimiter(client, headroom=0.5)
    limits = [Limit("mediapurge:rl:test:headroom", 10, 1.0)]
    a, b = limiter.reserve(limits, 5), limiter.reserve(limits, 5)
    assert b.slot - a.slot == pytest.approx(0.2, abs=1e-6)


def test_identity_is_hashed_out_of_the_key():
    [limit] = limits_for("aliyun", "DeleteStream", "LTAI5tSecretLookingId", "50/s", None)
    assert "LTAI5t" not in limit.key and limit.key.startswith("mediapurge:rl:aliyun:")


ADAPTIVE = AdaptivePolicy(decrease=0.7, recovery_calls=4, min_recovery_seconds=0.4, floor=0.05, forgive_lone_throttle=False)


def test_a_throttling_answer_cuts_the_rate_and_voids_older_slots(client):
    limiter = RateLimiter(client, adaptive=ADAPTIVE)
    [limit] = [Limit("mediapurge:rl:test:adaptive", 10, 1.0)]  # recovery: 4 calls at 10/s = 0.4 s
    before = [limiter.reserve([limit], max_ahead=5) for _ in range(5)]
    assert {r.epoch for r in before} == {0}
    assert limiter.throttled([limit], before[0].epoch) == pytest.approx(0.7)
    # A second throttled answer for a call reserved before the cut is the same overshoot: no second cut.
    assert limiter.throttled([limit], before[1].epoch) is None
    now, epoch = limiter.check([limit])
    assert epoch == 1  # the four slots still held were reserved at epoch 0: their holders reserve again
    a, b = limiter.reserve([limit], max_ahead=5), limiter.reserve([limit], max_ahead=5)
    assert a.epoch == b.epoch == 1
    assert b.slot - a.slot > 0.1  # slower than 10/s: the factor is below 1 (climbing back from 0.7)
    assert a.slot < before[-1].slot  # the timeline restarted: old reservations no longer delay new ones


def test_the_rate_climbs_back_to_the_configured_limit_and_never_above(client):
    limiter = RateLimiter(client, adaptive=ADAPTIVE)
    limit = Limit("mediapurge:rl:test:recover", 10, 1.0)
    start = limiter.reserve([limit], max_ahead=5)
    limiter.throttled([limit], start.epoch)
    [just_after] = limiter.factors([limit])
    assert 0.69 <= just_after < 0.8
    time.sleep(0.2)  # half the recovery time: the cubic is concave here, most of the way back
    [halfway] = limiter.factors([limit])
    assert just_after < halfway < 1.0
    time.sleep(0.8)  # past recovery and its convex climb: back at the configured rate, capped there
    assert limiter.factors([limit]) == [1.0]


def test_past_the_rate_that_was_throttled_the_climb_quickens(client):
    limiter = RateLimiter(client, adaptive=ADAPTIVE)  # recovery 0.4 s
    limit = Limit("mediapurge:rl:test:beyond", 10, 1.0)
    _, epoch = limiter.check([limit])
    limiter.throttled([limit], epoch)  # 1 -> 0.7
    _, epoch = limiter.check([limit])
    limiter.throttled([limit], epoch)  # 0.7 -> 0.49: the rate that was throttled (w) is 0.7
    time.sleep(0.5)  # a quarter of the recovery time past w: at the approach's pace it would be 0.703
    [factor] = limiter.factors([limit])
    assert 0.74 < factor < 1.0


def test_repeated_throttling_stops_at_the_floor(client):
    limiter = RateLimiter(client, adaptive=ADAPTIVE)
    limit = Limit("mediapurge:rl:test:floor", 10, 1.0)
    for _ in range(20):
        _, epoch = limiter.check([limit])
        limiter.throttled([limit], epoch)
    assert limiter.factors([limit])[0] == pytest.approx(0.05, abs=0.01)


def test_adaptation_can_be_turned_off(client):
    limiter = RateLimiter(client, adaptive=AdaptivePolicy(enabled=False))
    limit = Limit("mediapurge:rl:test:off", 10, 1.0)
    assert limiter.throttled([limit], 0) is None
    assert limiter.factors([limit]) == [1.0]


def test_a_lone_throttling_answer_is_forgiven_a_second_within_the_period_cuts(client):
    limiter = RateLimiter(client, adaptive=AdaptivePolicy(recovery_calls=4, min_recovery_seconds=0.4))
    limit = Limit("mediapurge:rl:test:lone", 10, 0.5)
    epoch = limiter.reserve([limit], max_ahead=5).epoch
    assert limiter.throttled([limit], epoch) is None  # alone: remembered, no cut
    assert limiter.factors([limit]) == [1.0]
    time.sleep(0.6)  # more than one period later: still alone
    assert limiter.throttled([limit], epoch) is None
    assert limiter.throttled([limit], epoch) == pytest.approx(0.7)  # the second within the period cuts
    assert limiter.check([limit])[1] == epoch + 1


def test_below_the_configured_rate_the_first_throttling_answer_cuts(client):
    """Climbing back after a cut, no late call can land over the configured limit: a throttling answer
    there means someone else spends the quota, and waiting for a second one lets the climb overshoot."""
    limiter = RateLimiter(client, adaptive=AdaptivePolicy(recovery_calls=20, min_recovery_seconds=2.0))
    limit = Limit("mediapurge:rl:test:lone-below", 10, 0.5)
    epoch = limiter.reserve([limit], max_ahead=5).epoch
    assert limiter.throttled([limit], epoch) is None
    assert limiter.throttled([limit], epoch) == pytest.approx(0.7)  # at the configured rate: the second cuts
    epoch = limiter.check([limit])[1]
    [factor] = limiter.factors([limit])
    assert factor < 1.0
    assert limiter.throttled([limit], epoch) == pytest.approx(factor * 0.7, rel=0.02)  # alone, and still a cut
    assert limiter.check([limit])[1] == epoch + 1


def test_admission_keeps_every_window_at_the_limit_whoever_was_late(client):
    """Slots reached late bunch calls together; admission holds back exactly the ones that would
    put more than `calls` into one period (plus the guard)."""
    limiter = RateLimiter(client, guard=0.01)
    limit = Limit("mediapurge:rl:test:admit", 5, 0.5)
    now = limiter.now()
    answers = [limiter.admit([limit], now - 1.0, 0) for _ in range(5)]  # five callers, all late
    assert {a.verdict for a in answers} == {Admission.ADMITTED}
    sixth = limiter.admit([limit], now - 1.0, 0)
    assert sixth.verdict is Admission.WAIT and 0.45 < sixth.wait <= 0.51  # until the first leaves the window
    time.sleep(sixth.wait)
    assert limiter.admit([limit], now - 1.0, 0).verdict is Admission.ADMITTED


def test_smoothing_spreads_late_callers_instead_of_letting_them_out_in_one_burst(client):
    limiter = RateLimiter(client, guard=0.01, smoothing=0.5)
    limit = Limit("mediapurge:rl:test:smooth", 10, 1.0)  # slots 100 ms apart: late callers 50 ms apart
    now = limiter.now()
    assert limiter.admit([limit], now - 1.0, 0).verdict is Admission.ADMITTED
    second = limiter.admit([limit], now - 1.0, 0)  # as late, right after: held back for the gap
    assert second.verdict is Admission.WAIT and 0.03 < second.wait <= 0.05
    time.sleep(second.wait)
    assert limiter.admit([limit], now - 1.0, 0).verdict is Admission.ADMITTED
    stamps = [float(s) for s in client.lrange(limit.key + ":sent", 0, -1)]
    assert abs(stamps[0] - stamps[1]) >= 0.05 - 0.002


def test_a_call_that_left_late_counts_in_the_window_from_when_it_left(client):
    limiter = RateLimiter(client, guard=0.0)
    limits = [Limit("mediapurge:rl:test:restamp", 1, 1.0), Limit("mediapurge:rl:test:restamp-account", 5, 1.0)]
    now = limiter.now()
    first = limiter.admit(limits, now, 0)
    assert first.verdict is Admission.ADMITTED and float(first.stamp) >= now
    assert limiter.restamp(limits, first.stamp, 0.3) == 2
    # The next call waits for the window of the moment the first one left, not of its admission.
    second = limiter.admit(limits, now, 0)
    assert second.verdict is Admission.WAIT
    assert second.wait == pytest.approx(float(first.stamp) + 1.3 - limiter.now(), abs=0.02)
    # A stamp no longer among the last calls moves nothing.
    assert limiter.restamp(limits, "12.5", 0.3) == 0


def test_admission_waits_for_the_slot_and_refuses_a_void_one(client):
    limiter = RateLimiter(client, adaptive=ADAPTIVE)
    limit = Limit("mediapurge:rl:test:admit-slot", 10, 1.0)
    early = limiter.admit([limit], limiter.now() + 0.3, 0)
    assert early.verdict is Admission.WAIT and 0.25 < early.wait <= 0.3
    limiter.throttled([limit], 0)  # a cut: slots of epoch 0 are void
    void = limiter.admit([limit], limiter.now(), 0)
    assert void.verdict is Admission.VOID and void.epoch == 1
    assert limiter.admit([limit], limiter.now(), 1).verdict is Admission.ADMITTED


def test_a_fractional_limit_admits_whole_calls(client):
    limiter = RateLimiter(client, guard=0.0)
    limit = Limit("mediapurge:rl:test:admit-fraction", 2.5, 1.0)
    now = limiter.now()
    assert [limiter.admit([limit], now, 0).verdict for _ in range(3)] == [Admission.ADMITTED, Admission.ADMITTED, Admission.WAIT]


def test_at_the_floor_a_throttling_answer_voids_nothing(client):
    """A long outage keeps answering badly at the floor rate: no cut is left to make, and the slots
    already reserved (at that same rate) stay good."""
    limiter = RateLimiter(client, adaptive=ADAPTIVE)
    limit = Limit("mediapurge:rl:test:floor-epoch", 10, 1.0)
    for _ in range(20):
        _, epoch = limiter.check([limit])
        limiter.throttled([limit], epoch)
    _, at_floor = limiter.check([limit])
    assert limiter.throttled([limit], at_floor) is None
    assert limiter.check([limit])[1] == at_floor


def test_only_a_streak_of_failing_calls_slows_the_limit_down(client):
    policy = AdaptivePolicy(recovery_calls=4, min_recovery_seconds=0.4, forgive_lone_throttle=False, unavailable_streak=3)
    limiter = RateLimiter(client, adaptive=policy)
    limit = Limit("mediapurge:rl:test:streak", 10, 1.0)
    assert limiter.unavailable([limit], 0) is None and limiter.unavailable([limit], 0) is None
    limiter.succeeded([limit])  # an answer ends the streak
    assert limiter.unavailable([limit], 0) is None and limiter.unavailable([limit], 0) is None
    assert limiter.unavailable([limit], 0) == pytest.approx(0.7)  # the third in a row cuts
    assert limiter.check([limit])[1] == 1
    off = RateLimiter(client, adaptive=policy.model_copy(update={"slow_down_when_unavailable": False}))
    other = Limit("mediapurge:rl:test:streak-off", 10, 1.0)
    assert [off.unavailable([other], 0) for _ in range(5)] == [None] * 5
