"""The one interface each vendor of the sandbox implements; the engine runs them all the same way.

Order of a call (engine.Engine.handle): ``parse`` -> ``authenticate`` -> nonce reuse (when the call
carries one) -> the rate limit (``throttled``) -> a fault (``unavailable``, ``throttled``, drop, malformed)
-> ``execute``. Apps never lock, sleep or record: the engine does.
"""

from __future__ import annotations

import random
import uuid
from abc import ABC, abstractmethod
from typing import ClassVar

from worker.sandbox.config import SandboxConfig
from worker.sandbox.messages import Answer, Call, Incoming
from worker.sandbox.state import MediaStore


def uuid_request_id() -> str:
    return str(uuid.uuid4()).upper()


class VendorApp(ABC):
    vendor: ClassVar[str]  # "aliyun", "zego", "huawei": also the URL prefix

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config

    def new_request_id(self) -> str:
        return uuid_request_id()

    @abstractmethod
    def parse(self, req: Incoming, request_id: str) -> Call:
        """What the request asks for; ``Call.refusal`` set when it cannot be served at all."""

    @abstractmethod
    def authenticate(self, call: Call, req: Incoming, now: float) -> Answer | None:
        """None when the credentials, timestamp and signature are good, else the refusal."""

    def nonce_used(self, call: Call) -> Answer:
        raise NotImplementedError(f"{self.vendor} does not check nonces")

    @abstractmethod
    def throttled(self, call: Call) -> Answer:
        """The vendor's throttling answer."""

    @abstractmethod
    def unavailable(self, call: Call, rng: random.Random) -> Answer:
        """The vendor's 'service unavailable' answer."""

    @abstractmethod
    def execute(self, store: MediaStore, call: Call) -> Answer:
        """Validate the business parameters and apply the deletion, all or nothing as the vendor does."""
