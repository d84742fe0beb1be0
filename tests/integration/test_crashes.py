"""Nothing lost, nothing deleted twice by mistake: workers killed with SIGKILL mid-job, Redis restarted
with its data gone. Real processes throughout; the sweeper (Celery beat inside one worker) rebuilds
from the database whatever the broker lost.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter

import pytest
from sqlalchemy import select

from models.tables import Item
from worker.embedded import EmbeddedRedis
from worker.sandbox import generate_media

pytestmark = pytest.mark.integration

DEFAULT_ONLY = {"aliyun": {"default": "LTAItest"}, "zego": {"default": "1234567890"}, "huawei": {"default": "proj01"}}
# The suite runs 6,100 items per scenario; the soak script (tests/bench/soak.sh) scales this up.
SCALE = float(os.environ.get("MEDIAPURGE_SOAK_SCALE", "1"))
COUNTS = {
    action: round(count * SCALE)
    for action, count in {"huawei.DeleteAssets": 600, "zego.DeleteMedia": 4000, "aliyun.DeleteStream": 1500}.items()
}
JOB_TIMEOUT = 180 * SCALE


@pytest.fixture(scope="module")
def redis_server():
    """A Redis of this module's own, so restarting it disturbs nothing else."""
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture(scope="module")
def redis_url(redis_server) -> str:
    return redis_server.url


@pytest.fixture(scope="module")
def stack_env() -> dict[str, str]:
    # Short leases and a brisk sweeper, so a dead worker's batches come back in seconds, not minutes.
    # A short HTTP timeout makes the sandbox's "slow" answers timeouts; more attempts ride out a 30%
    # storm of 503s (8 in a row would fail an item once in ~2,000 batches).
    return {
        "MEDIAPURGE_LEASE_SECONDS": "4", "MEDIAPURGE_SWEEP_INTERVAL": "1",
        "MEDIAPURGE_SWEEP_GRACE": "4", "MEDIAPURGE_SWEEP_QUEUE_THRESHOLD": "50",
        "MEDIAPURGE_HTTP_TIMEOUT": "0.5",
        "MEDIAPURGE_RETRY": json.dumps({"max_attempts": 25, "backoff_base": 0.05, "backoff_cap": 0.5}),
    }


def start_job(stack, rng_seed):
    stack.sandbox.reset()
    seed, items = generate_media(COUNTS, missing_fraction=0.05, rng_seed=rng_seed, accounts=DEFAULT_ONLY)
    stack.sandbox.seed(seed)
    return stack.submit(items), items


def check_true_to_the_vendor(stack, job_id, total):
    """Every item final, counted once, and the audit agrees with what the sandbox deleted."""
    with stack.sessions() as session:
        items = session.scalars(select(Item).where(Item.job_id == job_id)).all()
    assert len(items) == total
    statuses = Counter(item.status for item in items)
    assert set(statuses) <= {"deleted", "already_gone"}, statuses
    deletions = stack.sandbox.deleted()
    assert stack.sandbox.stats()["repeated_deletions"] == 0
    by_key = {(d["group"] or "", d["id"]): d for d in deletions}
    assert len(by_key) == len(deletions)
    for item in items:
        group = item.group_key if item.action != "aliyun.DeleteMultipartUpload" else "video"
        entry = by_key.get((group, item.media_id))
        if item.status == "deleted":
            assert entry is not None and entry["request_id"] == item.request_id, item.media_id
    audited_deleted = {(i.group_key, i.media_id) for i in items if i.status == "deleted"}
    vendor_deleted = set(by_key)
    # Deleted per the audit => deleted by the vendor in that call. Deleted by the vendor but recorded
    # as already gone happens only when the answer was lost with the killed worker.
    assert audited_deleted <= vendor_deleted
    assert {(i.group_key, i.media_id) for i in items if i.status == "already_gone"} >= vendor_deleted - audited_deleted
    return statuses


def wait_for_progress(stack, job_id, fraction, timeout=60):
    from worker import jobs

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with stack.sessions() as session:
            summary = jobs.job_status(session, job_id)
        if summary.total and summary.done >= fraction * summary.total:
            return summary
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} made no progress to {fraction:.0%}")


def ensure_workers(stack) -> None:
    """A worker running the sweeper (beat) and one more, unless an earlier test left them."""
    if len(stack.workers) < 2:
        stack.add_worker("sweeper", concurrency=2, beat=True)
        stack.add_worker("w")


