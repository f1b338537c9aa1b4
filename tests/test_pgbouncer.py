"""Behind PgBouncer in transaction mode: DATABASE_POOLER=pgbouncer is what makes it work.

A private pgbouncer (Debian's 1.18) with one server connection stands in front
of the test PostgreSQL server, so every transaction of every client runs on the
same server connection, one after the other. Without the setting the service
cannot work there (its connections are refused, and once that is worked around
its prepared statements collide); with it, nothing outlives a transaction. The
race and fuzzing suites run through PgBouncer as well (tests/test_races.py,
tests/test_api_fuzz.py).
"""

import psycopg
import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError, OperationalError

from app.extensions import db
from tests.support.databases import make_app, psycopg_url
from tests.support.pgbouncer import PgBouncer, missing
from tests.support.tools import require

POSTGRESQL_ONLY = "PgBouncer runs in CI's PostgreSQL pass"
# psycopg 3 prepares a statement on the server once it has run this many times.
PREPARE_THRESHOLD = 5


def start_bouncer(databases, **options) -> PgBouncer:
    """A started PgBouncer with one server connection in front of the suite's server."""
    if databases.backend != "postgresql":
        pytest.skip(POSTGRESQL_ONLY)
    require(missing())
    return PgBouncer(str(databases.server_url), pool_size=1, **options).start()


@pytest.fixture(scope="module")
def bouncer(databases):
    """PgBouncer as Debian ships it: the ``options`` start-up parameter is refused."""
    started = start_bouncer(databases)
    yield started
    started.stop()


@pytest.fixture(scope="module")
def lenient_bouncer(databases):
    """PgBouncer told to drop ``options``: a service without the setting gets connected."""
    started = start_bouncer(databases, ignored_parameters=("options",))
    yield started
    started.stop()


@pytest.fixture(scope="module")
def database_url(databases):
    """A migrated database of this module's own."""
    if databases.backend != "postgresql":
        pytest.skip(POSTGRESQL_ONLY)
    return databases.migrated("bouncer")


def app_through(bouncer: PgBouncer, database_url: str, **config):
    """An app on ``database_url`` reached through ``bouncer``."""
    return make_app(bouncer.url_for(database_url), **config)


def run_the_same_statement_on_two_connections(app, times: int) -> list[int]:
    """Each of two pooled connections runs one statement ``times`` times, one transaction each."""
    answers = []
    with app.app_context():
        try:
            with db.engine.connect() as first, db.engine.connect() as second:
                for number in range(times):
                    for connection in (first, second):
                        statement = text("SELECT count(*) + :n FROM students")
                        answers.append(connection.execute(statement, {"n": number}).scalar_one())
                        connection.commit()
        finally:
            db.engine.dispose()
    return answers


def test_without_the_setting_pgbouncer_refuses_the_service_s_connections(bouncer, database_url):
    app = app_through(bouncer, database_url)

    with app.app_context(), pytest.raises(OperationalError) as refused:
        db.session.execute(text("SELECT 1"))

    assert "unsupported startup parameter: options" in str(refused.value)


def test_without_the_setting_prepared_statements_collide_on_a_shared_server_connection(
    lenient_bouncer, database_url
):
    app = app_through(lenient_bouncer, database_url)

    with pytest.raises(DBAPIError) as collided:
        run_the_same_statement_on_two_connections(app, PREPARE_THRESHOLD + 2)

    assert isinstance(collided.value.orig, psycopg.errors.DuplicatePreparedStatement)
    assert 'prepared statement "_pg3_0" already exists' in str(collided.value)


def test_with_the_setting_the_same_statements_run_on_a_shared_server_connection(
    lenient_bouncer, database_url
):
    app = app_through(lenient_bouncer, database_url, DATABASE_POOLER="pgbouncer")

    answers = run_the_same_statement_on_two_connections(app, PREPARE_THRESHOLD * 4)

    assert answers == [number for number in range(PREPARE_THRESHOLD * 4) for _ in range(2)]


def test_behind_pgbouncer_the_statement_timeout_is_set_per_transaction_and_never_leaks(
    bouncer, database_url
):
    app = app_through(
        bouncer, database_url, DATABASE_POOLER="pgbouncer", DB_STATEMENT_TIMEOUT_MS=250
    )

    with app.app_context():
        inside = db.session.execute(text("SHOW statement_timeout")).scalar_one()
        db.session.commit()
        with pytest.raises(OperationalError) as cancelled:
            db.session.execute(text("SELECT pg_sleep(2)"))
        db.session.rollback()
        db.engine.dispose()
    # The pool's only server connection, as the next client gets it.
    with psycopg.connect(
        psycopg_url(bouncer.url_for(database_url)), autocommit=True, prepare_threshold=None
    ) as other:
        after = other.execute("SHOW statement_timeout").fetchone()[0]

    assert inside == "250ms"
    assert isinstance(cancelled.value.orig, psycopg.errors.QueryCanceled)
    assert after == "0"


def test_behind_pgbouncer_a_read_runs_in_a_transaction_that_sets_the_timeout(bouncer, database_url):
    app = app_through(bouncer, database_url, DATABASE_POOLER="pgbouncer")
    client = app.test_client()
    created = client.post("/students", json={"name": "Pooled", "email": "pooled@example.edu"})
    sent: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        sent.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        response = client.get(f"/students/{created.get_json()['id']}")
    finally:
        event.remove(engine, "before_cursor_execute", record)
        engine.dispose()

    assert response.status_code == 200
    assert response.get_json()["email"] == "pooled@example.edu"
    assert sent[0] == "SET LOCAL statement_timeout = 5000"
    assert len(sent) == 2
