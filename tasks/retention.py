"""The retention task: Celery beat sends one per enabled policy every ``every`` (worker/celery_config.py).

The argument is the policy's name, nothing else; the run reads the runtime's clock, so the period it
fills is the one the task runs in.
"""

from __future__ import annotations

import logging
from typing import Any

from tasks.app import app
from tasks.jobs import INFRASTRUCTURE_RETRY, plan_job
from worker import context, retention

log = logging.getLogger("mediapurge.retention")


@app.task(name="mediapurge.run_retention", **INFRASTRUCTURE_RETRY)
def run_retention(policy_name: str) -> dict[str, Any]:
    rt = context.runtime()
    try:
        outcome = retention.run_named(rt.settings, rt.sessions, policy_name, rt.clock(), enqueue=plan_job.delay)
    except (retention.PolicyNotFound, retention.PolicyDisabled) as exc:
        # A beat started with older settings: nothing to run, and retrying would not change that.
        log.warning("retention task skipped: %s", exc)
        return {"policy": policy_name, "skipped": str(exc)}
    return outcome.as_dict()
