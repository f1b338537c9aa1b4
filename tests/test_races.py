"""Races through real threads, real processes and real commits: capacity and uniqueness hold.

Each test releases many clients at the same instant (a barrier) against a
database of its own, then checks the answers and the rows. Topologies: threads
in one process (Flask's test client, as threaded workers would serve them), one
gunicorn instance with 4 workers, and (on PostgreSQL) two gunicorn instances
on different ports sharing one database, directly and through PgBouncer in
transaction mode (``DATABASE_POOLER=pgbouncer``, fewer server connections than
workers, so their transactions share server connections).
"""

import itertools
import os
import random
import threading
import time
from collections import Counter

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from app.extensions import db
from tests.support import pgbouncer
from tests.support.databases import TEST_DATABASE_URL, assert_invariants, make_app
from tests.support.servers import Figures, GunicornServer, Reply, create
from tests.support.threads import run_at_once
from tests.support.tools import require

pytestmark = pytest.mark.slow

CLIENTS = 60
CHURN_SECONDS = float(os.environ.get("RACE_CHURN_SECONDS", "20"))
IN_PROCESS = "threads-in-one-process"
TOPOLOGIES = {  # name: (gunicorn instances, workers each); 0 instances: the app in this process
    IN_PROCESS: (0, 0),
    "one-instance-4-workers": (1, 4),
    "two-instances-sharing-the-database": (2, 2),
    "two-instances-through-pgbouncer": (2, 2),
}
THROUGH_PGBOUNCER = "two-instances-through-pgbouncer"
POSTGRESQL_ONLY = "the shared-database topologies run in CI's PostgreSQL pass"
GUNICORN_TOPOLOGIES = [name for name in TOPOLOGIES if name != IN_PROCESS]
SHARED_DATABASE_TOPOLOGIES = ("two-instances-sharing-the-database", THROUGH_PGBOUNCER)


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
        """How many students are enrolled in the course, read straight from the database."""
        statement = (
            "SELECT count(*) FROM student_courses WHERE course_id = :c AND status = 'enrolled'"
        )
        return self.rows(statement, c=course)[0][0]

    def rows(self, statement: str, **parameters) -> list[tuple]:
        """Rows read straight from the database, on a connection of their own."""
        engine = create_engine(self.database_url, poolclass=NullPool)
        with engine.connect() as connection:
            found = [tuple(row) for row in connection.execute(text(statement), parameters)]
        engine.dispose()
        return found

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

    def create_course(self, code: str, capacity: int | None, **fields) -> int:
        """Create a course over the API; return its id."""
        body = {"code": code, "title": code, "capacity": capacity, **fields}
        return create(self.servers[0], "/courses", body)

    def statuses(self, course: int) -> dict[int, str]:
        """Each student's status in the course, read straight from the database."""
        statement = "SELECT student_id, status FROM student_courses WHERE course_id = :c"
        return dict(self.rows(statement, c=course))

    def waitlist(self, course: int) -> list[tuple[int, int]]:
        """The course's waitlist over the API: (student id, position), in promotion order."""
        reply = self.request(0, "GET", f"/courses/{course}/waitlist?page_size=100")
        assert reply.status == 200, reply.body
        return [(entry["id"], entry["position"]) for entry in reply.body]

    def history(self, course: int) -> dict[int, list[tuple]]:
        """Each student's history in the course: (from, to, actor, reason), oldest first."""
        found: dict[int, list[tuple]] = {}
        for student, *change in self.rows(
            "SELECT student_id, from_status, to_status, actor, reason FROM enrollment_history "
            "WHERE course_id = :c ORDER BY id",
            c=course,
        ):
            found.setdefault(student, []).append(tuple(change))
        return found

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
    server_url, env = database_url, {}
    bouncer = None
    if request.param == THROUGH_PGBOUNCER:
        require(pgbouncer.missing())
        bouncer = pgbouncer.PgBouncer(database_url).start()
        server_url, env = bouncer.url_for(database_url), {"DATABASE_POOLER": "pgbouncer"}
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
            servers.append(
                GunicornServer(log_dir, database_url=server_url, workers=workers, env=env)
            )
            servers[-1].start()
        yield Cluster(database_url, servers)
        for server in servers:
            assert "Traceback" not in server.log(), server.log()
    finally:
        for server in servers:
            server.stop()
        if bouncer is not None:
            bouncer.stop()


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


@pytest.mark.parametrize("cluster", GUNICORN_TOPOLOGIES, indirect=True)
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


# --- the enrollment lifecycle ----------------------------------------------------------
def lifecycle_topology(request) -> None:
    """Run the lifecycle races across two instances on PostgreSQL, four workers on SQLite.

    They take the churn's topology list, so both share the servers the module fixture
    starts; SQLite's single writer makes a second instance no different. On
    PostgreSQL they run with and without PgBouncer in between.
    """
    topology = request.node.callspec.params["cluster"]
    if TEST_DATABASE_URL and topology not in SHARED_DATABASE_TOPOLOGIES:
        pytest.skip("on PostgreSQL the lifecycle races run across two instances")


