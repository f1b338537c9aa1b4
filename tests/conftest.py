"""Fixtures: one database per run, an app, a client, factories, a query counter.

Helpers live in ``tests.support`` (see its docstring); this file holds fixtures only.
"""

import time

import pytest
from sqlalchemy import delete, null, update

from app.auth.identity import Identity
from app.extensions import db
from app.models import Course, Enrollment, EnrollmentHistory, IdempotencyKey, Student
from config import auth_settings
from tests.support.databases import DatabaseFactory, counted_statements, inserting, make_app
from tests.support.identity_provider import IdentityProvider
from tests.support.pgcluster import PrivateCluster, missing
from tests.support.servers import Figures
from tests.support.tools import require


@pytest.fixture(scope="session", autouse=True)
def _no_dotenv():
    """Keep a developer's .env from the servers and flask commands the tests start.

    tests/test_dotenv.py turns it back on for its own processes.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLASK_SKIP_DOTENV", "1")
        yield


@pytest.fixture(scope="session")
def databases(tmp_path_factory):
    """The run's database factory (fails the run if the PostgreSQL server is unreachable)."""
    factory = DatabaseFactory(tmp_path_factory.mktemp("databases"))
    yield factory
    factory.drop_all()


@pytest.fixture(scope="session")
def app(databases):
    """The application, on a database migrated to head."""
    application = make_app(databases.migrated("main"))
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _clean_tables(app):
    """Every test starts and ends with empty tables (tests commit for real)."""
    yield
    with app.app_context():
        db.session.remove()
        for model in (EnrollmentHistory, Enrollment, Course, Student, IdempotencyKey):
            db.session.execute(delete(model))
        db.session.commit()
        db.session.remove()


@pytest.fixture
def client(app):
    """A test client."""
    return app.test_client()


@pytest.fixture
def make_student(app):
    """Factory inserting a student straight into the database; returns its id."""

    def build(
        number: int,
        name: str | None = None,
        email: str | None = None,
        external_id: str | None = None,
    ) -> Student:
        return Student(
            name=name or f"Student {number:04d}",
            email=email or f"s{number}@example.edu",
            external_id=external_id,
        )

    return inserting(app, build)


@pytest.fixture
def make_course(app):
    """Factory inserting a course straight into the database; returns its id."""

    def build(number: int, code: str | None = None, title: str = "A course", **fields) -> Course:
        # null(): the ORM would leave a None out of the INSERT and the default apply.
        fields = {name: null() if value is None else value for name, value in fields.items()}
        return Course(code=code or f"C{number:04d}", title=title, **fields)

    return inserting(app, build)


@pytest.fixture
def enroll_rows(app):
    """Insert enrollments straight into the database (each course's seats_taken follows)."""

    def factory(student_id: int, *course_ids: int) -> None:
        with app.app_context():
            for course_id in course_ids:
                db.session.add(Enrollment(student_id=student_id, course_id=course_id))
            db.session.execute(
                update(Course)
                .where(Course.id.in_(course_ids))
                .values(seats_taken=Course.seats_taken + 1)
            )
            db.session.commit()

    return factory


@pytest.fixture
def db_rows(app):
    """Read the database's state: ``db_rows(Model)`` returns all rows of a model."""

    def read(model):
        with app.app_context():
            rows = list(db.session.scalars(db.select(model)))
            db.session.expunge_all()
            return rows

    return read


@pytest.fixture
def enrollment_pairs(app):
    """The set of (student_id, course_id) pairs stored in ``student_courses``."""

    def read() -> set[tuple[int, int]]:
        with app.app_context():
            rows = db.session.execute(db.select(Enrollment.student_id, Enrollment.course_id))
            return {(student_id, course_id) for student_id, course_id in rows}

    return read


@pytest.fixture
def enrollment_statuses(app):
    """The status of every stored enrollment, keyed by (student_id, course_id)."""

    def read() -> dict[tuple[int, int], str]:
        with app.app_context():
            rows = db.session.execute(
                db.select(Enrollment.student_id, Enrollment.course_id, Enrollment.status)
            )
            return {(student_id, course_id): status for student_id, course_id, status in rows}

    return read


@pytest.fixture
def count_queries(app):
    """Context manager counting the SQL statements the app sends."""

    def counting():
        return counted_statements(app)

    return counting


@pytest.fixture
def private_cluster():
    """A private PostgreSQL cluster, started (the test fails under CI=true if it cannot run)."""
    require(missing())
    with PrivateCluster() as cluster:
        yield cluster


def pytest_terminal_summary(terminalreporter):
    """Print what the reliability tests did (requests sent, races run, inputs tried)."""
    if Figures.counts:
        terminalreporter.section("reliability figures")
        for name, count in sorted(Figures.counts.items()):
            terminalreporter.write_line(f"{name}: {count}")


# --- identity and access ------------------------------------------------------


@pytest.fixture(scope="session")
def identity_provider():
    """A JWKS served over HTTP by the test process, with its token factory."""
    provider = IdentityProvider()
    yield provider
    provider.stop()


@pytest.fixture
def auth_mode(app, monkeypatch):
    """Switch the app's caller check to another AUTH_MODE for one test: ``auth_mode(**env)``.

    The settings go through the same parsing as at start-up; the served spec
    stays the development one (specs per mode are tested on real servers).
    """

    def switch(clock=time.monotonic, **environ: str) -> Identity:
        identity = Identity(auth_settings(environ, "testing"), clock=clock)
        monkeypatch.setitem(app.extensions, "identity", identity)
        return identity

    return switch
