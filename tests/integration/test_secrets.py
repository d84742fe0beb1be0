"""No secret, signature or Authorization value leaves the vendor request: a job with known credentials
(one account the vendor refuses, faults injected) runs through real workers, then every place a secret
could land is searched: every table of the database, every key of the broker (taken while messages are
queued and in flight), the events Flower would show, the worker logs (one worker at DEBUG), the CLI's
status and report output, and the report files.

What was really sent is captured at the sandbox, so the signatures themselves are searched for too.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

import pytest
import redis
from sqlalchemy import MetaData, select

from models.tables import Batch
from tests.acceptance.conftest import mediapurge_executable
from tests.integration.conftest import ACCOUNTS, Stack
from worker.embedded import EmbeddedRedis, WorkerProcess
from worker.sandbox import generate_media
from worker.vendors import OPERATIONS

pytestmark = pytest.mark.integration

SECRETS = [
    ACCOUNTS["aliyun"]["default"]["access_key_secret"],
    ACCOUNTS["zego"]["default"]["server_secret"],
    ACCOUNTS["zego"]["broken"]["server_secret"],
    ACCOUNTS["huawei"]["default"]["secret_key"],
]
# What a signed request carries and nothing else may: searched case-insensitively.
MARKERS = ["Signature=", "SDK-HMAC-SHA256 Access", "Authorization"]
DEFAULT_ONLY = {"aliyun": {"default": "LTAItest"}, "zego": {"default": "1234567890"}, "huawei": {"default": "proj01"}}
COUNTS = {"aliyun.DeleteStream": 40, "aliyun.DeleteMultipartUpload": 6, "zego.DeleteMedia": 150, "huawei.DeleteAssets": 30}
# Task arguments as Flower shows them (argsrepr / kwargsrepr, and the events' args / kwargs): ids, the
# operation, the account's configured name and an item count; nothing else.
PLAN_ARGS = re.compile(r"job=(?P<job>\d+)")
BATCH_ARGS = re.compile(
    r"job=(?P<job>\d+) batch=(?P<batch>\d+) (?P<action>[a-z]+\.[A-Za-z]+) account=(?P<account>[A-Za-z0-9_-]+) items=(?P<items>\d+)"
)
KWARGS = re.compile(r"\{\}|permit_slot=\d+\.\d{3} permit_epoch=\d+")
TABLES = {"jobs", "batches", "items", "vendor_calls", "account_halts", "alembic_version"}


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A redis-server of the module's own: every key in it is the stack's, and no other test's worker
    can take (or flush) this module's messages."""
    with EmbeddedRedis() as server:
        yield server.url


# What was sent, captured where it arrives.


class SentCredentials:
    """Wraps the sandbox's request handler to keep every signature and Authorization header it receives."""

    def __init__(self, stack: Stack) -> None:
        self.engine = stack.sandbox.engine
        self.values: set[str] = set()
        self.vendors: dict[str, int] = {}
        self.accounts: set[str] = set()
        self._handle = self.engine.handle

    def __enter__(self) -> "SentCredentials":
        def handle(vendor, req):  # noqa: ANN001, ANN202
            pairs = parse_qsl(req.raw_query, keep_blank_values=True)
            signatures = [value for name, value in pairs if name == "Signature"]
            authorization = req.headers.get("authorization")
            if authorization:
                signatures += re.findall(r"Signature=([0-9A-Za-z+/=]+)", authorization)
                self.values.add(authorization)
            for signature in signatures:
                self.values |= {signature, quote(signature, safe=""), quote(signature, safe="-_.~")}
            if signatures:
                self.vendors[vendor] = self.vendors.get(vendor, 0) + 1
                self.accounts.update(value for name, value in pairs if name in ("AppId", "AccessKeyId"))
            return self._handle(vendor, req)

        self.engine.handle = handle
        return self

    def __exit__(self, *exc: object) -> None:
        del self.engine.handle  # the instance attribute: the class's method is back


# The broker, dumped whole, again and again while the job runs, and its published events.


