"""Send one batch to its vendor: claim it, wait for a rate-limit slot, call, classify, record, and decide
what comes next. Plain code: the Celery task only turns the returned decision into a message.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import httpx
from sqlalchemy.orm import Session, sessionmaker

from models.types import utcnow
from worker import audit, leases
from worker.errors import ConfigurationError
from worker.outcomes import CallVerdict, Outcome
from worker.ratelimit import Admission, Limit, RateLimiter, limits_for
from worker.refs import BatchRef
from worker.retry import BatchDecision, Finished, Permit, RunAgain, Skipped, backoff_delay
from worker.settings import Settings
from worker.vendors import OPERATIONS, Operation
from worker.vendors.base import same_for_all, transport_failure

log = logging.getLogger("mediapurge.executor")


@dataclass
class Runtime:
    """What a worker process builds once and every batch shares."""

    settings: Settings
    sessions: sessionmaker[Session]
    http: httpx.Client
    limiter: RateLimiter
    dispatch: Callable[[int], None]  # enqueue a batch by id (a new one split off from a running batch)
    clock: Callable[[], datetime] = utcnow
    sleep: Callable[[float], None] = time.sleep
    rand: Callable[[], float] = field(default=random.random)


def call_limits(settings: Settings, op: Operation, account) -> list[Limit]:  # noqa: ANN001
    """The limits one call of ``op`` counts against: the account's overrides, else the published ones."""
    rate = account.rate_limits.get(op.name, op.default_rate)
    account_rate = account.rate_limits.get("*", op.account_rate)
    return limits_for(op.vendor, op.name, account.quota_identity, rate, account_rate)


def _chunks(items: list[audit.PendingItem], size: int) -> deque[list[audit.PendingItem]]:
    return deque(items[i : i + size] for i in range(0, len(items), size))


def run_batch(rt: Runtime, batch_id: int, permit: Permit | None = None) -> BatchDecision:
    with rt.sessions() as session:
        lease = leases.claim(session, batch_id, rt.clock(), rt.settings.lease_seconds)
        if lease is None:
            return Skipped("not due, held by another worker, or done")
        try:
            return _run_claimed(rt, session, lease, permit)
        except Exception:
            # The database or Redis failed under us: hand the batch back now rather than when the lease
            # expires, so the task's retry finds it (best effort: the database may be what failed).
            session.rollback()
            try:
                leases.release(session, lease, next_attempt_at=None, count_attempt=False, now=rt.clock(), close_if_cancelled=False)
            except Exception:  # noqa: BLE001
                log.warning("could not release batch %s after an error; its lease will expire", batch_id)
            raise


def _run_claimed(rt: Runtime, session: Session, batch: leases.Lease, permit: Permit | None) -> BatchDecision:
    settings = rt.settings
    op = OPERATIONS[batch.action]
    account, refusal = _account_or_refusal(session, settings, batch, op)
    limits = call_limits(settings, op, account) if refusal is None else []
    if permit is None and limits and not batch.cancel_requested:
        # The first slot is reserved before anything else is read or signed: a batch refused for now
        # (a long queue, a slowed-down vendor) costs no more than its claim and its release.
        reserved = _reserve(rt, limits)
        if isinstance(reserved, RunAgain):
            return _requeue(session, rt, batch, reserved, count_attempt=False)
        permit = reserved

    pending = audit.pending_items(session, batch.batch_id)
    if refusal is not None:
        audit.fail_items(session, [item.id for item in pending], *refusal, rt.clock())
        pending = []
    if not pending:
        return _finish(session, rt, batch)

    work = _chunks(pending, op.max_batch)
    still_pending: list[audit.PendingItem] = []  # what the calls left pending, so nobody reads it back
    cancelled = batch.cancel_requested  # as the claim read it; asked again before each further chunk
    while work:
        if cancelled:  # the job was cancelled while this batch ran
            audit.cancel_items(session, [item.id for part in work for item in part], rt.clock())
            break
        chunk = work.popleft()
        # Built before its slot, so that nothing but the send itself lies between the call's admission
        # and its arrival at the vendor (admission counts the vendor's window from that moment).
        request = _prepare(rt, op, account, batch, chunk)
        waited: _Admitted | RunAgain | None = None
        if isinstance(request, httpx.Request):
            waited = _acquire(rt, limits, permit)
            permit = None
            if isinstance(waited, RunAgain):
                return _requeue(session, rt, batch, waited, count_attempt=False)
        written = _note_when_written(request)
        sending_at = time.perf_counter()
        verdict, left = _call(session, rt, op, batch, chunk, request)
        if waited is not None:
            late = (written[-1] if written else sending_at) - waited.asked_at
            if late > _LATE_SEND:
                rt.limiter.restamp(limits, waited.stamp, late)
            _adapt(rt, limits, waited.permit, verdict)
        if verdict.halt_account:
            audit.halt_account(session, batch.job_id, op.vendor, batch.account, verdict)
            rest = [item.id for part in work for item in part]
            audit.fail_items(session, rest, "AccountHalted", f"{verdict.code}: {verdict.message}", rt.clock())
            work.clear()
        elif verdict.split and len(chunk) > 1:
            middle = len(chunk) // 2
            rest = chunk[middle:] + [item for part in work for item in part]
            rt.dispatch(leases.split_off(session, batch, [item.id for item in rest], rt.clock()))
            batch = replace(batch, item_count=batch.item_count - len(rest))
            work = deque([chunk[:middle]])
        else:
            still_pending += left
        if work:
            cancelled = audit.cancel_requested(session, batch.job_id)

    if not still_pending:
        return _finish(session, rt, batch)
    delay = backoff_delay(settings.retry, batch.attempts + 1, rt.rand)
    return _requeue(session, rt, batch, RunAgain(delay, reason="retryable answers"), count_attempt=True)


