"""The Celery application. Its configuration is read from the settings when first needed, not at import."""

from __future__ import annotations

from celery import Celery

from worker import context
from worker.celery_config import celery_config

app = Celery("mediapurge", include=["tasks.jobs", "tasks.retention"])


@app.on_configure.connect
def _configure(sender: Celery, **_: object) -> None:
    sender.conf.update(celery_config(context.settings()))
