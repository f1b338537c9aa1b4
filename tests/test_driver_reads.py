"""The hottest reads on the driver's cursor (``fetch_records``) and the pool's liveness check.

On PostgreSQL a read request runs the fixed single-resource statements on the
cursor of a pooled connection in autocommit; everywhere else (writes, SQLite)
they run on the request's session. Both must give the same rows, and the
driver path must fail as SQLAlchemy would (a 503, never a 500).
"""

import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from app import queries
from app.database import fetch_records, reads_in_autocommit
from app.extensions import db
from tests.support.databases import TEST_DATABASE_URL

ON_POSTGRESQL = pytest.mark.skipif(
    not TEST_DATABASE_URL, reason="the driver path runs on PostgreSQL (set TEST_DATABASE_URL)"
)
OTHER_BACKENDS = text(
    "SELECT pid FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)
TERMINATE = text("SELECT pg_terminate_backend(pid) FROM unnest(CAST(:pids AS int[])) AS pid")
STILL_THERE = text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(CAST(:pids AS int[]))")
STATEMENTS = (
    (queries.STUDENT_DETAIL, "student_id"),
    (queries.STUDENT_COURSES_STATEMENT, "student_id"),
    (queries.COURSE_BY_ID, "course_id"),
)


@pytest.fixture
def enrolled_and_waiting(client, make_student, make_course):
    """A student enrolled in one course and waitlisted in another; returns their ids."""
    student = make_student()
    other = make_student()
    open_course = make_course(capacity=5)
    full_course = make_course(capacity=1, waitlist_capacity=3)
    for student_id, course_id in ((student, open_course), (other, full_course)):
        response = client.post(f"/students/{student_id}/courses", json={"course_ids": [course_id]})
        assert response.status_code == 201
    response = client.post(
        f"/students/{student}/courses", json={"course_ids": [full_course], "waitlist": True}
    )
    assert response.status_code == 201
    assert [course["id"] for course in response.get_json()["waitlist"]] == [full_course]
    return student, open_course, full_course


def rows_both_ways(app, statement, parameters) -> tuple[list[dict], list[dict], bool]:
    """The statement's rows in a read request and in a write request (the session's)."""
    with app.test_request_context(method="GET"):
        read = fetch_records(statement, parameters)
        on_driver = reads_in_autocommit()
    with app.test_request_context(method="POST"):
        written = fetch_records(statement, parameters)
        db.session.rollback()
    return read, written, on_driver


def test_both_paths_give_the_same_rows(app, enrolled_and_waiting):
    student, open_course, full_course = enrolled_and_waiting
    ids = {"student_id": student, "course_id": full_course}

    for statement, name in STATEMENTS:
        read, written, on_driver = rows_both_ways(app, statement, {name: ids[name]})

        assert read == written
        assert read, statement
        assert on_driver == bool(TEST_DATABASE_URL)
    detail, _, _ = rows_both_ways(app, queries.STUDENT_DETAIL, {"student_id": student})
    assert {row["course_id"]: row["course_status"] for row in detail} == {
        open_course: "enrolled",
        full_course: "waitlisted",
    }


@ON_POSTGRESQL
def test_a_statement_is_given_exactly_its_parameters(app):
    with app.test_request_context(method="GET"), pytest.raises(TypeError, match="student_id"):
        fetch_records(queries.STUDENT_DETAIL, {"course_id": 1})


@ON_POSTGRESQL
def test_reads_survive_their_pooled_connections_being_terminated(app, client, make_student):
    """A connection the server ended while it sat in the pool is replaced at checkout.

    The pool pings nothing (no round trip per request): the liveness check sees
    the closed socket. Without it this read would fail with a 503.
    """
    student = make_student()
    assert client.get(f"/students/{student}").status_code == 200  # a connection is now pooled
    with app.app_context():
        outside_the_pool = create_engine(db.engine.url, poolclass=NullPool)
    # In autocommit: pg_stat_activity is read once per transaction.
    with outside_the_pool.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        pids = list(connection.execute(OTHER_BACKENDS).scalars())
        assert pids  # the pooled connection's backend among them
        connection.execute(TERMINATE, {"pids": pids})
        deadline = time.monotonic() + 5  # until those backends have gone
        while (
            connection.execute(STILL_THERE, {"pids": pids}).scalar_one()
            and time.monotonic() < deadline
        ):
            time.sleep(0.02)

    response = client.get(f"/students/{student}")

    assert response.status_code == 200
    assert response.get_json()["id"] == student


@ON_POSTGRESQL
def test_timestamps_are_utc_whatever_the_server_zone(app, client, make_student):
    """The driver path skips UTCDateTime's conversion: the sessions themselves use UTC."""
    student = make_student()
    with app.app_context():
        outside_the_pool = create_engine(db.engine.url, poolclass=NullPool)
        name = db.engine.url.database
    zone = text(f"ALTER DATABASE \"{name}\" SET TimeZone = 'Asia/Kolkata'")
    with outside_the_pool.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(zone)
    try:
        with app.app_context():
            db.engine.dispose()  # new sessions start in the database's zone
        read = client.get(f"/students/{student}")
        written = client.patch(f"/students/{student}", json={"name": "Renamed"})
    finally:
        with outside_the_pool.connect().execution_options(
            isolation_level="AUTOCOMMIT"
        ) as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" RESET TimeZone'))
        with app.app_context():
            db.engine.dispose()

    assert read.status_code == written.status_code == 200
    assert read.get_json()["created_at"].endswith("+00:00")
    assert read.get_json()["created_at"] == written.get_json()["created_at"]
