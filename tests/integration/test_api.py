"""The HTTP API as upstream systems use it: `mediapurge api` as a real uvicorn server process on a
loopback port, in front of PostgreSQL, Redis, real worker processes and the vendor sandbox.

Submissions (JSON and streamed JSON Lines), idempotency, authentication, the error shape, size limits,
paging, reports, cancellation mid-job (cancelled items never reach the vendor), retry-failed, and signed
end-of-job callbacks received by a real HTTP server whose signature the test checks itself.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from models.tables import Item, Job, RetriedFailure
from worker.embedded import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "api-TOKEN-3b9d0c77e1f24a8e"
TOKEN_HASH = "sha256:" + hashlib.sha256(TOKEN.encode()).hexdigest()
CALLBACK_SECRET = "callback-SECRET-a64f2e19"
MAX_BODY = 64 * 1024
MAX_STREAM = 2 * 1024 * 1024
FINAL = {"completed", "completed_with_failures", "cancelled"}


@pytest.fixture(scope="module")
def stack_env() -> dict[str, str]:
    return {
        "MEDIAPURGE_API__TOKEN_HASHES": json.dumps([TOKEN_HASH]),
        "MEDIAPURGE_API__MAX_BODY_BYTES": str(MAX_BODY),
        "MEDIAPURGE_API__MAX_STREAM_BYTES": str(MAX_STREAM),
        "MEDIAPURGE_CALLBACKS__SIGNING_SECRET": CALLBACK_SECRET,
        "MEDIAPURGE_CALLBACKS__BACKOFF_BASE": "0.2",
        "MEDIAPURGE_CALLBACKS__BACKOFF_CAP": "1",
    }


class ApiServer:
    """`mediapurge api` as a child process, its output kept in a log file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        command = [sys.executable, "-c", "from worker.cli import main; main()", "api", "--host", "127.0.0.1", "--port", str(self.port)]
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the API did not start:\n{self.log()}")
            time.sleep(0.2)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class CallbackReceiver:
    """A loopback HTTP server recording every POST; the first ``fail_first`` answers are 500s."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.fail_first = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.received.append({"path": self.path, "headers": dict(self.headers), "body": body, "at": time.time()})
                    failing = receiver.fail_first > 0
                    receiver.fail_first -= failing
                self.send_response(500 if failing else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:  # noqa: ANN002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def for_path(self, path: str) -> list[dict]:
        with self.lock:
            return [r for r in self.received if r["path"] == path]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def api(stack, tmp_path_factory):  # noqa: ANN001, ANN201
    stack.add_worker("api-w1")
    stack.add_worker("api-w2", beat=True)  # the sweeper too: it must not re-send cancelled work
    server = ApiServer(stack.env, tmp_path_factory.mktemp("api") / "api.log")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def client(api) -> Iterator[httpx.Client]:  # noqa: ANN001
    with httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as http:
        yield http


@pytest.fixture(scope="module")
def receiver() -> Iterator[CallbackReceiver]:
    server = CallbackReceiver()
    yield server
    server.stop()


def huawei_items(prefix: str, count: int) -> list[dict]:
    return [{"action": "huawei.DeleteAssets", "asset_id": f"{prefix}{i:05}"} for i in range(count)]


def seed_huawei(stack, items: list[dict]) -> None:  # noqa: ANN001
    stack.sandbox.seed({"huawei": {"default": {"assets": [item["asset_id"] for item in items]}}})


def wait_final(client: httpx.Client, job_id: int, api: ApiServer, stack, timeout: float = 120) -> dict:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in FINAL:
            return job
        if time.monotonic() > deadline:
            logs = "\n".join(w.log_path.read_text(errors="replace")[-3000:] for w in stack.workers)
            raise AssertionError(f"job {job_id} still {job['status']}:\n{job}\n{logs}\n{api.log()[-3000:]}")
        time.sleep(0.2)


def job_count(stack) -> int:  # noqa: ANN001
    with stack.sessions() as session:
        return session.scalar(select(func.count()).select_from(Job))


def all_items(client: httpx.Client, job_id: int, **params) -> list[dict]:
    rows, after = [], None
    while True:
        page = client.get(f"/v1/jobs/{job_id}/items", params={**params, **({"after": after} if after else {})}).json()
        rows += page["items"]
        if page["next_after"] is None:
            return rows
        after = page["next_after"]


def verify_signature(header: str, body: bytes, received_at: float) -> bool:
    """A receiver's check, written from the documented format: t=<unix>,v1=<hex hmac(secret, t + "." + body)>."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(CALLBACK_SECRET.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"]) and abs(received_at - int(fields["t"])) < 300


