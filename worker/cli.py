"""The ``mediapurge`` command. Each command is a few lines over worker.jobs and friends.

typer builds the commands and their --help from the function signatures; rich draws the progress bar
and tables. Errors are printed as one clear message, never as a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from functools import wraps
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from worker.errors import MediapurgeError, SubmissionRejected
from worker.outcomes import ItemStatus
from worker.settings import CONFIG_ENV

# Typer's pretty tracebacks print local variables, which may hold secrets: never show them.
app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Bulk media deletion at video-cloud vendors, with a per-item audit.",
)
DEBUG_ENV = "MEDIAPURGE_DEBUG"
# Off a terminal rich assumes 80 columns and would cut the tables; logs and CI are wider than that.
out = Console(width=None if sys.stdout.isatty() else 120)
# soft_wrap: an error line stays one line, whatever its length, so scripts can read it line by line.
err = Console(stderr=True, soft_wrap=True)


def _friendly(command):  # noqa: ANN001
    @wraps(command)
    def run(*args, **kwargs):  # noqa: ANN002, ANN003
        try:
            return command(*args, **kwargs)
        except SubmissionRejected as exc:
            err.print(str(exc), markup=False, highlight=False)
            raise typer.Exit(3) from None
        except (MediapurgeError, FileNotFoundError, PermissionError, IsADirectoryError) as exc:
            err.print(f"error: {exc}", markup=False, highlight=False)
            raise typer.Exit(1) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - the user gets one line; MEDIAPURGE_DEBUG=1 shows the rest
            if os.environ.get(DEBUG_ENV):
                raise
            err.print(f"error: {type(exc).__name__}: {exc} (set {DEBUG_ENV}=1 for the traceback)", markup=False, highlight=False)
            raise typer.Exit(1) from None

    return run


@app.callback()
def main_options(
    config: Annotated[Optional[Path], typer.Option("--config", help=f"TOML settings file (or set {CONFIG_ENV}).")] = None,
) -> None:
    if config is not None:
        os.environ[CONFIG_ENV] = str(config)


def _sessions():  # noqa: ANN202
    from worker import context

    return context.runtime().sessions


def _status_table(summary) -> Table:  # noqa: ANN001
    from worker.outcomes import ItemStatus

    table = Table(title=f"job {summary.job_id}: {summary.status.value}", show_lines=False)
    table.add_column("status")
    table.add_column("items", justify="right")
    for status in ItemStatus:
        table.add_row(status.value, f"{summary.counts.get(status, 0):,}")
    table.add_row("total", f"{summary.total:,}", style="bold")
    return table


def print_summary(summary) -> None:  # noqa: ANN001
    out.print(_status_table(summary))
    out.print(
        f"progress {summary.progress:.1%}  rate {summary.rate_per_second:,.1f} items/s  "
        f"batches {summary.batch_count:,}  duplicates ignored {summary.duplicate_count:,}"
    )


@app.command()
@_friendly
def submit(
    file: Annotated[Path, typer.Argument(help="Items, one per line: JSON Lines (.jsonl) or CSV with a header (.csv).", exists=False)],
    idempotency_key: Annotated[Optional[str], typer.Option(help="Submitting again with the same key returns the same job.")] = None,
    fmt: Annotated[Optional[str], typer.Option("--format", help="jsonl or csv (default: from the file name).")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Show progress until the job ends.")] = False,
) -> None:
    """Submit a deletion job."""
    from worker import context, jobs

    result = jobs.submit(file, settings=context.settings(), sessions=_sessions(), idempotency_key=idempotency_key, fmt=fmt)
    verb = "submitted" if result.created else "already submitted (same idempotency key)"
    out.print(f"job {result.job_id} {verb}: {result.item_count:,} items, {result.duplicate_count:,} duplicates ignored")
    if wait:
        summary = follow(result.job_id)
        print_summary(summary)


def follow(job_id: int):  # noqa: ANN201
    """Wait for the job with a progress bar; returns its final summary."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from worker import jobs

    with Progress(
        TextColumn("job {task.fields[job]}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(), console=out, transient=False,
    ) as progress:
        task = progress.add_task("job", total=None, job=job_id, rate="")

        def show(summary) -> None:  # noqa: ANN001
            progress.update(task, total=summary.total, completed=summary.done, rate=f"{summary.rate_per_second:,.0f} items/s")

        return jobs.wait_for_job(_sessions(), job_id, on_progress=show)


@app.command()
@_friendly
def status(
    job_id: Annotated[int, typer.Argument(help="The job's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Counts by status, progress and rate of a job."""
    from worker import jobs

    with _sessions()() as session:
        summary = jobs.job_status(session, job_id)
    if as_json:
        out.print_json(json.dumps(summary.as_dict()))
    else:
        print_summary(summary)


@app.command()
@_friendly
def report(
    job_id: Annotated[int, typer.Argument(help="The job's id.")],
    fmt: Annotated[str, typer.Option("--format", help="csv or json.")] = "csv",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="File to write (default: standard output).")] = None,
) -> None:
    """The completion report: one row per item with its final status, vendor code and request id."""
    from worker import jobs

    if fmt not in ("csv", "json"):
        raise MediapurgeError(f"--format: {fmt!r} is not csv or json")
    with _sessions()() as session:
        if output is None:
            jobs.write_report(session, job_id, sys.stdout, fmt)
        else:
            tmp = output.with_name(output.name + ".partial")
            try:
                with tmp.open("w", encoding="utf-8", newline="") as stream:
                    rows = jobs.write_report(session, job_id, stream, fmt)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            tmp.replace(output)
            err.print(f"{rows:,} rows written to {output}")


def _dispatcher():  # noqa: ANN202
    from worker import context
    from worker.dispatch import Dispatcher

    return Dispatcher(context.settings())


def _send_quietly(send, job_id: int, what: str) -> None:  # noqa: ANN001
    """The database holds the change already; if the broker is down, the sweeper sends it later."""
    try:
        send(job_id)
    except Exception as exc:  # noqa: BLE001
        err.print(f"warning: could not enqueue {what} ({type(exc).__name__}); the sweeper will send it", markup=False)


@app.command()
@_friendly
def cancel(job_id: Annotated[int, typer.Argument(help="The job's id.")]) -> None:
    """Cancel a job: items not sent yet are cancelled, items already sent keep their status."""
    from models.types import utcnow
    from worker import control

    with _sessions()() as session:
        result = control.cancel_job(session, job_id, utcnow())
    if result.ended:
        _send_quietly(_dispatcher().notify_job, job_id, "the job's callback")
    if result.already_requested:
        out.print(f"job {job_id} was already cancelled ({result.status.value}); nothing changed")
    elif result.ended:
        out.print(f"job {job_id} cancelled: {result.cancelled_items:,} items cancelled; items already sent keep their status")
    else:
        out.print(
            f"job {job_id} cancelling: {result.cancelled_items:,} items cancelled; {result.in_flight_batches:,} batch(es) "
            "being sent stop before their next vendor call, then the job ends cancelled"
        )


@app.command("retry-failed")
@_friendly
def retry_failed(
    job_id: Annotated[int, typer.Argument(help="The job's id.")],
    wait: Annotated[bool, typer.Option("--wait", help="Show progress until the job ends again.")] = False,
) -> None:
    """Send an ended job's failed items again, in new batches (their earlier failure stays in the audit)."""
    from models.types import utcnow
    from worker import control

    with _sessions()() as session:
        result = control.retry_failed(session, job_id, utcnow())
    if not result.requeued_items:
        out.print(f"job {job_id} has no failed items; nothing to retry (it is {result.status.value})")
        return
    _send_quietly(_dispatcher().plan_job, job_id, "the job's plan")
    out.print(f"job {job_id}: {result.requeued_items:,} failed items queued again")
    if wait:
        print_summary(follow(job_id))


@app.command()
@_friendly
def items(
    job_id: Annotated[int, typer.Argument(help="The job's id.")],
    status: Annotated[Optional[ItemStatus], typer.Option(help="Only items in this status.")] = None,
    limit: Annotated[int, typer.Option(help="Items per page (1 to 1000).", min=1, max=1000)] = 50,
    after: Annotated[Optional[int], typer.Option(help="Start after this item id (the previous page's next id).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: {items, next_after}.")] = False,
) -> None:
    """A job's items, a page at a time, in id order."""
    from worker import control
    from worker.jobs import ID_COLUMNS

    with _sessions()() as session:
        page = control.list_items(session, job_id, status=status, limit=limit, after=after)
    if as_json:
        out.print_json(json.dumps({"items": page.items, "next_after": page.next_after}))
        return
    table = Table(title=f"job {job_id} items" + (f" ({status.value})" if status else ""))
    for column in ("id", "line", "action", "ids", "status", "attempts", "vendor code", "vendor message"):
        table.add_column(column, overflow="fold")
    for row in page.items:
        ids = " ".join(f"{name}={row[name]}" for name in ID_COLUMNS if name in row)
        table.add_row(
            str(row["id"]), str(row["line"]), row["action"], ids, row["status"], str(row["attempts"]),
            row["vendor_code"] or "", (row["vendor_message"] or "")[:80],
        )
    out.print(table)
    if page.next_after is not None:
        err.print(f"more: mediapurge items {job_id}{f' --status {status.value}' if status else ''} --after {page.next_after}")


api_app = typer.Typer(help="The producer HTTP API.", no_args_is_help=False)
app.add_typer(api_app, name="api")


@api_app.callback(invoke_without_command=True)
@_friendly
def api(
    ctx: typer.Context,
    host: Annotated[Optional[str], typer.Option(help="Address to listen on (default: api.host, 127.0.0.1).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port to listen on (default: api.port, 8000).")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn's log level.")] = "info",
) -> None:
    """Serve the HTTP API with uvicorn (OpenAPI at /openapi.json, docs at /docs)."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from worker import context
    from worker.api import create_app

    settings = context.settings()
    application = create_app(settings)
    uvicorn.run(
        application, host=host or settings.api.host, port=settings.api.port if port is None else port,
        log_level=log_level, server_header=False,
    )


@api_app.command("hash-token")
@_friendly
def hash_token() -> None:
    """Read a bearer token from standard input and print the hash to put in api.token_hashes."""
    import getpass

    from worker.api.auth import hash_token as hashed

    token = getpass.getpass("token: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\r\n")
    if not token:
        raise MediapurgeError("no token on standard input (e.g. `printf %s \"$TOKEN\" | mediapurge api hash-token`)")
    if len(token) < 16:
        raise MediapurgeError(
            "the token is shorter than 16 characters; use a random one, e.g. "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    out.print(hashed(token), markup=False, highlight=False)
    err.print("add it to api.token_hashes (e.g. MEDIAPURGE_API__TOKEN_HASHES='[\"sha256:...\"]')", markup=False, highlight=False)


@app.command()
@_friendly
def migrate() -> None:
    """Create or upgrade the database schema (Alembic upgrade head)."""
    from migrations.runner import upgrade
    from worker import context

    upgrade(context.settings().database_url)
    out.print("database is at the latest schema")


@app.command()
@_friendly
def metrics(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 9808,
) -> None:
    """Serve Prometheus metrics on http://HOST:PORT/metrics, read from the database at each scrape."""
    from kombu.exceptions import OperationalError
    from redis.exceptions import RedisError

    from tasks.jobs import queue_length
    from worker.metrics import queue_depth_or_none, serve

    depth = queue_depth_or_none(queue_length, (OSError, RedisError, OperationalError))
    serve(_sessions(), depth, host, port, ready=lambda: out.print(f"metrics on http://{host}:{port}/metrics"))


@app.command()
@_friendly
def sandbox(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8900,
    seed: Annotated[Optional[Path], typer.Option(help="JSON file of media the sandbox holds.")] = None,
    generate: Annotated[int, typer.Option(help="Also hold this many generated media per operation...")] = 0,
    items_out: Annotated[Path, typer.Option(help="...and write them, as items to submit, to this file.")] = Path("sandbox-items.jsonl"),
    missing: Annotated[float, typer.Option(help="Fraction of generated items the sandbox does not hold.")] = 0.1,
) -> None:
    """Run the vendor sandbox: a local server speaking the four vendor operations, for trials and tests.

    It accepts the accounts configured in the settings (their secrets verify the signatures); point an
    account's endpoint at http://HOST:PORT/aliyun, /zego or /huawei.
    """
    from worker import context
    from worker.sandbox import SandboxConfig, generate_media, serve_forever
    from worker.sandbox.generate import ACTIONS

    config = SandboxConfig.from_settings(context.settings())
    generated = None
    if generate:
        actions = {a: generate for a in ACTIONS if config.account_keys(a.split(".")[0])}
        if not actions:
            raise MediapurgeError("--generate: no vendor account is configured to generate media for")
        generated, items = generate_media(actions, missing_fraction=missing, accounts=config)
        with items_out.open("w", encoding="utf-8") as stream:
            stream.writelines(json.dumps(item) + "\n" for item in items)
        out.print(f"{len(items):,} items to submit written to {items_out}")

    def ready(server) -> None:  # noqa: ANN001
        if generated is not None:
            server.seed(generated)
        out.print(f"sandbox on {server.url} (aliyun: /aliyun, zego: /zego, huawei: /huawei, control: /_sandbox)")

    serve_forever(config, host, port, seed=seed, ready=ready)


@app.command()
@_friendly
def demo(
    items: Annotated[int, typer.Option(help="How many items to generate across the four operations.")] = 3000,
    directory: Annotated[Path, typer.Option("--dir", help="Where the demo keeps its database, items and report.")] = Path("mediapurge-demo"),
    missing: Annotated[float, typer.Option(help="Fraction of items the sandbox does not hold (answered 'not found').")] = 0.1,
) -> None:
    """Run a whole job on an embedded stack: SQLite, an in-process Redis, a worker and the sandbox."""
    from worker.demo import run_demo

    run_demo(items=items, directory=directory, missing=missing, console=out)


@app.command()
@_friendly
def bench(
    scenario: Annotated[Optional[list[str]], typer.Argument(help="Scenarios to run (default: all), in order.")] = None,
    files: Annotated[int, typer.Option(help="ZEGO files in the fidelity job.")] = 200_000,
    seconds: Annotated[float, typer.Option(help="Seconds of calls at its limit each key gets in the per-key, mixed, shared-quota and storm scenarios (a per-minute limit: at least 150).")] = 30.0,
    pipeline_files: Annotated[int, typer.Option(help="ZEGO files in the pipeline job (limits lifted).")] = 200_000,
    baseline_files: Annotated[int, typer.Option(help="Files the Celery task-per-item baseline deletes.")] = 2_000,
    loop_files: Annotated[int, typer.Option(help="Files the plain-loop baseline deletes.")] = 20_000,
    submit_items: Annotated[int, typer.Option(help="Items in the big-submission scenario.")] = 1_000_000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 4,
    concurrency: Annotated[int, typer.Option(help="Pool processes per worker.")] = 4,
    latency: Annotated[float, typer.Option(help="The sandbox's answer time, seconds.")] = 0.03,
    headroom: Annotated[Optional[float], typer.Option(help="The workers' rate_limit_headroom (default: the settings').")] = None,
    postgres: Annotated[str, typer.Option(help="PostgreSQL URL of a role that may create databases.")] = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
    redis_url: Annotated[str, typer.Option("--redis", help="Redis database the benchmark may flush.")] = "redis://127.0.0.1:6379/15",
    logs: Annotated[Path, typer.Option(help="Where worker and sandbox logs go.")] = Path("bench-logs"),
) -> None:
    """Measure rate fidelity, adaptive throttling, isolation, pipeline overhead and big submissions on
    loopback (sandbox + PostgreSQL + Redis + worker processes); one JSON object per scenario on stdout."""
    from worker.bench.runner import SCENARIOS, Sizes, run
    from worker.bench.scenarios import Options
    from worker.bench.stack import Services

    names = scenario or list(SCENARIOS)
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        raise MediapurgeError(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    opts = Options(Services(postgres, redis_url), logs.resolve(), workers=workers, concurrency=concurrency, latency=latency,
                   headroom=headroom)
    sizes = Sizes(files, seconds, pipeline_files, baseline_files, loop_files, submit_items)
    run(names, opts, sizes, sys.stdout)


# Inventory and retention purges (worker/inventory.py, worker/retention.py).
inventory_app = typer.Typer(no_args_is_help=True, help="The media inventory that retention policies delete from.")
retention_app = typer.Typer(no_args_is_help=True, help="Retention policies: scheduled deletion of aged media.")
app.add_typer(inventory_app, name="inventory")
app.add_typer(retention_app, name="retention")


@inventory_app.command("add")
@_friendly
def inventory_add(
    file: Annotated[Path, typer.Argument(help="Media, one per line: JSON Lines (.jsonl) or CSV with a header (.csv); item fields plus created_at and tags.")],
    fmt: Annotated[Optional[str], typer.Option("--format", help="jsonl or csv (default: from the file name).")] = None,
) -> None:
    """Register media (or update them: the same ids twice is one medium)."""
    from worker import context, inventory

    result = inventory.register(file, settings=context.settings(), sessions=_sessions(), fmt=fmt)
    out.print(f"{result.count:,} media registered")


@inventory_app.command("list")
@_friendly
def inventory_list(
    action: Annotated[Optional[str], typer.Option(help="Only this action, e.g. zego.DeleteMedia.")] = None,
    account: Annotated[Optional[str], typer.Option(help="Only this account.")] = None,
    tag: Annotated[Optional[list[str]], typer.Option(help="Only media carrying this tag (repeat: all of them).")] = None,
    status: Annotated[Optional[str], typer.Option(help="present, queued, deleted, already_gone or failed.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, oldest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Registered media, oldest first."""
    from worker.inventory import InventoryStatus, list_media

    try:
        wanted = InventoryStatus(status) if status is not None else None
    except ValueError:
        raise MediapurgeError(f"--status: {status!r} is not one of {', '.join(s.value for s in InventoryStatus)}") from None
    with _sessions()() as session:
        media = list_media(session, action=action, account=account, tags=tag or (), status=wanted, limit=limit)
    if as_json:
        out.print_json(json.dumps(media))
        return
    table = Table(title=f"{len(media)} media")
    for column in ("action", "account", "ids", "created_at", "tags", "status", "job"):
        table.add_column(column)
    for m in media:
        ids = " ".join(f"{k}={v}" for k, v in m.items() if k not in _INVENTORY_COLUMNS)
        table.add_row(m["action"], m["account"], ids, m["created_at"], ",".join(m["tags"]), m["status"], str(m["job_id"] or ""))
    out.print(table)


_INVENTORY_COLUMNS = {"action", "account", "created_at", "tags", "status", "job_id", "registered_at", "deleted_at"}


@retention_app.command("list")
@_friendly
def retention_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The configured policies and their most recent runs."""
    from worker import context, retention

    with _sessions()() as session:
        policies = retention.policy_summaries(session, context.settings())
    if as_json:
        out.print_json(json.dumps(policies))
        return
    if not policies:
        out.print("no retention policies are configured (retention_policies in the settings)")
        return
    table = Table(title="retention policies")
    for column in ("name", "action", "account", "tags", "older than", "every", "max items", "enabled", "last run"):
        table.add_column(column)
    for p in policies:
        last = p["runs"][0] if p["runs"] else None
        shown = "never" if last is None else f"{last['period']}: " + (
            f"job {last['job_id']} ({last['item_count']:,} media, {last['job_status']})" if last["job_id"] else "nothing due")
        table.add_row(p["name"], p["action"], p["account"] or "any", ",".join(p["tags"]) or "-", p["older_than"], p["every"],
                      str(p["max_items"] or "-"), "yes" if p["enabled"] else "no", shown)
    out.print(table)


@retention_app.command("run")
@_friendly
def retention_run(
    name: Annotated[str, typer.Argument(help="The policy's name.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be deleted; write nothing.")] = False,
    now: Annotated[Optional[str], typer.Option(help="Run as if it were this time (ISO 8601 with a time zone).")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Show progress until the job ends.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Run a policy for the current period now (at most one job per period, as beat does)."""
    from datetime import datetime

    from models.types import utcnow
    from worker import context, jobs, retention

    at = utcnow()
    if now is not None:
        try:
            at = datetime.fromisoformat(now)
        except ValueError:
            raise MediapurgeError(f"--now: {now!r} is not an ISO 8601 time (e.g. 2026-11-22T06:00:00Z)") from None
        if at.tzinfo is None:
            raise MediapurgeError(f"--now: {now!r} has no time zone (add Z for UTC, or an offset like +08:00)")
    outcome = retention.run_named(context.settings(), _sessions(), name, at, enqueue=jobs.celery_enqueue, dry_run=dry_run)
    if as_json:
        out.print_json(json.dumps(outcome.as_dict()))
    elif dry_run:
        capped = f" (of {outcome.matched:,} due; max_items caps a run)" if outcome.matched > outcome.item_count else ""
        out.print(f"dry run of {name}, period {outcome.period}: {outcome.item_count:,} media would be deleted{capped}; nothing was written")
        for medium in outcome.sample:
            out.print("  " + json.dumps(medium), markup=False, highlight=False, soft_wrap=True)
        if outcome.item_count > len(outcome.sample):
            out.print(f"  ... and {outcome.item_count - len(outcome.sample):,} more")
    elif not outcome.created:
        job = f"job {outcome.job_id} ({outcome.item_count:,} media)" if outcome.job_id else "no job (nothing was due)"
        out.print(f"{name} already ran for period {outcome.period}: {job}")
    elif outcome.job_id is None:
        out.print(f"{name}, period {outcome.period}: nothing due, no job submitted")
    else:
        out.print(f"{name}, period {outcome.period}: job {outcome.job_id} submitted with {outcome.item_count:,} media")
    if wait and outcome.job_id is not None and not dry_run:
        print_summary(follow(outcome.job_id))


def main() -> None:
    app()
