"""Alembic migrations for the audit schema, shipped inside the package.

``migrations.runner`` applies them without an ``alembic.ini`` in the working directory; the ``alembic``
command works too, from the repository root (``alembic upgrade head``) or with
``alembic -c <site-packages>/migrations/alembic.ini upgrade head`` for an installed copy.
"""
