"""The process's settings and runtime, built once on first use and rebuilt after a fork.

Only entry points (Celery tasks, the CLI) call these; everything below them takes what it needs as
arguments.
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache

import httpx
import redis

from models.db import make_engine, make_session_factory
from worker.executor import Runtime
from worker.ratelimit import RateLimiter
from worker.refs import batch_refs
from worker.settings import Settings, load_settings


# httpx logs every request URL at INFO; Alibaba Cloud and ZEGO URLs carry their signatures.
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)


def dispatch_batch(batch_id: int) -> None:
    """Enqueue a batch the executor just split off (committed), under its full ref for Flower."""
    from tasks.jobs import send_batch

    with runtime().sessions() as session:
        refs = batch_refs(session, [batch_id])
    for ref in refs:
        send_batch(ref)


@lru_cache(maxsize=1)
def settings() -> Settings:
    return load_settings()


_runtime: tuple[int, Runtime] | None = None


def runtime() -> Runtime:
    """This process's Runtime. Engines, HTTP pools and Redis sockets must not cross a fork, so a child
    process builds its own."""
    global _runtime
    if _runtime is None or _runtime[0] != os.getpid():
        _runtime = (os.getpid(), build_runtime(settings()))
    return _runtime[1]


def build_runtime(config: Settings) -> Runtime:
    engine = make_engine(config.database_url, pool_size=4, max_overflow=8) if not config.database_url.startswith("sqlite") else make_engine(config.database_url)
    http = httpx.Client(
        timeout=httpx.Timeout(config.http_timeout, connect=min(5.0, config.http_timeout)),
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
        follow_redirects=False,
    )
    limiter = RateLimiter(
        redis.Redis.from_url(config.rate_limit_store_url), headroom=config.rate_limit_headroom, adaptive=config.adaptive,
        guard=config.rate_limit_guard, smoothing=config.rate_limit_smoothing,
    )
    return Runtime(settings=config, sessions=make_session_factory(engine), http=http, limiter=limiter, dispatch=dispatch_batch)