def _requeue(session: Session, rt: Runtime, lease: leases.Lease, again: RunAgain, *, count_attempt: bool) -> BatchDecision:
    """Give the batch back until ``again.delay`` has passed; but if its job was cancelled meanwhile,
    what it still holds is cancelled now instead of at its next visit (nothing of it is sent again)."""
    now = rt.clock()
    if leases.release(session, lease, next_attempt_at=now + timedelta(seconds=again.delay), count_attempt=count_attempt, now=now):
        return replace(again, ref=BatchRef(lease.batch_id, lease.job_id, lease.action, lease.account, lease.item_count))
    audit.cancel_items(session, [item.id for item in audit.pending_items(session, lease.batch_id)], now)
    return Finished(lease.job_id, audit.finish_job_if_done(session, lease.job_id, now))


def _adapt(rt: Runtime, limits: Sequence[Limit], permit: Permit, verdict: CallVerdict) -> None:
    """Tell the limiter what the answer says about the vendor's capacity (worker/ratelimit/gcra.py):
    someone else spends part of this quota (throttled), the vendor keeps failing (unavailable), or
    it answered. Each slows the operation's limit down, or not, for every worker at once."""
    if verdict.throttled:
        rt.limiter.throttled(limits, permit.epoch)
    elif verdict.unavailable:
        rt.limiter.unavailable(limits, permit.epoch)
    else:
        rt.limiter.succeeded(limits)


def _account_or_refusal(session: Session, settings: Settings, batch: leases.Lease, op: Operation):  # noqa: ANN202
    """(the batch's account, None), or (None, (code, message)) when the batch must fail unsent."""
    halt = audit.account_halt(session, batch.job_id, op.vendor, batch.account) if batch.account_halted else None
    if halt is not None:
        reason = f"{op.vendor} account {batch.account!r} halted for this job after {halt.vendor_code}: {halt.vendor_message}"
        return None, ("AccountHalted", reason)
    try:
        return settings.accounts.get(op.vendor, batch.account), None
    except ConfigurationError as exc:
        return None, ("AccountNotConfigured", str(exc))


def _finish(session: Session, rt: Runtime, lease: leases.Lease) -> Finished:
    now = rt.clock()
    leases.finish(session, lease, now)
    return Finished(lease.job_id, audit.finish_job_if_done(session, lease.job_id, now))


# A call that leaves this long after its admission was asked for (its process was descheduled in
# between, on a busy host) has its admission moved to when it left (RateLimiter.restamp).
_LATE_SEND = 0.003


def _note_when_written(request: httpx.Request | CallVerdict) -> list[float]:
    """A list that receives the time.perf_counter() at which the request was written to its connection
    (httpcore's trace), after any new connection was made: when the call really left. (Transports
    without the trace, such as httpx.MockTransport, leave it empty.)"""
    written: list[float] = []
    if isinstance(request, httpx.Request):
        def trace(event: str, info: dict) -> None:
            if event in ("http11.send_request_body.complete", "http2.send_request_body.complete"):
                written.append(time.perf_counter())
        request.extensions = {**request.extensions, "trace": trace}
    return written


@dataclass(frozen=True)
class _Admitted:
    permit: Permit
    stamp: str  # the admission's time in Redis, as recorded there
    asked_at: float  # time.perf_counter() when admission was asked for: the admission came after


