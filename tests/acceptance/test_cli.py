"""The ``mediapurge`` command end to end, typed as a user would: submit, status, report, migrate,
sandbox and demo, with their refusals and error messages, against a real worker and the sandbox.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import select
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.conftest import (
    ACCOUNTS,
    DEFAULT_ACCOUNTS,
    SECRETS,
    Run,
    Stack,
    assert_no_traceback,
    clean_environ,
    mediapurge_executable,
    service_env,
    table_counts,
)
from worker.embedded import free_port
from worker.sandbox import generate_media

CSV_HEADER = ["action", "account", "VideoId", "JobId", "MediaId", "MediaType", "Vendor", "FileId", "asset_id"]
ID_FIELD = {"aliyun.DeleteStream": "JobId", "aliyun.DeleteMultipartUpload": "MediaId", "zego.DeleteMedia": "FileId", "huawei.DeleteAssets": "asset_id"}
STATUSES = ("pending", "deleted", "already_gone", "failed", "cancelled")


# Helpers


def write_jsonl(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    return path


def write_csv(path: Path, items: list[dict[str, Any]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=CSV_HEADER, restval="")
        writer.writeheader()
        writer.writerows(items)
    return path


def submitted_job(run: Run) -> int:
    match = re.search(r"\bjob (\d+) submitted\b", run.stdout)
    assert match, f"no 'job N submitted' line:\n{run}"
    return int(match.group(1))


def table_rows(stdout: str) -> dict[str, int]:
    """The status table's rows, whatever box characters the console chose."""
    rows = {}
    for line in stdout.splitlines():
        match = re.match(r"^\W*(pending|deleted|already_gone|failed|total)\W+([\d,]+)\W*$", line)
        if match:
            rows[match.group(1)] = int(match.group(2).replace(",", ""))
    return rows


def expected_counts(counts: dict[str, int], missing: float) -> dict[str, dict[str, int]]:
    """What generate_media promises: exactly round(count x missing) items of each action are not held."""
    return {
        action: {"deleted": count - round(count * missing), "already_gone": round(count * missing)}
        for action, count in counts.items()
    }


def status_json(stack: Stack, job_id: int) -> dict[str, Any]:
    run = stack.run("status", str(job_id), "--json")
    assert run.returncode == 0, str(run)
    try:
        return json.loads(run.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"`status --json` did not print JSON ({exc}):\n{run}") from None


def wait_in_database(stack: Stack, job_id: int, timeout: float = 45.0) -> str:
    """The job's status once final, or as it stands after ``timeout`` (read from the database: a
    `mediapurge status` per poll would cost a second each)."""
    deadline = time.monotonic() + timeout
    while True:
        with sqlite3.connect(stack.database) as connection:
            (status,) = connection.execute("select status from jobs where id = ?", (job_id,)).fetchone()
        if status in ("completed", "completed_with_failures") or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def job_count(database: Path, where: str = "1=1", *params: Any) -> int:
    with sqlite3.connect(database) as connection:
        return connection.execute(f"select count(*) from jobs where {where}", params).fetchone()[0]


def item_key(row: dict[str, Any]) -> tuple[str, str]:
    return row["action"], str(row[ID_FIELD[row["action"]]])


# 1. A JSON Lines job, waited for, then its status and report


MIXED = {"aliyun.DeleteStream": 40, "aliyun.DeleteMultipartUpload": 10, "zego.DeleteMedia": 60, "huawei.DeleteAssets": 30}
MISSING = 0.2


@pytest.fixture(scope="module")
def finished_job(stack: Stack) -> dict[str, Any]:
    seed, items = generate_media(MIXED, missing_fraction=MISSING, rng_seed=101, accounts=DEFAULT_ACCOUNTS, shuffle=True)
    stack.sandbox.seed(seed)
    deleted_before = len(stack.sandbox.deleted())
    items_file = write_jsonl(stack.workdir / "items.jsonl", items)
    run = stack.run("submit", items_file.name, "--wait")
    job_id = submitted_job(run)
    return {
        "run": run, "job_id": job_id, "items": items, "expected": expected_counts(MIXED, MISSING),
        "sandbox_deleted": stack.sandbox.deleted(deleted_before), "status": status_json(stack, job_id),
    }


