"""The application factory. Routers added with ``add_protected_router`` are served under ``/v1`` behind
bearer-token authentication; ``/healthz`` and the OpenAPI document are open.

    app = create_app(settings)
    add_protected_router(app, my_router)   # e.g. worker/api/inventory.py's router
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from models.db import make_engine, make_session_factory
from models.types import utcnow
from worker.api import schemas
from worker.api.auth import require_token
from worker.api.errors import ApiError, install_error_handlers
from worker.api.inventory import RetentionServices, retention_services
from worker.api.inventory import router as inventory_router
from worker.api.jobs import router as jobs_router
from worker.dispatch import Dispatcher
from worker.errors import ConfigurationError
from worker.settings import Settings

API_PREFIX = "/v1"
DESCRIPTION = """Submit deletion jobs and follow them. Every `/v1` route needs `Authorization: Bearer <token>`.
Errors share one shape: `{"error": {"code", "message", "problems": [{"line", "field", "reason"}], "problem_count"}}`."""

health = APIRouter(tags=["health"])


@health.get("/healthz", response_model=schemas.Health, responses={503: {"model": schemas.ErrorBody}})
def healthz(request: Request) -> schemas.Health:
    """Up, and the database answers. No authentication."""
    try:
        with request.app.state.sessions() as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001
        raise ApiError(503, "unavailable", f"the database does not answer ({type(exc).__name__})") from None
    return schemas.Health(status="ok", database="ok")


def add_protected_router(app: FastAPI, router: APIRouter) -> None:
    """Serve ``router`` under /v1, behind the bearer-token check (documented with the 401 answer)."""
    app.include_router(
        router, prefix=API_PREFIX, dependencies=[Depends(require_token)], responses={401: {"model": schemas.ErrorBody}}
    )


def create_app(
    settings: Settings,
    *,
    sessions: sessionmaker[Session] | None = None,
    dispatcher: Dispatcher | None = None,
    routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """The API for ``settings``. ``sessions`` and ``dispatcher`` default to ones built from the settings;
    ``routers`` are added behind authentication after the jobs routes."""
    if not settings.api.token_hashes:
        raise ConfigurationError(
            "api.token_hashes is empty, so no request could be authenticated; add the hash that "
            "`mediapurge api hash-token` prints (e.g. MEDIAPURGE_API__TOKEN_HASHES='[\"sha256:...\"]')"
        )
    engine = None
    if sessions is None:
        engine = make_engine(settings.database_url)
        sessions = make_session_factory(engine)
    dispatcher = dispatcher or Dispatcher(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        dispatcher.close()
        if engine is not None:
            engine.dispose()

    app = FastAPI(title="mediapurge", version="1", description=DESCRIPTION, lifespan=lifespan, redoc_url=None)
    app.state.settings = settings
    app.state.sessions = sessions
    app.state.dispatcher = dispatcher
    app.state.token_hashes = list(settings.api.token_hashes)
    install_error_handlers(app)
    app.include_router(health)
    # Inventory and retention routes use this app's settings, sessions and broker, not the process's.
    app.dependency_overrides[retention_services] = lambda: RetentionServices(settings, sessions, dispatcher.plan_job, utcnow)
    for router in (jobs_router, inventory_router, *routers):
        add_protected_router(app, router)
    app.include_router(_metrics_router(sessions, dispatcher), dependencies=[Depends(require_token)])
    return app


def _metrics_router(sessions: sessionmaker[Session], dispatcher: Dispatcher) -> APIRouter:
    """GET /metrics: Prometheus text, read from the database at each scrape (worker/metrics.py), behind
    the same bearer token (Prometheus: ``authorization: {credentials: <token>}``)."""
    from kombu.exceptions import OperationalError
    from redis.exceptions import RedisError

    from worker.metrics import queue_depth_or_none, render

    depth = queue_depth_or_none(dispatcher.queue_length, (OSError, RedisError, OperationalError))
    router = APIRouter(tags=["metrics"])

    @router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
    def metrics() -> Response:
        body, content_type = render(sessions, depth)
        return Response(body, media_type=content_type)

    return router
