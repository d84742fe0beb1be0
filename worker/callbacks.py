"""End-of-job callbacks: a signed JSON POST to the URL a job was submitted with.

The signature follows Stripe's scheme, so receivers can reuse known code: the header

    Mediapurge-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

signs the timestamp with the body; a receiver recomputes it over the raw body, compares in constant time,
and rejects a timestamp older than a few minutes (a replay). ``verify_signature`` does exactly that.
Delivery is plain code returning a decision; the Celery task (tasks/jobs.py) turns it into a retry.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.tables import CALLBACK_URL_LENGTH, Job
from worker.outcomes import CallbackState, JobStatus
from worker.retry import backoff_delay
from worker.settings import CallbackSettings, RetryPolicy

log = logging.getLogger("mediapurge.callbacks")

SIGNATURE_HEADER = "Mediapurge-Signature"
EVENT = "job.ended"
DEFAULT_TOLERANCE = 300  # seconds a receiver should accept between the signature's timestamp and its clock
ERROR_LENGTH = 500


def callback_url_problem(url: str) -> str | None:
    """Why ``url`` cannot receive callbacks, or None when it can."""
    if not url or len(url) > CALLBACK_URL_LENGTH:
        return f"must be 1 to {CALLBACK_URL_LENGTH} characters"
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return "must not contain whitespace or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return "must be an http:// or https:// URL"
    if not parts.hostname:
        return "must name a host"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials (user:password@); they would be stored in the audit database"
    return None


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``Mediapurge-Signature`` header value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(secret: bytes, header: str, body: bytes, *, now: float | None = None, tolerance: float = DEFAULT_TOLERANCE) -> bool:
    """What a receiver does: True when ``header`` signs ``body`` with ``secret`` within ``tolerance`` s."""
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        fields.setdefault(key, []).append(value)
    try:
        timestamp = int(fields["t"][0])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return any(hmac.compare_digest(expected, candidate) for candidate in fields.get("v1", []))


@dataclass(frozen=True)
class Delivered:
    status_code: int


@dataclass(frozen=True)
class NothingToSend:
    reason: str


@dataclass(frozen=True)
class RetryLater:
    delay: float
    error: str


@dataclass(frozen=True)
class GaveUp:
    error: str


CallbackDecision = Delivered | NothingToSend | RetryLater | GaveUp


def payload(summary: dict) -> bytes:
    return json.dumps({"event": EVENT, "job": summary}, separators=(",", ":"), sort_keys=True).encode()


def wanted(session: Session, job_id: int) -> bool:
    """Whether the job was submitted with a callback URL (only then is a notify task worth sending)."""
    return bool(session.scalar(select(Job.callback_url.is_not(None)).where(Job.id == job_id)))


def deliver(
    session: Session,
    http: httpx.Client,
    config: CallbackSettings,
    job_id: int,
    *,
    now: datetime,
    rand: Callable[[], float] = random.random,
    clock: Callable[[], float] = time.time,
) -> CallbackDecision:
    """POST the job's summary to its callback URL once, and record how it went on the job."""
    from worker.jobs import job_status

    job = session.get(Job, job_id)
    if job is None or not job.callback_url:
        return NothingToSend("the job has no callback URL")
    if not JobStatus(job.status).is_final:
        return NothingToSend(f"the job is {job.status}, not ended")
    if job.callback_state == CallbackState.DELIVERED.value:
        return NothingToSend("already delivered")
    if config.signing_secret is None:
        return _record_failure(session, job, config, "callbacks.signing_secret is not set on the worker", final=True, rand=rand)
    body = payload(job_status(session, job_id).as_dict())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "mediapurge-callback",
        SIGNATURE_HEADER: sign(config.signing_secret.get_secret_value().encode(), int(clock()), body),
    }
    try:
        response = http.post(job.callback_url, content=body, headers=headers, timeout=config.timeout)
    except httpx.HTTPError as exc:
        return _record_failure(session, job, config, f"{type(exc).__name__}: {exc}", rand=rand)
    if not 200 <= response.status_code < 300:
        return _record_failure(session, job, config, f"the receiver answered HTTP {response.status_code}", rand=rand)
    job.callback_state = CallbackState.DELIVERED.value
    job.callback_attempts += 1
    job.callback_delivered_at = now
    job.callback_last_error = None
    session.commit()
    log.info("callback for job %s delivered (HTTP %s) to %s", job_id, response.status_code, urlsplit(job.callback_url).hostname)
    return Delivered(response.status_code)


def _record_failure(
    session: Session, job: Job, config: CallbackSettings, error: str, *, rand: Callable[[], float], final: bool = False
) -> CallbackDecision:
    job.callback_attempts += 1
    job.callback_last_error = error[:ERROR_LENGTH]
    give_up = final or job.callback_attempts >= config.max_attempts
    job.callback_state = CallbackState.FAILED.value if give_up else CallbackState.PENDING.value
    session.commit()
    log.warning("callback for job %s failed (attempt %s): %s", job.id, job.callback_attempts, job.callback_last_error)
    if give_up:
        return GaveUp(job.callback_last_error)
    policy = RetryPolicy(max_attempts=config.max_attempts, backoff_base=config.backoff_base, backoff_cap=config.backoff_cap)
    # Never less than a second: an answer that fails at once should not be hammered.
    delay = max(1.0, backoff_delay(policy, job.callback_attempts, rand))
    return RetryLater(delay, job.callback_last_error)