def wait_for_callbacks(receiver: CallbackReceiver, path: str, count: int, timeout: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout
    while len(got := receiver.for_path(path)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(got)} callback(s) at {path}, expected {count}")
        time.sleep(0.1)
    return got


def test_a_json_job_runs_to_the_end_and_its_callback_is_signed(stack, api, client, receiver):  # noqa: ANN001
    items = huawei_items("json-", 40)
    seed_huawei(stack, items[:30])  # the last 10 are already gone at the vendor
    receiver.fail_first = 2  # the receiver is down at first: delivery is retried with backoff
    body = {"items": items, "idempotency_key": "api-json-1", "callback_url": f"{receiver.url}/hooks/json?tenant=7"}

    first = client.post("/v1/jobs", json=body)
    again = client.post("/v1/jobs", json=body)

    assert first.status_code == 201, first.text
    assert again.status_code == 200 and again.json()["job_id"] == first.json()["job_id"] and again.json()["created"] is False
    job_id = first.json()["job_id"]
    job = wait_final(client, job_id, api, stack)
    assert job["status"] == "completed"
    assert job["counts"] == {"pending": 0, "deleted": 30, "already_gone": 10, "failed": 0, "cancelled": 0}

    posts = wait_for_callbacks(receiver, "/hooks/json?tenant=7", 3)
    assert len(posts) == 3
    last = posts[-1]
    assert verify_signature(last["headers"]["Mediapurge-Signature"], last["body"], last["at"])
    assert not verify_signature(last["headers"]["Mediapurge-Signature"], last["body"] + b"x", last["at"])
    payload = json.loads(last["body"])
    assert payload["event"] == "job.ended"
    assert (payload["job"]["job_id"], payload["job"]["status"], payload["job"]["counts"]["deleted"]) == (job_id, "completed", 30)
    deadline = time.monotonic() + 30
    while (callback := client.get(f"/v1/jobs/{job_id}").json()["callback"])["state"] != "delivered" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (callback["state"], callback["attempts"], callback["last_error"]) == ("delivered", 3, None)


def test_a_streamed_json_lines_job_is_accepted_line_by_line(stack, api, client):  # noqa: ANN001
    items = huawei_items("ndjson-", 1200)
    seed_huawei(stack, items)

    def body() -> Iterator[bytes]:  # chunked, with lines cut across chunks
        data = b"".join(json.dumps(item).encode() + b"\n" for item in items)
        for start in range(0, len(data), 1000):
            yield data[start : start + 1000]

    response = client.post(
        "/v1/jobs", content=body(), headers={"Content-Type": "application/x-ndjson", "Idempotency-Key": "api-ndjson-1"}
    )

    assert response.status_code == 201, response.text
    assert response.json()["item_count"] == 1200
    again = client.post("/v1/jobs?idempotency_key=api-ndjson-1", content=b"", headers={"Content-Type": "application/x-ndjson"})
    assert (again.status_code, again.json()["job_id"]) == (200, response.json()["job_id"])
    job = wait_final(client, response.json()["job_id"], api, stack)
    assert (job["status"], job["counts"]["deleted"], job["source"]) == ("completed", 1200, "api")


def test_requests_without_a_valid_token_are_refused(api, client):  # noqa: ANN001
    anonymous = httpx.get(f"{api.url}/v1/jobs/1")
    wrong = httpx.get(f"{api.url}/v1/jobs/1", headers={"Authorization": "Bearer not-the-token"})
    basic = httpx.get(f"{api.url}/v1/jobs/1", headers={"Authorization": f"Basic {TOKEN}"})

    for refused in (anonymous, wrong, basic):
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"].startswith('Bearer realm="mediapurge"')
        assert refused.json()["error"]["code"] in ("unauthorized", "invalid_token")
    assert httpx.get(f"{api.url}/healthz").json() == {"status": "ok", "database": "ok"}
    document = httpx.get(f"{api.url}/openapi.json").json()
    assert {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/items", "/v1/jobs/{job_id}/report",
            "/v1/jobs/{job_id}/cancel", "/v1/jobs/{job_id}/retry-failed", "/healthz"} <= set(document["paths"])
    assert "application/x-ndjson" in document["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]
    assert client.get("/v1/jobs/999999").json()["error"] == {
        "code": "job_not_found", "message": "no job 999999", "problems": [], "problem_count": 0,
    }


def test_bad_items_are_refused_with_line_field_and_reason_and_nothing_is_written(stack, client):  # noqa: ANN001
    before = job_count(stack)
    items = [
        {"action": "huawei.DeleteAssets", "asset_id": "fine"},
        {"action": "zego.DeleteMedia", "Vendor": "Tencent"},
        {"action": "huawei.DeleteAssets", "asset_id": "a,b"},
        {"action": "aliyun.DeleteNothing"},
    ]

    json_refused = client.post("/v1/jobs", json={"items": items, "callback_url": "ftp://example.test/"})
    stream_refused = client.post(
        "/v1/jobs", content="".join(json.dumps(i) + "\n" for i in items) + "not json\n",
        headers={"Content-Type": "application/x-ndjson"},
    )
    unknown_field = client.post("/v1/jobs", json={"items": items[:1], "priority": 5})

    assert json_refused.status_code == 422
    assert json_refused.json()["error"]["problems"] == [{"line": None, "field": "callback_url", "reason": "must be an http:// or https:// URL"}]
    error = client.post("/v1/jobs", json={"items": items}).json()["error"]
    assert error["code"] == "submission_rejected" and error["problem_count"] == 3
    assert [(p["line"], p["field"]) for p in error["problems"]] == [(2, "FileId"), (3, "asset_id"), (4, "action")]
    assert all(p["reason"] for p in error["problems"])
    assert stream_refused.status_code == 422
    assert [p["line"] for p in stream_refused.json()["error"]["problems"]] == [2, 3, 4, 5]
    assert unknown_field.status_code == 422 and unknown_field.json()["error"]["problems"][0]["field"] == "priority"
    assert job_count(stack) == before


def test_bodies_over_the_limits_are_refused_with_413_and_nothing_is_written(stack, client):  # noqa: ANN001
    before = job_count(stack)
    big = {"items": huawei_items("big-", 2000)}

    declared = client.post("/v1/jobs", json=big)
    chunked = client.post("/v1/jobs", content=iter([json.dumps(big).encode()]), headers={"Content-Type": "application/json"})
    line = json.dumps(huawei_items("stream-", 1)[0]).encode() + b"\n"
    streamed = client.post(
        "/v1/jobs", content=iter([line] * (MAX_STREAM // len(line) + 100)), headers={"Content-Type": "application/x-ndjson"},
    )

    for refused in (declared, chunked, streamed):
        assert refused.status_code == 413, refused.text
        assert refused.json()["error"]["code"] == "payload_too_large"
    assert "api.max_stream_bytes" in streamed.json()["error"]["message"]
    assert job_count(stack) == before


def test_items_are_paged_and_the_report_streams_as_csv_and_json(stack, api, client):  # noqa: ANN001
    items = huawei_items("page-", 25)
    seed_huawei(stack, items[:20])
    job_id = client.post("/v1/jobs", json={"items": items}).json()["job_id"]
    wait_final(client, job_id, api, stack)

    first = client.get(f"/v1/jobs/{job_id}/items", params={"limit": 10}).json()
    rows = all_items(client, job_id, limit=10)
    gone = all_items(client, job_id, status="already_gone")
    csv_report = client.get(f"/v1/jobs/{job_id}/report", params={"format": "csv"})
    json_report = client.get(f"/v1/jobs/{job_id}/report", params={"format": "json"})
    bad = client.get(f"/v1/jobs/{job_id}/items", params={"status": "lost", "limit": 5000})

    assert len(first["items"]) == 10 and first["next_after"] == first["items"][-1]["id"]
    assert [r["asset_id"] for r in rows] == [i["asset_id"] for i in items]
    assert sorted(r["asset_id"] for r in gone) == [i["asset_id"] for i in items[20:]]
    assert csv_report.headers["content-type"].startswith("text/csv")
    report = list(csv.DictReader(io.StringIO(csv_report.text)))
    assert {(r["asset_id"], r["status"]) for r in report} == {(r["asset_id"], r["status"]) for r in rows}
    assert [(r["asset_id"], r["request_id"]) for r in json_report.json()] == [(r["asset_id"], r["request_id"]) for r in report]
    assert bad.status_code == 422
    assert sorted(p["field"] for p in bad.json()["error"]["problems"]) == ["limit", "status"]


def test_cancelling_mid_job_sends_no_cancelled_item_and_ends_cancelled(stack, api, client, receiver):  # noqa: ANN001
    items = huawei_items("cancel-", 1500)  # 150 calls at ~17/s: several seconds of work
    seed_huawei(stack, items)
    calls_before = len(stack.sandbox.calls())
    submitted = client.post(
        "/v1/jobs", content="".join(json.dumps(i) + "\n" for i in items),
        headers={"Content-Type": "application/x-ndjson", "Callback-Url": f"{receiver.url}/hooks/cancel"},
    )
    job_id = submitted.json()["job_id"]
    deadline = time.monotonic() + 60
    while client.get(f"/v1/jobs/{job_id}").json()["counts"]["deleted"] < 100:
        assert time.monotonic() < deadline, "the job did not start"
        time.sleep(0.1)

    cancelled = client.post(f"/v1/jobs/{job_id}/cancel")
    again = client.post(f"/v1/jobs/{job_id}/cancel")

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["cancelled_items"] > 0
    assert again.status_code == 200 and again.json()["cancelled_items"] == 0
    job = wait_final(client, job_id, api, stack)
    assert job["status"] == "cancelled" and job["cancel_requested_at"] is not None
    counts = job["counts"]
    assert counts["pending"] == 0 and counts["cancelled"] >= cancelled.json()["cancelled_items"]
    assert counts["deleted"] + counts["cancelled"] == 1500 and counts["deleted"] >= 100
    # The vendor never saw a cancelled item, and deleted exactly the items the audit says it deleted.
    rows = all_items(client, job_id, limit=1000)
    by_status = {status: {r["asset_id"] for r in rows if r["status"] == status} for status in ("deleted", "cancelled")}
    sent = {asset for call in stack.sandbox.calls()[calls_before:] for asset in call["ids"]}
    assert by_status["cancelled"].isdisjoint(sent)
    deleted_at_vendor = {d["id"] for d in stack.sandbox.deleted() if d["id"].startswith("cancel-")}
    assert deleted_at_vendor == by_status["deleted"]
    assert all(r["vendor_code"] == "Cancelled" for r in rows if r["status"] == "cancelled")
    # The callback says "cancelled".
    [post] = wait_for_callbacks(receiver, "/hooks/cancel", 1)
    assert verify_signature(post["headers"]["Mediapurge-Signature"], post["body"], post["at"])
    assert json.loads(post["body"])["job"]["status"] == "cancelled"


def test_cancelling_a_completed_job_is_a_conflict(stack, api, client):  # noqa: ANN001
    items = huawei_items("done-", 3)
    seed_huawei(stack, items)
    job_id = client.post("/v1/jobs", json={"items": items}).json()["job_id"]
    wait_final(client, job_id, api, stack)

    refused = client.post(f"/v1/jobs/{job_id}/cancel")

    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "job_state_conflict"
    assert "already ended completed" in refused.json()["error"]["message"]


def test_retry_failed_sends_the_failed_items_again_once_the_vendor_recovers(stack, api, client):  # noqa: ANN001
    files = [f"retry{i:04}" for i in range(120)]
    stack.sandbox.seed({"zego": {"default": {"files": {"Tencent": files}}}})
    stack.sandbox.set_faults({"zego": {"unavailable": 1.0}})  # every call refused until the vendor recovers
    items = [{"action": "zego.DeleteMedia", "Vendor": "Tencent", "FileId": f} for f in files]
    try:
        job_id = client.post("/v1/jobs", json={"items": items}).json()["job_id"]
        job = wait_final(client, job_id, api, stack)
    finally:
        stack.sandbox.set_faults({}, replace=True)
    assert (job["status"], job["counts"]["failed"]) == ("completed_with_failures", 120)
    failed_before = all_items(client, job_id, status="failed", limit=1000)

    retried = client.post(f"/v1/jobs/{job_id}/retry-failed")
    double_click = client.post(f"/v1/jobs/{job_id}/retry-failed")

    assert retried.status_code == 202 and retried.json() == {"job_id": job_id, "requeued_items": 120, "status": "submitted"}
    assert double_click.status_code == 409 and double_click.json()["error"]["code"] == "job_state_conflict"
    job = wait_final(client, job_id, api, stack)
    assert (job["status"], job["counts"]["deleted"]) == ("completed", 120)
    rows = all_items(client, job_id, limit=1000)
    assert {(r["retries"], r["attempts"]) for r in rows} == {(1, 1)}
    deleted = [d["id"] for d in stack.sandbox.deleted() if d["id"].startswith("retry")]
    assert sorted(deleted) == files  # each once
    with stack.sessions() as session:
        kept = session.scalars(select(RetriedFailure).where(RetriedFailure.job_id == job_id)).all()
        assert session.scalar(select(func.count()).select_from(Item).where(Item.job_id == job_id, Item.retries == 1)) == 120
    assert len(kept) == 120
    assert {(k.attempts, k.round) for k in kept} == {(8, 1)}
    assert {k.item_id for k in kept} == {r["id"] for r in failed_before}
    assert all("gave up after 8 attempts" in k.vendor_message for k in kept)


def test_no_token_or_callback_secret_reaches_a_log(stack, api, client, receiver):  # noqa: ANN001
    # Runs last in the module: every request above went through these logs.
    logs = {"api": api.log(), **{w.log_path.name: w.log_path.read_text(errors="replace") for w in stack.workers}}
    assert "POST /v1/jobs" in logs["api"]  # the access log is there, and is what is checked
    for name, text in logs.items():
        assert TOKEN not in text, name
        assert CALLBACK_SECRET not in text, name
    with stack.sessions() as session:
        stored = " ".join(str(value) for job in session.scalars(select(Job)) for value in job.__dict__.values())
    assert TOKEN not in stored and CALLBACK_SECRET not in stored
    for post in receiver.received:
        assert CALLBACK_SECRET.encode() not in post["body"] and CALLBACK_SECRET not in json.dumps(post["headers"])


def test_metrics_and_the_inventory_are_served_behind_the_token(stack, api, client):  # noqa: ANN001
    assert httpx.get(f"{api.url}/metrics").status_code == 401
    assert httpx.post(f"{api.url}/v1/inventory", json=[]).status_code == 401
    scraped = client.get("/metrics")
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    from prometheus_client.parser import text_string_to_metric_families

    families = {family.name: family for family in text_string_to_metric_families(scraped.text)}
    with stack.sessions() as session:
        jobs_by_status = dict(session.execute(select(Job.status, func.count()).group_by(Job.status)).all())
    shown = {s.labels["status"]: s.value for s in families["mediapurge_jobs"].samples}
    assert {status: shown[status] for status in jobs_by_status} == jobs_by_status
    assert families["mediapurge_broker_queue_depth"].samples[0].value >= 0

    medium = {"action": "zego.DeleteMedia", "Vendor": "Ws", "FileId": "api-inventory-1",
              "created_at": "2026-11-01T00:00:00+00:00", "tags": ["trial"]}
    registered = client.post("/v1/inventory", json=[medium])
    assert registered.status_code == 200 and registered.json() == {"registered": 1}
    assert client.get("/v1/retention/policies").status_code == 200
