"""PostgreSQL trouble under gunicorn: slow statements and a server that goes away.

A statement that runs past DB_STATEMENT_TIMEOUT_MS is cancelled by the server
and the request ends as a 503 problem, before gunicorn's worker timeout. While
the server is down every database endpoint answers 503 with Retry-After, and
the service recovers by itself once the server is back.
"""

import json

import flask_migrate
import psycopg
import pytest
from sqlalchemy import text

from app.extensions import db
from tests.conftest import TEST_DATABASE_URL, make_app
from tests.pgcluster import PrivateCluster, available
from tests.servers import GunicornServer

pytestmark = pytest.mark.skipif(
    not TEST_DATABASE_URL, reason="PostgreSQL only: set TEST_DATABASE_URL"
)


def migrate(url: str) -> None:
    app = make_app(url)
    with app.app_context():
        flask_migrate.upgrade()
        db.engine.dispose()


def assert_unavailable(response) -> None:
    status, headers, body = response
    assert status == 503, body
    assert headers["Content-Type"] == "application/problem+json"
    assert headers["Retry-After"] == "5"
    assert json.loads(body)["status"] == 503


def psycopg_url(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture
def database(databases):
    url = databases.new("slow")
    migrate(url)
    return url


def hold_course_lock(url: str, course_id: int) -> psycopg.Connection:
    """A connection holding a row lock on a course until it is closed."""
    holder = psycopg.connect(psycopg_url(url))
    holder.execute("SELECT id FROM courses WHERE id = %s FOR UPDATE", (course_id,))
    return holder


def test_a_statement_past_the_timeout_is_a_503_in_process(database, caplog):
    app = make_app(database, DB_STATEMENT_TIMEOUT_MS=200)
    client = app.test_client()
    student = client.post("/students", json={"name": "A", "email": "a@x.edu"}).get_json()["id"]
    course = client.post("/courses", json={"code": "C1", "title": "T"}).get_json()["id"]

    holder = hold_course_lock(database, course)
    try:
        response = client.post(f"/students/{student}/courses", json={"course_ids": [course]})
    finally:
        holder.close()

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "QueryCanceled" in caplog.text
    retried = client.post(f"/students/{student}/courses", json={"course_ids": [course]})
    assert retried.status_code == 201
    with app.app_context():
        db.engine.dispose()


def test_a_connection_dropped_before_the_teardown_keeps_the_views_answer(database, caplog):
    app = make_app(database)
    armed = []

    @app.after_request
    def drop_the_connection(response):
        """What a database restart does between the view and Flask-SQLAlchemy's ROLLBACK."""
        if armed:
            backend = db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with psycopg.connect(psycopg_url(database), autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
        return response

    client = app.test_client()
    first = client.post("/students", json={"name": "A", "email": "a@x.edu"}).get_json()["id"]
    second = client.post("/students", json={"name": "B", "email": "b@x.edu"}).get_json()["id"]
    course = client.post("/courses", json={"code": "C1", "title": "T", "capacity": 1})
    course = course.get_json()["id"]
    assert (
        client.post(f"/students/{first}/courses", json={"course_ids": [course]}).status_code == 201
    )

    armed.append(True)
    full = client.post(f"/students/{second}/courses", json={"course_ids": [course]})
    armed.clear()

    assert full.status_code == 409  # the transaction was still open when the server dropped it
    assert full.mimetype == "application/problem+json"
    assert "connection lost after the response: AdminShutdown" in caplog.text
    assert client.get(f"/courses/{course}").get_json()["enrolled_count"] == 1
    with app.app_context():
        db.engine.dispose()


@pytest.mark.slow
def test_a_slow_statement_under_gunicorn_is_a_503_not_a_killed_worker(tmp_path, database):
    env = {"DATABASE_URL": database, "DB_STATEMENT_TIMEOUT_MS": "500", "GUNICORN_TIMEOUT": "3"}
    with GunicornServer(tmp_path, env=env) as server:
        student = json.loads(
            server.request("POST", "/students", {"name": "A", "email": "a@x.edu"})[2]
        )
        course = json.loads(server.request("POST", "/courses", {"code": "C1", "title": "T"})[2])
        enroll = f"/students/{student['id']}/courses"
        workers = server.worker_pids()

        holder = hold_course_lock(database, course["id"])
        try:
            for _worker in workers:  # one statement past the timeout in each worker
                assert_unavailable(server.request("POST", enroll, {"course_ids": [course["id"]]}))
        finally:
            holder.close()
        assert server.request("POST", enroll, {"course_ids": [course["id"]]})[0] == 201
        assert server.worker_pids() == workers  # the same processes: none was killed

    messages = [line["message"] for line in server.log_lines()]
    assert not [m for m in messages if "WORKER TIMEOUT" in m or "was sent SIGKILL" in m]


@pytest.mark.slow
@pytest.mark.skipif(available() is not None, reason=str(available()))
def test_while_postgresql_is_down_only_503s_and_the_service_recovers_by_itself(tmp_path):
    with PrivateCluster() as cluster:
        url = cluster.create_database("outage")
        migrate(url)
        with GunicornServer(tmp_path, env={"DATABASE_URL": url}) as server:
            created = server.request("POST", "/students", {"name": "Ada", "email": "a@x.edu"})
            assert created[0] == 201
            student = json.loads(created[2])["id"]
            course = json.loads(server.request("POST", "/courses", {"code": "C1", "title": "T"})[2])
            assert server.get("/readyz")[0] == 200

            cluster.stop()
            database_requests = [
                ("GET", "/readyz", None),
                ("GET", "/students", None),
                ("GET", f"/students/{student}", None),
                ("GET", f"/courses/{course['id']}/students", None),
                ("POST", "/students", {"name": "Bob", "email": "b@x.edu"}),
                ("PATCH", f"/students/{student}", {"name": "Ada L."}),
                ("POST", f"/students/{student}/courses", {"course_ids": [course["id"]]}),
                ("DELETE", f"/courses/{course['id']}", None),
            ]
            for _round in range(3):  # every worker, with dead pooled connections
                for method, path, body in database_requests:
                    assert_unavailable(server.request(method, path, body))
            assert server.get("/livez")[0] == 200
            assert server.get("/metrics")[0] == 200

            cluster.start()
            for _round in range(3):
                assert server.get("/readyz")[0] == 200
                status, _headers, body = server.get(f"/students/{student}")
                assert (status, json.loads(body)["name"]) == (200, "Ada")
            enrolled = server.request(
                "POST", f"/students/{student}/courses", {"course_ids": [course["id"]]}
            )
            assert enrolled[0] == 201

        requests = [line for line in server.log_lines() if line["logger"] == "app.requests"]
        assert {line["status"] for line in requests} <= {200, 201, 503}


@pytest.mark.slow
@pytest.mark.skipif(available() is not None, reason=str(available()))
def test_idle_pooled_connections_survive_a_restart_with_no_request_in_between():
    with PrivateCluster() as cluster:
        url = cluster.create_database("idle")
        migrate(url)
        app = make_app(url)
        client = app.test_client()
        created = client.post("/students", json={"name": "Ada", "email": "a@x.edu"})
        assert created.status_code == 201
        student = created.get_json()["id"]
        with app.app_context():
            pooled_before = db.engine.pool.checkedin()
        assert pooled_before >= 1  # the pool holds a connection the restart will kill

        cluster.stop()
        cluster.start()  # no request reached the app while the server was down

        # The first request after the restart already gets a live connection.
        response = client.get(f"/students/{student}")
        assert (response.status_code, response.get_json()["name"]) == (200, "Ada")
        with app.app_context():
            db.engine.dispose()
