"""Security headers, production start-up rules and bearer tokens for writes."""

import logging

import pytest

from app import create_app
from app.models import Student

TOKEN = "s3cret-token"
NEW_STUDENT = {"name": "Ada Lovelace", "email": "ada@example.edu"}


@pytest.fixture
def tokens(app, monkeypatch):
    """Require ``TOKEN`` (or a second one) on writes for one test."""
    monkeypatch.setitem(app.config, "API_TOKENS", ["other-token", TOKEN])


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


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
    for name in ("SECRET_KEY", "API_TOKENS", "CORS_ORIGINS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("FLASK_DEBUG", "1")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'prod.sqlite3'}")
    return monkeypatch


def test_production_refuses_to_start_without_secret_key(production_env):
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app()


def test_production_turns_debug_off_and_warns_without_api_tokens(production_env, caplog):
    production_env.setenv("SECRET_KEY", "a-real-secret")
    with caplog.at_level(logging.WARNING, logger="app.security"):
        application = create_app()
    assert application.debug is False
    assert application.config["API_TOKENS"] == []
    assert any("API_TOKENS is not set" in record.getMessage() for record in caplog.records)


def test_production_with_api_tokens_does_not_warn(production_env, caplog):
    production_env.setenv("SECRET_KEY", "a-real-secret")
    production_env.setenv("API_TOKENS", f" {TOKEN} , second ,")
    with caplog.at_level(logging.WARNING, logger="app.security"):
        application = create_app()
    assert application.config["API_TOKENS"] == [TOKEN, "second"]
    assert not [record for record in caplog.records if record.name == "app.security"]


# --- bearer tokens on writes ------------------------------------------------


def test_writes_are_open_when_no_tokens_are_configured(client, db_rows):
    response = client.post("/students", json=NEW_STUDENT)
    assert response.status_code == 201
    assert [s.email for s in db_rows(Student)] == [NEW_STUDENT["email"]]


@pytest.mark.usefixtures("tokens")
def test_write_without_token_is_refused_with_401(client, db_rows):
    response = client.post("/students", json=NEW_STUDENT)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.json["status"] == 401
    assert response.json["title"] == "Unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert db_rows(Student) == []


@pytest.mark.usefixtures("tokens")
@pytest.mark.parametrize(
    "authorization",
    [f"Bearer {TOKEN}x", "Bearer s3cret", f"Basic {TOKEN}", "Bearer", TOKEN],
)
def test_write_with_wrong_token_is_refused_with_401(client, db_rows, authorization):
    response = client.post("/students", json=NEW_STUDENT, headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert db_rows(Student) == []


@pytest.mark.usefixtures("tokens")
def test_write_with_a_configured_token_succeeds(client, db_rows):
    response = client.post("/students", json=NEW_STUDENT, headers=bearer(TOKEN))
    assert response.status_code == 201
    assert [s.email for s in db_rows(Student)] == [NEW_STUDENT["email"]]
    response = client.post(
        "/students", json={"name": "B", "email": "b@example.edu"}, headers=bearer("other-token")
    )
    assert response.status_code == 201


@pytest.mark.usefixtures("tokens")
def test_patch_and_delete_need_the_token(client, make_student, db_rows):
    student_id = make_student(name="Old Name")
    assert client.patch(f"/students/{student_id}", json={"name": "New"}).status_code == 401
    assert client.delete(f"/students/{student_id}").status_code == 401
    assert [s.name for s in db_rows(Student)] == ["Old Name"]
    response = client.patch(f"/students/{student_id}", json={"name": "New"}, headers=bearer(TOKEN))
    assert response.status_code == 200
    assert client.delete(f"/students/{student_id}", headers=bearer(TOKEN)).status_code == 204
    assert db_rows(Student) == []


@pytest.mark.usefixtures("tokens")
def test_unauthenticated_write_gets_401_before_body_checks(client):
    response = client.post("/students", data="not json", content_type="text/plain")
    assert response.status_code == 401


@pytest.mark.usefixtures("tokens")
def test_reads_and_options_stay_open(client, make_student):
    student_id = make_student()
    assert client.get("/students").status_code == 200
    assert client.get(f"/students/{student_id}").status_code == 200
    assert client.head("/students").status_code == 200
    assert client.options("/students").status_code == 200


@pytest.mark.usefixtures("tokens")
def test_unknown_urls_still_answer_404_and_405(client):
    assert client.post("/no-such-page", json={}).status_code == 404
    assert client.delete("/students").status_code == 405


def test_spec_declares_the_bearer_scheme_on_writes_only(client):
    spec = client.get("/openapi.json").json
    scheme = spec["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == {
        "type": "http",
        "scheme": "bearer",
        "description": "Required on writes when the server sets API_TOKENS.",
    }
    methods_seen = set()
    for operations in spec["paths"].values():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete", "head", "options"}:
                continue
            methods_seen.add(method)
            if method in {"post", "put", "patch", "delete"}:
                assert operation["security"] == [{"bearerAuth": []}]
                assert operation["responses"]["401"] == {
                    "$ref": "#/components/responses/UNAUTHORIZED"
                }
            else:
                assert "security" not in operation
                assert "401" not in operation["responses"]
    assert {"get", "post", "patch", "delete"} <= methods_seen
