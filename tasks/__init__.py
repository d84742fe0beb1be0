"""Celery entry points. ``celery -A tasks.app worker`` starts a worker."""
