"""Faults: slow statements, a database that goes away, SIGTERM and kill -9 mid-traffic.

- A statement that runs past DB_STATEMENT_TIMEOUT_MS is cancelled by the
  server and the request ends as a 503 problem, before gunicorn's worker
  timeout; a connection dropped after the view keeps the view's answer.
- PostgreSQL (a private cluster) is stopped while a dozen clients read and
  write: while it is down every database answer is a 503 problem with
  Retry-After (liveness and metrics still answer), and once it is back every
  request succeeds, with the same gunicorn workers; idle pooled connections
  survive a restart.
- SIGTERM reaches gunicorn while an enrollment waits on a lock the test
  holds: the request still gets its 201, the master exits cleanly, and the
  enrollment is stored once, all courses or none.
- kill -9 of the whole process group right after a 201: after a restart on
  the same database, every write a client was told about is there.
"""

import random
import signal
import sqlite3
import threading
import time
from collections import Counter
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from http.client import HTTPException

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from app.extensions import db
from tests.support.databases import (
    TEST_DATABASE_URL,
    assert_invariants,
    connect,
    make_app,
    migrate,
)
from tests.support.lock_probe import WAITING
from tests.support.servers import GUNICORN, Figures, GunicornServer, create
from tests.support.threads import Background

POSTGRESQL_ONLY = pytest.mark.skipif(
    not TEST_DATABASE_URL, reason="PostgreSQL only: set TEST_DATABASE_URL"
)
WAIT_SECONDS = 30  # upper bound on every wait below; none is expected to come close


def wait_until(condition, what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.02)


def assert_unavailable(reply) -> None:
    """A 503 problem that tells the client when to retry."""
    status, headers, body = reply
    assert status == 503, body
    assert headers["Content-Type"] == "application/problem+json"
    assert headers["Retry-After"] == "5"
    assert body["status"] == 503


# --- slow statements and dropped connections (the shared PostgreSQL server) -------


@pytest.fixture
def database(databases):
    """A new database at head."""
    return databases.migrated("slow")


def hold_course_lock(url: str, course_id: int):
    """A connection holding a row lock on a course until it is closed."""
    holder = connect(url)
    holder.execute("SELECT id FROM courses WHERE id = %s FOR UPDATE", (course_id,))
    return holder


@POSTGRESQL_ONLY
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


@POSTGRESQL_ONLY
def test_a_connection_dropped_before_the_teardown_keeps_the_views_answer(database, caplog):
    app = make_app(database)
    armed = []

    @app.after_request
    def drop_the_connection(response):
        """What a database restart does between the view and Flask-SQLAlchemy's ROLLBACK."""
        if armed:
            backend = db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with connect(database, autocommit=True) as admin:
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
@POSTGRESQL_ONLY
def test_a_slow_statement_under_gunicorn_is_a_503_not_a_killed_worker(tmp_path, database):
    env = {"DB_STATEMENT_TIMEOUT_MS": "500", "GUNICORN_TIMEOUT": "3"}
    with GunicornServer(tmp_path, database_url=database, env=env) as server:
        student = create(server, "/students", {"name": "A", "email": "a@x.edu"})
        course = create(server, "/courses", {"code": "C1", "title": "T"})
        enroll = f"/students/{student}/courses"
        workers = server.worker_pids()

        holder = hold_course_lock(database, course)
        try:
            for _worker in workers:  # one statement past the timeout in each worker
                assert_unavailable(server.request("POST", enroll, {"course_ids": [course]}))
        finally:
            holder.close()
        assert server.request("POST", enroll, {"course_ids": [course]}).status == 201
        assert server.worker_pids() == workers  # the same processes: none was killed

    messages = [line["message"] for line in server.log_lines()]
    assert not [m for m in messages if "WORKER TIMEOUT" in m or "was sent SIGKILL" in m]


# --- PostgreSQL stopped under load, and restarted ---------------------------------

BEFORE, STOPPING, DOWN, STARTING, BACK = range(5)
LOAD_CLIENTS = 12
ANSWERS = {
    "read course": {200},
    "read student": {200},
    "list courses": {200},
    "list students": {200},
    "roster": {200},
    "readiness": {200},
    "create student": {201},
    "rename student": {200},
    "enroll": {200, 201, 409},
    "enroll in two": {200, 201, 409},
    "unenroll": {204, 404},
    "delete a missing course": {404},
    "liveness": {200},
    "metrics": {200},
}
NO_DATABASE = {"liveness", "metrics"}  # these answer while the database is down


