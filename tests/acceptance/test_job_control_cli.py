"""`mediapurge cancel`, `retry-failed`, `items` and `api hash-token` as a person at a terminal types them,
against the acceptance stack (SQLite, an embedded Redis, a worker process, the sandbox)."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import subprocess
import time
from typing import Any

from tests.acceptance.conftest import SECRETS, Stack, assert_no_traceback, clean_environ, mediapurge_executable
from tests.acceptance.test_cli import write_jsonl
from worker.embedded import free_port

FINAL = ("completed", "completed_with_failures", "cancelled")


def submit(stack: Stack, name: str, items: list[dict[str, Any]]) -> int:
    run = stack.run("submit", write_jsonl(stack.workdir / name, items))
    match = re.search(r"\bjob (\d+) submitted\b", run.stdout)
    assert run.returncode == 0 and match, str(run)
    return int(match.group(1))


def db_value(stack: Stack, query: str, *params: Any) -> Any:  # noqa: ANN401
    with sqlite3.connect(stack.database) as connection:
        return connection.execute(query, params).fetchone()[0]


def wait_until(stack: Stack, query: str, *params: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not db_value(stack, query, *params):
        assert time.monotonic() < deadline, f"still not true after {timeout} s: {query} {params}\n{stack.worker_log()[-3000:]}"
        time.sleep(0.1)


def wait_final(stack: Stack, job_id: int) -> str:
    wait_until(stack, f"select status in {FINAL} from jobs where id = ?", job_id)
    return db_value(stack, "select status from jobs where id = ?", job_id)


def items_json(stack: Stack, job_id: int, *options: str) -> dict[str, Any]:
    run = stack.run("items", str(job_id), "--json", *options)
    assert run.returncode == 0, str(run)
    return json.loads(run.stdout)


def test_cancel_stops_a_running_job_and_nothing_cancelled_reaches_the_vendor(stack: Stack) -> None:
    assets = [f"cli-cancel-{i:04}" for i in range(1000)]  # 100 calls at 20/s: seconds of work
    stack.sandbox.seed({"huawei": {"default": {"assets": assets}}})
    calls_before = len(stack.sandbox.calls())
    job_id = submit(stack, "to-cancel.jsonl", [{"action": "huawei.DeleteAssets", "asset_id": a} for a in assets])
    wait_until(stack, "select count(*) >= 50 from items where job_id = ? and status = 'deleted'", job_id)

    run = stack.run("cancel", str(job_id))

    assert run.returncode == 0, str(run)
    assert re.search(rf"^job {job_id} (cancelled|cancelling): [\d,]+ items cancelled", run.stdout), str(run)
    assert wait_final(stack, job_id) == "cancelled"
    cancelled = items_json(stack, job_id, "--status", "cancelled", "--limit", "1000")["items"]
    deleted = items_json(stack, job_id, "--status", "deleted", "--limit", "1000")["items"]
    assert len(cancelled) + len(deleted) == 1000 and cancelled and len(deleted) >= 50
    assert {row["vendor_message"] for row in cancelled} == {"not sent: the job was cancelled"}
    sent = {asset for call in stack.sandbox.calls()[calls_before:] for asset in call["ids"]}
    assert sent.isdisjoint(row["asset_id"] for row in cancelled)

    again = stack.run("cancel", str(job_id))
    assert again.returncode == 0 and f"job {job_id} was already cancelled" in again.stdout, str(again)
    status = stack.run("status", str(job_id))
    assert "cancelled" in status.stdout and status.returncode == 0


def test_cancel_of_an_unknown_or_finished_job_is_one_line_of_error(stack: Stack) -> None:
    stack.sandbox.seed({"huawei": {"default": {"assets": ["cli-done-1"]}}})
    job_id = submit(stack, "done.jsonl", [{"action": "huawei.DeleteAssets", "asset_id": "cli-done-1"}])
    assert wait_final(stack, job_id) == "completed"

    unknown = stack.run("cancel", "999999")
    finished = stack.run("cancel", str(job_id))

    assert (unknown.returncode, unknown.stderr.strip()) == (1, "error: no job 999999")
    assert finished.returncode == 1
    assert finished.stderr.strip() == f"error: job {job_id} already ended completed; there is nothing left to cancel"
    for run in (unknown, finished):
        assert_no_traceback(run)


def test_retry_failed_sends_failed_items_again_keeping_their_history(stack: Stack) -> None:
    # The broken account's secret is refused by the vendor: every item fails, and fails again on retry.
    files = [f"cli-retry-{i:03}" for i in range(30)]
    stack.sandbox.seed({"zego": {"broken": {"files": {"Ws": files}}}})
    job_id = submit(stack, "broken.jsonl", [{"action": "zego.DeleteMedia", "account": "broken", "Vendor": "Ws", "FileId": f} for f in files])
    assert wait_final(stack, job_id) == "completed_with_failures"

    run = stack.run("retry-failed", str(job_id), "--wait", timeout=120)

    assert run.returncode == 0, str(run)
    assert f"job {job_id}: 30 failed items queued again" in run.stdout
    assert db_value(stack, "select status from jobs where id = ?", job_id) == "completed_with_failures"
    failed = items_json(stack, job_id, "--status", "failed", "--limit", "100")
    assert len(failed["items"]) == 30 and failed["next_after"] is None
    assert {row["retries"] for row in failed["items"]} == {1}
    assert db_value(stack, "select count(*) from retried_failures where job_id = ?", job_id) == 30


def test_retry_failed_without_failures_says_so(stack: Stack) -> None:
    stack.sandbox.seed({"huawei": {"default": {"assets": ["cli-ok-1"]}}})
    job_id = submit(stack, "ok.jsonl", [{"action": "huawei.DeleteAssets", "asset_id": "cli-ok-1"}])
    assert wait_final(stack, job_id) == "completed"

    run = stack.run("retry-failed", str(job_id))

    assert run.returncode == 0, str(run)
    assert run.stdout.strip() == f"job {job_id} has no failed items; nothing to retry (it is completed)"


def test_items_are_shown_a_page_at_a_time(stack: Stack) -> None:
    assets = [f"cli-page-{i:02}" for i in range(12)]
    stack.sandbox.seed({"huawei": {"default": {"assets": assets}}})
    job_id = submit(stack, "paged.jsonl", [{"action": "huawei.DeleteAssets", "asset_id": a} for a in assets])
    wait_final(stack, job_id)

    first = stack.run("items", str(job_id), "--limit", "5")
    after = re.search(rf"more: mediapurge items {job_id} --after (\d+)", first.stderr)
    second = items_json(stack, job_id, "--limit", "5", "--after", after.group(1) if after else "0")
    bad = stack.run("items", str(job_id), "--status", "lost")

    assert first.returncode == 0 and after, str(first)
    assert "asset_id=cli-page-00" in first.stdout and "asset_id=cli-page-05" not in first.stdout
    assert [row["asset_id"] for row in second["items"]] == assets[5:10]
    assert bad.returncode == 2 and "lost" in bad.stderr
    assert_no_traceback(bad)


def test_hash_token_prints_the_settings_entry_for_a_token() -> None:
    token = "cli-TOKEN-0f3a9c1d5e7b"

    def hash_token(text: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [mediapurge_executable(), "api", "hash-token"], input=text, env=clean_environ(), capture_output=True, text=True, timeout=60,
        )

    done = hash_token(token + "\n")
    short = hash_token("short\n")

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "sha256:" + hashlib.sha256(token.encode()).hexdigest()
    assert "api.token_hashes" in done.stderr
    assert short.returncode == 1 and "shorter than 16 characters" in short.stderr


def test_api_refuses_to_start_without_any_token_configured(offline: Stack) -> None:
    run = offline.run("api", "--port", str(free_port()))

    assert run.returncode == 1
    assert "api.token_hashes is empty" in run.stderr
    assert_no_traceback(run)


def test_no_secret_in_the_output_of_these_commands(stack: Stack) -> None:
    for run in stack.runs:
        for secret in SECRETS:
            assert secret not in run.output, f"{secret!r} printed by:\n{run}"
