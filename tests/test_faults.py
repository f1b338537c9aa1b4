"""Faults under real gunicorn: the database stops under load, SIGTERM and kill -9 mid-traffic.

- PostgreSQL (a private cluster) is stopped while a dozen clients read and
  write: while it is down every answer is a 503 problem with Retry-After, and
  once it is back every request succeeds, with the same gunicorn workers.
- SIGTERM reaches gunicorn while an enrollment waits on a lock the test
  holds: the request still gets its 201, the master exits cleanly, and the
  enrollment is stored once, all courses or none.
- kill -9 of the whole process group right after a 201: after a restart on
  the same database, every write a client was told about is there.
"""

import json
import random
import signal
import sqlite3
import threading
import time
from collections import Counter
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path

import psycopg
import pytest

from tests.conftest import TEST_DATABASE_URL
from tests.pgcluster import PrivateCluster, available
from tests.servers import Figures, GunicornServer, http, migrate_database, send

pytestmark = pytest.mark.slow

WAIT_SECONDS = 30  # upper bound on every wait below; none is expected to come close


def wait_until(condition, what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.02)


def create(port: int, path: str, body: dict) -> int:
    """POST a new resource; return its id."""
    status, created = send(port, "POST", path, body)
    assert status == 201, created
    return created["id"]


def psycopg_url(url: str) -> str:
    """A libpq URL from a SQLAlchemy one."""
    return url.replace("postgresql+psycopg://", "postgresql://")


def assert_invariants(connection: psycopg.Connection, port: int) -> None:
    """No course over capacity, and every course's enrolled_count equals its rows."""
    rows = connection.execute(
        "SELECT c.id, c.capacity, count(e.student_id) FROM courses c "
        "LEFT JOIN student_courses e ON e.course_id = c.id GROUP BY c.id, c.capacity"
    ).fetchall()
    assert rows
    for course_id, capacity, enrolled in rows:
        assert capacity is None or enrolled <= capacity, (course_id, capacity, enrolled)
        assert send(port, "GET", f"/courses/{course_id}")[1]["enrolled_count"] == enrolled


# --- PostgreSQL stopped under load -------------------------------------------------

