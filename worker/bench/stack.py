"""What a benchmark scenario runs on: a fresh PostgreSQL database, a Redis database, the vendor sandbox in
a process of its own (so its arrival times are not skewed by the load it measures), and Celery worker
processes, all on loopback and configured only through MEDIAPURGE_* variables, as in production.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
from sqlalchemy import create_engine, make_url, text

from worker.embedded import WorkerProcess, free_port
from worker.settings import Settings

# Accounts of the benchmark: names and secrets exist only on loopback.
ZEGO_APP = 1234567890
ACCOUNTS: dict[str, dict[str, dict[str, Any]]] = {
    "zego": {
        "default": {"app_id": ZEGO_APP, "server_secret": "bench-zego-secret-0123456789"},
        "eu": {"app_id": 987654321, "server_secret": "bench-zego-eu-secret-abcdef"},
    },
    "aliyun": {"default": {"access_key_id": "LTAIbench", "access_key_secret": "bench-aliyun-secret-9f8e7d"}},
    "huawei": {"default": {"project_id": "bench01", "access_key": "HWAKBENCH", "secret_key": "bench-huawei-secret-abc"}},
}


@dataclass(frozen=True)
class Services:
    """Where the benchmark may create its databases (a role allowed to CREATE DATABASE) and its Redis."""

    postgres_admin_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    redis_url: str = "redis://127.0.0.1:6379/15"


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident set (VmHWM), in MiB; None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return found


def _ahead_of_the_workers() -> None:
    """The sandbox stands for the vendors' own machines, whose arrival stamps never wait for our
    workers to be scheduled: where allowed (root), it runs at a higher scheduling priority than they do."""
    try:
        os.nice(-10)
    except OSError:
        pass


class SandboxProcess:
    """``mediapurge sandbox`` as a child process, driven through its control API."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._client = httpx.Client(base_url=self.url + "/_sandbox", timeout=120)
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(Path(sys.executable).with_name("mediapurge")), "sandbox", "--port", str(self.port)],
                env=dict(env), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=_ahead_of_the_workers,
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                self.get("health")
                return
            except httpx.TransportError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the sandbox did not start; see {log_path}") from None
                time.sleep(0.1)

    def endpoint(self, vendor: str) -> str:
        return f"{self.url}/{vendor}"

    def get(self, path: str, **params: Any) -> Any:
        response = self._client.get(f"/{path}", params=params)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: Any) -> Any:
        response = self._client.post(f"/{path}", content=json.dumps(body))
        response.raise_for_status()
        return response.json()

    def calls(self) -> list[dict[str, Any]]:
        return self.get("calls")["calls"]

    def stop(self) -> None:
        self._client.close()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@dataclass
class BenchStack:
    database_url: str
    redis_url: str
    env: dict[str, str]
    settings: Settings
    sandbox: SandboxProcess
    log_dir: Path
    workers: list[WorkerProcess] = field(default_factory=list)
    _drop: Any = None

    @classmethod
    def start(
        cls, services: Services, log_dir: Path, *, rate_limits: Mapping[str, Mapping[str, str]] | None = None,
        headroom: float | None = None, extra_env: Mapping[str, str] | None = None,
    ) -> "BenchStack":
        """A stack with a fresh database. ``rate_limits``: {"zego.default": {"DeleteMedia": "20/s"}}."""
        name = f"mediapurge_bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(services.postgres_admin_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        database_url = make_url(services.postgres_admin_url).set(database=name).render_as_string(hide_password=False)
        redis.Redis.from_url(services.redis_url).flushdb()

        def drop() -> None:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

        accounts = json.loads(json.dumps(ACCOUNTS))
        for scope, limits in (rate_limits or {}).items():
            vendor, account = scope.split(".")
            accounts[vendor][account]["rate_limits"] = dict(limits)
        log_dir.mkdir(parents=True, exist_ok=True)
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAPURGE_")}
        env = {
            **base_env,
            "MEDIAPURGE_DATABASE_URL": database_url,
            "MEDIAPURGE_BROKER_URL": services.redis_url,
            "MEDIAPURGE_ACCOUNTS": json.dumps(accounts),
            **({"MEDIAPURGE_RATE_LIMIT_HEADROOM": str(headroom)} if headroom is not None else {}),
            **(extra_env or {}),
        }
        sandbox = SandboxProcess(env, log_dir / "sandbox.log")
        for vendor, by_name in accounts.items():
            for account in by_name.values():
                account["endpoint"] = sandbox.endpoint(vendor)
        env["MEDIAPURGE_ACCOUNTS"] = json.dumps(accounts)
        from migrations.runner import upgrade

        upgrade(database_url)
        settings = Settings(database_url=database_url, broker_url=services.redis_url, accounts=accounts)
        return cls(database_url, services.redis_url, env, settings, sandbox, log_dir, _drop=drop)

    def add_workers(
        self, count: int, concurrency: int, *, stagger: float = 0.0, prefix: str = "w", **worker_options: Any
    ) -> None:
        """``count`` worker processes, each started ``stagger`` seconds after the previous one."""
        for i in range(count):
            worker = WorkerProcess(
                self.env, self.log_dir / f"{prefix}{i}.log", name=f"{prefix}{i}", concurrency=concurrency,
                loglevel="INFO", **worker_options,
            )
            worker.start()
            self.workers.append(worker)
            if stagger and i < count - 1:
                time.sleep(stagger)
        for worker in self.workers:
            worker.wait_ready()

    def submit(self, items: Iterable[dict[str, Any]] | Path) -> tuple[int, float]:
        """Submit through the ordinary path (validation, one transaction, a plan_job message); returns
        (job id, submit time as Unix seconds)."""
        from celery import Celery

        from models.db import make_engine, make_session_factory
        from worker import jobs
        from worker.celery_config import QUEUE

        engine = make_engine(self.database_url)
        with Celery(broker=self.redis_url) as producer_app:
            started = time.time()
            submitted = jobs.submit(
                items, settings=self.settings, sessions=make_session_factory(engine),
                enqueue=lambda job_id: producer_app.send_task("mediapurge.plan_job", args=[job_id], queue=QUEUE),
            )
        engine.dispose()
        return submitted.job_id, started

    def wait(self, job_id: int, timeout: float) -> None:
        from models.db import make_engine, make_session_factory
        from worker import jobs

        engine = make_engine(self.database_url)
        try:
            jobs.wait_for_job(make_session_factory(engine), job_id, timeout=timeout, poll=0.5)
        finally:
            engine.dispose()

    def query(self, sql: str, **params: Any) -> list[tuple]:
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as connection:
                return [tuple(row) for row in connection.execute(text(sql), params)]
        finally:
            engine.dispose()

    def peak_rss(self) -> dict[str, float | None]:
        """Peak RSS of the sandbox and of every worker process (its pool children included)."""
        out: dict[str, float | None] = {"sandbox": peak_rss_mb(self.sandbox.process.pid)}
        for worker in self.workers:
            name = worker.log_path.stem
            out[name] = peak_rss_mb(worker.pid)
            children = [peak_rss_mb(child) for child in _children(worker.pid)]
            out[f"{name}-pool-max"] = max((c for c in children if c is not None), default=None)
        return out

    def close(self) -> None:
        for worker in self.workers:
            worker.stop(timeout=5)
        self.sandbox.stop()
        if self._drop is not None:
            self._drop()

    def __enter__(self) -> "BenchStack":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