def test_submit_wait_prints_the_job_and_its_final_table(finished_job: dict[str, Any]) -> None:
    run: Run = finished_job["run"]
    assert run.returncode == 0, str(run)
    assert_no_traceback(run)
    job_id = submitted_job(run)
    assert f"job {job_id} submitted: {len(finished_job['items'])} items, 0 duplicates ignored" in run.stdout
    assert f"job {job_id}: completed" in run.stdout
    expected = finished_job["expected"]
    rows = table_rows(run.stdout)
    assert rows == {
        "pending": 0,
        "deleted": sum(e["deleted"] for e in expected.values()),
        "already_gone": sum(e["already_gone"] for e in expected.values()),
        "failed": 0,
        "total": sum(MIXED.values()),
    }, run.stdout


def test_status_json_counts_agree_with_what_the_sandbox_held(finished_job: dict[str, Any]) -> None:
    job_id = finished_job["job_id"]
    summary = finished_job["status"]  # `status --json`, run once the job had ended
    expected = finished_job["expected"]
    assert summary["job_id"] == job_id
    assert summary["status"] == "completed"
    assert summary["total"] == summary["done"] == sum(MIXED.values())
    assert summary["progress"] == 1
    assert summary["counts"] == {
        "pending": 0,
        "deleted": sum(e["deleted"] for e in expected.values()),
        "already_gone": sum(e["already_gone"] for e in expected.values()),
        "failed": 0,
        "cancelled": 0,
    }
    assert summary["by_action"] == expected
    assert summary["duplicates_ignored"] == 0
    assert summary["source"].endswith("items.jsonl")
    # The sandbox deleted exactly what it held: one deletion per item counted as deleted.
    assert len(finished_job["sandbox_deleted"]) == summary["counts"]["deleted"]


def test_report_csv_has_one_row_per_item_agreeing_with_status(stack: Stack, finished_job: dict[str, Any], tmp_path: Path) -> None:
    job_id = finished_job["job_id"]
    out = tmp_path / "out.csv"
    run = stack.run("report", str(job_id), "--format", "csv", "-o", str(out))
    assert run.returncode == 0, str(run)
    assert_no_traceback(run)
    assert f"{len(finished_job['items'])} rows written to {out}" in " ".join(run.stderr.split())
    assert not out.with_name("out.csv.partial").exists()

    with out.open(encoding="utf-8", newline="") as stream:
        reader = csv.DictReader(stream)
        header = reader.fieldnames or []
        rows = list(reader)
    assert header[:3] == ["line", "action", "account"]
    assert {"status", "request_id", "vendor_code", "attempts", "finished_at"} <= set(header)
    assert len(rows) == len(finished_job["items"])
    assert sorted(int(r["line"]) for r in rows) == list(range(1, len(rows) + 1))

    # Row N is line N of the submission, ids as given.
    for row in rows:
        item = finished_job["items"][int(row["line"]) - 1]
        assert {k: row[k] for k in item} == item
        assert row["status"] in ("deleted", "already_gone")
        assert row["request_id"], row  # every item was answered by a vendor call
    by_status = Counter(r["status"] for r in rows)
    assert {s: by_status.get(s, 0) for s in STATUSES} == finished_job["status"]["counts"]

    # The items reported deleted are exactly those the sandbox records deleting.
    reported_deleted = {item_key(r) for r in rows if r["status"] == "deleted"}
    sandbox_deleted = {(f"{d['vendor']}.{d['operation']}", d["id"]) for d in finished_job["sandbox_deleted"]}
    assert reported_deleted == sandbox_deleted