def test_sigkilled_workers_lose_nothing(stack):
    stack.add_worker("sweeper", concurrency=2, beat=True)
    victim = stack.add_worker("victim-0")
    started = time.monotonic()
    submitted, items = start_job(stack, rng_seed=21)
    kills = 0
    for round_number, fraction in enumerate((0.15, 0.35, 0.55), start=1):
        wait_for_progress(stack, submitted.job_id, fraction)
        victim.kill()  # SIGKILL to the whole process group, in the middle of its batches
        kills += 1
        victim = stack.add_worker(f"victim-{round_number}")
    summary = stack.wait(submitted.job_id, timeout=JOB_TIMEOUT)
    assert summary.status.value == "completed"
    statuses = check_true_to_the_vendor(stack, submitted.job_id, len(items))
    print(f"kill -9 x{kills}, job done at {time.monotonic() - started:.1f} s: {len(items)} items, {dict(statuses)}, duplicates 0, mismatches 0")


def test_a_redis_restart_that_loses_everything_loses_no_item(stack, redis_server):
    ensure_workers(stack)
    started = time.monotonic()
    submitted, items = start_job(stack, rng_seed=22)
    wait_for_progress(stack, submitted.job_id, 0.3)
    restarted_at = time.monotonic() - started
    # Queued, unacknowledged and countdown messages, and the rate-limit state, all vanish.
    redis_server.stop()
    time.sleep(1.0)
    redis_server.start()
    summary = stack.wait(submitted.job_id, timeout=JOB_TIMEOUT)
    assert summary.status.value == "completed"
    statuses = check_true_to_the_vendor(stack, submitted.job_id, len(items))
    print(f"redis restart at {restarted_at:.1f} s, job done at {time.monotonic() - started:.1f} s: "
          f"{len(items)} items, {dict(statuses)}, duplicates 0, mismatches 0")


def restart_postgresql() -> None:
    """Restart the machine's PostgreSQL cluster, as .ci/services starts it (every connection is cut)."""
    import subprocess
    from pathlib import Path

    [version] = [p.name for p in Path("/etc/postgresql").iterdir()]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"], check=True, timeout=60)


def test_a_postgresql_restart_loses_no_item(stack):
    ensure_workers(stack)
    started = time.monotonic()
    submitted, items = start_job(stack, rng_seed=23)
    wait_for_progress(stack, submitted.job_id, 0.3)
    restarted_at = time.monotonic() - started
    restart_postgresql()
    summary = stack.wait(submitted.job_id, timeout=JOB_TIMEOUT)
    assert summary.status.value == "completed"
    statuses = check_true_to_the_vendor(stack, submitted.job_id, len(items))
    print(f"postgresql restart at {restarted_at:.1f} s, job done at {time.monotonic() - started:.1f} s: "
          f"{len(items)} items, {dict(statuses)}, duplicates 0, mismatches 0")


def test_a_faulty_vendor_is_answered_truthfully(stack):
    """30% 503s, 5% answers slower than the HTTP timeout, 2% dropped connections, 2% malformed bodies
    (HTML pages, truncated JSON, wrong shapes), half of the lost answers after the deletion was done."""
    ensure_workers(stack)
    started = time.monotonic()
    stack.sandbox.reset()
    seed, items = generate_media(COUNTS, missing_fraction=0.05, rng_seed=24, accounts=DEFAULT_ONLY)
    stack.sandbox.seed(seed)
    stack.sandbox.set_faults(
        {"*": {"unavailable": 0.30, "drop": 0.02, "malformed": 0.02, "slow": 0.05, "slow_seconds": 1.0,
               "apply_before_drop": 0.5, "apply_before_malformed": 0.5}},
        seed=24,
    )
    submitted = stack.submit(items)
    summary = stack.wait(submitted.job_id, timeout=JOB_TIMEOUT)
    assert summary.status.value == "completed"
    statuses = check_true_to_the_vendor(stack, submitted.job_id, len(items))
    faults = stack.sandbox.stats()["faults"]
    assert sum(faults.values()) > 50, faults
    print(f"faulty vendor {faults}, job done at {time.monotonic() - started:.1f} s: "
          f"{len(items)} items, {dict(statuses)}, duplicates 0, mismatches 0")