class Broker:
    """What the broker held, as text (kombu message bodies decoded), and the task messages found in it."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.messages: dict[str, dict[str, Any]] = {}  # by task id
        self.task_events: list[dict[str, Any]] = []  # task-sent, task-received, ... as Flower receives them

    def dump(self, url: str) -> str:
        """Every key of every database of the server, with its value."""
        lines = []
        with redis.Redis.from_url(url) as first:
            databases = list(first.info("keyspace"))
        for db_name in databases:
            with redis.Redis.from_url(url, db=int(db_name[2:])) as client:
                for key in client.scan_iter(count=1000):
                    lines.append(f"{db_name} {key!r} {self.readable(self._value(client, key))}")
        text = "\n".join(lines)
        self.texts.append(text)
        return text

    @staticmethod
    def _value(client: redis.Redis, key: bytes) -> Any:
        kind = client.type(key).decode()
        read = {
            "string": lambda: client.get(key), "list": lambda: client.lrange(key, 0, -1), "hash": lambda: client.hgetall(key),
            "set": lambda: sorted(client.smembers(key)), "zset": lambda: client.zrange(key, 0, -1, withscores=True),
            "stream": lambda: client.xrange(key),
        }
        return read.get(kind, lambda: f"<{kind}>")()

    def readable(self, value: Any) -> str:
        if isinstance(value, bytes):
            text = value.decode("utf-8", "backslashreplace")
            decoded = [json.dumps(m["decoded_body"]) for m in self._kombu_messages(text)]
            return " ".join([text, *decoded])
        if isinstance(value, dict):
            return " ".join(f"{self.readable(k)}={self.readable(v)}" for k, v in value.items())
        if isinstance(value, (list, tuple)):
            return " ".join(self.readable(v) for v in value)
        return str(value)

    def _kombu_messages(self, text: str) -> list[dict[str, Any]]:
        """A queued message, an unacked entry [message, exchange, routing key], or a published event."""
        try:
            found = json.loads(text)
        except ValueError:
            return []
        messages = []
        for message in found if isinstance(found, list) else [found]:
            if not (isinstance(message, dict) and "body" in message and "headers" in message):
                continue
            body = message["body"]
            if message.get("properties", {}).get("body_encoding") == "base64":
                body = base64.b64decode(body).decode("utf-8", "backslashreplace")
            try:
                message["decoded_body"] = json.loads(body)
            except ValueError:
                message["decoded_body"] = body
            if "task" in (message["headers"] or {}):
                self.messages[message["headers"]["id"]] = message
            body = message["decoded_body"]
            for event in body if isinstance(body, list) else [body]:
                if isinstance(event, dict) and str(event.get("type", "")).startswith("task-"):
                    self.task_events.append(event)
            messages.append(message)
        return messages


class BrokerWatch:
    """Dumps the broker every 50 ms while the job runs, and keeps every message published on it: Celery's
    events, which are what Flower displays."""

    def __init__(self, url: str, broker: Broker) -> None:
        self.url, self.broker = url, broker
        self.events: list[str] = []
        self._stop = threading.Event()
        self._pubsub = redis.Redis.from_url(url).pubsub()
        self._pubsub.psubscribe("*")
        self._threads = [threading.Thread(target=self._dump, daemon=True), threading.Thread(target=self._listen, daemon=True)]

    def __enter__(self) -> "BrokerWatch":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)
        self._pubsub.close()
        self.broker.dump(self.url)

    def _dump(self) -> None:
        while not self._stop.wait(0.05):
            self.broker.dump(self.url)

    def _listen(self) -> None:
        while not self._stop.is_set():
            message = self._pubsub.get_message(timeout=0.1)
            if message and message["type"] == "pmessage":
                self.events.append(f"{message['channel']!r}: {self.broker.readable(message['data'])}")


# Where else things land: the database, the CLI, the logs.


def dump_database(stack: Stack) -> tuple[set[str], str]:
    metadata = MetaData()
    with stack.sessions() as session:
        metadata.reflect(bind=session.get_bind())
        lines = []
        for table in metadata.sorted_tables:
            for row in session.execute(select(table)):
                lines.append(f"{table.name}: {tuple(row)!r} {' '.join(str(v) for v in row)}")
    return set(metadata.tables), "\n".join(lines)


def run_cli(stack: Stack, workdir: Path, *commands: list[str]) -> dict[str, str]:
    """The commands' output (stdout and stderr), run side by side."""
    executable = mediapurge_executable()
    running = {
        " ".join(command): subprocess.Popen(
            [executable, *command], env=stack.env, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL, text=True, encoding="utf-8", errors="replace",
        )
        for command in commands
    }
    outputs = {}
    for name, process in running.items():
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, f"mediapurge {name} exited {process.returncode}:\n{stdout}{stderr}"
        outputs[f"mediapurge {name}"] = stdout + stderr
    return outputs


def leaks(sources: dict[str, str], needles: set[str]) -> list[str]:
    found = []
    for name, text in sources.items():
        lowered = text.lower()
        for needle in needles:
            at = lowered.find(needle.lower())
            if at >= 0:
                found.append(f"{needle!r} in {name}: ...{text[max(0, at - 120):at + 120]!r}...")
    return found


def check_reprs(task: str, argsrepr: str, kwargsrepr: str, job_id: int, batches: dict[int, Batch], args: list | None = None) -> None:
    """The reprs of a task message match the new contract, and what they say matches the database."""
    assert KWARGS.fullmatch(kwargsrepr), (task, kwargsrepr)
    if task == "mediapurge.plan_job":
        plan = PLAN_ARGS.fullmatch(argsrepr)
        assert plan and int(plan["job"]) == job_id and args in (None, [job_id]), (argsrepr, args)
        return
    assert task == "mediapurge.delete_batch", task
    shown = BATCH_ARGS.fullmatch(argsrepr)
    assert shown, argsrepr
    batch = batches[int(shown["batch"])]
    assert args in (None, [batch.id]), (argsrepr, args)
    assert (int(shown["job"]), shown["action"], shown["account"]) == (job_id, batch.action, batch.account), argsrepr
    # The count when it was sent: a batch split later holds fewer items now.
    assert batch.item_count <= int(shown["items"]) <= OPERATIONS[batch.action].max_batch, (argsrepr, batch.item_count)
    assert shown["account"] in ACCOUNTS[batch.action.split(".")[0]], argsrepr