@dataclass
class Outcome:
    """One request of the load: what was asked, in which phases, and what came back."""

    action: str
    sent_in: int
    answered_in: int
    status: int | None = None
    content_type: str | None = None
    retry_after: str | None = None
    problem_status: int | None = None
    error: str | None = None


class Load:
    """Client threads sending a mix of reads and writes until told to stop."""

    def __init__(self, server: GunicornServer, students: list[int], courses: list[int]):
        self.server = server
        self.students = students
        self.courses = courses
        self.phase = BEFORE
        self.outcomes: list[Outcome] = []
        self._stop = threading.Event()
        self._clients: Background | None = None

    def _request(self, rng: random.Random, action: str, number: int):
        student, course = rng.choice(self.students), rng.choice(self.courses)
        return {
            "read course": ("GET", f"/courses/{course}", None),
            "read student": ("GET", f"/students/{student}", None),
            "list courses": ("GET", "/courses", None),
            "list students": ("GET", "/students", None),
            "roster": ("GET", f"/courses/{course}/students", None),
            "readiness": ("GET", "/readyz", None),
            "create student": ("POST", "/students", {"name": "Load", "email": f"l{number}@x.edu"}),
            "rename student": ("PATCH", f"/students/{student}", {"name": f"Load {number}"}),
            "enroll": ("POST", f"/students/{student}/enroll", {"course_id": course}),
            "enroll in two": (
                "POST",
                f"/students/{student}/courses",
                {"course_ids": rng.sample(self.courses, 2)},
            ),
            "unenroll": ("DELETE", f"/students/{student}/courses/{course}", None),
            "delete a missing course": ("DELETE", "/courses/999999", None),
            "liveness": ("GET", "/livez", None),
            "metrics": ("GET", "/metrics", None),
        }[action]

    def _client(self, client: int) -> None:
        rng = random.Random(client)
        number = client * 1_000_000
        while not self._stop.is_set():
            number += 1
            action = rng.choice(list(ANSWERS))
            method, path, body = self._request(rng, action, number)
            outcome = Outcome(action, sent_in=self.phase, answered_in=self.phase)
            try:
                status, headers, answer = self.server.request(method, path, body)
            except Exception as error:  # any failure to get an answer is what this test hunts
                outcome.error = repr(error)
            else:
                outcome.status = status
                outcome.content_type = headers["Content-Type"]
                outcome.retry_after = headers["Retry-After"]
                if status == 503:
                    outcome.problem_status = answer["status"]
            outcome.answered_in = self.phase
            self.outcomes.append(outcome)

    def answered(self, phase: int) -> int:
        """Requests both sent and answered in ``phase``."""
        return sum(o.sent_in == o.answered_in == phase for o in list(self.outcomes))

    def start(self) -> None:
        """Start the client threads."""
        self._clients = Background(LOAD_CLIENTS, self._client)

    def stop(self) -> None:
        """Stop the client threads (an error in one is raised here)."""
        self._stop.set()
        self._clients.join()


@pytest.mark.slow
@POSTGRESQL_ONLY
def test_postgresql_stopped_under_load_only_503s_then_full_service_again(tmp_path, private_cluster):
    url = private_cluster.create_database("faults")
    migrate(url)
    with GunicornServer(tmp_path, database_url=url, workers=3) as server:
        students = [
            create(server, "/students", {"name": "S", "email": f"s{n}@x.edu"}) for n in range(30)
        ]
        courses = [
            create(server, "/courses", {"code": f"C{n}", "title": "T", "capacity": 5})
            for n in range(4)
        ]
        workers = server.worker_pids()
        load = Load(server, students, courses)
        load.start()
        try:
            wait_until(lambda: load.answered(BEFORE) >= 100, "100 answers before the outage")
            load.phase = STOPPING
            private_cluster.stop("fast")
            load.phase = DOWN
            wait_until(lambda: load.answered(DOWN) >= 300, "300 answers during the outage")
            load.phase = STARTING
            private_cluster.start()
            load.phase = BACK
            wait_until(lambda: load.answered(BACK) >= 300, "300 answers after the outage")
        finally:
            load.stop()
        assert server.worker_pids() == workers  # no worker died or was replaced
        assert_invariants(url, server)

    outcomes = load.outcomes
    for outcome in outcomes:
        Figures.add(f"database stopped under load: HTTP {outcome.status or 'no answer'}")
    assert [o for o in outcomes if o.error] == []
    assert [o for o in outcomes if o.status not in ANSWERS[o.action] | {503}] == []
    assert [o for o in outcomes if o.action in NO_DATABASE and o.status != 200] == []
    unavailable = [o for o in outcomes if o.status == 503]
    assert {(o.content_type, o.retry_after, o.problem_status) for o in unavailable} == {
        ("application/problem+json", "5", 503)
    }
    during = [o for o in outcomes if o.sent_in == o.answered_in == DOWN]
    assert {o.status for o in during if o.action not in NO_DATABASE} == {503}
    assert {o.action for o in during} == set(ANSWERS)
    outside = [o for o in outcomes if o.sent_in == o.answered_in == BEFORE or o.sent_in == BACK]
    assert [o for o in outside if o.status == 503] == []
    back = Counter(o.action for o in outcomes if o.sent_in == BACK)
    assert set(back) == set(ANSWERS)
    assert {o.status for o in outcomes if o.sent_in == BACK and o.action == "create student"} == {
        201
    }
    requests = [line for line in server.log_lines() if line["logger"] == "app.requests"]
    assert {line["status"] for line in requests} <= {200, 201, 204, 404, 409, 503}


