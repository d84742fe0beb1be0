"""The values passed between the sandbox's HTTP layer, its engine and its vendor apps.

``Incoming`` is a request as received; a vendor app turns it into a ``Call`` (what is asked, by whom) and
later into an ``Answer`` (the ``Reply`` to send, plus what the engine records about it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl

FORM_TYPE = "application/x-www-form-urlencoded"


@dataclass
class Incoming:
    """One HTTP request as received: the path and query undecoded, header names lower-cased."""

    method: str
    path: str
    raw_query: str
    headers: dict[str, str]
    body: bytes = b""
    # When the request arrived (time.monotonic(); see server.py): a vendor's gateway counts a call against
    # its rate limit on arrival, before any parsing or signature check. None: when handled.
    arrived: float | None = None

    @cached_property
    def query(self) -> list[tuple[str, str]]:
        return parse_qsl(self.raw_query, keep_blank_values=True)

    @cached_property
    def form(self) -> list[tuple[str, str]]:
        """The query's parameters, then those of a urlencoded form body (RPC APIs accept either)."""
        content_type = self.headers.get("content-type", "").split(";")[0].strip().lower()
        if self.body and content_type == FORM_TYPE:
            return [*self.query, *parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True)]
        return self.query


@dataclass(slots=True)
class Reply:
    """What to send back; ``dropped`` closes the connection without sending anything."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    dropped: bool = False

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> "Reply":
        body = json.dumps(payload, separators=(",", ":")).encode()
        return cls(status, body, {"Content-Type": "application/json;charset=utf-8", **(headers or {})})


@dataclass(slots=True)
class Answer:
    """A vendor app's answer to a call and the facts the engine records about it."""

    reply: Reply
    code: str | None = None  # the vendor's own code (Aliyun "Throttling.User", ZEGO "6"); None for plain success
    deleted: list[str] = field(default_factory=list)
    throttled: bool = False
    batch_violation: bool = False
    auth_failure: bool = False


@dataclass(slots=True)
class Call:
    """What a request asks for, as far as it could be read. Unknown parts stay None."""

    request_id: str
    operation: str | None = None
    account: str | None = None  # the vendor's own account key: AccessKeyId, AppId, project id
    account_name: str | None = None  # the name mediapurge's settings give that account
    group: str | None = None  # VideoId, MediaType, ZEGO Vendor; None for Huawei
    ids: list[str] = field(default_factory=list)
    auth_scheme: str | None = None  # how the request is signed: "rpc", "acs3", "md5", "aksk", "token"
    nonce: str | None = None  # checked for reuse by the engine when the vendor forbids it
    params: dict[str, str] = field(default_factory=dict)
    credential: Any = field(default=None, repr=False)
    refusal: Answer | None = None  # an answer already decided while parsing (unknown action, missing parameter)
