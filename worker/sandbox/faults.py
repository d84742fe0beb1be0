"""Fault injection: what can go wrong between a client and a vendor, drawn from one seeded RNG.

Rules are kept per scope, the most specific winning: ``"zego.DeleteMedia"``, then ``"zego"``, then ``"*"``.
Per call at most one of unavailable / throttle / drop / malformed happens (their probabilities add up
to at most 1); a slow answer is drawn independently, and ``latency`` is added to every answer. The same
seed and the same sequence of calls give the same faults.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from worker.sandbox.messages import Reply

ALL = "*"
EXCLUSIVE_KINDS = ("unavailable", "throttle", "drop", "malformed")
MALFORMED_KINDS = ("html", "truncated", "shape")


@dataclass
class FaultSpec:
    unavailable: float = 0.0  # a 503 in the vendor's words
    throttle: float = 0.0  # the vendor's throttling answer, whatever the real rate
    drop: float = 0.0  # the connection closes without an answer
    malformed: float = 0.0  # an HTML error page, truncated JSON, or JSON of the wrong shape
    slow: float = 0.0  # the answer comes ``slow_seconds`` late (the deletion is applied at once)
    slow_seconds: float = 1.0
    latency: float = 0.0  # added to every answer in scope
    # Whether the deletion was applied before a drop / a malformed answer (an answer lost in transit);
    # a probability, True meaning always.
    apply_before_drop: float = 0.0
    apply_before_malformed: float = 0.0
    malformed_kinds: tuple[str, ...] = MALFORMED_KINDS

    def __post_init__(self) -> None:
        for name in (*EXCLUSIVE_KINDS, "slow", "apply_before_drop", "apply_before_malformed"):
            value = float(getattr(self, name))
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"fault {name} is a probability between 0 and 1, not {value}")
            setattr(self, name, value)
        if sum(getattr(self, kind) for kind in EXCLUSIVE_KINDS) > 1.0 + 1e-9:
            raise ValueError(f"the probabilities of {', '.join(EXCLUSIVE_KINDS)} add up to more than 1")
        if self.slow_seconds < 0 or self.latency < 0:
            raise ValueError("slow_seconds and latency must not be negative")
        self.malformed_kinds = tuple(self.malformed_kinds)
        if not self.malformed_kinds or not set(self.malformed_kinds) <= set(MALFORMED_KINDS):
            raise ValueError(f"malformed_kinds must be a non-empty subset of {MALFORMED_KINDS}")

    @classmethod
    def of(cls, value: "FaultSpec | Mapping[str, Any]") -> "FaultSpec":
        if isinstance(value, FaultSpec):
            return value
        known = {f.name for f in fields(cls)}
        unknown = set(value) - known
        if unknown:
            raise ValueError(f"unknown fault setting(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**value)


@dataclass(frozen=True, slots=True)
class Fault:
    """What happens to one call."""

    kind: str | None = None  # one of EXCLUSIVE_KINDS, or None
    apply_first: bool = True  # for drop / malformed: whether the deletion was applied
    malformed_kind: str | None = None
    delay: float = 0.0  # seconds to wait before answering (latency + slow)
    slow: bool = False

    @property
    def label(self) -> str | None:
        parts = [self.malformed_kind and f"malformed:{self.malformed_kind}" or self.kind]
        if self.slow:
            parts.append("slow")
        return "+".join(p for p in parts if p) or None

    @property
    def skips_execution(self) -> bool:
        return self.kind in ("unavailable", "throttle") or (self.kind in ("drop", "malformed") and not self.apply_first)


NO_FAULT = Fault()


@dataclass
class FaultPlan:
    """The fault rules in force and the RNG they draw from. Not thread-safe: the engine's lock covers it."""

    rules: dict[str, FaultSpec] = field(default_factory=dict)
    seed: int | None = 0

    def __post_init__(self) -> None:
        self.rules = {scope: FaultSpec.of(spec) for scope, spec in self.rules.items()}
        self.rng = random.Random(self.seed)

    def update(self, rules: Mapping[str, Any], *, seed: int | None = None, replace: bool = False) -> None:
        """Set (or with a None value, remove) rules by scope; ``replace`` drops every other rule first."""
        parsed = {scope: None if spec is None else FaultSpec.of(spec) for scope, spec in rules.items()}
        if replace:
            self.rules.clear()
        for scope, spec in parsed.items():
            if spec is None:
                self.rules.pop(scope, None)
            else:
                self.rules[scope] = spec
        if seed is not None:
            self.seed = seed
            self.rng = random.Random(seed)

    def spec_for(self, vendor: str, operation: str | None) -> FaultSpec | None:
        for scope in (f"{vendor}.{operation}", vendor, ALL):
            spec = self.rules.get(scope)
            if spec is not None:
                return spec
        return None

    def roll(self, vendor: str, operation: str | None) -> Fault:
        spec = self.spec_for(vendor, operation)
        if spec is None:
            return NO_FAULT
        rng = self.rng
        draw, kind = rng.random(), None
        for candidate in EXCLUSIVE_KINDS:
            draw -= getattr(spec, candidate)
            if draw < 0:
                kind = candidate
                break
        apply_first, malformed_kind = True, None
        if kind == "drop":
            apply_first = rng.random() < spec.apply_before_drop
        elif kind == "malformed":
            apply_first = rng.random() < spec.apply_before_malformed
            malformed_kind = rng.choice(spec.malformed_kinds)
        slow = spec.slow > 0 and rng.random() < spec.slow
        delay = spec.latency + (spec.slow_seconds if slow else 0.0)
        return Fault(kind, apply_first, malformed_kind, delay, slow)

    def as_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "rules": {scope: asdict(spec) for scope, spec in sorted(self.rules.items())}}


_HTML_PAGE = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


def disfigure(reply: Reply, fault: Fault, request_id: str) -> Reply:
    """The reply as the fault delivers it: unchanged, dropped, or malformed."""
    if fault.kind == "drop":
        return Reply(0, dropped=True)
    if fault.kind != "malformed":
        return reply
    if fault.malformed_kind == "html":
        return Reply(502, _HTML_PAGE, {"Content-Type": "text/html"})
    if fault.malformed_kind == "truncated":
        if fault.apply_first and reply.body:
            status, whole = reply.status, reply.body
        else:
            status, whole = 200, json.dumps({"RequestId": request_id, "Code": 0}).encode()
        return Reply(status, whole[: max(1, len(whole) // 2)], {**reply.headers, "Content-Type": "application/json"})
    # Valid JSON, but not the shape the vendor documents.
    return Reply(200, json.dumps(["unexpected", {"request": request_id}]).encode(), {"Content-Type": "application/json"})
