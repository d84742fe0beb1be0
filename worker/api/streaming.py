"""A streamed JSON Lines request body fed to the (synchronous) producer on a worker thread, line by line,
so a million-item submission costs the memory of a few chunks and the event loop never waits on the
database.

The body arrives on the event loop; a bounded memory stream hands its chunks to the thread, which turns
them into lines for worker.readers. The thread sees the end only when the body really ended: a body over
the size limit, or a client that went away, makes the thread raise instead, so the producer rolls back
and nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from starlette.requests import ClientDisconnect, Request

from worker.errors import MediapurgeError, PayloadTooLarge

T = TypeVar("T")

_END = "end"
_TOO_LARGE = "too_large"
_GONE = "gone"
BUFFERED_CHUNKS = 16


class BodyIncomplete(MediapurgeError):
    """The request body ended before it was complete (the client went away); nothing was written."""


async def _feed(request: Request, send: MemoryObjectSendStream, limit: int) -> None:
    received = 0
    async with send:
        try:
            async for chunk in request.stream():
                received += len(chunk)
                if received > limit:
                    await send.send(_TOO_LARGE)
                    return
                if chunk:
                    await send.send(chunk)
        except ClientDisconnect:
            await send.send(_GONE)
            return
        await send.send(_END)


def _lines(receive: MemoryObjectReceiveStream, limit: int) -> Iterator[bytes]:
    """Lines of the body, on the worker thread."""
    buffer = b""
    while True:
        try:
            chunk = anyio.from_thread.run(receive.receive)
        except anyio.EndOfStream:
            raise BodyIncomplete() from None
        if chunk == _END:
            break
        if chunk == _TOO_LARGE:
            raise PayloadTooLarge(f"the streamed submission is larger than {limit:,} bytes (api.max_stream_bytes); nothing was written")
        if chunk == _GONE:
            raise BodyIncomplete()
        buffer += chunk
        if b"\n" in buffer:
            *complete, buffer = buffer.split(b"\n")
            for line in complete:
                yield line + b"\n"
    if buffer:
        yield buffer


async def consume_lines(request: Request, limit: int, consume: Callable[[Iterator[bytes]], T]) -> T:
    """Run ``consume(lines of the body)`` on a worker thread while the body streams in; returns its result
    or raises its exception."""
    send, receive = anyio.create_memory_object_stream(max_buffer_size=BUFFERED_CHUNKS)
    outcome: list = []
    async with anyio.create_task_group() as group:
        group.start_soon(_feed, request, send, limit)
        try:
            outcome.append(await anyio.to_thread.run_sync(lambda: consume(_lines(receive, limit))))
        except Exception as exc:  # noqa: BLE001 - re-raised below, outside the task group's ExceptionGroup
            outcome.append(exc)
        finally:
            group.cancel_scope.cancel()
            receive.close()
    if isinstance(outcome[0], Exception):
        raise outcome[0]
    return outcome[0]
