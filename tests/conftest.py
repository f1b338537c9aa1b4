"""Shared fixtures: one database per run, an app, a client, factories, a query counter.

The suite runs on SQLite by default and on PostgreSQL when ``TEST_DATABASE_URL``
points at a server: each run then creates (and finally drops) databases of its
own on that server, so concurrent runs never collide. An unreachable server
fails the run; it never falls back to SQLite.
"""

import os
import uuid
from contextlib import contextmanager

import flask_migrate
import psycopg
import pytest
from psycopg import sql
from sqlalchemy import delete, event, null
from sqlalchemy.engine import make_url

from app import create_app
from app.extensions import db
from app.models import Course, Enrollment, EnrollmentHistory, Student
from config import normalize_database_url

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")


class DatabaseFactory:
    """Hands out empty databases: SQLite files, or PostgreSQL databases it later drops."""

    def __init__(self, tmp_dir):
        self.tmp_dir = tmp_dir
        self.created: list[str] = []
        self.server_url = (
            make_url(normalize_database_url(TEST_DATABASE_URL)) if TEST_DATABASE_URL else None
        )

    @property
    def backend(self) -> str:
        return "postgresql" if self.server_url else "sqlite"

    def _admin(self):
        url = self.server_url
        return psycopg.connect(
            host=url.host,
            port=url.port or 5432,
            user=url.username,
            password=url.password,
            dbname=url.database or "postgres",
            autocommit=True,
        )

    def new(self, label: str = "db") -> str:
        """Create a new empty database and return its SQLAlchemy URL."""
        name = f"enroll_{label}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        if self.server_url is None:
            return f"sqlite:///{self.tmp_dir / name}.sqlite3"
        with self._admin() as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.created.append(name)
        return self.server_url.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        """Drop every database this factory created."""
        if not self.created:
            return
        with self._admin() as admin:
            for name in self.created:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


@pytest.fixture(scope="session")
def databases(tmp_path_factory):
    """The run's database factory (fails the run if the PostgreSQL server is unreachable)."""
    factory = DatabaseFactory(tmp_path_factory.mktemp("databases"))
    yield factory
    factory.drop_all()


def make_app(database_url: str, **overrides):
    """An app in testing mode bound to ``database_url``."""
    return create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, **overrides})


@pytest.fixture(scope="session")
def app(databases):
    """The application, on a database migrated to head."""
    application = make_app(databases.new("main"))
    with application.app_context():
        flask_migrate.upgrade()
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
        for model in (EnrollmentHistory, Enrollment, Course, Student):
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
    counter = iter(range(1, 1_000_000))

    def factory(name: str | None = None, email: str | None = None) -> int:
        number = next(counter)
        with app.app_context():
            student = Student(
                name=name or f"Student {number:04d}", email=email or f"s{number}@example.edu"
            )
            db.session.add(student)
            db.session.commit()
            return student.id

    return factory


@pytest.fixture
def make_course(app):
    """Factory inserting a course straight into the database; returns its id."""
    counter = iter(range(1, 1_000_000))

    def factory(
        code: str | None = None, title: str = "A course", capacity: int | None = None, **fields
    ) -> int:
        number = next(counter)
        with app.app_context():
            # null(): the ORM would leave a None out of the INSERT and the default apply.
            fields = {name: null() if value is None else value for name, value in fields.items()}
            course = Course(code=code or f"C{number:04d}", title=title, capacity=capacity, **fields)
            db.session.add(course)
            db.session.commit()
            return course.id

    return factory


@pytest.fixture
def enroll_rows(app):
    """Insert enrollments straight into the database."""

    def factory(student_id: int, *course_ids: int) -> None:
        with app.app_context():
            for course_id in course_ids:
                db.session.add(Enrollment(student_id=student_id, course_id=course_id))
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

    @contextmanager
    def counting():
        statements: list[str] = []

        def record(_conn, _cursor, statement, *_args):
            if (
                not statement.lstrip()
                .upper()
                .startswith(("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"))
            ):
                statements.append(statement)

        with app.app_context():
            engine = db.engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            yield statements
        finally:
            event.remove(engine, "before_cursor_execute", record)

    return counting


# --- reliability figures ------------------------------------------------------


def pytest_terminal_summary(terminalreporter):
    """Print what the reliability tests did (requests sent, races run, inputs tried)."""
    from tests.servers import Figures

    if Figures.counts:
        terminalreporter.section("reliability figures")
        for name, count in sorted(Figures.counts.items()):
            terminalreporter.write_line(f"{name}: {count}")
