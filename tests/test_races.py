"""Races through real threads, real processes and real commits: capacity and uniqueness hold.

Each test releases many clients at the same instant (a barrier) against a
database of its own, then checks the answers and the rows. Topologies: threads
in one process (Flask's test client, as threaded workers would serve them), one
gunicorn instance with 4 workers, and (on PostgreSQL) two gunicorn instances
on different ports sharing one database.
"""

import os
import random
import time
from collections import Counter

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from app.extensions import db
from tests.support.databases import assert_invariants, make_app
from tests.support.servers import Figures, GunicornServer, Reply, create
from tests.support.threads import run_at_once

pytestmark = pytest.mark.slow

CLIENTS = 60
CHURN_SECONDS = float(os.environ.get("RACE_CHURN_SECONDS", "20"))
IN_PROCESS = "threads-in-one-process"
TOPOLOGIES = {  # name: (gunicorn instances, workers each); 0 instances: the app in this process
    IN_PROCESS: (0, 0),
    "one-instance-4-workers": (1, 4),
    "two-instances-sharing-the-database": (2, 2),
}
POSTGRESQL_ONLY = "the shared-database topology runs in CI's PostgreSQL pass"


class InProcessServer:
    """The app in this process, answering each thread through a test client of its own."""

    def __init__(self, app):
        self.app = app

    def request(self, method: str, path: str, body=None) -> Reply:
        """Any request to ``path``, answered in this thread."""
        response = self.app.test_client().open(path, method=method, json=body)
        return Reply(response.status_code, response.headers, response.get_json(silent=True))

    def get(self, path: str) -> Reply:
        """GET ``path``."""
        return self.request("GET", path)


class Cluster:
    """Servers sharing one database, and a direct view of its rows."""

    def __init__(self, database_url: str, servers: list):
        self.database_url = database_url
        self.servers = servers

    def request(self, client: int, method: str, path: str, body=None) -> Reply:
        """A request from ``client`` (clients are spread over the servers)."""
        return self.servers[client % len(self.servers)].request(method, path, body)

    def enrolled_rows(self, course: int) -> int:
        """How many enrollment rows the course has, read straight from the database."""
        engine = create_engine(self.database_url, poolclass=NullPool)
        with engine.connect() as connection:
            statement = text("SELECT count(*) FROM student_courses WHERE course_id = :c")
            count = connection.execute(statement, {"c": course}).scalar_one()
        engine.dispose()
        return count

    def create_students(self, prefix: str, count: int) -> list[int]:
        """Create students over the API; return their ids."""
        return [
            create(
                self.servers[number % len(self.servers)],
                "/students",
                {"name": f"Racer {number}", "email": f"{prefix}{number}@example.edu"},
            )
            for number in range(count)
        ]

    def create_course(self, code: str, capacity: int | None) -> int:
        """Create a course over the API; return its id."""
        body = {"code": code, "title": code, "capacity": capacity}
        return create(self.servers[0], "/courses", body)

    def assert_invariants(self) -> None:
        """No course over capacity, counts equal rows, no orphan rows."""
        assert_invariants(self.database_url, self.servers[-1])


@pytest.fixture(scope="module", params=list(TOPOLOGIES))
def cluster(request, databases, tmp_path_factory):
    """Servers in one of the race topologies, on a database of their own."""
    instances, workers = TOPOLOGIES[request.param]
    if instances > 1 and databases.backend != "postgresql":
        pytest.skip(POSTGRESQL_ONLY)
    database_url = databases.migrated("race")
    if not instances:
        app = make_app(database_url)
        yield Cluster(database_url, [InProcessServer(app)])
        with app.app_context():
            db.engine.dispose()
        return
    servers = []
    try:
        for _ in range(instances):
            log_dir = tmp_path_factory.mktemp("logs")
            servers.append(GunicornServer(log_dir, database_url=database_url, workers=workers))
            servers[-1].start()
        yield Cluster(database_url, servers)
        for server in servers:
            assert "Traceback" not in server.log(), server.log()
    finally:
        for server in servers:
            server.stop()


def race(clients: int, action) -> list:
    """``action(client)`` from ``clients`` threads released together (errors re-raised here)."""
    results = run_at_once(clients, action)
    Figures.add("races run")
    return results


