"""A batch executor's runtime for unit tests: SQLite sessions, an httpx.MockTransport vendor, a limiter
that grants at once, and helpers to start a job and read its items."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from models import Batch, Item, Job
from worker.executor import Runtime
from worker.planner import plan_job
from worker.producer import submit_job
from worker.ratelimit import Admission, AdmissionAnswer, Reservation
from worker.settings import Settings
from worker.validation import ItemValidator


class GrantingLimiter:
    """Test double: every slot is free now, or, when ``queue_seconds`` is set, that far away; a slot
    is admitted unless a cut voided it or ``admission_waits`` holds waits to answer first."""

    def __init__(self) -> None:
        self.queue_seconds = 0.0
        self.reservations = 0
        self.epoch = 0
        self.throttled_slots = []
        self.admission_waits = []  # WAIT answers admit() gives before admitting
        self.admitted = []
        self.restamped = []  # (stamp, late) of calls that left late after their admission
        self.unavailable_slots = []
        self.successes = 0

    def reserve(self, limits, max_ahead, lead=0.0):
        self.reservations += 1
        granted = self.queue_seconds <= max_ahead
        return Reservation(granted, self.queue_seconds, 1000.0 + self.queue_seconds, self.epoch)

    def admit(self, limits, slot, epoch):
        if epoch != self.epoch:
            return AdmissionAnswer(Admission.VOID, epoch=self.epoch)
        if self.admission_waits:
            return AdmissionAnswer(Admission.WAIT, self.admission_waits.pop(0), self.epoch)
        self.admitted.append(slot)
        return AdmissionAnswer(Admission.ADMITTED, epoch=self.epoch, stamp=f"{slot}")

    def restamp(self, limits, stamp, late):
        self.restamped.append((stamp, late))
        return len(limits)

    def unavailable(self, limits, epoch):
        self.unavailable_slots.append((limits[0].key, epoch))

    def succeeded(self, limits):
        self.successes += 1

    def throttled(self, limits, epoch):
        self.throttled_slots.append((limits[0].key, epoch))
        self.epoch += 1
        return 0.7


SETTINGS = Settings(
    database_url="sqlite://",
    accounts={
        "aliyun": {"default": {"access_key_id": "AKID", "access_key_secret": "s3cret", "endpoint": "http://vendor.test/aliyun"}},
        "huawei": {"default": {"project_id": "p1", "access_key": "HWAK", "secret_key": "hwsecret", "endpoint": "http://vendor.test/huawei"}},
    },
    retry={"max_attempts": 3, "backoff_base": 0.5, "backoff_cap": 4},
)


def make_env(sessions):
    """(runtime, handlers, calls): append a handler to answer requests; calls records them."""
    handlers = []
    calls = []
    dispatched = []

    def route(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return handlers[0](request)

    rt = Runtime(
        settings=SETTINGS, sessions=sessions, http=httpx.Client(transport=httpx.MockTransport(route)),
        limiter=GrantingLimiter(), dispatch=dispatched.append, sleep=lambda s: None, rand=lambda: 1.0,
    )
    return rt, handlers, calls


def start_job(rt, items):
    validator = ItemValidator({"aliyun": {"default"}, "huawei": {"default"}, "zego": set()})
    submitted = submit_job(rt.sessions, items, validator, lambda job_id: None)
    with rt.sessions() as s:
        plan_job(s, submitted.job_id)
        batch_ids = s.scalars(select(Batch.id).where(Batch.job_id == submitted.job_id).order_by(Batch.id)).all()
    return submitted.job_id, batch_ids


def items_by_media(rt, job_id):
    with rt.sessions() as s:
        return {i.media_id: i for i in s.scalars(select(Item).where(Item.job_id == job_id))}


def job_status(rt, job_id):
    with rt.sessions() as s:
        return s.get(Job, job_id).status