def test_report_json_prints_the_same_rows_to_stdout(stack: Stack, finished_job: dict[str, Any]) -> None:
    job_id = finished_job["job_id"]
    as_json = stack.run("report", str(job_id), "--format", "json")
    assert as_json.returncode == 0, str(as_json)
    rows = json.loads(as_json.stdout)
    assert isinstance(rows, list) and len(rows) == len(finished_job["items"])

    as_csv = stack.run("report", str(job_id))  # csv to stdout is the default
    assert as_csv.returncode == 0, str(as_csv)
    csv_rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    # CSV has no types or nulls: compare with the JSON values written as CSV writes them.
    as_text = [{k: "" if v is None else str(v) for k, v in row.items()} for row in rows]
    assert [{k: v for k, v in r.items() if v != ""} for r in csv_rows] == [{k: v for k, v in r.items() if v != ""} for r in as_text]
    by_status = Counter(r["status"] for r in rows)
    assert {s: by_status.get(s, 0) for s in STATUSES} == finished_job["status"]["counts"]


# 2. CSV input, followed with `status --json`


def test_csv_submission_runs_to_completion(stack: Stack) -> None:
    counts = {"aliyun.DeleteStream": 8, "aliyun.DeleteMultipartUpload": 4, "zego.DeleteMedia": 10, "huawei.DeleteAssets": 10}
    seed, items = generate_media(counts, missing_fraction=0.25, rng_seed=202, accounts=DEFAULT_ACCOUNTS, shuffle=True)
    stack.sandbox.seed(seed)
    items_file = write_csv(stack.workdir / "items.csv", items)
    assert items_file.read_text(encoding="utf-8").splitlines()[0] == ",".join(CSV_HEADER)

    run = stack.run("submit", items_file.name)
    assert run.returncode == 0, str(run)
    job_id = submitted_job(run)
    assert f"{len(items)} items" in run.stdout

    wait_in_database(stack, job_id)
    summary = status_json(stack, job_id)
    assert summary["status"] == "completed"
    assert summary["by_action"] == expected_counts(counts, 0.25)

    report = stack.run("report", str(job_id), "--format", "json")
    rows = json.loads(report.stdout)
    for row in rows:
        item = items[row["line"] - 2]  # line 1 is the header
        assert {k: row[k] for k in item} == item
        assert all(row.get(k) in (None, "") for k in CSV_HEADER if k not in item), row


# 3. The idempotency key


def test_the_same_idempotency_key_returns_the_same_job(stack: Stack) -> None:
    seed, items = generate_media({"huawei.DeleteAssets": 4}, rng_seed=303, accounts=DEFAULT_ACCOUNTS)
    stack.sandbox.seed(seed)
    items_file = write_jsonl(stack.workdir / "idempotent.jsonl", items)
    key = "nightly-purge-2026-11-22"
    jobs_before = job_count(stack.database)

    first = stack.run("submit", items_file.name, "--idempotency-key", key, "--wait")
    assert first.returncode == 0, str(first)
    job_id = submitted_job(first)
    second = stack.run("submit", items_file.name, "--idempotency-key", key)
    assert second.returncode == 0, str(second)
    assert f"job {job_id} already submitted" in second.stdout, str(second)
    assert "4 items" in second.stdout

    assert job_count(stack.database) == jobs_before + 1
    assert job_count(stack.database, "idempotency_key = ? and id = ? and item_count = 4", key, job_id) == 1