BEFORE, STOPPING, DOWN, STARTING, BACK = range(5)
LOAD_CLIENTS = 12
ANSWERS = {
    "read course": {200},
    "read student": {200},
    "list courses": {200},
    "create student": {201},
    "enroll": {200, 201, 409},
    "enroll in two": {200, 201, 409},
    "unenroll": {204, 404},
}


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
        self._threads = [
            threading.Thread(target=self._client, args=(n,)) for n in range(LOAD_CLIENTS)
        ]

    def _request(self, rng: random.Random, action: str, number: int):
        student, course = rng.choice(self.students), rng.choice(self.courses)
        return {
            "read course": ("GET", f"/courses/{course}", None),
            "read student": ("GET", f"/students/{student}", None),
            "list courses": ("GET", "/courses", None),
            "create student": ("POST", "/students", {"name": "Load", "email": f"l{number}@x.edu"}),
            "enroll": ("POST", f"/students/{student}/enroll", {"course_id": course}),
            "enroll in two": (
                "POST",
                f"/students/{student}/courses",
                {"course_ids": rng.sample(self.courses, 2)},
            ),
            "unenroll": ("DELETE", f"/students/{student}/courses/{course}", None),
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
                status, headers, text = http(method, self.server.url + path, body)
            except Exception as error:  # any failure to get an answer is what this test hunts
                outcome.error = repr(error)
            else:
                outcome.status = status
                outcome.content_type = headers["Content-Type"]
                outcome.retry_after = headers["Retry-After"]
                if status == 503:
                    outcome.problem_status = json.loads(text)["status"]
            outcome.answered_in = self.phase
            self.outcomes.append(outcome)

    def answered(self, phase: int) -> int:
        """Requests both sent and answered in ``phase``."""
        return sum(o.sent_in == o.answered_in == phase for o in list(self.outcomes))

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="PostgreSQL only: set TEST_DATABASE_URL")
@pytest.mark.skipif(available() is not None, reason=str(available()))
def test_postgresql_stopped_under_load_only_503s_then_full_service_again(tmp_path):
    with PrivateCluster() as cluster:
        url = cluster.create_database("faults")
        migrate_database(url)
        with GunicornServer(tmp_path, database_url=url, workers=3) as server:
            students = [
                create(server.port, "/students", {"name": "S", "email": f"s{n}@x.edu"})
                for n in range(30)
            ]
            courses = [
                create(server.port, "/courses", {"code": f"C{n}", "title": "T", "capacity": 5})
                for n in range(4)
            ]
            workers = server.worker_pids()
            load = Load(server, students, courses)
            load.start()
            try:
                wait_until(lambda: load.answered(BEFORE) >= 100, "100 answers before the outage")
                load.phase = STOPPING
                cluster.stop("fast")
                load.phase = DOWN
                wait_until(lambda: load.answered(DOWN) >= 300, "300 answers during the outage")
                load.phase = STARTING
                cluster.start()
                load.phase = BACK
                wait_until(lambda: load.answered(BACK) >= 300, "300 answers after the outage")
            finally:
                load.stop()
            assert server.worker_pids() == workers  # no worker died or was replaced

            with cluster.connect("faults") as connection:
                assert_invariants(connection, server.port)

    outcomes = load.outcomes
    for outcome in outcomes:
        Figures.add(f"database stopped under load: HTTP {outcome.status or 'no answer'}")
    assert [o for o in outcomes if o.error] == []
    assert [o for o in outcomes if o.status not in ANSWERS[o.action] | {503}] == []
    unavailable = [o for o in outcomes if o.status == 503]
    assert {(o.content_type, o.retry_after, o.problem_status) for o in unavailable} == {
        ("application/problem+json", "5", 503)
    }
    during = [o for o in outcomes if o.sent_in == o.answered_in == DOWN]
    assert {o.status for o in during} == {503}
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


# --- SIGTERM during a slow request ------------------------------------------------------


@contextmanager
def holding_student_lock(database_url: str, student_id: int):
    """Hold a lock that stalls the next enrollment of ``student_id`` until the block ends.

    PostgreSQL: a row lock on the student, so the enrollment's INSERT has written its
    rows and then waits in the foreign-key check. SQLite: the database's write lock, so
    the enrollment waits in its BEGIN IMMEDIATE. Yields a function telling whether the
    enrollment waits on it.
    """
    with ExitStack() as stack:
        if database_url.startswith("sqlite"):
            path = database_url.removeprefix("sqlite:///")
            holder = stack.enter_context(closing(sqlite3.connect(path, isolation_level=None)))
            holder.execute("BEGIN IMMEDIATE")

            def waiting(server: GunicornServer) -> bool:
                # SQLite's busy handler sleeps between retries; idle threads poll or wait.
                return any(
                    wchan.read_text() == "hrtimer_nanosleep"
                    for pid in server.worker_pids()
                    for wchan in Path(f"/proc/{pid}/task").glob("*/wchan")
                )

        else:
            holder = stack.enter_context(psycopg.connect(psycopg_url(database_url)))
            holder.execute("SELECT id FROM students WHERE id = %s FOR UPDATE", (student_id,))
            # A connection of its own: inside a transaction pg_stat_activity is a snapshot.
            observer = stack.enter_context(
                psycopg.connect(psycopg_url(database_url), autocommit=True)
            )

            def waiting(_server: GunicornServer) -> bool:
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
    statement = "SELECT course_id FROM student_courses WHERE student_id = {} ORDER BY course_id"
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as connection:
            rows = connection.execute(statement.format("?"), (student_id,)).fetchall()
    else:
        with psycopg.connect(psycopg_url(database_url)) as connection:
            rows = connection.execute(statement.format("%s"), (student_id,)).fetchall()
    return [course_id for (course_id,) in rows]


