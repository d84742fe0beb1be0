"""``mediapurge demo``: a whole job on an embedded stack, no servers to install.

SQLite for the audit, an in-process Redis speaker for the broker and the rate limits, a real Celery
worker process, and the vendor sandbox holding generated media (some items are missing on purpose, to
show "already gone"). The accounts' secrets are random and written to files, as docker secrets would be.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
import time
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from models.db import make_engine, make_session_factory

# Huawei's published limit is 100 calls/min and Alibaba's multipart deletion 10 calls/s: small shares
# keep the demo near half a minute while still showing every operation at its real limit.
DEMO_SHARES = {"aliyun.DeleteStream": 0.35, "aliyun.DeleteMultipartUpload": 0.04, "zego.DeleteMedia": 0.59, "huawei.DeleteAssets": 0.02}


def _write_config(directory: Path, sandbox_url: str) -> Path:
    secret_dir = directory / "secrets"
    secret_dir.mkdir(parents=True, exist_ok=True)
    for name in ("aliyun_access_key_secret", "zego_server_secret", "huawei_secret_key"):
        path = secret_dir / name
        path.write_text(secrets.token_hex(16))
        path.chmod(0o600)
    config = directory / "mediapurge.toml"
    config.write_text(
        f"""# Written by `mediapurge demo`: every account points at the local sandbox.
[accounts.aliyun.default]
region = "cn-shanghai"
access_key_id = "LTAI-demo-{secrets.token_hex(4)}"
access_key_secret_file = "{secret_dir / 'aliyun_access_key_secret'}"
endpoint = "{sandbox_url}/aliyun"

[accounts.zego.default]
app_id = 1234567890
server_secret_file = "{secret_dir / 'zego_server_secret'}"
endpoint = "{sandbox_url}/zego"

[accounts.huawei.default]
region = "cn-north-4"
project_id = "demo{secrets.token_hex(4)}"
access_key = "HWDEMO{secrets.token_hex(4).upper()}"
secret_key_file = "{secret_dir / 'huawei_secret_key'}"
endpoint = "{sandbox_url}/huawei"
""",
        encoding="utf-8",
    )
    return config


def run_demo(*, items: int, directory: Path, missing: float, console: Console) -> None:
    from migrations.runner import upgrade
    from worker import context, jobs
    from worker.embedded import EmbeddedRedis, WorkerProcess, free_port
    from worker.sandbox import Sandbox, SandboxConfig, generate_media
    from worker.settings import CONFIG_ENV, load_settings

    # A SIGTERM (from `timeout`, a CI runner) must still stop the worker and servers this demo started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    database = directory / "mediapurge.sqlite"
    for stale in directory.glob("mediapurge.sqlite*"):
        stale.unlink()

    with EmbeddedRedis() as redis_server:
        port = free_port()
        config_path = _write_config(directory, f"http://127.0.0.1:{port}")
        env = {
            **os.environ,
            CONFIG_ENV: str(config_path),
            "MEDIAPURGE_DATABASE_URL": f"sqlite:///{database}",
            "MEDIAPURGE_BROKER_URL": redis_server.url,
        }
        os.environ.update({k: env[k] for k in (CONFIG_ENV, "MEDIAPURGE_DATABASE_URL", "MEDIAPURGE_BROKER_URL")})
        context.settings.cache_clear()
        settings = load_settings()
        sandbox = Sandbox(SandboxConfig.from_settings(settings), host="127.0.0.1", port=port).start()
        try:
            counts = {action: max(1, round(items * share)) for action, share in DEMO_SHARES.items()}
            seed, job_items = generate_media(counts, missing_fraction=missing, rng_seed=7, accounts=sandbox.config, shuffle=True)
            sandbox.seed(seed)
            items_file = directory / "items.jsonl"
            with items_file.open("w", encoding="utf-8") as stream:
                for item in job_items:
                    stream.write(json.dumps(item) + "\n")
            console.print(f"[bold]mediapurge demo[/] in {directory}")
            console.print(f"  sandbox {sandbox.url}  broker {redis_server.url} (embedded)  database {database.name}")
            upgrade(settings.database_url)
            worker_log = directory / "worker.log"
            worker_log.unlink(missing_ok=True)
            # Threads, not forked children: SQLite and the embedded Redis are happiest with one process.
            # --beat runs the sweeper inside the worker, as a lone worker would in production.
            beat = ("--beat", "--schedule", str(directory / "beat-schedule"))
            with WorkerProcess(env, worker_log, concurrency=8, pool="threads", extra_args=beat):
                sessions = make_session_factory(make_engine(settings.database_url))
                started = time.monotonic()
                submitted = jobs.submit(items_file, settings=settings, sessions=sessions)
                console.print(f"  job {submitted.job_id}: {submitted.item_count:,} items from {items_file.name}")
                from worker.cli import follow, print_summary

                summary = follow(submitted.job_id)
                elapsed = time.monotonic() - started
            print_summary(summary)
            report = directory / "report.csv"
            with sessions() as session, report.open("w", encoding="utf-8", newline="") as stream:
                jobs.write_report(session, submitted.job_id, stream, "csv")
            _print_agreement(console, sessions, submitted.job_id, sandbox)
            console.print(f"finished in {elapsed:.1f} s; report: {report}; worker log: {worker_log}")
            console.print(f"look again with: MEDIAPURGE_DATABASE_URL=sqlite:///{database} mediapurge status {submitted.job_id}")
        finally:
            sandbox.stop()


def _print_agreement(console: Console, sessions, job_id: int, sandbox) -> None:  # noqa: ANN001
    """Compare the audit with the sandbox's own record of what it deleted."""
    from sqlalchemy import select

    from models.tables import Item

    with sessions() as session:
        audited = Counter(
            (action, status) for action, status in session.execute(select(Item.action, Item.status).where(Item.job_id == job_id))
        )
    deleted_at_vendor = Counter(f"{entry['vendor']}.{entry['operation']}" for entry in sandbox.deleted())
    table = Table(title="audit vs. the sandbox's own record")
    for column in ("action", "deleted (audit)", "deleted (sandbox)", "already gone", "failed"):
        table.add_column(column, justify="right" if column != "action" else "left")
    for action in sorted({a for a, _ in audited}):
        table.add_row(
            action, str(audited[(action, "deleted")]), str(deleted_at_vendor[action]),
            str(audited[(action, "already_gone")]), str(audited[(action, "failed")]),
        )
    console.print(table)