def _acquire(rt: Runtime, limits: Sequence[Limit], permit: Permit | None) -> _Admitted | RunAgain:
    """Wait for this call's rate-limit slot and its admission, or return a RunAgain that gives the
    worker slot back meanwhile.

    A slot void after a throttling cut (it was spaced for the old rate) is given up for a new one. A
    slot reached late is still used: admission (``RateLimiter.admit``) holds the call back just as long
    as the vendor's window needs, which costs less than queueing again behind every reserved slot.
    """
    settings = rt.settings
    for _ in range(20):
        if permit is None:
            reserved = _reserve(rt, limits)
            if isinstance(reserved, RunAgain):
                return reserved
            permit = reserved
        asked_at = time.perf_counter()
        answer = rt.limiter.admit(limits, permit.slot, permit.epoch)
        if answer.verdict is Admission.ADMITTED:
            return _Admitted(permit, answer.stamp, asked_at)
        if answer.verdict is Admission.VOID:
            log.info("rate-limit slot void after a cut; reserving another")
            permit = None
        elif answer.wait > settings.max_inline_wait:
            return RunAgain(answer.wait - settings.permit_lead, permit=permit, reason="waiting for its rate-limit slot")
        else:
            rt.sleep(answer.wait)
    return RunAgain(settings.max_inline_wait, reason="rate-limit admission kept being put off")


def _reserve(rt: Runtime, limits: Sequence[Limit]) -> Permit | RunAgain:
    """A slot near enough to sleep for, or a RunAgain: with the slot (a permit) when it is further, or
    without one at the batch's place in the limiter's line when every slot of the horizon is taken."""
    settings = rt.settings
    reservation = rt.limiter.reserve(limits, max_ahead=settings.max_reserve_ahead, lead=settings.permit_lead)
    if not reservation.granted:
        delay = min(max(reservation.wait, settings.permit_lead), settings.max_countdown)
        return RunAgain(delay, reason="rate limit queue is long")
    permit = Permit(reservation.slot, reservation.epoch)
    if reservation.wait > settings.max_inline_wait:
        # Back a little early: a countdown message starts tens of milliseconds late, which would
        # waste the slot; the rest of the wait is slept here, to the millisecond.
        return RunAgain(reservation.wait - settings.permit_lead, permit=permit, reason="waiting for its rate-limit slot")
    return permit


def _prepare(rt: Runtime, op: Operation, account, batch: leases.Lease, chunk: list[audit.PendingItem]):  # noqa: ANN001, ANN202
    """The signed request for ``chunk``, or the verdict that it must not be sent."""
    media_ids = [item.media_id for item in chunk]
    try:
        return op.build_request(account, batch.group_key, media_ids, rt.clock(), uuid.uuid4().hex)
    except ValueError as exc:
        # Submission validation refuses such ids first; this guard keeps a bad row from ever being sent.
        return same_for_all(media_ids, Outcome.FAILED, http_status=None, code="RefusedLocally", message=str(exc), request_id=None)


def _call(
    session: Session, rt: Runtime, op: Operation, batch: leases.Lease, chunk: list[audit.PendingItem],
    request: httpx.Request | CallVerdict,
) -> tuple[CallVerdict, list[audit.PendingItem]]:
    """Send one prepared chunk and record what came back: (the verdict, the chunk's items still pending)."""
    media_ids = [item.media_id for item in chunk]
    started_at = rt.clock()
    started = time.perf_counter()
    if isinstance(request, CallVerdict):
        verdict = request
    else:
        try:
            response = rt.http.send(request)
        except httpx.HTTPError as exc:
            verdict = transport_failure(media_ids, exc)
        else:
            try:
                verdict = op.classify(media_ids, response)
            except Exception as exc:  # a classification bug must not lose the call's record
                log.exception("classifying %s answer failed", op.action)
                verdict = transport_failure(media_ids, exc)
    latency_ms = (time.perf_counter() - started) * 1000
    # Never log the request URL: for Alibaba Cloud and ZEGO it carries the signature.
    log.info(
        "%s batch=%s account=%s ids=%d http=%s code=%s request_id=%s %.1fms",
        op.action, batch.batch_id, batch.account, len(media_ids), verdict.http_status, verdict.code, verdict.request_id, latency_ms,
    )
    call = audit.CallRecord(batch.job_id, batch.batch_id, op.action, batch.account, started_at, latency_ms)
    left = audit.record_call(session, call, chunk, verdict, max_attempts=rt.settings.retry.max_attempts, now=rt.clock())
    return verdict, left
