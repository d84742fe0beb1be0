"""Flower, as an operator sees it: a real ``celery flower`` process (basic auth) on the stack's broker
watches real workers run a job, and its own HTTP API must list the tasks under their names, with
arguments that say which job, batch, operation, account and item count each one was about (as the
database holds them), every task succeeded, and no secret anywhere in what Flower serves or logs.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from models.tables import Batch
from tests.integration.conftest import ACCOUNTS, Stack
from worker.embedded import free_port
from worker.sandbox import generate_media

pytestmark = pytest.mark.integration

USER, PASSWORD = "watcher", "flower-test-password-1f9c"
SECRET_FIELDS = ("access_key_secret", "server_secret", "secret_key")
SECRETS = {account[field] for by_name in ACCOUNTS.values() for account in by_name.values() for field in SECRET_FIELDS if field in account}
DEFAULT_ONLY = {"aliyun": {"default": "LTAItest"}, "zego": {"default": "1234567890"}, "huawei": {"default": "proj01"}}
# Nothing missing at the vendor, so no batch is split and every count shown at send time is the count now.
COUNTS = {"aliyun.DeleteStream": 25, "aliyun.DeleteMultipartUpload": 3, "zego.DeleteMedia": 130, "huawei.DeleteAssets": 24}
BATCH_ARGS = re.compile(
    r"job=(?P<job>\d+) batch=(?P<batch>\d+) (?P<action>[a-z]+\.[A-Za-z]+) account=(?P<account>[A-Za-z0-9_-]+) items=(?P<items>\d+)"
)
KWARGS = re.compile(r"\{\}|permit_slot=\d+\.\d{3} permit_epoch=\d+")


class FlowerProcess:
    """``celery -A tasks.app flower`` as a child process with basic auth, its output in a log file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.args = [
            sys.executable, "-m", "celery", "-A", "tasks.app", "flower", "--address=127.0.0.1", f"--port={self.port}",
            f"--basic-auth={USER}:{PASSWORD}",
        ]
        self.env = env
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.args, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"flower exited with {self.process.returncode}:\n{self.log_path.read_text(errors='replace')}")
            try:
                if httpx.get(f"{self.url}/healthcheck", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"flower did not answer on {self.url}:\n{self.log_path.read_text(errors='replace')}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def flower(stack: Stack) -> Iterator[FlowerProcess]:
    process = FlowerProcess(stack.env, stack.log_dir / "flower.log")
    process.start()
    try:
        yield process
    finally:
        process.stop()


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0, poll: float = 0.5) -> Any:
    """Poll ``check()`` until it returns something truthy; fail naming ``what`` and the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen within {timeout} s; last seen: {value!r}")
        time.sleep(poll)


def test_flower_lists_the_jobs_tasks_by_name_with_what_they_were_about(stack: Stack, flower: FlowerProcess) -> None:
    stack.sandbox.reset()
    seed, items = generate_media(COUNTS, rng_seed=11, accounts=DEFAULT_ONLY, shuffle=True)
    stack.sandbox.seed(seed)
    # Throttled answers make batches come back: their re-sent messages must say the same as the first.
    stack.sandbox.set_faults({"*": {"throttle": 0.2}}, seed=5)
    stack.add_worker("flower-w", concurrency=3)
    auth = httpx.Client(base_url=flower.url, auth=(USER, PASSWORD), timeout=10)

    # Flower keeps only what it saw: wait until its event receiver hears the worker's heartbeat.
    worker_name = f"flower-w@{socket.gethostname()}"
    wait_for(
        "the worker's heartbeat in Flower's metrics",
        lambda: f'flower_worker_online{{worker="{worker_name}"}} 1.0' in httpx.get(f"{flower.url}/metrics", timeout=5).text,
    )
    submitted = stack.submit(items, idempotency_key="flower-check")
    summary = stack.wait(submitted.job_id, timeout=90)
    assert summary.status.value == "completed" and summary.total == sum(COUNTS.values())
    assert stack.sandbox.stats()["throttled"] > 0, stack.sandbox.stats()

    with stack.sessions() as session:
        batches = {b.id: b for b in session.query(Batch).filter(Batch.job_id == submitted.job_id)}
    assert len(batches) > 4

    def finished_tasks() -> dict[str, dict] | None:
        tasks = auth.get("/api/tasks").raise_for_status().json()
        shown = {task_id: BATCH_ARGS.fullmatch(t["args"]) for task_id, t in tasks.items() if t["name"] == "mediapurge.delete_batch"}
        assert all(shown.values()), [tasks[task_id]["args"] for task_id, match in shown.items() if not match]
        finished_batches = {int(match["batch"]) for task_id, match in shown.items() if tasks[task_id]["result"] == "'Finished'"}
        planned = [t for t in tasks.values() if t["name"] == "mediapurge.plan_job" and t["state"] == "SUCCESS"]
        settled = all(t["state"] == "SUCCESS" for t in tasks.values())
        return tasks if planned and settled and finished_batches == set(batches) else None

    tasks = wait_for("every batch finished in Flower's task list", finished_tasks)

    # Names: only ours. States: every one succeeded (a retryable answer is a new message, not a failure).
    assert {t["name"] for t in tasks.values()} == {"mediapurge.plan_job", "mediapurge.delete_batch"}
    assert {t["worker"] for t in tasks.values()} == {worker_name}
    [plan] = [t for t in tasks.values() if t["name"] == "mediapurge.plan_job"]
    assert (plan["args"], plan["kwargs"]) == (f"job={submitted.job_id}", "{}")
    batch_tasks = [t for t in tasks.values() if t["name"] == "mediapurge.delete_batch"]
    assert len(batch_tasks) > len(batches), "no batch came back after a throttled answer"
    for task in batch_tasks:
        shown = BATCH_ARGS.fullmatch(task["args"])
        assert shown, task["args"]
        batch = batches[int(shown["batch"])]
        assert (int(shown["job"]), shown["action"], shown["account"], int(shown["items"])) == (
            batch.job_id, batch.action, batch.account, batch.item_count
        ), task["args"]
        assert KWARGS.fullmatch(task["kwargs"]), task["kwargs"]
        assert task["result"] in ("'Finished'", "'Skipped'") or task["result"].startswith("'RunAgain: "), task
    # Every item is in exactly one batch, and what the tasks said adds up to the job.
    assert sum(b.item_count for b in batches.values()) == summary.total

    # Without the password, Flower's API answers nothing.
    assert httpx.get(f"{flower.url}/api/tasks", timeout=5).status_code == 401
    assert httpx.get(f"{flower.url}/api/tasks", auth=(USER, "wrong"), timeout=5).status_code == 401
    assert httpx.get(f"{flower.url}/api/workers", timeout=5).status_code == 401

    # No secret in anything Flower serves (its API, its pages, its metrics) or logs.
    some = list(tasks)[:5]
    served = {
        "/api/tasks": auth.get("/api/tasks").text,
        "/api/workers?refresh=1": auth.get("/api/workers", params={"refresh": 1}).text,
        "/api/task/types": auth.get("/api/task/types").text,
        "/api/queues/length": auth.get("/api/queues/length").text,
        "/tasks": auth.get("/tasks").text,
        "/workers": auth.get("/workers").text,
        f"/worker/{worker_name}": auth.get(f"/worker/{worker_name}").text,
        "/metrics": auth.get("/metrics").text,
        **{f"/api/task/info/{task_id}": auth.get(f"/api/task/info/{task_id}").text for task_id in some},
        **{f"/task/{task_id}": auth.get(f"/task/{task_id}").text for task_id in some},
    }
    assert worker_name in served["/api/workers?refresh=1"]  # the workers' own reports were fetched
    assert all(str(submitted.job_id) in served[f"/api/task/info/{task_id}"] for task_id in some)
    flower.stop()
    served["flower's log"] = flower.log_path.read_text(encoding="utf-8", errors="replace")
    leaks = [f"{secret!r} in {where}" for where, text in served.items() for secret in SECRETS if secret in text]
    assert not leaks, leaks