def test_a_job_the_broker_did_not_take_runs_when_submitted_again(stack: Stack) -> None:
    seed, items = generate_media({"huawei.DeleteAssets": 2}, rng_seed=404, accounts=DEFAULT_ACCOUNTS)
    stack.sandbox.seed(seed)
    items_file = write_jsonl(stack.workdir / "broker-down.jsonl", items)
    key = "submitted-while-the-broker-was-down"
    broker_down = {**stack.env, "MEDIAPURGE_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"}

    refused = stack.run("submit", items_file.name, "--idempotency-key", key, env=broker_down)
    assert refused.returncode != 0, str(refused)
    assert_no_traceback(refused)

    again = stack.run("submit", items_file.name, "--idempotency-key", key)
    assert again.returncode == 0, str(again)
    job_id = int(re.search(r"job (\d+)", again.stdout).group(1))
    # A two-item job takes well under a second once enqueued.
    assert wait_in_database(stack, job_id, timeout=3) == "completed", f"the job never ran:\n{refused}\n{again}"


# 4. Refused submissions write nothing


BAD_LINES: list[tuple[str, str | None, str]] = [
    # (line as written, field named in the problem or None, a word of the reason)
    ('{"action": "aliyun.DeleteVideo", "VideoId": "v1"}', "action", "unknown action"),
    ('{"action": "huawei.DeleteAssets"}', "asset_id", "missing"),
    ('{"action": "aliyun.DeleteStream", "VideoId": "v1", "JobId": "j1,j2"}', "JobId", "comma"),
    ('{"action": "zego.DeleteMedia", "Vendor": "Tencent", "FileId": "f1&x=1"}', "FileId", "ampersand"),
    ('{"action": "huawei.DeleteAssets", "asset_id": "a1", "colour": "red"}', "colour", "unexpected field"),
    ('{"action": "huawei.DeleteAssets", "account": "nobody", "asset_id": "a2"}', "account", "no huawei account named 'nobody'"),
    ('{"action": "zego.DeleteMedia", "Vendor": "Akamai", "FileId": "f2"}', "Vendor", "must be one of Tencent, Ws, Huawei"),
    ('{"action": "aliyun.DeleteMultipartUpload", "MediaId": "m1", "MediaType": "audio"}', "MediaType", "must be one of video"),
    ('{"action": "huawei.DeleteAssets", "asset_id": ', None, "not valid JSON"),
    ('{"action": "huawei.DeleteAssets", "asset_id": ""}', "asset_id", "must not be empty"),
]
GOOD_LINE = '{"action": "huawei.DeleteAssets", "asset_id": "fine-asset-%d"}'


def problems_in(stderr: str) -> list[tuple[int, str | None, str]]:
    # Joined first: the console may wrap a long reason onto the next line.
    text = " ".join(stderr.split())
    found = []
    for match in re.finditer(r"line (\d+)(?:, field '([^']*)')?: (.*?)(?= line \d+(?:, field '[^']*')?: |$)", text):
        found.append((int(match.group(1)), match.group(2), match.group(3)))
    return found


def assert_refused_cleanly(run: Run, offline: Stack) -> None:
    assert run.returncode == 3, str(run)
    assert_no_traceback(run)
    assert "submitted" not in run.stdout, str(run)
    assert "nothing was written" in run.stderr
    assert table_counts(offline.database) == {"jobs": 0, "items": 0, "batches": 0}


def test_a_file_with_bad_lines_is_refused_listing_every_problem(offline: Stack) -> None:
    # Good lines first: they are written before the first problem is met, and must be rolled back.
    lines = [GOOD_LINE % 1, GOOD_LINE % 2, *(line for line, _, _ in BAD_LINES), GOOD_LINE % 3]
    items_file = offline.workdir / "bad.jsonl"
    items_file.write_text("\n".join(lines) + "\n", encoding="utf-8")

    run = offline.run("submit", items_file.name)

    assert_refused_cleanly(run, offline)
    assert f"{len(BAD_LINES)} problem(s)" in run.stderr
    problems = problems_in(run.stderr)
    assert [(line, field) for line, field, _ in problems] == [(n, f) for n, (_, f, _) in enumerate(BAD_LINES, start=3)], run.stderr
    for (_, _, reason), (_, _, word) in zip(problems, BAD_LINES):
        assert word in reason, (reason, word)


