"""The sandbox without HTTP: vendor apps, media, limits, faults and records behind one lock.

``handle`` serves one vendor request; everything that reads or changes state happens under ``lock``,
and the time a call is recorded at is taken under it too, so the recorded arrival order is the order the
limiter saw. Sleeping (latency, slow answers) is left to the caller, outside the lock.
"""

from __future__ import annotations

import gc

import threading
import time
from collections.abc import Mapping
from typing import Any

from worker.sandbox.aliyun import AliyunApp
from worker.sandbox.config import SandboxConfig
from worker.sandbox.faults import NO_FAULT, Fault, FaultPlan, disfigure
from worker.sandbox.huawei import HuaweiApp
from worker.sandbox.messages import Answer, Call, Incoming, Reply
from worker.sandbox.nonces import NonceBook
from worker.sandbox.records import CallRecord, Recorder
from worker.sandbox.state import MediaStore
from worker.sandbox.vendor import VendorApp
from worker.sandbox.windows import LimitTable
from worker.sandbox.zego import ZegoApp


class Engine:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.lock = threading.Lock()
        apps: list[VendorApp] = [AliyunApp(config), ZegoApp(config), HuaweiApp(config)]
        self.apps = {app.vendor: app for app in apps}
        self.store = MediaStore(config.busy_clears_after)
        self.limits = LimitTable(config.limits)
        self.faults = FaultPlan(dict(config.faults), config.fault_seed)
        self.nonces = NonceBook(config.nonce_ttl)
        self.recorder = Recorder()
        self.started = time.monotonic()

    def handle(self, vendor: str, req: Incoming) -> tuple[Reply, float]:
        """The reply to one vendor request, and how many seconds to wait before sending it."""
        app = self.apps[vendor]
        call = app.parse(req, app.new_request_id())
        answer = call.refusal or app.authenticate(call, req, time.time())
        with self.lock:
            now = time.monotonic()
            arrived = req.arrived if req.arrived is not None else now
            t, wall = arrived - self.started, time.time() - (now - arrived)
            answer, fault, rate_limited = self._decide(app, call, answer, t)
            reply = disfigure(answer.reply, fault, call.request_id)
            self.recorder.add(
                CallRecord(
                    seq=len(self.recorder.calls), t=t, wall=wall, vendor=vendor, operation=call.operation,
                    account=call.account, account_name=call.account_name, group=call.group, ids=call.ids,
                    status=None if reply.dropped else reply.status, code=answer.code, request_id=call.request_id,
                    deleted=answer.deleted, throttled=answer.throttled, rate_limited=rate_limited,
                    batch_limit_violation=answer.batch_violation, auth_failure=answer.auth_failure,
                    fault=fault.label, fault_applied=fault.apply_first if fault.kind in ("drop", "malformed") else None,
                    delay=fault.delay,
                )
            )
        return reply, fault.delay

    def _decide(self, app: VendorApp, call: Call, answer: Answer | None, t: float) -> tuple[Answer, Fault, bool]:
        if answer is not None:
            return answer, NO_FAULT, False
        # Only vendors that refuse a reused nonce put it on the call.
        if call.nonce is not None and call.account is not None:
            if not self.nonces.first_use(app.vendor, call.account, call.nonce, t):
                return app.nonce_used(call), NO_FAULT, False
        if not self.limits.admit(app.vendor, call.operation, call.account, t):
            return app.throttled(call), NO_FAULT, True
        fault = self.faults.roll(app.vendor, call.operation)
        if fault.kind == "unavailable":
            return app.unavailable(call, self.faults.rng), fault, False
        if fault.kind == "throttle":
            return app.throttled(call), fault, False
        if fault.skips_execution:
            return Answer(Reply(200)), fault, False
        return app.execute(self.store, call), fault, False

    # The control surface (Python API and /_sandbox/), each under the lock.

    def seed(self, seed: Mapping[str, Any]) -> dict[str, int]:
        with self.lock:
            added = self.store.seed(seed, self.config.account_key)
        # A seeded store lives until reset: frozen, the cyclic GC no longer walks its hundreds of
        # thousands of objects, whose full collections paused arrival stamps by tens of milliseconds.
        gc.freeze()
        return added

    def media(self) -> dict[str, Any]:
        with self.lock:
            return {"counts": self.store.counts(), "media": self.store.dump()}

    def held(self) -> dict[str, int]:
        with self.lock:
            return self.store.counts()

    def set_faults(self, rules: Mapping[str, Any], *, seed: int | None = None, replace: bool = False) -> dict[str, Any]:
        with self.lock:
            self.faults.update(rules, seed=seed, replace=replace)
            return self.faults.as_dict()

    def get_faults(self) -> dict[str, Any]:
        with self.lock:
            return self.faults.as_dict()

    def set_limits(self, limits: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.limits.update(limits)
            return self.limits.as_dict()

    def get_limits(self) -> dict[str, Any]:
        with self.lock:
            return self.limits.as_dict()

    def stats(self, window: float | None = None) -> dict[str, Any]:
        with self.lock:
            return {**self.recorder.stats(self.limits.period_for, window), "held": self.store.counts()}

    def calls(self, since: int = 0) -> list[dict[str, Any]]:
        with self.lock:
            return self.recorder.calls_since(since)

    def deleted(self, since: int = 0) -> list[dict[str, Any]]:
        with self.lock:
            return self.recorder.deletions_since(since)

    def reset(self, *, media: bool = True, records: bool = True, faults: bool = True, limits: bool = True) -> None:
        """Back to the start configuration: media emptied, records, windows and nonces cleared, the
        configured faults and limits (with the fault RNG reseeded) restored; each part optional."""
        with self.lock:
            if media:
                self.store.clear()
            if records:
                self.recorder.clear()
                self.nonces.clear()
                self.limits.clear_windows()
            if faults:
                self.faults = FaultPlan(dict(self.config.faults), self.config.fault_seed)
            if limits:
                self.limits = LimitTable(self.config.limits)
