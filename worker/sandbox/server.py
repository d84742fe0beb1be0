"""The sandbox on one loopback port: ``/aliyun/``, ``/zego/``, ``/huawei/`` and the control API ``/_sandbox/``.

stdlib ``ThreadingHTTPServer`` with HTTP/1.1 keep-alive, one daemon thread per connection, each answer
written in a single send with Nagle off (a header write then a body write would stall on delayed ACKs).
Nothing is logged: requests carry signatures and tokens.

A call's arrival is stamped by the kernel when its last bytes were received (``SO_TIMESTAMPNS``, Linux),
not when a handler thread got to it: on a busy host the sandbox's threads wait for the GIL and the CPU
for milliseconds, sometimes a hundred, and a vendor's gateway counting by such stamps would see calls
bunched together that arrived apart. Elsewhere the handler's clock stands in.
"""

from __future__ import annotations

import io
import json
import socket
import struct
import socketserver
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from worker.sandbox import control
from worker.sandbox.config import SandboxConfig
from worker.sandbox.engine import Engine
from worker.sandbox.messages import Incoming, Reply

DEFAULT_PORT = 8790

# Linux's SO_TIMESTAMPNS (also the control message's type): the socket module does not export it.
_SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("@ll")


class _StampingReader(io.RawIOBase):
    """A socket's bytes, noting the kernel's receive time (Unix time) of the last ones read."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.received_at: float | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # noqa: ANN001
        size, ancillary, _flags, _address = self._sock.recvmsg_into([buffer], socket.CMSG_SPACE(_TIMESPEC.size))
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
                seconds, nanoseconds = _TIMESPEC.unpack_from(data)
                self.received_at = seconds + nanoseconds / 1e9
        return size


def _kernel_stamps(sock: socket.socket) -> _StampingReader | None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    except OSError:  # not Linux
        return None
    return _StampingReader(sock)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mediapurge-sandbox"
    disable_nagle_algorithm = True
    server: "_Server"

    def setup(self) -> None:
        super().setup()
        self._stamps = _kernel_stamps(self.connection)
        if self._stamps is not None:
            self.rfile = io.BufferedReader(self._stamps)

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        headers = {name.lower(): value for name, value in self.headers.items()}
        body = self._read_body(headers)
        req = Incoming(self.command, path, query, headers, body, self._arrival())
        try:
            reply, delay = self.server.route(req)
        except Exception:  # a sandbox bug: say so rather than hang the client
            traceback.print_exc(file=sys.stderr)
            reply, delay = Reply.json(500, {"error": "internal sandbox error, see its stderr"}), 0.0
        if delay > 0:
            time.sleep(delay)
        if reply.dropped:
            self.close_connection = True
            return
        try:
            self._write(reply)
        except OSError:  # the client gave up (a timeout during a slow answer): nothing to answer
            self.close_connection = True

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def _arrival(self) -> float:
        """When the request's last bytes arrived, on the time.monotonic() clock."""
        handled = time.monotonic()
        received_at = self._stamps.received_at if self._stamps is not None else None
        if received_at is None:
            return handled
        # Requests on a connection come one at a time (no pipelining), so the last read was this one's.
        return min(handled, handled - (time.time() - received_at))

    def _read_body(self, headers: Mapping[str, str]) -> bytes:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return b"".join(chunks)
        length = int(headers.get("content-length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _write(self, reply: Reply) -> None:
        lines = [f"HTTP/1.1 {reply.status} {_phrase(reply.status)}", f"Server: {self.server_version}"]
        lines += [f"{name}: {value}" for name, value in reply.headers.items()]
        lines.append(f"Content-Length: {len(reply.body)}")
        if self.close_connection:
            lines.append("Connection: close")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], engine: Engine) -> None:
        super().__init__(address, _Handler)
        self.engine = engine
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def server_bind(self) -> None:
        # HTTPServer.server_bind would look up the host's FQDN, a DNS query that can take seconds.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client hanging up is not worth a traceback
            super().handle_error(request, client_address)

    def route(self, req: Incoming) -> tuple[Reply, float]:
        if req.path.startswith(control.PREFIX + "/") or req.path == control.PREFIX:
            return control.handle(self.engine, req), 0.0
        vendor = req.path.split("/", 2)[1]
        if vendor in self.engine.apps:
            return self.engine.handle(vendor, req)
        known = [f"/{vendor}/" for vendor in sorted(self.engine.apps)] + [f"{control.PREFIX}/"]
        return Reply.json(404, {"error": f"no such path {req.path}", "paths": known}), 0.0

    # Keep-alive connections outlive shutdown(); track them so stop() can close them.
    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            open_now = list(self._connections)
        for conn in open_now:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def load_seed(path: str | Path) -> dict[str, Any]:
    """A seed file (state.py documents the format)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


class Sandbox:
    """A vendor sandbox serving on a background thread; ``start()`` returns at once."""

    def __init__(self, config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config or SandboxConfig()
        self.engine = Engine(self.config)
        self.host, self._requested_port = host, port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "Sandbox":
        if self._server is not None:
            raise RuntimeError("the sandbox is already running")
        self._server = _Server((self.host, self._requested_port), self.engine)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join()
        self._server = self._thread = None

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the sandbox is not running")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}"

    def endpoint(self, vendor: str) -> str:
        """The endpoint / base URL to configure for ``vendor``'s accounts, e.g. ``http://127.0.0.1:PORT/zego``."""
        if vendor not in self.engine.apps:
            raise ValueError(f"unknown vendor {vendor!r}; known: {sorted(self.engine.apps)}")
        return f"{self.url}/{vendor}"

    def seed(self, seed: Mapping[str, Any] | str | Path) -> dict[str, int]:
        """Add media (a seed mapping or a seed file); returns the ids added per action."""
        return self.engine.seed(seed if isinstance(seed, Mapping) else load_seed(seed))

    def media(self) -> dict[str, Any]:
        return self.engine.media()

    def set_faults(self, rules: Mapping[str, Any], *, seed: int | None = None, replace: bool = False) -> dict[str, Any]:
        return self.engine.set_faults(rules, seed=seed, replace=replace)

    def faults(self) -> dict[str, Any]:
        return self.engine.get_faults()

    def set_limits(self, limits: Mapping[str, Any]) -> dict[str, Any]:
        return self.engine.set_limits(limits)

    def limits(self) -> dict[str, Any]:
        return self.engine.get_limits()

    def stats(self, window: float | None = None) -> dict[str, Any]:
        return self.engine.stats(window)

    def calls(self, since: int = 0) -> list[dict[str, Any]]:
        return self.engine.calls(since)

    def deleted(self, since: int = 0) -> list[dict[str, Any]]:
        return self.engine.deleted(since)

    def reset(self, *, media: bool = True, records: bool = True, faults: bool = True, limits: bool = True) -> None:
        self.engine.reset(media=media, records=records, faults=faults, limits=limits)


def serve_forever(
    config: SandboxConfig,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    *,
    seed: Mapping[str, Any] | str | Path | None = None,
    ready: Callable[[Sandbox], None] | None = None,
) -> None:
    """Serve until interrupted (Ctrl-C); ``ready`` is called once listening (e.g. to print the URLs)."""
    # A process of its own: its threads hand the GIL over every 0.5 ms instead of 5 ms, so no arrival
    # waits behind another request's parsing before it is stamped.
    sys.setswitchinterval(0.0005)
    sandbox = Sandbox(config, host, port).start()
    try:
        if seed is not None:
            sandbox.seed(seed)
        if ready is not None:
            ready(sandbox)
        while sandbox._thread is not None and sandbox._thread.is_alive():
            sandbox._thread.join(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
