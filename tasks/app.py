"""The Celery application. Its configuration is read from the settings when first needed, not at import."""

from __future__ import annotations

import gc
from typing import Any

from celery import Celery, Task
from celery.signals import worker_process_init

from worker import context
from worker.celery_config import celery_config


class MediapurgeTask(Task):
    """Celery's Task, whose retries keep the argsrepr/kwargsrepr of the message being retried.

    Celery builds a retry's message from the request's arguments and would show Flower their bare repr
    (``(345,)``) instead of what the first send said about the work (``job=12 batch=345 ...``).
    """

    def signature_from_request(self, request: Any = None, args: Any = None, kwargs: Any = None, queue: Any = None, **extra_options: Any):
        request = self.request if request is None else request
        same_call = (args is None or list(args) == list(request.args or ())) and (kwargs is None or kwargs == (request.kwargs or {}))
        if same_call:
            for key in ("argsrepr", "kwargsrepr"):
                if request.get(key) and key not in extra_options:
                    extra_options[key] = request.get(key)
        return super().signature_from_request(request, args, kwargs, queue, **extra_options)


app = Celery("mediapurge", include=["tasks.jobs", "tasks.retention"], task_cls=MediapurgeTask)


@worker_process_init.connect
def _freeze_imports(**_: object) -> None:
    """Everything a pool process imported lives as long as it does. Left to the cyclic GC, a full
    collection walks all of it (tens of milliseconds), and one that falls between a call's rate-limit
    admission and its send delays the call by as much. Frozen, collections walk what tasks allocate."""
    gc.freeze()


@app.on_configure.connect
def _configure(sender: Celery, **_: object) -> None:
    sender.conf.update(celery_config(context.settings()))
