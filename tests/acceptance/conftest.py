"""The ``mediapurge`` command as a user types it, against real services started for the module.

Every command runs as a child process, configured only through MEDIAPURGE_* environment variables:
a SQLite file migrated with ``mediapurge migrate``, an embedded redis-server as the broker (a server of
the module's own, so no other test run or worker can take its tasks), the vendor sandbox on a free port
with the accounts' endpoints pointing at it, and one Celery worker process started from the same
environment.

The secrets below are distinctive so a test can search every output and log for them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from worker.embedded import EmbeddedRedis, WorkerProcess, free_port
from worker.sandbox import Sandbox, SandboxConfig
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[2]

ALIYUN_SECRET = "aliyun-SECRET-4c1f9e0b7d"
ZEGO_SECRET = "zego-SECRET-8e2d5a6f13"
HUAWEI_SECRET = "huawei-SECRET-b93e7c24aa"
# mediapurge is given this one; the sandbox knows the account by another, so every call is refused.
BROKEN_ZEGO_SECRET = "zego-broken-SECRET-5f0a9d"
SECRETS = (ALIYUN_SECRET, ZEGO_SECRET, HUAWEI_SECRET, BROKEN_ZEGO_SECRET)

ACCOUNTS = {
    "aliyun": {"default": {"access_key_id": "LTAIacceptance", "access_key_secret": ALIYUN_SECRET}},
    "zego": {
        "default": {"app_id": 1234567890, "server_secret": ZEGO_SECRET},
        "broken": {"app_id": 222, "server_secret": BROKEN_ZEGO_SECRET},
    },
    # The published Huawei limit is 100 calls/min; the account and the sandbox both use a faster one.
    "huawei": {
        "default": {"project_id": "accept01", "access_key": "HWAKACCEPT", "secret_key": HUAWEI_SECRET,
                    "rate_limits": {"DeleteAssets": "20/s"}},
    },
}
SANDBOX_LIMITS = {"huawei.DeleteAssets": "20/s"}
RETRY = {"max_attempts": 3, "backoff_base": 0.05, "backoff_cap": 0.2}
# Account name -> vendor key of the accounts the sandbox accepts, for generate_media.
DEFAULT_ACCOUNTS = {"aliyun": {"default": "LTAIacceptance"}, "zego": {"default": "1234567890"}, "huawei": {"default": "accept01"}}

COMMAND_TIMEOUT = 60.0
TRACEBACK = re.compile(r"Traceback|\.py\", line \d+|\bFile \"/")


def mediapurge_executable() -> str:
    """The installed console script: the project's venv first, then whatever is on PATH."""
    for candidate in (ROOT / ".venv" / "bin" / "mediapurge", Path(sys.executable).with_name("mediapurge")):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("mediapurge")
    if found is None:
        pytest.fail("the `mediapurge` command is not installed (run `make install`)", pytrace=False)
    return found


def clean_environ() -> dict[str, str]:
    """This process's environment without any MEDIAPURGE_* setting a developer may have exported."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MEDIAPURGE_")}


def service_env(database: Path, broker_url: str, accounts: dict) -> dict[str, str]:
    return {
        **clean_environ(),
        "MEDIAPURGE_DATABASE_URL": f"sqlite:///{database}",
        "MEDIAPURGE_BROKER_URL": broker_url,
        "MEDIAPURGE_ACCOUNTS": json.dumps(accounts),
        "MEDIAPURGE_RETRY": json.dumps(RETRY),
    }


@dataclass
class Run:
    """One finished command: what was typed, its exit code and its output."""

    args: Sequence[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __str__(self) -> str:
        return f"$ mediapurge {' '.join(self.args)}\n[exit {self.returncode}]\n--- stdout\n{self.stdout}--- stderr\n{self.stderr}"


def mediapurge(*args: str | Path, env: dict[str, str], cwd: Path | None = None, timeout: float = COMMAND_TIMEOUT) -> Run:
    argv = [str(a) for a in args]
    done = subprocess.run(
        [mediapurge_executable(), *argv], env=env, cwd=cwd, capture_output=True, text=True, encoding="utf-8",
        errors="replace", timeout=timeout, stdin=subprocess.DEVNULL,
    )
    return Run(argv, done.returncode, done.stdout, done.stderr)


def assert_no_traceback(run: Run) -> None:
    assert not TRACEBACK.search(run.output), f"a traceback was printed:\n{run}"


def table_counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as connection:
        return {t: connection.execute(f"select count(*) from {t}").fetchone()[0] for t in ("jobs", "items", "batches")}


@dataclass
class Stack:
    """The module's services; ``run`` keeps every command's output for the secrets check."""

    env: dict[str, str]
    database: Path
    workdir: Path
    sandbox: Sandbox | None = None
    worker: WorkerProcess | None = None
    runs: list[Run] = field(default_factory=list)

    def run(self, *args: str | Path, timeout: float = COMMAND_TIMEOUT, env: dict[str, str] | None = None) -> Run:
        done = mediapurge(*args, env=env or self.env, cwd=self.workdir, timeout=timeout)
        self.runs.append(done)
        return done

    def worker_log(self) -> str:
        assert self.worker is not None
        return self.worker.log_path.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="module")
def redis_server() -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis().start()
    try:
        yield server
    finally:
        server.stop()


def _migrate(env: dict[str, str], cwd: Path) -> None:
    done = mediapurge("migrate", env=env, cwd=cwd)
    assert done.returncode == 0 and "latest schema" in done.stdout, f"migration failed:\n{done}"


@pytest.fixture(scope="module")
def stack(redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("acceptance")
    port = free_port()
    accounts = json.loads(json.dumps(ACCOUNTS))
    for vendor, by_name in accounts.items():
        for account in by_name.values():
            account["endpoint"] = f"http://127.0.0.1:{port}/{vendor}"
    database = workdir / "mediapurge.sqlite"
    env = service_env(database, redis_server.url, accounts)
    sandbox_config = SandboxConfig.from_settings(Settings(accounts=accounts), limits=SANDBOX_LIMITS)
    # The vendor knows the broken account by its real secret, not the one mediapurge was given.
    sandbox_config.zego = [c if c.name != "broken" else type(c)("broken", 222, "the-real-zego-secret") for c in sandbox_config.zego]
    sandbox = Sandbox(sandbox_config, port=port).start()
    worker = WorkerProcess(env, workdir / "worker.log", name="acceptance", concurrency=4, pool="threads")
    try:
        # The worker takes seconds to start and touches the database only for a task: migrate meanwhile.
        worker.start()
        _migrate(env, workdir)
        worker.wait_ready()
        yield Stack(env, database, workdir, sandbox, worker)
    finally:
        worker.stop()
        sandbox.stop()


@pytest.fixture(scope="module")
def offline(redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory) -> Stack:
    """A database of its own for submissions that must be refused. Its broker is a Redis database no
    worker reads, so even a submission wrongly accepted is never run; no sandbox, no worker."""
    workdir = tmp_path_factory.mktemp("offline")
    database = workdir / "mediapurge.sqlite"
    unused_broker = redis_server.url.rsplit("/", 1)[0] + "/1"
    env = service_env(database, unused_broker, ACCOUNTS)
    _migrate(env, workdir)
    return Stack(env, database, workdir)
