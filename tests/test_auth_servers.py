"""Identity and access through real gunicorn in production mode, in all three AUTH_MODEs.

- the served OpenAPI document describes the running mode;
- schemathesis, run from outside with its command line and every check on, finds
  no failure against each mode (with an admin token where one is needed);
- a subset of the access table over HTTP in jwt mode, the database unchanged
  after each refusal, and a race of student tokens each enrolling its own student;
- a production instance refuses to start without AUTH_MODE, naming what to set.
"""

import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests.support.access_table import TABLE, Cell, cells
from tests.support.servers import ROOT, Figures, GunicornServer, http

pytestmark = pytest.mark.slow

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# Kept small: a few examples per operation in each mode add seconds, not minutes.
FUZZ_EXAMPLES = "3"
OWN_EXTERNAL_ID = "s1001"
# Who calls in the table: the service-token entry (tokens mode) or the JWT (jwt mode).
CALLERS = {
    "admin": ("ops", "admin"),
    "registrar": ("records-office", "registrar"),
    "student": (OWN_EXTERNAL_ID, "student"),
    "unlinked": ("s9999", "student"),
}
MODES = ("none", "tokens", "jwt")
PUBLIC_OPERATIONS = {("/courses", "get"), ("/courses/{course_id}", "get")}
RACERS = 30
SEATS = 1  # the first racers arrive together: without the course lock, several would get it
# The race runs in jwt mode; more workers there make more requests truly concurrent.
WORKERS = {"none": 2, "tokens": 2, "jwt": 4}


def secret(caller: str) -> str:
    """The service-token secret of a table caller."""
    return f"{caller}-secret".ljust(40, "x")


def production_env(mode: str, provider) -> dict:
    """The environment of a production instance in ``mode``."""
    env = {"APP_ENV": "production", "SECRET_KEY": "a-real-secret", "AUTH_MODE": mode}
    # These instances take hundreds of refused and fuzzed requests from one address;
    # the rate limits have their own tests (tests/test_rate_limits*.py).
    env["RATELIMIT_ENABLED"] = "false"
    if mode == "tokens":
        entries = [f"{name}:{role}:{secret(caller)}" for caller, (name, role) in CALLERS.items()]
        env["API_TOKENS"] = ",".join(entries)
    if mode == "jwt":
        env.update(provider.settings())
    return env


def caller_headers(mode: str, provider, caller: str = "admin") -> dict:
    """What a caller of the table sends in ``mode`` (nothing when anonymous or in ``none``)."""
    if mode == "none" or caller == "anonymous":
        return {}
    if mode == "tokens":
        return {"Authorization": f"Bearer {secret(caller)}"}
    name, role = CALLERS[caller]
    token = provider.token(sub=name, roles=[role], lifetime=3600)
    return {"Authorization": f"Bearer {token}"}


class Instance:
    """A production-mode gunicorn, and a direct view of the database it shares."""

    def __init__(self, mode: str, server: GunicornServer, engine):
        self.mode = mode
        self.server = server
        self.engine = engine

    def call(self, method: str, path: str, body=None, headers=None):
        """(status, body: decoded JSON or text, headers)."""
        reply = http(method, self.server.url + path, body, headers=headers)
        return reply.status, reply.body, reply.headers

    def snapshot(self) -> dict:
        """Every row of every table."""
        with self.engine.connect() as connection:
            return {
                table: sorted(
                    (tuple(row) for row in connection.execute(text(f"SELECT * FROM {table}"))),  # noqa: S608
                    key=repr,
                )
                for table in ("students", "courses", "student_courses")
            }


