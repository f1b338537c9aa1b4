"""Security headers on every response, and production start-up rules.

Who may call what is tested in tests/test_auth_*.py.
"""

import logging

import pytest

from app import create_app
from app.models import Student

# --- security headers -------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "status"),
    [
        ("get", "/students", 200),
        ("get", "/students/999", 404),
        ("get", "/no-such-page", 404),
        ("put", "/students", 405),
        ("get", "/openapi.json", 200),
    ],
)
def test_every_response_carries_the_security_headers(client, method, url, status):
    response = getattr(client, method)(url)
    assert response.status_code == status
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"


def test_validation_errors_carry_the_security_headers(client, db_rows):
    response = client.post("/students", json={"name": ""})
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    assert db_rows(Student) == []


def test_unexpected_errors_carry_the_security_headers(client, monkeypatch, caplog):
    def explode(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("app.queries.list_students", explode)
    with caplog.at_level(logging.CRITICAL):
        response = client.get("/students")
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


# --- production start-up ----------------------------------------------------


@pytest.fixture
def production_env(monkeypatch, tmp_path):
    """The environment of a production process (minus the secret key)."""
    for name in ("SECRET_KEY", "API_TOKENS", "CORS_ORIGINS", "METRICS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("AUTH_MODE", "none")
    monkeypatch.setenv("FLASK_DEBUG", "1")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'prod.sqlite3'}")
    return monkeypatch


def test_production_refuses_to_start_without_secret_key(production_env):
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app()


def test_production_turns_debug_off(production_env):
    production_env.setenv("SECRET_KEY", "a-real-secret")
    assert create_app().debug is False