def test_different_students_race_for_five_seats(cluster):
    students = cluster.create_students("seats", CLIENTS)
    course = cluster.create_course("RACE5", capacity=5)

    results = race(
        CLIENTS,
        lambda client: cluster.request(
            client, "POST", f"/students/{students[client]}/courses", {"course_ids": [course]}
        ),
    )

    assert Counter(reply.status for reply in results) == {201: 5, 409: CLIENTS - 5}
    for reply in results:
        if reply.status == 409:
            assert "No seats left" in reply.body["detail"]
    assert cluster.enrolled_rows(course) == 5
    assert cluster.request(0, "GET", f"/courses/{course}").body["enrolled_count"] == 5
    cluster.assert_invariants()


def test_same_pair_many_times_at_once_is_one_enrollment(cluster):
    [student] = cluster.create_students("pair", 1)
    course = cluster.create_course("SAME1", capacity=5)
    forms = [
        ("/enroll", {"student_id": student, "course_id": course}),
        (f"/students/{student}/enroll", {"course_id": course}),
        (f"/students/{student}/courses", {"course_ids": [course]}),
    ]

    def enroll(client: int) -> Reply:
        path, body = forms[client % len(forms)]
        return cluster.request(client, "POST", path, body)

    results = race(CLIENTS, enroll)

    assert Counter(reply.status for reply in results) == {201: 1, 200: CLIENTS - 1}
    assert cluster.enrolled_rows(course) == 1
    cluster.assert_invariants()


def test_lowering_capacity_while_students_enroll_never_oversells(cluster):
    students = cluster.create_students("lower", 20)
    course = cluster.create_course("LOWER", capacity=20)

    def act(client: int) -> Reply:
        if client == len(students):
            return cluster.request(client, "PATCH", f"/courses/{course}", {"capacity": 10})
        path = f"/students/{students[client]}/courses"
        return cluster.request(client, "POST", path, {"course_ids": [course]})

    *enrollments, lowering = race(len(students) + 1, act)

    stored = cluster.enrolled_rows(course)
    statuses = Counter(reply.status for reply in enrollments)
    assert statuses == Counter({201: stored, 409: len(students) - stored})
    if lowering.status == 200:  # lowered in time: the course fills its ten seats
        assert lowering.body["capacity"] == 10
        assert stored == 10
    else:  # refused: more than ten already held a seat, and every student gets one
        assert lowering.status == 409, lowering.body
        assert "students" in lowering.body["detail"]
        assert stored == 20
    course_body = cluster.request(0, "GET", f"/courses/{course}").body
    assert course_body["capacity"] == (10 if lowering.status == 200 else 20)
    assert course_body["enrolled_count"] == stored
    cluster.assert_invariants()


@pytest.mark.parametrize(
    "cluster", [name for name in TOPOLOGIES if name != IN_PROCESS], indirect=True
)
def test_enroll_unenroll_churn_on_full_courses_keeps_invariants(cluster, databases):
    if databases.backend != "postgresql":
        pytest.skip("the churn runs in CI's PostgreSQL pass")
    students = cluster.create_students("churn", 40)
    courses = [cluster.create_course(f"FULL{n}", capacity=5) for n in range(3)]
    for index, course in enumerate(courses):
        for student in students[index * 5 : index * 5 + 5]:
            path = f"/students/{student}/enroll"
            assert cluster.request(0, "POST", path, {"course_id": course}).status == 201
    doomed = students[-5:]  # deleted during the churn, enrollments and all
    deadline = time.monotonic() + CHURN_SECONDS
    allowed = {"enroll": {200, 201, 404, 409}, "unenroll": {204, 404}, "read": {200}}

    def churn(client: int) -> Counter:
        rng = random.Random(client)
        seen: Counter = Counter()
        while time.monotonic() < deadline:
            student, course = rng.choice(students), rng.choice(courses)
            action = rng.choice(("enroll", "enroll", "unenroll", "read"))
            if action == "enroll":
                path = f"/students/{student}/enroll"
                status = cluster.request(client, "POST", path, {"course_id": course}).status
            elif action == "unenroll":
                path = f"/students/{student}/courses/{course}"
                status = cluster.request(client, "DELETE", path).status
            else:
                status, _headers, body = cluster.request(client, "GET", f"/courses/{course}")
                assert body["enrolled_count"] <= body["capacity"]
            assert status in allowed[action], (action, status)
            seen[(action, status)] += 1
            if client == 0 and doomed and rng.random() < 0.05:
                assert cluster.request(client, "DELETE", f"/students/{doomed.pop()}").status == 204
        return seen

    results = race(50, churn)

    totals = sum(results, Counter())
    assert totals[("enroll", 201)] > 0
    assert totals[("unenroll", 204)] > 0
    assert totals[("enroll", 409)] > 0
    cluster.assert_invariants()
