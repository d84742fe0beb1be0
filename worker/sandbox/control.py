"""The control API under ``/_sandbox/``: JSON in, JSON out.

    GET  /_sandbox/health           {"ok": true, "calls": n, "held": {...}}
    GET  /_sandbox/stats[?window=s] Engine.stats
    GET  /_sandbox/calls[?since=n]  {"calls": [...], "next": n}
    GET  /_sandbox/deleted[?since=n] {"deleted": [...], "next": n}
    GET  /_sandbox/media            {"counts": {...}, "media": <seed format>}
    POST /_sandbox/media            body: seed format -> {"added": {...}}
    GET  /_sandbox/faults           {"seed": s, "rules": {...}}
    POST /_sandbox/faults           body: {"rules": {scope: spec | null}, "seed": s?, "replace": bool?}
    GET  /_sandbox/limits           {scope: {"count", "period"} | null}
    POST /_sandbox/limits           body: {scope: "20/s" | [n, s] | {"count", "period"} | null}
    POST /_sandbox/reset            body (optional): {"media", "records", "faults", "limits": bool}
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from worker.sandbox.engine import Engine
from worker.sandbox.messages import Incoming, Reply

PREFIX = "/_sandbox"


def _query_number(req: Incoming, name: str, kind: Callable[[str], Any], default: Any) -> Any:
    values = parse_qs(req.raw_query).get(name)
    return kind(values[-1]) if values else default


def _body(req: Incoming) -> Any:
    return json.loads(req.body) if req.body.strip() else {}


def _health(engine: Engine, req: Incoming) -> Any:
    return {"ok": True, "calls": len(engine.recorder.calls), "held": engine.held()}


def _calls(engine: Engine, req: Incoming) -> Any:
    since = _query_number(req, "since", int, 0)
    calls = engine.calls(since)
    return {"calls": calls, "next": max(since, 0) + len(calls)}


def _deleted(engine: Engine, req: Incoming) -> Any:
    since = _query_number(req, "since", int, 0)
    deleted = engine.deleted(since)
    return {"deleted": deleted, "next": max(since, 0) + len(deleted)}


def _set_faults(engine: Engine, req: Incoming) -> Any:
    body = _body(req)
    if not isinstance(body, dict) or not isinstance(body.get("rules", {}), dict):
        raise ValueError('expected {"rules": {scope: spec or null}, "seed": int?, "replace": bool?}')
    return engine.set_faults(body.get("rules", {}), seed=body.get("seed"), replace=bool(body.get("replace", False)))


def _reset(engine: Engine, req: Incoming) -> Any:
    body = _body(req)
    parts = {name: bool(body.get(name, True)) for name in ("media", "records", "faults", "limits")}
    engine.reset(**parts)
    return {"reset": [name for name, done in parts.items() if done]}


ROUTES: dict[tuple[str, str], Callable[[Engine, Incoming], Any]] = {
    ("GET", "health"): _health,
    ("GET", "stats"): lambda e, r: e.stats(_query_number(r, "window", float, None)),
    ("GET", "calls"): _calls,
    ("GET", "deleted"): _deleted,
    ("GET", "media"): lambda e, r: e.media(),
    ("POST", "media"): lambda e, r: {"added": e.seed(_body(r))},
    ("GET", "faults"): lambda e, r: e.get_faults(),
    ("POST", "faults"): _set_faults,
    ("GET", "limits"): lambda e, r: e.get_limits(),
    ("POST", "limits"): lambda e, r: e.set_limits(_body(r)),
    ("POST", "reset"): _reset,
}


def handle(engine: Engine, req: Incoming) -> Reply:
    name = req.path[len(PREFIX):].strip("/")
    route = ROUTES.get((req.method, name))
    if route is None:
        known = sorted(f"{m} {PREFIX}/{n}" for m, n in ROUTES)
        return Reply.json(404, {"error": f"no {req.method} {req.path}", "routes": known})
    try:
        return Reply.json(200, route(engine, req))
    except (ValueError, TypeError, KeyError) as exc:  # bad JSON, bad seed, bad limit or fault
        return Reply.json(400, {"error": str(exc) or type(exc).__name__})
