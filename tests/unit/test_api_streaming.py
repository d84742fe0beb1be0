"""The streamed JSON Lines bridge on SQLite: a body is submitted line by line, and a body cut short (the
client went away) or over the limit writes nothing."""

from __future__ import annotations

import json

import anyio
import pytest
from starlette.requests import Request

from models import Item, Job
from worker.api.streaming import BodyIncomplete, consume_lines
from worker.errors import PayloadTooLarge
from worker.producer import submit_job
from worker.readers import read_jsonl
from worker.validation import ItemValidator

VALIDATOR = ItemValidator({"huawei": {"default"}})
LINES = b"".join(json.dumps({"action": "huawei.DeleteAssets", "asset_id": f"s{i:04}"}).encode() + b"\n" for i in range(500))


def request_with(chunks: list[bytes], *, disconnect: bool = False) -> Request:
    """An ASGI request whose body arrives in ``chunks`` (then, if ``disconnect``, the client leaves)."""
    messages = [{"type": "http.request", "body": chunk, "more_body": True} for chunk in chunks]
    messages.append({"type": "http.disconnect"} if disconnect else {"type": "http.request", "body": b"", "more_body": False})

    async def receive() -> dict:
        return messages.pop(0)

    return Request({"type": "http", "method": "POST", "path": "/v1/jobs", "headers": []}, receive)


def submit_stream(sessions, request: Request, limit: int = 10**9):
    def consume(lines):
        return submit_job(sessions, read_jsonl(lines), VALIDATOR, lambda job_id: None)

    return anyio.run(consume_lines, request, limit, consume)


def cut(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_a_streamed_body_is_submitted_whatever_its_chunking(sessions):
    submitted = submit_stream(sessions, request_with(cut(LINES, 777)))  # lines cut across chunks

    assert (submitted.created, submitted.item_count) == (True, 500)
    with sessions() as s:
        assert sorted(s.query(Item.media_id)) == [(f"s{i:04}",) for i in range(500)]


def test_a_last_line_without_newline_is_kept(sessions):
    submitted = submit_stream(sessions, request_with([LINES.rstrip(b"\n")]))

    assert submitted.item_count == 500


def test_a_client_that_leaves_mid_stream_writes_nothing(sessions):
    with pytest.raises(BodyIncomplete):
        submit_stream(sessions, request_with(cut(LINES, 1000)[:5], disconnect=True))

    with sessions() as s:
        assert (s.query(Job).count(), s.query(Item).count()) == (0, 0)


def test_a_body_over_the_limit_writes_nothing(sessions):
    with pytest.raises(PayloadTooLarge, match="larger than 4,000 bytes"):
        submit_stream(sessions, request_with(cut(LINES, 1000)), limit=4000)

    with sessions() as s:
        assert (s.query(Job).count(), s.query(Item).count()) == (0, 0)