@pytest.mark.slow
@POSTGRESQL_ONLY
def test_idle_pooled_connections_survive_a_restart_with_no_request_in_between(private_cluster):
    url = private_cluster.create_database("idle")
    migrate(url)
    app = make_app(url)
    client = app.test_client()
    created = client.post("/students", json={"name": "Ada", "email": "a@x.edu"})
    assert created.status_code == 201
    student = created.get_json()["id"]
    with app.app_context():
        pooled_before = db.engine.pool.checkedin()
    assert pooled_before >= 1  # the pool holds a connection the restart will kill

    private_cluster.stop()
    private_cluster.start()  # no request reached the app while the server was down

    # The first request after the restart already gets a live connection.
    response = client.get(f"/students/{student}")
    assert (response.status_code, response.get_json()["name"]) == (200, "Ada")
    with app.app_context():
        db.engine.dispose()


# --- SIGTERM during a slow request ------------------------------------------------------


LOCK_PROBE = (GUNICORN, "-c", "gunicorn.conf.py", "tests.support.lock_probe:app")


@contextmanager
def holding_student_lock(server: GunicornServer, database_url: str, student_id: int):
    """Hold a lock that stalls the next enrollment of ``student_id`` until the block ends.

    PostgreSQL: a row lock on the student, so the enrollment waits for the student's
    row, the first lock it takes. SQLite: the database's write lock, so
    the enrollment waits in its BEGIN IMMEDIATE. Yields a function telling whether the
    enrollment waits on it.
    """
    with ExitStack() as stack:
        if database_url.startswith("sqlite"):
            path = database_url.removeprefix("sqlite:///")
            holder = stack.enter_context(closing(sqlite3.connect(path, isolation_level=None)))
            holder.execute("BEGIN IMMEDIATE")
            announced = server.log().count(WAITING)

            def waiting() -> bool:
                # The server runs the lock probe: it logs each BEGIN IMMEDIATE it is about to send.
                return server.log().count(WAITING) > announced

        else:
            holder = stack.enter_context(connect(database_url))
            holder.execute("SELECT id FROM students WHERE id = %s FOR UPDATE", (student_id,))
            # A connection of its own: inside a transaction pg_stat_activity is a snapshot.
            observer = stack.enter_context(connect(database_url, autocommit=True))

            def waiting() -> bool:
                return (
                    observer.execute(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    ).fetchone()[0]
                    > 0
                )

        try:
            yield waiting
        finally:
            holder.rollback()


def enrollment_rows(database_url: str, student_id: int) -> list[int]:
    """The course ids stored for a student, one per row (duplicates would show)."""
    engine = create_engine(database_url, poolclass=NullPool)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT course_id FROM student_courses WHERE student_id = :s ORDER BY course_id"),
            {"s": student_id},
        )
        course_ids = list(rows.scalars())
    engine.dispose()
    return course_ids


