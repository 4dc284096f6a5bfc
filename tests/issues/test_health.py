"""GET /api/health: 200 when the database answers, a JSON 503 when it does not."""

import pytest
from django.db import OperationalError

pytestmark = pytest.mark.django_db


def test_health_ok(anon_client):
    response = anon_client.get("/api/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_health_reports_a_database_outage(anon_client, monkeypatch):
    from django.db.backends.utils import CursorWrapper

    def refuse(self, sql, params=None):
        raise OperationalError("connection refused")

    monkeypatch.setattr(CursorWrapper, "execute", refuse)
    response = anon_client.get("/api/health/")
    assert response.status_code == 503
    assert response.json()["database"] == "unavailable"
