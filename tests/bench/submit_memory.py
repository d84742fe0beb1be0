"""Submit-side memory and time as a job grows: prints one JSON line per size.

    .venv/bin/python tests/bench/submit_memory.py --sizes 100000 400000 [--database-url URL]

Each size runs in a fresh process (so peak RSS is that size's own), writes a JSON Lines file of
DeleteMedia items, submits it (validate + one transaction) and plans it (the batches), against a new
PostgreSQL database by default.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path


def one(size: int, database_url: str) -> dict:
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
        with sessions() as session:
            t = time.perf_counter()
            jobs.job_status(session, submitted.job_id)
            status_ms = (time.perf_counter() - t) * 1000
    return {
        "items": size, "accept_s": round(accepted, 2), "accept_and_plan_s": round(planned, 2),
        "items_per_s": round(size / planned), "status_ms": round(status_ms, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_before_submit_mb": round(rss_before / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 400_000])
    parser.add_argument("--server-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.database_url)))
        return
    from sqlalchemy import create_engine, make_url, text

    admin = create_engine(args.server_url, isolation_level="AUTOCOMMIT")
    for size in args.sizes:
        name = f"mediapurge_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(args.server_url).set(database=name).render_as_string(hide_password=False)
        try:
            subprocess.run([sys.executable, __file__, "--one", str(size), "--database-url", url], check=True)
        finally:
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