@pytest.fixture(scope="module")
def instances(databases, identity_provider, tmp_path_factory):
    """One production instance per AUTH_MODE, started together, sharing one database."""
    database_url = databases.migrated("auth")
    engine = create_engine(database_url, poolclass=NullPool)
    logs = tmp_path_factory.mktemp("logs")
    servers = {
        mode: GunicornServer(
            logs,
            database_url=database_url,
            workers=WORKERS[mode],
            env=production_env(mode, identity_provider),
        )
        for mode in MODES
    }
    starting = [threading.Thread(target=server.start) for server in servers.values()]
    for thread in starting:
        thread.start()
    for thread in starting:
        thread.join()
    try:
        yield {mode: Instance(mode, server, engine) for mode, server in servers.items()}
        for server in servers.values():
            assert "Traceback" not in server.log(), server.log()
    finally:
        stopping = [threading.Thread(target=server.stop) for server in servers.values()]
        for thread in stopping:
            thread.start()
        for thread in stopping:
            thread.join()
        engine.dispose()


@pytest.mark.parametrize("mode", MODES)
def test_the_served_spec_describes_the_running_mode(instances, mode):
    status, spec, _ = instances[mode].call("GET", "/openapi.json")
    assert status == 200
    schemes = spec.get("components", {}).get("securitySchemes", {})
    operations = [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "patch", "delete"}
    ]
    assert len(operations) == 19
    if mode == "none":
        assert schemes == {}
        for path, method, operation in operations:
            assert "security" not in operation, (path, method)
            assert "401" not in operation["responses"], (path, method)
        return
    expected = {"type": "http", "scheme": "bearer"}
    if mode == "jwt":
        expected["bearerFormat"] = "JWT"
    assert {k: v for k, v in schemes["bearerAuth"].items() if k != "description"} == expected
    for path, method, operation in operations:
        if (path, method) in PUBLIC_OPERATIONS:
            assert "security" not in operation, (path, method)
            continue
        assert operation["security"] == [{"bearerAuth": []}], (path, method)
        assert {"401", "403"} <= set(operation["responses"]), (path, method)
        assert "Callers: " in operation["description"], (path, method)


def schemathesis_command(instance: Instance, provider) -> list[str]:
    """The schemathesis command line against one instance, as an admin where one is needed."""
    command = [
        str(SCHEMATHESIS),
        f"--config-file={ROOT / 'schemathesis.toml'}",
        "run",
        f"{instance.server.url}/openapi.json",
        "--checks=all",
        f"--max-examples={FUZZ_EXAMPLES}",
        "--generation-deterministic",
        "--phases=fuzzing",
    ]
    for name, value in caller_headers(instance.mode, provider).items():
        command.append(f"--header={name}: {value}")
    return command


