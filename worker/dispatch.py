"""Send mediapurge's tasks by name from processes that are not workers (the HTTP API, the CLI).

A Celery app of its own, configured from the settings it is given (not the process-wide ones), so an
API built by ``create_app(settings)`` sends where those settings say. Messages carry a job id only.
"""

from __future__ import annotations

import threading

from celery import Celery

from worker.celery_config import QUEUE, celery_config, waiting_messages
from worker.refs import plan_argsrepr
from worker.settings import Settings

PLAN_JOB = "mediapurge.plan_job"
NOTIFY_JOB = "mediapurge.notify_job"


class Dispatcher:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._app: Celery | None = None
        self._lock = threading.Lock()

    def _celery(self) -> Celery:
        with self._lock:
            if self._app is None:
                app = Celery("mediapurge-dispatch", set_as_current=False)
                app.conf.update(celery_config(self._settings))
                self._app = app
            return self._app

    def plan_job(self, job_id: int) -> None:
        """Batch the job's unbatched items and enqueue its queued batches (after a submit or a retry)."""
        self._celery().send_task(PLAN_JOB, args=[job_id], queue=QUEUE, argsrepr=plan_argsrepr(job_id))

    def notify_job(self, job_id: int) -> None:
        """Deliver the job's end-of-job callback."""
        self._celery().send_task(NOTIFY_JOB, args=[job_id], queue=QUEUE, argsrepr=plan_argsrepr(job_id))

    def queue_length(self) -> int:
        return waiting_messages(self._celery())

    def close(self) -> None:
        with self._lock:
            if self._app is not None:
                self._app.close()
                self._app = None
