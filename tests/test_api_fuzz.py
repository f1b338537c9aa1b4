"""Property-based fuzzing of the whole API with schemathesis, from the generated spec.

Every operation gets at least 100 generated requests (valid and invalid) with
all of schemathesis's checks on and a fixed seed; the stateful test follows
the spec's links across calls (create, enroll, read back, unenroll, delete).
In process against the WSGI app on the suite's database, and over HTTP against
gunicorn with 2 workers when the suite runs on PostgreSQL; on PostgreSQL also
through PgBouncer in transaction mode, against two instances taking turns
(``DATABASE_POOLER=pgbouncer``).
"""

import itertools
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import GenerationMode
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from app.extensions import db
from tests.support import pgbouncer
from tests.support.servers import Figures, GunicornServer
from tests.support.tools import require

pytestmark = pytest.mark.slow

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "100"))
# AUTH_MODE=none (every caller is admin); access per mode is fuzzed in test_auth_servers.py.
AUTH: dict[str, str] = {}
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)

# Stateful runs: scenarios of up to STATEFUL_STEPS calls chained through the spec's links.
STATEFUL_SCENARIOS = int(os.environ.get("FUZZ_STATEFUL_SCENARIOS", "80"))
STATEFUL_STEPS = int(os.environ.get("FUZZ_STATEFUL_STEPS", "15"))
STATEFUL_SETTINGS = settings(
    max_examples=STATEFUL_SCENARIOS,
    stateful_step_count=STATEFUL_STEPS,
    phases=[Phase.generate],
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
TABLES = ("enrollment_history", "student_courses", "courses", "students", "idempotency_keys")
ENROLLING = {
    "POST /students/{student_id}/courses",
    "POST /students/{student_id}/enroll",
    "POST /enroll",
}
UNENROLLING = "DELETE /students/{student_id}/courses/{course_id}"

in_process = schemathesis.pytest.from_fixture("wsgi_schema")
over_http = schemathesis.pytest.from_fixture("gunicorn_schema")
through_pgbouncer = schemathesis.pytest.from_fixture("pooled_schema")
_turns = itertools.count()


@pytest.fixture
def wsgi_schema(app):
    """The app's own spec, called in process."""
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


@pytest.fixture(scope="module")
def gunicorn_server(databases, tmp_path_factory):
    """Gunicorn with 2 workers on a PostgreSQL database of its own."""
    if databases.backend != "postgresql":
        pytest.skip("fuzzing over HTTP runs in CI's PostgreSQL pass")
    database_url = databases.migrated("fuzz")
    with GunicornServer(
        tmp_path_factory.mktemp("logs"),
        database_url=database_url,
        workers=2,
    ) as server:
        yield server
        assert "Traceback" not in server.log(), server.log()


@pytest.fixture(scope="module")
def pooled_servers(databases, tmp_path_factory):
    """Two gunicorn instances (2 workers each) reaching their database through PgBouncer."""
    if databases.backend != "postgresql":
        pytest.skip("fuzzing through PgBouncer runs in CI's PostgreSQL pass")
    require(pgbouncer.missing())
    database_url = databases.migrated("fuzzpool")
    with pgbouncer.PgBouncer(database_url) as bouncer:
        servers = [
            GunicornServer(
                tmp_path_factory.mktemp("logs"),
                database_url=bouncer.url_for(database_url),
                workers=2,
                env={"DATABASE_POOLER": "pgbouncer"},
            )
            for _ in range(2)
        ]
        try:
            for server in servers:
                server.start()
            yield servers
            for server in servers:
                assert "Traceback" not in server.log(), server.log()
        finally:
            for server in servers:
                server.stop()


@pytest.fixture
def pooled_schema(pooled_servers):
    """The spec as the first pooled instance serves it."""
    return schemathesis.openapi.from_url(f"{pooled_servers[0].url}/openapi.json")


def next_instance(servers: list[GunicornServer]) -> str:
    """The base URL of the instance whose turn it is."""
    return servers[next(_turns) % len(servers)].url


@pytest.fixture
def gunicorn_schema(gunicorn_server):
    """The spec as the live server serves it."""
    return schemathesis.openapi.from_url(f"{gunicorn_server.url}/openapi.json")


def empty_tables(connection) -> None:
    """Delete every row, so that each scenario starts from the same state."""
    for table in TABLES:
        connection.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - fixed table names


def stateful_workflow(schema, reset, figure: str, servers: list[GunicornServer] | None = None):
    """The state machine schemathesis builds from the spec's links, authorized for writes.

    Links carry one id from a response into the next request. An enrollment needs
    two (a student and a course), so each scenario starts with one student and one
    course created through the API, and a valid enrollment request made through a
    link gets the other half of the pair from them: created student -> enroll in
    the seeded course; created course -> enroll the seeded student. With
    ``servers``, the calls take turns between them.
    """
    schema.config.update(headers=AUTH)
    # Only the declared links: schemathesis's own guesses pair unrelated ids.
    schema.config.phases.stateful.inference.algorithms = []

    def call_kwargs() -> dict:
        return {"base_url": next_instance(servers)} if servers else {}

    def create(path: str, body: dict) -> int:
        response = schema[path]["POST"].Case(body=body).call(headers=AUTH, **call_kwargs())
        assert response.status_code == 201, response.text
        return response.json()["id"]

    class Workflow(schema.as_state_machine()):
        def setup(self):
            """Start each scenario on empty tables with one seeded student and course."""
            reset()
            self.student_id = create("/students", {"name": "Seed", "email": "seed@example.edu"})
            self.course_id = create("/courses", {"code": "SEED1", "title": "Seed"})

        def before_call(self, case):
            """Fill the half of a valid enrollment that no link can carry."""
            mode = case.meta.generation.mode if case.meta is not None else None
            if mode != GenerationMode.POSITIVE or not isinstance(case.body, dict):
                return
            label = case.operation.label
            if label == "POST /students/{student_id}/courses":
                case.body["course_ids"] = [self.course_id]
            elif label == "POST /students/{student_id}/enroll":
                case.body["course_id"] = self.course_id
            elif label == "POST /enroll":
                case.body["student_id"] = self.student_id

        def get_call_kwargs(self, case):
            """Send each call to the instance whose turn it is (when there are several)."""
            return call_kwargs()

        def after_call(self, response, case):
            """Count every request, and the enrollments made and undone."""
            super().after_call(response, case)
            Figures.add(figure)
            if case.operation.label in ENROLLING and response.status_code == 201:
                Figures.add(f"{figure}: enrollments created")
            if case.operation.label == UNENROLLING and response.status_code == 204:
                Figures.add(f"{figure}: enrollments removed")

    return Workflow


@in_process.parametrize()
@FUZZ_SETTINGS
def test_every_operation_in_process_conforms(case):
    Figures.add("fuzzing requests (in process)")
    case.call_and_validate(headers=AUTH)


@over_http.parametrize()
@FUZZ_SETTINGS
def test_every_operation_over_http_conforms(case):
    Figures.add("fuzzing requests (gunicorn)")
    case.call_and_validate(headers=AUTH)


@through_pgbouncer.parametrize()
@FUZZ_SETTINGS
def test_every_operation_through_pgbouncer_on_two_instances_conforms(case, pooled_servers):
    Figures.add("fuzzing requests (two instances through PgBouncer)")
    case.call_and_validate(base_url=next_instance(pooled_servers), headers=AUTH)


def test_linked_workflows_in_process_conform(app):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)

    def reset():
        with app.app_context():
            empty_tables(db.session)
            db.session.commit()
            db.session.remove()

    stateful_workflow(schema, reset, "stateful requests (in process)").run(
        settings=STATEFUL_SETTINGS
    )


def test_linked_workflows_over_http_conform(gunicorn_server, gunicorn_schema):
    engine = create_engine(gunicorn_server.env["DATABASE_URL"])

    def reset():
        with engine.begin() as connection:
            empty_tables(connection)

    try:
        stateful_workflow(gunicorn_schema, reset, "stateful requests (gunicorn)").run(
            settings=STATEFUL_SETTINGS
        )
    finally:
        engine.dispose()


def test_linked_workflows_through_pgbouncer_on_two_instances_conform(pooled_servers, pooled_schema):
    engine = create_engine(
        pooled_servers[0].env["DATABASE_URL"],
        poolclass=NullPool,
        connect_args={"prepare_threshold": None},
    )

    def reset():
        with engine.begin() as connection:
            empty_tables(connection)

    figure = "stateful requests (two instances through PgBouncer)"
    try:
        stateful_workflow(pooled_schema, reset, figure, pooled_servers).run(
            settings=STATEFUL_SETTINGS
        )
    finally:
        engine.dispose()