def test_each_problem_is_on_a_line_of_its_own(offline: Stack) -> None:
    """Scripts and log search read a refusal line by line: a long reason must not be wrapped."""
    items_file = offline.workdir / "long-reasons.jsonl"
    items_file.write_text(BAD_LINES[0][0] + "\n" + BAD_LINES[6][0] + "\n", encoding="utf-8")
    run = offline.run("submit", items_file.name)
    assert_refused_cleanly(run, offline)
    problem_lines = [line.strip() for line in run.stderr.splitlines() if line.strip().startswith("line ")]
    assert len(problem_lines) == 2
    assert problem_lines[0].endswith("zego.DeleteMedia)"), run.stderr
    assert problem_lines[1].endswith("got 'Akamai'"), run.stderr


def test_an_empty_file_is_refused(offline: Stack) -> None:
    items_file = offline.workdir / "empty.jsonl"
    items_file.write_text("", encoding="utf-8")
    run = offline.run("submit", items_file.name)
    assert_refused_cleanly(run, offline)
    assert "holds no items" in run.stderr


def test_a_missing_file_is_one_line_of_error(offline: Stack) -> None:
    run = offline.run("submit", "no-such-items.jsonl")
    assert run.returncode == 1, str(run)
    assert_no_traceback(run)
    assert run.stderr.strip().count("\n") == 0, str(run)
    assert "no-such-items.jsonl" in run.stderr and "No such file" in run.stderr
    assert table_counts(offline.database) == {"jobs": 0, "items": 0, "batches": 0}


def test_a_csv_with_an_unknown_column_is_refused_naming_it(offline: Stack) -> None:
    items_file = offline.workdir / "unknown-column.csv"
    items_file.write_text("action,account,asset_id,colour\nhuawei.DeleteAssets,default,a1,red\n", encoding="utf-8")
    run = offline.run("submit", items_file.name)
    assert_refused_cleanly(run, offline)
    assert problems_in(run.stderr) == [(1, "colour", "unknown column")]


# 5. Errors about jobs and options


def test_status_of_an_unknown_job(offline: Stack) -> None:
    run = offline.run("status", "999", "--json")
    assert run.returncode == 1, str(run)
    assert_no_traceback(run)
    assert run.stderr.strip() == "error: no job 999", str(run)
    assert run.stdout == "", str(run)


def test_report_of_an_unknown_job_writes_nothing(offline: Stack, tmp_path: Path) -> None:
    out = tmp_path / "job999.csv"
    run = offline.run("report", "999", "-o", str(out))
    assert run.returncode == 1, str(run)
    assert run.stderr.strip() == "error: no job 999", str(run)
    assert list(tmp_path.iterdir()) == [], "a report file was left behind"
    to_stdout = offline.run("report", "999")
    assert to_stdout.returncode == 1, str(to_stdout)
    assert to_stdout.stdout == "", f"a report of no job was printed:\n{to_stdout}"


def test_report_in_an_unknown_format(offline: Stack, tmp_path: Path) -> None:
    out = tmp_path / "report.xml"
    run = offline.run("report", "1", "--format", "xml", "-o", str(out))
    assert run.returncode in (1, 2), str(run)
    assert_no_traceback(run)
    assert "xml" in run.stderr and "csv" in run.stderr and "json" in run.stderr
    assert not out.exists()


# 6. Bad settings


def bad_settings_env(offline: Stack, accounts: str) -> dict[str, str]:
    return {**offline.env, "MEDIAPURGE_ACCOUNTS": accounts}


