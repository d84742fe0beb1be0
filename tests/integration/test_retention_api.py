"""The inventory and retention routes over HTTP: a real uvicorn server on loopback serving just the
router, on a migrated PostgreSQL database."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import func, select

from migrations.runner import upgrade
from models import InventoryMedia, Item, Job, RetentionRun, make_engine, make_session_factory
from worker.api.inventory import RetentionServices, retention_services, router
from worker.embedded import free_port
from worker.settings import load_settings

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 22, 6, 30, tzinfo=timezone.utc)
SETTINGS = load_settings(
    accounts={"zego": {"default": {"app_id": 1, "server_secret": "s"}}},
    retention_policies={
        "zego-trial": {"action": "zego.DeleteMedia", "tags": ["trial"], "older_than": "7d", "every": "1h"},
        "paused": {"action": "zego.DeleteMedia", "older_than": "1d", "enabled": False},
    },
)


def zego(file_id: str, days: float, tags=("trial",)) -> dict:
    return {"action": "zego.DeleteMedia", "Vendor": "Tencent", "FileId": file_id,
            "created_at": (NOW - timedelta(days=days)).isoformat(), "tags": list(tags)}


class Api:
    def __init__(self, url: str, sessions, enqueued: list[int]) -> None:
        self.client = httpx.Client(base_url=url, timeout=30)
        self.sessions = sessions
        self.enqueued = enqueued

    def count(self, model) -> int:
        with self.sessions() as s:
            return s.scalar(select(func.count()).select_from(model))


@pytest.fixture
def api(pg_url: str):
    upgrade(pg_url)
    engine = make_engine(pg_url)
    enqueued: list[int] = []
    app = FastAPI()
    app.include_router(router, prefix="/v1")  # as worker.api.create_app mounts it
    app.dependency_overrides[retention_services] = lambda: RetentionServices(
        SETTINGS, make_session_factory(engine), enqueued.append, lambda: NOW
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    built = Api(f"http://127.0.0.1:{port}", make_session_factory(engine), enqueued)
    try:
        yield built
    finally:
        built.client.close()
        server.should_exit = True
        thread.join(10)
        engine.dispose()


def test_media_are_registered_from_a_json_array_or_ndjson(api):
    answer = api.client.post("/v1/inventory", json=[zego("a", 8), zego("b", 8)])
    assert answer.status_code == 200 and answer.json() == {"registered": 2}

    lines = "".join(json.dumps(zego(f"n{i}", 9)) + "\n" for i in range(3000)) + json.dumps(zego("a", 30, tags=["paid"])) + "\n"
    answer = api.client.post("/v1/inventory", content=lines.encode(), headers={"content-type": "application/x-ndjson"})
    assert answer.status_code == 200 and answer.json() == {"registered": 3001}

    assert api.count(InventoryMedia) == 3002  # "a" registered twice is one medium, updated
    with api.sessions() as s:
        a = s.scalars(select(InventoryMedia).where(InventoryMedia.media_id == "a")).one()
    assert a.created_at == NOW - timedelta(days=30)


def test_a_bad_medium_refuses_the_whole_body_with_every_problem(api):
    body = [zego("ok", 8), {"action": "zego.DeleteMedia", "Vendor": "Tencent", "FileId": "x", "created_at": "2026-11-01T00:00:00"},
            {**zego("y", 8), "tags": "a b", "account": "us"}]
    answer = api.client.post("/v1/inventory", json=body)

    assert answer.status_code == 422
    assert {(p["line"], p["field"]) for p in answer.json()["problems"]} == {(2, "created_at"), (3, "tags"), (3, "account")}
    ndjson = api.client.post("/v1/inventory", content=b'{"action": "zego.DeleteMedia"\n', headers={"content-type": "application/x-ndjson"})
    assert ndjson.status_code == 422 and ndjson.json()["problems"][0]["line"] == 1
    assert api.client.post("/v1/inventory", content=b"{not json", headers={"content-type": "application/json"}).status_code == 400
    assert api.client.post("/v1/inventory", json={"action": "zego.DeleteMedia"}).status_code == 400
    assert api.count(InventoryMedia) == 0


def test_policies_are_listed_with_their_runs(api):
    api.client.post("/v1/inventory", json=[zego("a", 8)])
    api.client.post("/v1/retention/policies/zego-trial/run")

    policies = {p["name"]: p for p in api.client.get("/v1/retention/policies").json()["policies"]}

    assert set(policies) == {"paused", "zego-trial"}
    trial = policies["zego-trial"]
    assert (trial["older_than"], trial["every"], trial["tags"], trial["enabled"]) == ("7d", "1h", ["trial"], True)
    assert [(r["period"], r["item_count"], r["job_status"]) for r in trial["runs"]] == [("2026-11-22T06:00:00Z", 1, "submitted")]
    assert policies["paused"]["runs"] == [] and policies["paused"]["enabled"] is False


def test_a_dry_run_writes_nothing_and_a_run_makes_one_job_per_period(api):
    api.client.post("/v1/inventory", json=[zego("old", 8), zego("young", 1), zego("untagged", 8, tags=())])

    dry = api.client.post("/v1/retention/policies/zego-trial/run", params={"dry_run": "true"})
    assert dry.status_code == 200 and dry.json()["item_count"] == 1 and dry.json()["sample"][0]["FileId"] == "old"
    assert (api.count(Job), api.count(RetentionRun)) == (0, 0)

    first = api.client.post("/v1/retention/policies/zego-trial/run")
    again = api.client.post("/v1/retention/policies/zego-trial/run")

    assert first.status_code == 201 and first.json()["created"] and first.json()["item_count"] == 1
    assert again.status_code == 200 and not again.json()["created"] and again.json()["job_id"] == first.json()["job_id"]
    assert (api.count(Job), api.count(Item), api.count(RetentionRun)) == (1, 1, 1)
    assert api.enqueued == [first.json()["job_id"]]


def test_unknown_and_disabled_policies_are_refused(api):
    unknown = api.client.post("/v1/retention/policies/nope/run")
    disabled = api.client.post("/v1/retention/policies/paused/run")

    assert unknown.status_code == 404 and "no retention policy named 'nope'" in unknown.json()["detail"]
    assert disabled.status_code == 409 and "disabled" in disabled.json()["detail"]
    assert api.client.post("/v1/retention/policies/paused/run", params={"dry_run": "true"}).status_code == 200
    assert api.count(RetentionRun) == 0
