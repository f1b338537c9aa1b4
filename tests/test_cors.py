"""Cross-origin requests from browser frontends (flask-cors)."""

import pytest

from app.auth.identity import Identity
from app.extensions import db
from app.models import Student
from config import auth_settings, load_config
from tests.support.databases import make_app

FRONTEND = "http://localhost:8280"
OTHER_FRONTEND = "http://127.0.0.1:8281"
STRANGER = "http://evil.example"


@pytest.fixture(scope="module")
def cors_app(app):
    """An app allowing two frontend origins, on the suite's database."""
    application = make_app(
        app.config["SQLALCHEMY_DATABASE_URI"], CORS_ORIGINS=[FRONTEND, OTHER_FRONTEND]
    )
    yield application
    with application.app_context():
        db.engine.dispose()


@pytest.fixture
def cors_client(cors_app):
    return cors_app.test_client()


def preflight(client, method: str, origin: str = FRONTEND, headers: str = "content-type"):
    return client.options(
        "/students",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers,
        },
    )


def test_allowed_origin_may_read_the_exposed_headers(cors_client, make_student):
    make_student()
    response = cors_client.get("/students", headers={"Origin": OTHER_FRONTEND})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == OTHER_FRONTEND
    exposed = {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert exposed == {
        "X-Pagination",
        "X-Request-ID",
        "Location",
        "Link",
        "ETag",
        "Retry-After",
        "Idempotent-Replayed",
    }
    assert "X-Pagination" in response.headers
    assert "Origin" in response.headers["Vary"]


def test_allowed_origin_can_create_and_read_location(cors_client, db_rows):
    response = cors_client.post(
        "/students",
        json={"name": "Ada Lovelace", "email": "ada@example.edu"},
        headers={"Origin": FRONTEND},
    )
    assert response.status_code == 201
    assert response.headers["Access-Control-Allow-Origin"] == FRONTEND
    assert response.headers["Location"] == f"/students/{response.json['id']}"
    assert [s.email for s in db_rows(Student)] == ["ada@example.edu"]


def test_errors_carry_cors_headers_for_allowed_origins(cors_client):
    response = cors_client.get("/students/999", headers={"Origin": FRONTEND})
    assert response.status_code == 404
    assert response.headers["Access-Control-Allow-Origin"] == FRONTEND


def test_disallowed_origin_gets_no_cors_headers(cors_client):
    response = cors_client.get("/students", headers={"Origin": STRANGER})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Expose-Headers" not in response.headers


@pytest.mark.parametrize("method", ["POST", "PATCH", "DELETE"])
def test_preflight_allows_json_writes_with_a_token(cors_client, method):
    response = preflight(cors_client, method, headers="content-type, authorization")
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == FRONTEND
    allowed_methods = response.headers["Access-Control-Allow-Methods"].split(", ")
    assert method in allowed_methods
    allowed_headers = response.headers["Access-Control-Allow-Headers"].lower().split(", ")
    assert {"content-type", "authorization"} <= set(allowed_headers)
    assert response.headers["Access-Control-Max-Age"] == "600"


@pytest.mark.parametrize(
    ("method", "header"),
    [
        ("PATCH", "if-match"),
        ("DELETE", "if-match"),
        ("GET", "if-none-match"),
        ("POST", "idempotency-key"),
    ],
)
def test_preflight_allows_the_conditional_and_idempotency_headers(cors_client, method, header):
    response = preflight(cors_client, method, headers=f"content-type, {header}")

    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == FRONTEND
    allowed_headers = response.headers["Access-Control-Allow-Headers"].lower().split(", ")
    assert header in allowed_headers


def test_a_page_can_read_the_etag_and_send_it_back(cors_client, make_student, db_rows):
    path = f"/students/{make_student()}"
    read = cors_client.get(path, headers={"Origin": FRONTEND})
    exposed = read.headers["Access-Control-Expose-Headers"].split(", ")
    assert "ETag" in exposed
    assert read.headers["ETag"]

    stale = cors_client.patch(
        path, json={"name": "Late"}, headers={"Origin": FRONTEND, "If-Match": '"old"'}
    )
    fresh = cors_client.patch(
        path, json={"name": "Fresh"}, headers={"Origin": FRONTEND, "If-Match": read.headers["ETag"]}
    )

    assert stale.status_code == 412
    assert stale.headers["Access-Control-Allow-Origin"] == FRONTEND
    assert fresh.status_code == 200
    assert [s.name for s in db_rows(Student)] == ["Fresh"]


def test_a_replayed_answer_carries_the_cors_headers(cors_client, db_rows):
    headers = {"Origin": FRONTEND, "Idempotency-Key": "cors-1"}
    body = {"name": "Ada Lovelace", "email": "ada@example.edu"}

    first = cors_client.post("/students", json=body, headers=headers)
    replay = cors_client.post("/students", json=body, headers=headers)

    assert (first.status_code, replay.status_code) == (201, 201)
    assert replay.headers["Access-Control-Allow-Origin"] == FRONTEND
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" in replay.headers["Access-Control-Expose-Headers"]
    assert len(db_rows(Student)) == 1


def test_preflight_from_disallowed_origin_is_not_approved(cors_client):
    response = preflight(cors_client, "POST", origin=STRANGER)
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Methods" not in response.headers


def test_preflight_is_not_blocked_by_authentication(cors_app, cors_client, monkeypatch):
    settings = auth_settings({"AUTH_MODE": "tokens", "API_TOKENS": f"bff:admin:{'t' * 32}"}, "")
    monkeypatch.setitem(cors_app.extensions, "identity", Identity(settings))
    response = preflight(cors_client, "DELETE", headers="authorization")
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == FRONTEND
    refused = cors_client.post("/students", json={}, headers={"Origin": FRONTEND})
    assert refused.status_code == 401
    # The browser may show the 401 to the page, which can then ask for a token.
    assert refused.headers["Access-Control-Allow-Origin"] == FRONTEND


def test_no_origins_configured_means_no_cross_origin_access(client):
    response = client.get("/students", headers={"Origin": FRONTEND})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    response = preflight(client, "POST")
    assert "Access-Control-Allow-Origin" not in response.headers


def test_cors_origins_are_read_from_a_comma_separated_setting():
    setting = " http://localhost:8280 ,https://app.example.edu,,"
    assert load_config({"CORS_ORIGINS": setting})["CORS_ORIGINS"] == [
        "http://localhost:8280",
        "https://app.example.edu",
    ]
    assert load_config({})["CORS_ORIGINS"] == []
    assert load_config({"CORS_ORIGINS": ""})["CORS_ORIGINS"] == []