def test_an_invalid_account_setting_is_named_without_its_secrets(offline: Stack) -> None:
    accounts = json.loads(json.dumps(ACCOUNTS))
    accounts["zego"]["live"] = {"app_id": "abc", "server_secret": "zego-live-SECRET-77aa"}
    env = bad_settings_env(offline, json.dumps(accounts))
    items_file = write_jsonl(offline.workdir / "one.jsonl", [{"action": "huawei.DeleteAssets", "asset_id": "a1"}])
    run = offline.run("submit", items_file.name, env=env)
    assert run.returncode == 1, str(run)
    assert_no_traceback(run)
    assert "accounts.zego.live.app_id" in run.stderr, str(run)
    for secret in (*SECRETS, "zego-live-SECRET-77aa"):
        assert secret not in run.output, f"secret {secret!r} printed:\n{run}"
    assert table_counts(offline.database) == {"jobs": 0, "items": 0, "batches": 0}


def test_accounts_that_are_not_json_are_refused_without_a_traceback(offline: Stack) -> None:
    env = bad_settings_env(offline, '{"zego": {"live": {"app_id": 1, "server_secret": "zego-live-SECRET-77aa"}}')
    run = offline.run("status", "1", env=env)
    for secret in (*SECRETS, "zego-live-SECRET-77aa"):
        assert secret not in run.output, f"secret {secret!r} printed:\n{run}"
    assert run.returncode == 1, str(run)
    assert_no_traceback(run)
    assert '"accounts"' in run.stderr, str(run)


def test_a_missing_config_file_is_one_line_of_error(offline: Stack, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    run = offline.run("--config", str(missing), "status", "1")
    assert run.returncode == 1, str(run)
    assert_no_traceback(run)
    assert str(missing) in run.stderr and "no such file" in run.stderr


# 7. Secrets never printed


def test_secrets_appear_in_no_output_and_no_worker_log(stack: Stack) -> None:
    # A job that fails for one account (the vendor refuses its signature) as well as succeeding for the
    # others: error paths are where secrets leak.
    counts = {"aliyun.DeleteStream": 5, "zego.DeleteMedia": 6, "huawei.DeleteAssets": 5}
    seed, items = generate_media(counts, missing_fraction=0.2, rng_seed=707, accounts=DEFAULT_ACCOUNTS)
    stack.sandbox.seed(seed)
    broken_seed, broken_items = generate_media({"zego.DeleteMedia": 3}, rng_seed=708, accounts={"zego": {"broken": "222"}})
    stack.sandbox.seed(broken_seed)
    items_file = write_jsonl(stack.workdir / "with-broken-account.jsonl", items + broken_items)

    submit = stack.run("submit", items_file.name, "--wait")
    assert submit.returncode == 0, str(submit)
    job_id = submitted_job(submit)
    summary = status_json(stack, job_id)
    assert summary["status"] == "completed_with_failures"
    assert summary["counts"]["failed"] == len(broken_items)
    report = stack.run("report", str(job_id), "--format", "json")
    failed = [row for row in json.loads(report.stdout) if row["status"] == "failed"]
    assert {row["account"] for row in failed} == {"broken"}

    outputs = [*stack.runs]
    assert len(outputs) >= 5
    for run in outputs:
        assert_no_traceback(run)
        for secret in SECRETS:
            assert secret not in run.output, f"secret {secret!r} printed by:\n{run}"
    log = stack.worker_log()
    assert " ready." in log
    for secret in SECRETS:
        assert secret not in log, f"secret {secret!r} in the worker log {stack.worker.log_path}"


# 8. The sandbox command


def test_sandbox_command_serves_until_interrupted(tmp_path: Path) -> None:
    port = free_port()
    env = service_env(tmp_path / "unused.sqlite", "redis://127.0.0.1:1/0", ACCOUNTS)
    process = subprocess.Popen(
        [mediapurge_executable(), "sandbox", "--port", str(port)], env=env, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )
    try:
        # The announcement is the promise that it serves: wait for it, as a person at the terminal would,
        # rather than interrupting between the port opening and the line being printed.
        readable, _, _ = select.select([process.stdout], [], [], 20)
        assert readable, "the sandbox printed nothing within 20 s"
        announcement = process.stdout.readline()
        assert f"sandbox on http://127.0.0.1:{port}" in announcement, (announcement, process.poll())
        answer = httpx.get(f"http://127.0.0.1:{port}/_sandbox/health", timeout=5)
        assert answer.status_code == 200
        assert answer.json()["ok"] is True
        process.send_signal(signal.SIGINT)  # Ctrl-C
        stdout, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode in (0, 130, -signal.SIGINT), (process.returncode, stdout, stderr)
    assert "Traceback" not in announcement + stdout + stderr
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/_sandbox/health", timeout=1)


# 9. The demo


def _process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, start time) of every process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            table[int(entry.name)] = (int(fields[1]), fields[19])
    return table