class Observer:
    """Reads a course's counts from a connection of its own, over and over, while a race runs.

    Each read is one statement, so it sees one committed state: the capacity, the
    students enrolled and the students waiting. It records every state in which
    the course was over capacity, or had a free seat while someone was waiting.
    """

    STATEMENT = text(
        "SELECT c.capacity, "
        "(SELECT count(*) FROM student_courses e WHERE e.course_id = c.id "
        "AND e.status = 'enrolled'), "
        "(SELECT count(*) FROM student_courses e WHERE e.course_id = c.id "
        "AND e.status = 'waitlisted') FROM courses c WHERE c.id = :c"
    )

    def __init__(self, database_url: str, course: int):
        self.engine = create_engine(database_url, poolclass=NullPool)
        self.course = course
        self.reads = 0
        self.wrong: list[tuple] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch)

    def _watch(self) -> None:
        with self.engine.connect() as connection:
            while not self._stop.is_set():
                capacity, enrolled, waiting = connection.execute(
                    self.STATEMENT, {"c": self.course}
                ).one()
                connection.rollback()
                self.reads += 1
                if enrolled > capacity or (waiting and enrolled < capacity):
                    self.wrong.append((capacity, enrolled, waiting))

    def __enter__(self) -> "Observer":
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()
        self.engine.dispose()
        Figures.add("lifecycle states observed during races", self.reads)


def assert_lifecycle_consistent(cluster: Cluster, course: int, capacity: int) -> None:
    """Counts, positions and history agree with the rows, and no seat is free while one waits."""
    statuses = cluster.statuses(course)
    enrolled = sorted(s for s, status in statuses.items() if status == "enrolled")
    waiting = [s for s, status in statuses.items() if status == "waitlisted"]
    waitlist = cluster.waitlist(course)
    assert [position for _, position in waitlist] == list(range(1, len(waiting) + 1))
    assert sorted(student for student, _ in waitlist) == sorted(waiting)
    assert len(enrolled) == min(capacity, len(enrolled) + len(waiting))
    body = cluster.request(0, "GET", f"/courses/{course}").body
    assert (body["enrolled_count"], body["waitlist_count"]) == (len(enrolled), len(waiting))
    # Each enrollment's last history row is its status (a deleted student's: dropped), and
    # each row follows the one before.
    for student, changes in cluster.history(course).items():
        assert changes[-1][1] == statuses.get(student, "dropped"), (student, changes)
        assert changes[0][0] is None
        for before, after in itertools.pairwise(changes):
            assert after[0] == before[1], (student, changes)


@pytest.mark.parametrize("cluster", GUNICORN_TOPOLOGIES, indirect=True)
def test_sixty_waitlist_into_five_seats_then_twenty_drops_promote_the_earliest(cluster, request):
    lifecycle_topology(request)
    students = cluster.create_students("wait", CLIENTS)
    course = cluster.create_course("WAIT5", capacity=5, waitlist_capacity=100)

    results = race(
        CLIENTS,
        lambda client: cluster.request(
            client,
            "POST",
            f"/students/{students[client]}/courses",
            {"course_ids": [course], "waitlist": True},
        ),
    )

    assert Counter(reply.status for reply in results) == {201: CLIENTS}
    statuses = cluster.statuses(course)
    assert Counter(statuses.values()) == {"enrolled": 5, "waitlisted": CLIENTS - 5}
    order = [student for student, _ in cluster.waitlist(course)]
    assert cluster.waitlist(course) == [(s, n) for n, s in enumerate(order, start=1)]
    for reply in results:
        [entry] = reply.body["courses"] or reply.body["waitlist"]
        status = "enrolled" if reply.body["courses"] else "waitlisted"
        assert statuses[reply.body["id"]] == status
        if status == "waitlisted":
            assert order[entry["position"] - 1] == reply.body["id"]
    assert cluster.history(course) == {
        s: [(None, statuses[s], "anonymous", "requested")] for s in students
    }

    # 20 drops at once, 3 seated students and 17 waiting ones from all over the queue.
    seated = sorted(s for s, status in statuses.items() if status == "enrolled")
    leaving = seated[:3] + order[::3][:17]
    with Observer(cluster.database_url, course) as observer:
        drops = race(
            len(leaving),
            lambda client: cluster.request(
                client, "DELETE", f"/students/{leaving[client]}/courses/{course}"
            ),
        )

    assert Counter(reply.status for reply in drops) == {204: len(leaving)}
    assert observer.wrong == []
    assert observer.reads > 0
    still_waiting = [s for s in order if s not in leaving]
    promoted, rest = still_waiting[:3], still_waiting[3:]
    statuses = cluster.statuses(course)
    assert sorted(s for s, status in statuses.items() if status == "enrolled") == sorted(
        seated[3:] + promoted
    )
    assert cluster.waitlist(course) == [(s, n) for n, s in enumerate(rest, start=1)]
    history = cluster.history(course)
    for student in promoted:
        assert history[student][-1] == ("waitlisted", "enrolled", "system", "promoted")
    assert_lifecycle_consistent(cluster, course, capacity=5)
    cluster.assert_invariants()


