"""Databases for tests and the benchmark: create, migrate, drop; apps bound to them; invariants.

The suite runs on SQLite by default and on PostgreSQL when ``TEST_DATABASE_URL``
points at a server: each run then creates (and finally drops) databases of its
own on that server, so concurrent runs never collide. An unreachable server
fails the run; it never falls back to SQLite.
"""

import itertools
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import flask_migrate
import psycopg
from psycopg import sql
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from app import create_app
from app.extensions import db
from config import normalize_database_url
from tests.support.servers import ROOT, GunicornServer

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
# SQLite's stored timestamp text: whole seconds (CURRENT_TIMESTAMP) or with decimals.
SQLITE_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})?")


def instants(rows) -> list[tuple]:
    """Rows with SQLite's timestamp text read as datetimes.

    A timestamp rewritten with decimals (revision 0007) then compares equal to
    the same instant stored with whole seconds.
    """
    return [
        tuple(
            datetime.fromisoformat(value)
            if isinstance(value, str) and SQLITE_TIMESTAMP.fullmatch(value)
            else value
            for value in row
        )
        for row in rows
    ]


def psycopg_url(url: str) -> str:
    """A libpq URL from a SQLAlchemy one."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def connect(url: str, **kwargs) -> psycopg.Connection:
    """A psycopg connection to the PostgreSQL database ``url`` names."""
    return psycopg.connect(psycopg_url(url), **kwargs)


def _server(url: str) -> psycopg.Connection:
    """An autocommit connection to the maintenance database of ``url``'s server."""
    return connect(make_url(url).set(database="postgres").render_as_string(False), autocommit=True)


def create_database(url: str, *, exist_ok: bool = False) -> bool:
    """Create the PostgreSQL database ``url`` names; False when it existed (and ``exist_ok``)."""
    name = make_url(url).database
    with _server(url) as admin:
        try:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.errors.DuplicateDatabase:
            if not exist_ok:
                raise
            return False
    return True


def drop_database(url: str) -> None:
    """Drop the PostgreSQL database ``url`` names, disconnecting its clients."""
    name = make_url(url).database
    with _server(url) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


class DatabaseFactory:
    """Hands out empty databases: SQLite files, or PostgreSQL databases it later drops."""

    def __init__(self, tmp_dir: Path, server_url: str | None = TEST_DATABASE_URL):
        self.tmp_dir = tmp_dir
        self.created: list[str] = []
        self.server_url = make_url(normalize_database_url(server_url)) if server_url else None

    @property
    def backend(self) -> str:
        """``postgresql`` or ``sqlite``."""
        return "postgresql" if self.server_url else "sqlite"

    def new(self, label: str = "db") -> str:
        """Create a new empty database and return its SQLAlchemy URL."""
        name = f"enroll_{label}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        if self.server_url is None:
            return f"sqlite:///{self.tmp_dir / name}.sqlite3"
        url = self.server_url.set(database=name).render_as_string(hide_password=False)
        create_database(url)
        self.created.append(url)
        return url

    def migrated(self, label: str = "db") -> str:
        """A new database at the head revision; returns its URL."""
        url = self.new(label)
        migrate(url)
        return url

    def drop_all(self) -> None:
        """Drop every database this factory created."""
        for url in self.created:
            drop_database(url)


def make_app(database_url: str, **overrides):
    """An app in testing mode bound to ``database_url`` (rate limits off unless overridden)."""
    return create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "RATELIMIT_ENABLED": False,
            **overrides,
        }
    )


def inserting(app, build):
    """A factory adding ``build(number, **fields)`` to the database; it returns the row's id."""
    numbers = itertools.count(1)

    def factory(**fields) -> int:
        with app.app_context():
            row = build(next(numbers), **fields)
            db.session.add(row)
            db.session.commit()
            return row.id

    return factory


def migrate(database_url: str) -> None:
    """Bring a database to the head revision (the migrations ``flask db upgrade`` runs)."""
    app = make_app(database_url)
    with app.app_context():
        flask_migrate.upgrade()
        db.engine.dispose()


def student_emails(database_url: str) -> list[str]:
    """Every stored student's email, in id order, read on a connection of its own."""
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return list(connection.scalars(text("SELECT email FROM students ORDER BY id")))
    finally:
        engine.dispose()