@pytest.mark.parametrize(
    ("graceful_timeout", "completes"),
    [(20, True), (1, False)],
    ids=["within-graceful-timeout", "cut-off-by-graceful-timeout"],
)
def test_sigterm_during_a_slow_enrollment_is_all_or_nothing(
    tmp_path, databases, graceful_timeout, completes
):
    url = databases.new("sigterm")
    migrate_database(url)
    env = {"GUNICORN_GRACEFUL_TIMEOUT": str(graceful_timeout)}
    server = GunicornServer(tmp_path, database_url=url, workers=2, env=env).start()
    try:
        student = create(server.port, "/students", {"name": "S", "email": "s@x.edu"})
        courses = [
            create(server.port, "/courses", {"code": f"C{n}", "title": "T", "capacity": 5})
            for n in range(2)
        ]
        answers: list = []

        def enroll() -> None:
            try:
                answers.append(
                    send(
                        server.port, "POST", f"/students/{student}/courses", {"course_ids": courses}
                    )
                )
            except (OSError, HTTPException) as error:
                answers.append(error)

        request = threading.Thread(target=enroll)
        with holding_student_lock(url, student) as waiting:
            request.start()
            wait_until(lambda: waiting(server), "the enrollment waits on the lock")
            server.process.send_signal(signal.SIGTERM)
            # The idle worker exits at once; by then the master has signalled both workers.
            wait_until(lambda: "Worker exiting" in server.log(), "the idle worker exits")
            if not completes:
                exit_code = server.process.wait(timeout=graceful_timeout + WAIT_SECONDS)
        request.join(timeout=WAIT_SECONDS)
        if completes:
            exit_code = server.process.wait(timeout=graceful_timeout)
    finally:
        server.kill()
    Figures.add("SIGTERM during a slow request")

    assert exit_code == 0
    exits = [line for line in server.log_lines() if "Worker exiting" in line["message"]]
    if completes:
        [(status, body)] = answers
        assert status == 201, body
        assert sorted(course["id"] for course in body["courses"]) == courses
        assert enrollment_rows(url, student) == courses
        assert len(exits) == 2  # both workers left on their own
    else:
        [error] = answers
        assert isinstance(error, (OSError, HTTPException))
        assert enrollment_rows(url, student) == []  # cut off at the graceful timeout: no rows


# --- kill -9 right after a 201 ------------------------------------------------------------

WRITERS = 6
CONFIRMED_BEFORE_KILL = 120


def test_every_write_confirmed_before_kill_9_is_there_after_a_restart(tmp_path, databases):
    url = databases.new("kill9")
    migrate_database(url)
    server = GunicornServer(tmp_path, database_url=url, workers=2).start()
    courses = [create(server.port, "/courses", {"code": f"K{n}", "title": "T"}) for n in range(3)]
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
                status, body = send(server.port, "POST", "/students", {"name": "W", "email": email})
                if status != 201:
                    refused.append((status, body))
                    return
                confirm("student", body["id"], email)
                pair = (body["id"], rng.choice(courses))
                status, body = send(
                    server.port, "POST", f"/students/{pair[0]}/enroll", {"course_id": pair[1]}
                )
                if status != 201:
                    refused.append((status, body))
                    return
                confirm("enrollment", pair)
            except (OSError, HTTPException):
                cut_off.append(killed.is_set())
                return

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    server.kill()
    assert killed.is_set()
    assert refused == []
    assert all(cut_off)  # only the kill cut requests off
    Figures.add("writes confirmed before kill -9", len(students) + len(enrollments))

    with GunicornServer(tmp_path, database_url=url, workers=2) as restarted:
        for student, email in students.items():
            status, body = send(restarted.port, "GET", f"/students/{student}")
            assert (status, body["email"]) == (200, email)
            stored = {(student, course["id"]) for course in body["courses"]}
            assert {pair for pair in enrollments if pair[0] == student} <= stored