@pytest.mark.parametrize("cluster", GUNICORN_TOPOLOGIES, indirect=True)
def test_capacity_raises_and_drops_at_once_promote_in_waitlist_order(cluster, request):
    lifecycle_topology(request)
    students = cluster.create_students("raise", 25)
    course = cluster.create_course("RAISE", capacity=5, waitlist_capacity=None)
    for student in students:
        path = f"/students/{student}/courses"
        assert cluster.request(0, "POST", path, {"course_ids": [course], "waitlist": True})
    seated = sorted(s for s, status in cluster.statuses(course).items() if status == "enrolled")
    order = [student for student, _ in cluster.waitlist(course)]

    def act(client: int) -> Reply:
        if client < len(seated):
            path = f"/students/{seated[client]}/courses/{course}"
            return cluster.request(client, "DELETE", path)
        return cluster.request(client, "PATCH", f"/courses/{course}", {"capacity": 8})

    with Observer(cluster.database_url, course) as observer:
        results = race(len(seated) + 3, act)

    assert Counter(reply.status for reply in results) == {204: 5, 200: 3}
    assert observer.wrong == []
    # Five seats freed and three added: the first eight in line hold the eight seats.
    statuses = cluster.statuses(course)
    assert sorted(s for s, status in statuses.items() if status == "enrolled") == sorted(order[:8])
    assert cluster.waitlist(course) == [(s, n) for n, s in enumerate(order[8:], start=1)]
    assert_lifecycle_consistent(cluster, course, capacity=8)
    cluster.assert_invariants()


@pytest.mark.parametrize("cluster", GUNICORN_TOPOLOGIES, indirect=True)
def test_a_student_racing_their_own_enrolls_and_drops_leaves_a_history_of_each_answer(
    cluster, request
):
    lifecycle_topology(request)
    [student, *others] = cluster.create_students("self", 4)
    course = cluster.create_course("SELF1", capacity=1, waitlist_capacity=10)
    for other in others:
        path = f"/students/{other}/courses"
        assert cluster.request(0, "POST", path, {"course_ids": [course], "waitlist": True})

    def act(client: int) -> Reply:
        if client % 2:
            return cluster.request(client, "DELETE", f"/students/{student}/courses/{course}")
        path = f"/students/{student}/courses"
        return cluster.request(client, "POST", path, {"course_ids": [course], "waitlist": True})

    with Observer(cluster.database_url, course) as observer:
        results = race(CLIENTS // 2, act)

    answers = Counter(reply.status for reply in results)
    assert set(answers) <= {200, 201, 204, 404}
    assert observer.wrong == []
    # Every change the student was told about is in the history, and nothing else.
    mine = cluster.history(course)[student]
    assert len(mine) == answers[201] + answers[204]
    assert sum(1 for change in mine if change[1] == "dropped") == answers[204]
    assert_lifecycle_consistent(cluster, course, capacity=1)
    cluster.assert_invariants()


@pytest.mark.parametrize("cluster", GUNICORN_TOPOLOGIES, indirect=True)
def test_deleting_seat_holders_while_others_wait_promotes_the_next_in_line(cluster, request):
    lifecycle_topology(request)
    students = cluster.create_students("holder", 16)
    course = cluster.create_course("HOLD3", capacity=3, waitlist_capacity=None)
    for student in students:
        path = f"/students/{student}/courses"
        assert cluster.request(0, "POST", path, {"course_ids": [course], "waitlist": True})
    seated = sorted(s for s, status in cluster.statuses(course).items() if status == "enrolled")
    order = [student for student, _ in cluster.waitlist(course)]
    # The seat holders are deleted while the first two in line leave the waitlist.
    leaving = order[:2]

    def act(client: int) -> Reply:
        if client < len(seated):
            return cluster.request(client, "DELETE", f"/students/{seated[client]}")
        path = f"/students/{leaving[client - len(seated)]}/courses/{course}"
        return cluster.request(client, "DELETE", path)

    with Observer(cluster.database_url, course) as observer:
        results = race(len(seated) + len(leaving), act)

    assert Counter(reply.status for reply in results) == {204: 5}
    assert observer.wrong == []
    statuses = cluster.statuses(course)
    assert not set(seated) & set(statuses)
    assert sorted(s for s, status in statuses.items() if status == "enrolled") == sorted(order[2:5])
    assert cluster.waitlist(course) == [(s, n) for n, s in enumerate(order[5:], start=1)]
    assert_lifecycle_consistent(cluster, course, capacity=3)
    cluster.assert_invariants()