def _descendants(pid: int) -> set[tuple[int, str]]:
    """(pid, start time) of every living process below ``pid``."""
    table = _process_table()
    children: dict[int, list[int]] = {}
    for child, (parent, _) in table.items():
        children.setdefault(parent, []).append(child)
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add((child, table[child][1]))
            todo.append(child)
    return found


def _still_running(processes: set[tuple[int, str]]) -> set[tuple[int, str]]:
    table = _process_table()
    return {(pid, start) for pid, start in processes if table.get(pid, (0, ""))[1] == start}


def run_tracked(argv: list[str], *, env: dict[str, str], cwd: Path, timeout: float) -> tuple[Run, set[tuple[int, str]]]:
    """Run a command that starts processes of its own (the demo's worker has a session of its own, so it
    is orphaned, not killed, if the demo dies). Returns the run and the processes it left running, which
    are killed by id; on timeout the command is interrupted first, so its own cleanup can run."""
    process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    seen: set[tuple[int, str]] = set()
    # Both pipes are read on threads, so the loop below can watch the command's children meanwhile.
    out_chunks: list[str] = []
    err_chunks: list[str] = []
    out_thread = threading.Thread(target=lambda: out_chunks.append(process.stdout.read()), daemon=True)
    err_thread = threading.Thread(target=lambda: err_chunks.append(process.stderr.read()), daemon=True)
    out_thread.start()
    err_thread.start()
    deadline = time.monotonic() + timeout
    timed_out = False
    while process.poll() is None:
        seen |= _descendants(process.pid)
        if time.monotonic() > deadline:
            timed_out = True
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            break
        time.sleep(0.2)
    out_thread.join(10)
    err_thread.join(10)
    left = _still_running(seen)
    for pid, _ in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    run = Run(argv[1:], process.returncode, "".join(out_chunks), "".join(err_chunks))
    if timed_out:
        raise AssertionError(f"`{' '.join(argv[1:])}` did not finish in {timeout} s:\n{run}")
    return run, left


def test_demo_runs_a_whole_job(tmp_path: Path) -> None:
    started = time.monotonic()
    run, left_running = run_tracked(
        [mediapurge_executable(), "demo", "--items", "120", "--dir", "demo"], env=clean_environ(), cwd=tmp_path, timeout=90
    )
    elapsed = time.monotonic() - started

    assert run.returncode == 0, str(run)
    assert_no_traceback(run)
    assert elapsed < 90
    report = (tmp_path / "demo" / "report.csv").resolve()
    assert "completed" in run.stdout
    assert str(report) in "".join(run.stdout.split()), str(run)  # the path, however the console wrapped it
    with report.open(encoding="utf-8", newline="") as stream:
        lines = list(csv.reader(stream))
    assert lines[0][:3] == ["line", "action", "account"]
    assert len(lines) == 121
    statuses = Counter(row[lines[0].index("status")] for row in lines[1:])
    assert set(statuses) <= {"deleted", "already_gone"}, statuses
    assert statuses["already_gone"] > 0 and statuses["deleted"] > 0
    assert not left_running, f"the demo left processes running: {left_running}"
