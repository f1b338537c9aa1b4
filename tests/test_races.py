"""Races through real processes: many HTTP clients at once against gunicorn workers.

Each test starts real gunicorn masters on a database of its own and releases
50+ client threads at the same instant (a barrier), then checks the answers
and the rows. Topologies: one instance with 4 workers, and (on PostgreSQL) two
instances on different ports sharing one database.
"""

import os
import random
import threading
import time
from collections import Counter

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests.servers import Figures, GunicornServer, migrate_database, send

pytestmark = pytest.mark.slow

CLIENTS = 60
CHURN_SECONDS = float(os.environ.get("RACE_CHURN_SECONDS", "20"))
TOPOLOGIES = {
    "one-instance-4-workers": (1, 4),
    "two-instances-sharing-the-database": (2, 2),
}
POSTGRESQL_ONLY = "the shared-database topology runs in CI's PostgreSQL pass"


class Cluster:
    """Gunicorn instances sharing one database, and a direct view of its rows."""

    def __init__(self, database_url: str, servers: list[GunicornServer]):
        self.database_url = database_url
        self.servers = servers
        self.ports = [server.port for server in servers]
        self.engine = create_engine(database_url, poolclass=NullPool)

    def port(self, client: int) -> int:
        """The instance a client talks to (clients are spread over the instances)."""
        return self.ports[client % len(self.ports)]

    def scalar(self, statement: str, **params):
        """One value read straight from the database."""
        with self.engine.connect() as connection:
            return connection.execute(text(statement), params).scalar_one()

    def create_students(self, prefix: str, count: int) -> list[int]:
        """Create students over HTTP; return their ids."""
        ids = []
        for number in range(count):
            status, body = send(
                self.port(number),
                "POST",
                "/students",
                {"name": f"Racer {number}", "email": f"{prefix}{number}@example.edu"},
            )
            assert status == 201, body
            ids.append(body["id"])
        return ids

    def create_course(self, code: str, capacity: int | None) -> int:
        """Create a course over HTTP; return its id."""
        status, body = send(
            self.ports[0], "POST", "/courses", {"code": code, "title": code, "capacity": capacity}
        )
        assert status == 201, body
        return body["id"]

    def assert_invariants(self) -> None:
        """No course over capacity, counts equal rows, no orphan rows."""
        over = self.scalar(
            "SELECT count(*) FROM courses c WHERE c.capacity IS NOT NULL AND c.capacity < "
            "(SELECT count(*) FROM student_courses e WHERE e.course_id = c.id)"
        )
        orphans = self.scalar(
            "SELECT count(*) FROM student_courses e "
            "LEFT JOIN students s ON s.id = e.student_id "
            "LEFT JOIN courses c ON c.id = e.course_id WHERE s.id IS NULL OR c.id IS NULL"
        )
        assert (over, orphans) == (0, 0)
        with self.engine.connect() as connection:
            rows = dict(
                connection.execute(
                    text(
                        "SELECT c.id, (SELECT count(*) FROM student_courses e "
                        "WHERE e.course_id = c.id) FROM courses c"
                    )
                ).all()
            )
        for course_id, count in rows.items():
            status, body = send(self.ports[-1], "GET", f"/courses/{course_id}")
            assert status == 200
            assert body["enrolled_count"] == count


@pytest.fixture(scope="module", params=list(TOPOLOGIES))
def cluster(request, databases, tmp_path_factory):
    """Gunicorn instances in one of the race topologies, on a database of their own."""
    instances, workers = TOPOLOGIES[request.param]
    if instances > 1 and databases.backend != "postgresql":
        pytest.skip(POSTGRESQL_ONLY)
    database_url = databases.new("race")
    migrate_database(database_url)
    servers = []
    try:
        for _ in range(instances):
            servers.append(
                GunicornServer(
                    tmp_path_factory.mktemp("logs"), database_url=database_url, workers=workers
                ).start()
            )
        cluster = Cluster(database_url, servers)
        yield cluster
        for server in servers:
            assert "Traceback" not in server.log(), server.log()
    finally:
        for server in servers:
            server.__exit__()
        if servers:
            cluster.engine.dispose()


