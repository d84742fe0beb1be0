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


def main() -> None:
    app()
