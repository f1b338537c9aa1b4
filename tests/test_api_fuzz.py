"""Property-based fuzzing of the whole API with schemathesis, from the generated spec.

Every operation gets at least 100 generated requests (valid and invalid) with
all of schemathesis's checks on and a fixed seed; the stateful test follows
the spec's links across calls (create, enroll, read back, unenroll, delete).
In process against the WSGI app on the suite's database, and over HTTP against
gunicorn with 2 workers when the suite runs on PostgreSQL.
"""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.servers import Figures, GunicornServer, migrate_database

pytestmark = pytest.mark.slow

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "100"))
# Writes require a token, as in production; schemathesis checks they are refused without it.
TOKEN = "fuzz-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)

in_process = schemathesis.pytest.from_fixture("wsgi_schema")
over_http = schemathesis.pytest.from_fixture("gunicorn_schema")


@pytest.fixture
def wsgi_schema(app, monkeypatch):
    """The app's own spec, called in process, with write tokens switched on."""
    monkeypatch.setitem(app.config, "API_TOKENS", [TOKEN])
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


@pytest.fixture(scope="module")
def gunicorn_server(databases, tmp_path_factory):
    """Gunicorn with 2 workers on a PostgreSQL database of its own."""
    if databases.backend != "postgresql":
        pytest.skip("fuzzing over HTTP runs in CI's PostgreSQL pass")
    database_url = databases.new("fuzz")
    migrate_database(database_url)
    with GunicornServer(
        tmp_path_factory.mktemp("logs"),
        database_url=database_url,
        workers=2,
        env={"API_TOKENS": TOKEN},
    ) as server:
        yield server
        assert "Traceback" not in server.log(), server.log()


@pytest.fixture
def gunicorn_schema(gunicorn_server):
    """The spec as the live server serves it."""
    return schemathesis.openapi.from_url(f"{gunicorn_server.url}/openapi.json")


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
