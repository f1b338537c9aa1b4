"""Health probes, and 503s (never 500s) while the database cannot be reached."""

import pytest

from tests.support.databases import make_app
from tests.support.servers import free_port

# A free port of the test range: nothing listens there.
UNREACHABLE_DATABASE = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nowhere"


@pytest.fixture
def app_without_database():
    """An app whose database refuses every connection."""
    return make_app(UNREACHABLE_DATABASE, DB_CONNECT_TIMEOUT_SECONDS=2)


def test_livez_answers_ok_without_the_database(client, count_queries):
    with count_queries() as statements:
        response = client.get("/livez")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert statements == []


def test_livez_answers_without_the_database(app_without_database):
    response = app_without_database.test_client().get("/livez")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_answers_when_the_database_does(client):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/readyz", None),
        ("GET", "/students", None),
        ("GET", "/students/1", None),
        ("POST", "/students", {"name": "Ada", "email": "ada@example.edu"}),
        ("PATCH", "/courses/1", {"title": "New"}),
        ("POST", "/students/1/courses", {"course_ids": [1]}),
        ("DELETE", "/students/1/courses/1", None),
        ("DELETE", "/courses/1", None),
    ],
)
def test_every_database_endpoint_is_a_503_with_retry_after_when_the_database_is_down(
    app_without_database, method, path, body
):
    response = app_without_database.test_client().open(path, method=method, json=body)

    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"] == "5"
    assert response.get_json()["status"] == 503
