"""The executor learns when a request really left (httpcore's trace) on a real loopback connection."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest

from worker.executor import _note_when_written

pytestmark = pytest.mark.integration


class _Answer(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_the_write_time_is_after_the_connection_was_made():
    server = HTTPServer(("127.0.0.1", 0), _Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with httpx.Client() as client:
            request = client.build_request("POST", f"http://127.0.0.1:{server.server_port}/", content=b"x" * 100)
            written = _note_when_written(request)
            before = time.perf_counter()
            response = client.send(request)
            after = time.perf_counter()
        assert response.status_code == 200
        [when] = written
        assert before < when < after
    finally:
        server.shutdown()