@pytest.mark.slow
@pytest.mark.parametrize(
    ("graceful_timeout", "completes"),
    [(20, True), (1, False)],
    ids=["within-graceful-timeout", "cut-off-by-graceful-timeout"],
)
def test_sigterm_during_a_slow_enrollment_is_all_or_nothing(
    tmp_path, databases, graceful_timeout, completes
):
    url = databases.migrated("sigterm")
    env = {"GUNICORN_GRACEFUL_TIMEOUT": str(graceful_timeout)}
    server = GunicornServer(tmp_path, database_url=url, env=env, command=LOCK_PROBE).start()
    try:
        student = create(server, "/students", {"name": "S", "email": "s@x.edu"})
        courses = [
            create(server, "/courses", {"code": f"C{n}", "title": "T", "capacity": 5})
            for n in range(2)
        ]

        def enroll(_client: int):
            try:
                path = f"/students/{student}/courses"
                return server.request("POST", path, {"course_ids": courses})
            except (OSError, HTTPException) as error:
                return error

        with holding_student_lock(server, url, student) as waiting:
            request = Background(1, enroll)
            wait_until(waiting, "the enrollment waits on the lock")
            server.process.send_signal(signal.SIGTERM)
            # The idle worker exits at once; by then the master has signalled both workers.
            # On a busy machine a 1 s graceful timeout may end the master first.
            wait_until(
                lambda: "Worker exiting" in server.log() or server.process.poll() is not None,
                "the idle worker exits",
            )
            if not completes:
                exit_code = server.process.wait(timeout=graceful_timeout + WAIT_SECONDS)
        [answer] = request.join()
        if completes:
            exit_code = server.process.wait(timeout=graceful_timeout)
    finally:
        server.kill()
    Figures.add("SIGTERM during a slow request")

    assert exit_code == 0
    exits = [line for line in server.log_lines() if "Worker exiting" in line["message"]]
    if completes:
        status, _headers, body = answer
        assert status == 201, body
        assert sorted(course["id"] for course in body["courses"]) == courses
        assert enrollment_rows(url, student) == courses
        assert len(exits) == 2  # both workers left on their own
    else:
        assert isinstance(answer, (OSError, HTTPException))
        assert enrollment_rows(url, student) == []  # cut off at the graceful timeout: no rows


# --- kill -9 right after a 201 ------------------------------------------------------------

WRITERS = 6
CONFIRMED_BEFORE_KILL = 120


@pytest.mark.slow
def test_every_write_confirmed_before_kill_9_is_there_after_a_restart(tmp_path, databases):
    url = databases.migrated("kill9")
    server = GunicornServer(tmp_path, database_url=url, workers=2).start()
    courses = [create(server, "/courses", {"code": f"K{n}", "title": "T"}) for n in range(3)]
    students: dict[int, str] = {}
    enrollments: set[tuple[int, int]] = set()
    refused: list = []
    cut_off: list[bool] = []  # for each request cut off: whether the kill had happened
    confirmed = threading.Lock()
    killed = threading.Event()

    def confirm(kind: str, key, value=None) -> None:
        with confirmed:
            if kind == "student":
                students[key] = value
            else:
                enrollments.add(key)
            if len(students) + len(enrollments) >= CONFIRMED_BEFORE_KILL and not killed.is_set():
                killed.set()  # first: a request cut off from here on is cut off by the kill
                server.kill()  # the whole process group, right after this 201

    def writer(client: int) -> None:
        rng = random.Random(client)
        for number in range(10_000):
            if killed.is_set():
                return
            email = f"w{client}-{number}@x.edu"
            try:
                status, _headers, body = server.request(
                    "POST", "/students", {"name": "W", "email": email}
                )
                if status != 201:
                    refused.append((status, body))
                    return
                confirm("student", body["id"], email)
                pair = (body["id"], rng.choice(courses))
                status, _headers, body = server.request(
                    "POST", f"/students/{pair[0]}/enroll", {"course_id": pair[1]}
                )
                if status != 201:
                    refused.append((status, body))
                    return
                confirm("enrollment", pair)
            except (OSError, HTTPException):
                cut_off.append(killed.is_set())
                return

    Background(WRITERS, writer).join()
    server.kill()
    assert killed.is_set()
    assert refused == []
    assert all(cut_off)  # only the kill cut requests off
    Figures.add("writes confirmed before kill -9", len(students) + len(enrollments))

    with GunicornServer(tmp_path, database_url=url, workers=2) as restarted:
        for student, email in students.items():
            status, _headers, body = restarted.get(f"/students/{student}")
            assert (status, body["email"]) == (200, email)
            stored = {(student, course["id"]) for course in body["courses"]}
            assert {pair for pair in enrollments if pair[0] == student} <= stored
