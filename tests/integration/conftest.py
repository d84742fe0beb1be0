"""A whole mediapurge on real services: PostgreSQL, Redis, Celery worker processes, and the sandbox.

The stack mirrors docker-compose.yml with the same commands run directly: the migration, then
``celery -A tasks.app worker`` processes configured only through MEDIAPURGE_* environment variables.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from sqlalchemy import make_url, text

from migrations.runner import upgrade
from models.db import make_engine, make_session_factory
from tests.conftest import _admin_engine
from worker.celery_config import QUEUE
from worker.embedded import WorkerProcess, free_port
from worker.producer import Submitted
from worker.refs import plan_argsrepr
from worker.sandbox import Sandbox, SandboxConfig
from worker.settings import Settings

REDIS_URL_ENV = "MEDIAPURGE_TEST_REDIS_URL"
# A database number of its own, flushed before use, so tests never touch anyone's data in db 0.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/11"

ACCOUNTS = {
    "aliyun": {"default": {"access_key_id": "LTAItest", "access_key_secret": "aliyun-test-secret-9f8e7d"}},
    "zego": {
        "default": {"app_id": 1234567890, "server_secret": "zego-test-secret-0123456789abcdef"},
        # Configured with a wrong secret: the vendor refuses it, and the account is halted for the job.
        "broken": {"app_id": 222, "server_secret": "not-the-secret-the-vendor-knows"},
    },
    # The published Huawei limit is 100 calls/min; tests use a faster one (the sandbox is told the same).
    "huawei": {"default": {"project_id": "proj01", "access_key": "HWAKTEST", "secret_key": "huawei-test-secret-abc", "rate_limits": {"DeleteAssets": "20/s"}}},
}
SANDBOX_LIMITS = {"huawei.DeleteAssets": "20/s"}
RETRY = {"max_attempts": 8, "backoff_base": 0.05, "backoff_cap": 0.5}


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get(REDIS_URL_ENV, DEFAULT_REDIS_URL)
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {url} is unreachable ({exc}); start it with `bash .ci/services`", pytrace=False)
    return url


@dataclass
class Stack:
    settings: Settings
    env: dict[str, str]
    sandbox: Sandbox
    sessions: object
    workers: list[WorkerProcess] = field(default_factory=list)
    log_dir: Path = Path(".")

    def enqueue(self, job_id: int) -> None:
        from celery import Celery

        with Celery(broker=self.settings.broker_url) as producer_app:
            producer_app.send_task("mediapurge.plan_job", args=[job_id], queue=QUEUE, argsrepr=plan_argsrepr(job_id))

    def submit(self, items, **kwargs) -> Submitted:  # noqa: ANN001
        from worker import jobs

        return jobs.submit(items, settings=self.settings, sessions=self.sessions, enqueue=self.enqueue, **kwargs)

    def wait(self, job_id: int, timeout: float = 120.0):  # noqa: ANN201
        from worker import jobs

        try:
            return jobs.wait_for_job(self.sessions, job_id, timeout=timeout, poll=0.2)
        except TimeoutError:
            logs = "\n".join(w.log_path.read_text(errors="replace")[-3000:] for w in self.workers)
            raise AssertionError(f"job {job_id} did not finish; worker logs:\n{logs}") from None

    def add_worker(self, name: str, concurrency: int = 4, *, beat: bool = False, loglevel: str = "INFO") -> WorkerProcess:
        """A worker process; ``beat=True`` also runs Celery beat inside it (the sweeper's schedule)."""
        extra = ("--beat", "--schedule", str(self.log_dir / f"{name}-beat-schedule")) if beat else ()
        worker = WorkerProcess(
            self.env, self.log_dir / f"{name}.log", name=name, concurrency=concurrency, loglevel=loglevel, extra_args=extra
        )
        worker.start()
        worker.wait_ready()
        self.workers.append(worker)
        return worker


@pytest.fixture(scope="module")
def stack_env() -> dict[str, str]:
    """Extra MEDIAPURGE_* variables for a module's workers; a test module overrides this fixture."""
    return {}


@pytest.fixture(scope="module")
def stack(pg_server_url: str, redis_url: str, stack_env: dict[str, str], tmp_path_factory) -> Iterator[Stack]:  # noqa: ANN001
    name = f"mediapurge_it_{uuid.uuid4().hex[:10]}"
    admin = _admin_engine(pg_server_url)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    database_url = make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)
    redis.Redis.from_url(redis_url).flushdb()
    port = free_port()
    accounts = json.loads(json.dumps(ACCOUNTS))
    for vendor, by_name in accounts.items():
        for account in by_name.values():
            account["endpoint"] = f"http://127.0.0.1:{port}/{vendor}"
    env = {
        **os.environ,
        "MEDIAPURGE_DATABASE_URL": database_url,
        "MEDIAPURGE_BROKER_URL": redis_url,
        "MEDIAPURGE_ACCOUNTS": json.dumps(accounts),
        "MEDIAPURGE_RETRY": json.dumps(RETRY),
        # Here eight worker processes, PostgreSQL and the sandbox (which timestamps arrivals inside this
        # test process) share two cores: a call can reach the sandbox 50-150 ms after its slot, bunching
        # arrivals. Headroom 0.85 leaves 176 ms of slack per window, so the sandbox's window counts test
        # the limiter, not the scheduler. Fidelity at the default 0.99 is the benchmark's job.
        "MEDIAPURGE_RATE_LIMIT_HEADROOM": "0.85",
        **stack_env,
    }
    env.pop("MEDIAPURGE_CONFIG", None)
    settings = Settings(database_url=database_url, broker_url=redis_url, accounts=accounts, retry=RETRY)
    # The vendor knows the broken account by its real secret, not the one mediapurge was given.
    sandbox_config = SandboxConfig.from_settings(settings, limits=SANDBOX_LIMITS)
    sandbox_config.zego = [c if c.name != "broken" else type(c)("broken", 222, "the-real-secret") for c in sandbox_config.zego]
    upgrade(database_url)
    engine = make_engine(database_url)
    sandbox = Sandbox(sandbox_config, port=port).start()
    built = Stack(settings, env, sandbox, make_session_factory(engine), log_dir=tmp_path_factory.mktemp("workers"))
    try:
        yield built
    finally:
        for worker in built.workers:
            worker.stop()
        sandbox.stop()
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