def run_at_once(clients: int, action) -> list:
    """Run ``action(client)`` in ``clients`` threads released together; return the results."""
    barrier = threading.Barrier(clients)
    results: list = [None] * clients

    def run(client: int) -> None:
        barrier.wait()
        results[client] = action(client)

    threads = [threading.Thread(target=run, args=(client,)) for client in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    Figures.add("races run")
    return results


def test_different_students_race_for_five_seats(cluster):
    students = cluster.create_students("seats", CLIENTS)
    course = cluster.create_course("RACE5", capacity=5)

    results = run_at_once(
        CLIENTS,
        lambda client: send(
            cluster.port(client),
            "POST",
            f"/students/{students[client]}/courses",
            {"course_ids": [course]},
        ),
    )

    statuses = Counter(status for status, _ in results)
    assert statuses == {201: 5, 409: CLIENTS - 5}
    for status, body in results:
        if status == 409:
            assert "No seats left" in body["detail"]
    assert (
        cluster.scalar("SELECT count(*) FROM student_courses WHERE course_id = :c", c=course) == 5
    )
    assert send(cluster.ports[0], "GET", f"/courses/{course}")[1]["enrolled_count"] == 5
    cluster.assert_invariants()


def test_same_pair_many_times_at_once_is_one_enrollment(cluster):
    [student] = cluster.create_students("pair", 1)
    course = cluster.create_course("SAME1", capacity=5)
    forms = [
        ("/enroll", {"student_id": student, "course_id": course}),
        (f"/students/{student}/enroll", {"course_id": course}),
        (f"/students/{student}/courses", {"course_ids": [course]}),
    ]

    def enroll(client: int):
        path, body = forms[client % len(forms)]
        return send(cluster.port(client), "POST", path, body)

    results = run_at_once(CLIENTS, enroll)

    assert Counter(status for status, _ in results) == {201: 1, 200: CLIENTS - 1}
    assert (
        cluster.scalar("SELECT count(*) FROM student_courses WHERE course_id = :c", c=course) == 1
    )
    cluster.assert_invariants()


def test_enroll_unenroll_churn_on_full_courses_keeps_invariants(cluster, databases):
    if databases.backend != "postgresql":
        pytest.skip("the churn runs in CI's PostgreSQL pass")
    students = cluster.create_students("churn", 40)
    courses = [cluster.create_course(f"FULL{n}", capacity=5) for n in range(3)]
    for index, course in enumerate(courses):
        for student in students[index * 5 : index * 5 + 5]:
            assert (
                send(
                    cluster.ports[0], "POST", f"/students/{student}/enroll", {"course_id": course}
                )[0]
                == 201
            )
    doomed = students[-5:]  # deleted during the churn, enrollments and all
    deadline = time.monotonic() + CHURN_SECONDS
    allowed = {"enroll": {200, 201, 404, 409}, "unenroll": {204, 404}, "read": {200}}

    def churn(client: int) -> Counter:
        rng = random.Random(client)
        seen: Counter = Counter()
        while time.monotonic() < deadline:
            student, course = rng.choice(students), rng.choice(courses)
            action = rng.choice(("enroll", "enroll", "unenroll", "read"))
            port = cluster.port(client)
            if action == "enroll":
                status, _ = send(port, "POST", f"/students/{student}/enroll", {"course_id": course})
            elif action == "unenroll":
                status, _ = send(port, "DELETE", f"/students/{student}/courses/{course}")
            else:
                status, body = send(port, "GET", f"/courses/{course}")
                assert body["enrolled_count"] <= body["capacity"]
            assert status in allowed[action], (action, status)
            seen[(action, status)] += 1
            if client == 0 and doomed and rng.random() < 0.05:
                assert send(port, "DELETE", f"/students/{doomed.pop()}")[0] == 204
        return seen

    results = run_at_once(50, churn)

    totals = sum(results, Counter())
    assert totals[("enroll", 201)] > 0
    assert totals[("unenroll", 204)] > 0
    assert totals[("enroll", 409)] > 0
    cluster.assert_invariants()
