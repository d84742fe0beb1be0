"""Servers for running without installed services: an in-process Redis speaker and worker processes.

The embedded Redis is fakeredis's TCP server (with Lua, which kombu's EVALSHA and our rate limiter
need); real worker processes connect to it like to any Redis. shared/celery-notes.md compares the
other options (SQL and filesystem brokers lose SIGKILLed tasks, memory:// is single-process).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from worker.celery_config import QUEUE


class EmbeddedRedis:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        from fakeredis import TcpFakeServer

        self._server = TcpFakeServer((host, port), server_type="redis")
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="embedded-redis", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"redis://{host}:{port}/0"

    def start(self) -> "EmbeddedRedis":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "EmbeddedRedis":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class WorkerProcess:
    """``celery -A tasks.app worker`` as a child process, its output in a log file."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        *,
        name: str = "worker",
        concurrency: int = 4,
        pool: str = "prefork",
        loglevel: str = "INFO",
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.env = env
        self.log_path = log_path
        self.args = [
            sys.executable, "-m", "celery", "-A", "tasks.app", "worker", "-n", f"{name}@%h", "-Q", QUEUE,
            "--pool", pool, "--concurrency", str(concurrency), "--loglevel", loglevel, "--without-mingle",
            "--without-gossip", *extra_args,
        ]
        self.process: subprocess.Popen | None = None

    def start(self) -> "WorkerProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.args, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.returncode}; see {self.log_path}")
            if self.log_path.exists() and b" ready." in self.log_path.read_bytes():
                return
            time.sleep(0.1)
        raise TimeoutError(f"worker not ready after {timeout} s; see {self.log_path}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self, timeout: float = 20.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # warm shutdown: running tasks finish
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def kill(self) -> None:
        """SIGKILL the whole process group, as the OOM killer or a hard deploy would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def __enter__(self) -> "WorkerProcess":
        self.start()
        self.wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
