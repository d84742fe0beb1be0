"""Submit-side figures for a big job: accept (validate + one transaction) and plan, peak RSS, status time.

Each size runs in a fresh process, so its peak RSS is its own, against a new PostgreSQL database.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, make_url, text

from worker.bench.stack import Services


def _measure(size: int, database_url: str) -> dict[str, Any]:
    from migrations.runner import upgrade
    from models.db import make_engine, make_session_factory
    from worker import jobs
    from worker.planner import plan_job
    from worker.settings import Settings

    upgrade(database_url)
    settings = Settings(database_url=database_url, accounts={"zego": {"default": {"app_id": 1, "server_secret": "x"}}})
    sessions = make_session_factory(make_engine(database_url))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "items.jsonl"
        with path.open("w") as out:
            for i in range(size):
                out.write(json.dumps({"action": "zego.DeleteMedia", "Vendor": ("Tencent", "Ws", "Huawei")[i % 3], "FileId": f"{i:020d}"}) + "\n")
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        submitted = jobs.submit(path, settings=settings, sessions=sessions, enqueue=lambda job_id: None)
        accepted = time.perf_counter() - started
        with sessions() as session:
            plan_job(session, submitted.job_id)
        planned = time.perf_counter() - started
        timings = []
        for _ in range(5):
            with sessions() as session:
                t = time.perf_counter()
                jobs.job_status(session, submitted.job_id)
                timings.append((time.perf_counter() - t) * 1000)
    return {
        "scenario": "submit", "items": size, "accept_s": round(accepted, 2), "accept_and_plan_s": round(planned, 2),
        "items_per_s": round(size / planned), "status_ms_first": round(timings[0], 1), "status_ms_best": round(min(timings), 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_before_submit_mb": round(rss_before / 1024, 1),
    }


def submit_big_job(services: Services, size: int) -> dict[str, Any]:
    name = f"mediapurge_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(services.postgres_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(services.postgres_admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        done = subprocess.run(
            [sys.executable, "-c", f"import json, sys; from worker.bench.submit import _measure; print(json.dumps(_measure({size}, sys.argv[1])))", url],
            check=True, capture_output=True, text=True,
        )
        return json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