def test_schemathesis_from_outside_finds_no_failure_in_any_mode(
    instances, identity_provider, tmp_path
):
    # The three runs go at once: each mostly waits on its own server.
    runs = {
        mode: subprocess.Popen(
            schemathesis_command(instance, identity_provider),
            cwd=tmp_path,  # its cache goes there, not into the project
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for mode, instance in instances.items()
    }
    outputs = {mode: run.communicate(timeout=300)[0] for mode, run in runs.items()}
    Figures.add("schemathesis runs from outside, one per mode", len(runs))
    for mode, run in runs.items():
        assert run.returncode == 0, f"{mode}:\n{outputs[mode][-6000:]}"
        assert "19 passed" in outputs[mode], f"{mode}:\n{outputs[mode][-3000:]}"
        assert "schemathesis.toml" in outputs[mode], "the project's configuration was not read"


# --- the access table over HTTP -------------------------------------------------------

SUBSET = {  # every kind of rule, refused and allowed, as a real client sends them
    operation: TABLE[operation]
    for operation in (
        "GET /courses",
        "GET /students",
        "GET /students/{student}",
        "POST /students/{student}/courses",
        "POST /enroll",
        "DELETE /students/{student}/courses/{course}",
        "PATCH /students/{student}",
        "DELETE /courses/{course}",
    )
}


def new_records(engine) -> dict:
    """Fresh tables: two students (one tied to the student caller), a shared and a free course."""
    with engine.begin() as connection:
        for table in ("student_courses", "students", "courses"):
            connection.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - fixed table names
        ids = {}
        for key, external_id in (("own", OWN_EXTERNAL_ID), ("other", "s2002")):
            ids[key] = connection.execute(
                text(
                    "INSERT INTO students (name, email, external_id, created_at) "
                    "VALUES (:key, :email, :external_id, CURRENT_TIMESTAMP) RETURNING id"
                ),
                {"key": key, "email": f"{key}@example.edu", "external_id": external_id},
            ).scalar_one()
        for key in ("course", "free"):
            ids[key] = connection.execute(
                text(
                    "INSERT INTO courses (code, title, created_at) "
                    "VALUES (:key, :key, CURRENT_TIMESTAMP) RETURNING id"
                ),
                {"key": key.upper()},
            ).scalar_one()
        for key in ("own", "other"):
            connection.execute(
                text("INSERT INTO student_courses (student_id, course_id) VALUES (:s, :c)"),
                {"s": ids[key], "c": ids["course"]},
            )
        connection.execute(
            text("UPDATE courses SET seats_taken = 2 WHERE id = :c"), {"c": ids["course"]}
        )
    return ids


@pytest.mark.parametrize("mode", MODES)
def test_access_table_subset_over_http(instances, identity_provider, mode):
    instance = instances[mode]
    checked = 0
    for cell in cells(SUBSET):
        ids = new_records(instance.engine)
        before = instance.snapshot()
        method, path, body = cell.request({**ids, "student": ids[cell.target]})
        # Without authentication every caller acts as admin: everything succeeds.
        expected = cell.expected if mode != "none" else Cell.success(cell.operation)
        headers = caller_headers(mode, identity_provider, cell.caller)

        status, answer, response_headers = instance.call(method, path, body, headers)

        assert status == expected, (cell.id, answer)
        if status in (401, 403):
            assert response_headers["Content-Type"] == "application/problem+json", cell.id
            assert instance.snapshot() == before, cell.id
        checked += 1
    Figures.add("access table cells over HTTP", checked)


# --- a race of student tokens --------------------------------------------------------


def test_student_tokens_race_for_seats_each_on_its_own_record(instances, identity_provider):
    instance = instances["jwt"]
    new_records(instance.engine)
    admin = caller_headers("jwt", identity_provider)
    status, course, _ = instance.call(
        "POST", "/courses", {"code": "RACE1", "title": "Race", "capacity": SEATS}, admin
    )
    assert status == 201, course
    racers = []
    for number in range(RACERS):
        body = {"name": f"Racer {number}", "email": f"racer{number}@example.edu",
                "external_id": f"racer-{number}"}  # fmt: skip
        status, student, _ = instance.call("POST", "/students", body, admin)
        assert status == 201, student
        token = identity_provider.token(sub=f"racer-{number}", roles=["student"])
        racers.append((student["id"], {"Authorization": f"Bearer {token}"}))
    barrier = threading.Barrier(RACERS)
    results: list = [None] * RACERS

    def race(number: int) -> None:
        student_id, headers = racers[number]
        neighbour = racers[(number + 1) % RACERS][0]
        barrier.wait()
        own = instance.call("POST", f"/students/{student_id}/courses",
                            {"course_ids": [course["id"]]}, headers)  # fmt: skip
        theirs = instance.call("DELETE", f"/students/{neighbour}/courses/{course['id']}",
                               headers=headers)  # fmt: skip
        results[number] = (own[0], theirs[0])

    threads = [threading.Thread(target=race, args=(number,)) for number in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    Figures.add("races run")

    assert Counter(own for own, _ in results) == {201: SEATS, 409: RACERS - SEATS}
    assert Counter(theirs for _, theirs in results) == {403: RACERS}
    with instance.engine.connect() as connection:
        enrolled = (
            connection.execute(
                text("SELECT student_id FROM student_courses WHERE course_id = :c"),
                {"c": course["id"]},
            )
            .scalars()
            .all()
        )
    winners = {racers[number][0] for number, (own, _) in enumerate(results) if own == 201}
    assert set(enrolled) == winners