def flask_cli(database_url: str, *args: str) -> subprocess.CompletedProcess:
    """Run the real ``flask`` command line against ``database_url``; fail on a non-zero exit."""
    return subprocess.run(
        [sys.executable, "-m", "flask", *args],
        cwd=ROOT,
        env={**os.environ, "APP_ENV": "testing", "FLASK_APP": "wsgi", "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=True,
    )


def assert_invariants(database_url: str, server: GunicornServer) -> None:
    """No course over capacity, no orphans, enrolled counts and seats_taken equal to the rows."""
    engine = create_engine(database_url, poolclass=NullPool)
    with engine.connect() as connection:
        courses = connection.execute(
            text(
                "SELECT c.id, c.capacity, c.seats_taken, count(e.student_id) AS enrolled "
                "FROM courses c "
                "LEFT JOIN student_courses e ON e.course_id = c.id AND e.status = 'enrolled' "
                "GROUP BY c.id, c.capacity, c.seats_taken"
            )
        ).all()
        orphans = connection.execute(
            text(
                "SELECT count(*) FROM student_courses e "
                "LEFT JOIN students s ON s.id = e.student_id "
                "LEFT JOIN courses c ON c.id = e.course_id WHERE s.id IS NULL OR c.id IS NULL"
            )
        ).scalar_one()
    engine.dispose()
    assert courses
    assert orphans == 0
    for course in courses:
        assert course.capacity is None or course.enrolled <= course.capacity, course
        assert course.seats_taken == course.enrolled, course
        assert server.get(f"/courses/{course.id}").body["enrolled_count"] == course.enrolled


@contextmanager
def statements_sent(app, keep=lambda _statement: True) -> Iterator[list[tuple[str, object]]]:
    """The SQL statements the app sends while the block runs (those ``keep`` accepts).

    The list fills as they are sent: (statement, parameters) pairs.

    Statements that go through SQLAlchemy are seen by its ``before_cursor_execute``
    event; the hottest reads on PostgreSQL run on the driver's cursor instead
    (``app.database.fetch_records``), so on PostgreSQL every statement is taken
    from the cursors of the connections the pool hands out, whichever path
    runs it.
    """
    sent: list[tuple[str, object]] = []
    with app.app_context():
        engine = db.engine
    if engine.dialect.name != "postgresql":

        def record(_conn, _cursor, statement, parameters, *_args):
            if keep(statement):
                sent.append((statement, parameters))

        event.listen(engine, "before_cursor_execute", record)
        try:
            yield sent
        finally:
            event.remove(engine, "before_cursor_execute", record)
        return

    class RecordingCursor(psycopg.Cursor):
        def execute(self, query, params=None, **kwargs):
            if keep(str(query)):
                sent.append((str(query), params))
            return super().execute(query, params, **kwargs)

        def executemany(self, query, params_seq, **kwargs):
            params_seq = list(params_seq)
            if keep(str(query)):
                sent.append((str(query), params_seq))
            return super().executemany(query, params_seq, **kwargs)

    def recording(dbapi_connection, _record, _proxy):
        dbapi_connection.cursor_factory = RecordingCursor

    def not_recording(dbapi_connection, _record):
        if dbapi_connection is not None:
            dbapi_connection.cursor_factory = psycopg.Cursor

    event.listen(engine, "checkout", recording)
    event.listen(engine, "checkin", not_recording)
    try:
        yield sent
    finally:
        event.remove(engine, "checkout", recording)
        event.remove(engine, "checkin", not_recording)


TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def is_counted(statement: str) -> bool:
    """Every statement but the transaction control ones counts against a budget."""
    return not statement.lstrip().upper().startswith(TRANSACTION_CONTROL)


class StatementTexts(Sequence):
    """The texts of the (statement, parameters) pairs of a live list."""

    def __init__(self, pairs: list):
        self._pairs = pairs

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [statement for statement, _ in self._pairs[index]]
        return self._pairs[index][0]

    def __len__(self) -> int:
        return len(self._pairs)

    def __eq__(self, other) -> bool:
        return list(self) == list(other)


@contextmanager
def counted_statements(app) -> Iterator[StatementTexts]:
    """The statements counted against a budget while the block runs, filled as they are sent."""
    with statements_sent(app, keep=is_counted) as sent:
        yield StatementTexts(sent)


def is_select(statement: str) -> bool:
    """Whether a statement is a query (plans are explained for these)."""
    return statement.lstrip().upper().startswith("SELECT")


def explained_plans(app, client, url: str, *switched_off: str) -> list[str]:
    """Run ``url`` and return PostgreSQL's plan for every SELECT it sent.

    Sequential scans (and the plan types named in ``switched_off``, such as
    ``indexscan``) are disabled for the EXPLAIN, so the plan names an index
    whenever one can serve the lookup (tiny test tables would otherwise be scanned).
    """
    with app.app_context():
        engine = db.engine
    with statements_sent(app, keep=is_select) as sent:
        assert client.get(url).status_code == 200
    plans = []
    with engine.connect() as connection:
        for plan_type in ("seqscan", *switched_off):
            connection.exec_driver_sql(f"SET enable_{plan_type} = off")
        for statement, parameters in sent:
            rows = connection.exec_driver_sql("EXPLAIN " + statement, parameters)
            plans.append("\n".join(row[0] for row in rows))
    return plans