def test_no_secret_signature_or_authorization_reaches_any_store_log_or_output(stack: Stack, tmp_path: Path) -> None:
    stack.sandbox.reset()
    seed, items = generate_media(COUNTS, missing_fraction=0.1, rng_seed=7, accounts=DEFAULT_ONLY, shuffle=True)
    refused = [{"action": "zego.DeleteMedia", "Vendor": "Ws", "FileId": f"refused{i}", "account": "broken"} for i in range(30)]
    seed["zego"]["222"] = {"files": {"Ws": [item["FileId"] for item in refused]}}
    stack.sandbox.seed(seed)
    # Error paths too: 5xx, throttling, unreadable bodies, dropped connections (their messages are kept).
    stack.sandbox.set_faults({"*": {"unavailable": 0.1, "throttle": 0.05, "malformed": 0.05, "drop": 0.03}}, seed=3)

    broker = Broker()
    with SentCredentials(stack) as sent, BrokerWatch(stack.settings.broker_url, broker) as watch:
        # No worker yet: the job's message waits in the queue, where this dump finds it.
        submitted = stack.submit(items + refused, idempotency_key="secrets-check")
        queued = broker.dump(stack.settings.broker_url)
        assert "mediapurge.plan_job" in queued
        debug = WorkerProcess(stack.env, stack.log_dir / "secrets-debug.log", name="secrets-debug", concurrency=2, loglevel="DEBUG")
        stack.workers.append(debug)  # the fixture stops it
        debug.start()
        stack.add_worker("secrets-info", concurrency=2)
        debug.wait_ready()
        summary = stack.wait(submitted.job_id, timeout=60)
    for worker in stack.workers:
        worker.stop()  # warm shutdown: every log line is written

    # The run covered what it must: every vendor signed, the refused account called and halted.
    assert summary.status.value == "completed_with_failures"
    assert set(sent.vendors) == {"aliyun", "zego", "huawei"} and "222" in sent.accounts, (sent.vendors, sent.accounts)
    assert stack.sandbox.stats()["auth_failures"] >= 1

    tables, database = dump_database(stack)
    assert TABLES <= tables, tables
    assert "account_halts:" in database and "vendor_calls:" in database

    cli = run_cli(
        stack, tmp_path,
        ["status", str(submitted.job_id)], ["status", str(submitted.job_id), "--json"],
        ["report", str(submitted.job_id)],
        ["report", str(submitted.job_id), "--format", "csv", "-o", str(tmp_path / "report.csv")],
        ["report", str(submitted.job_id), "--format", "json", "-o", str(tmp_path / "report.json")],
    )
    reports = {name: (tmp_path / name).read_text(encoding="utf-8") for name in ("report.csv", "report.json")}
    assert len(json.loads(reports["report.json"])) == summary.total == len(items) + len(refused)
    logs = {f"log of {w.log_path.name}": w.log_path.read_text(encoding="utf-8", errors="replace") for w in stack.workers}
    assert "DEBUG/" in logs["log of secrets-debug.log"]  # the level really took

    # What Flower shows of a task: its name and the reprs of its arguments, naming the work and no secret.
    messages = list(broker.messages.values())
    names = {m["headers"]["task"] for m in messages}
    assert names == {"mediapurge.plan_job", "mediapurge.delete_batch"}, names
    with stack.sessions() as session:
        batches = {b.id: b for b in session.query(Batch).filter(Batch.job_id == submitted.job_id)}
    for message in messages:
        headers, (args, kwargs, _) = message["headers"], message["decoded_body"]
        assert all(isinstance(a, int) for a in args) and set(kwargs) <= {"permit_slot", "permit_epoch"}, message["decoded_body"]
        check_reprs(headers["task"], headers["argsrepr"], headers["kwargsrepr"], submitted.job_id, batches, args)
    sent_events = [e for e in broker.task_events if e["type"] == "task-sent"]
    assert sent_events, "no task event was published"
    for event in broker.task_events:
        if "args" in event or "kwargs" in event:
            check_reprs(event["name"], event["args"], event["kwargs"], submitted.job_id, batches)

    sources = {
        "the database": database, **{f"broker dump {i}": text for i, text in enumerate(broker.texts)},
        "the broker's events (Flower)": "\n".join(watch.events), **logs, **cli, **reports,
    }
    needles = {*SECRETS, *MARKERS, *sent.values}
    assert not leaks(sources, needles), "\n".join(leaks(sources, needles))
