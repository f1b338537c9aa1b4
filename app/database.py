"""Engine set-up and the transaction helpers of the request pipeline and the service layer."""

import logging
import select
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from enum import Enum

from flask import Flask, current_app, has_request_context, request
from sqlalchemy import Select, event
from sqlalchemy.engine import Connection, Engine, Result
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
)

from app.extensions import db, migrate
from app.routing import READ_METHODS, WRITE_METHODS

logger = logging.getLogger(__name__)

SQLITE_WRITE_OPTION = "sqlite_begin_immediate"


def configure_sqlite(engine: Engine, busy_timeout_seconds: float) -> None:
    """WAL, foreign keys, a busy timeout and explicit BEGINs on a SQLite engine.

    pysqlite's own transaction handling is switched off so that SQLAlchemy's
    ``begin`` event decides how a transaction starts: write requests take the
    write lock up front with ``BEGIN IMMEDIATE`` (waiting up to the busy
    timeout) instead of failing with "database is locked" half-way through.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_seconds * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        immediate = connection.get_execution_options().get(SQLITE_WRITE_OPTION)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def configure_postgresql(engine: Engine, statement_timeout_ms: int, connect_timeout_s: int) -> None:
    """Bound every statement and every connection attempt on a PostgreSQL engine.

    A statement running past the timeout is cancelled by the server (psycopg's
    ``QueryCanceled``, an ``OperationalError``) and the request ends as a 503,
    long before gunicorn would kill the worker; an unreachable server fails the
    connection attempt instead of hanging the worker. Sessions use UTC, so the
    reads on the driver's cursor (:func:`fetch_records`), which skip the
    ``UTCDateTime`` conversion, hand back UTC timestamps whatever the server's zone.
    """

    @event.listens_for(engine, "do_connect")
    def _on_do_connect(_dialect, _record, _cargs, cparams):
        settings = f"-c statement_timeout={statement_timeout_ms} -c TimeZone=UTC"
        cparams["options"] = (
            f"{cparams['options']} {settings}" if "options" in cparams else settings
        )
        cparams.setdefault("connect_timeout", connect_timeout_s)


def still_open(dbapi_connection) -> bool:
    """Whether an idle PostgreSQL connection is still open, without a round trip.

    An idle connection in the pool has read every answer to what it sent, so
    the server has nothing more to say on it unless it is going away: a restart
    or ``pg_terminate_backend`` sends a FATAL message and closes the socket,
    PgBouncer closes it when it stops. Either makes the socket readable, which a
    zero-timeout ``poll`` sees at no cost to the server.
    """
    if dbapi_connection.closed or dbapi_connection.broken:
        return False
    try:
        socket = dbapi_connection.pgconn.socket
    except dbapi_connection.OperationalError:  # libpq has already closed it
        return False
    poller = select.poll()
    poller.register(socket, select.POLLIN)
    return not poller.poll(0)


def check_liveness_on_checkout(engine: Engine) -> None:
    """Replace each pooled connection the server has closed before it is used.

    Instead of the pool's pre-ping (one round trip on every checkout), a
    connection found closed by :func:`still_open` raises
    ``DisconnectionError``, on which the pool discards it and connects anew.
    """

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection, _record, _proxy):
        if not still_open(dbapi_connection):
            raise DisconnectionError("the server closed this pooled connection")


# --- behind a transaction pooler (DATABASE_POOLER=pgbouncer) -------------------------
#
# PgBouncer in transaction mode gives each transaction whichever server connection
# is free, so nothing may live on a connection past its transaction: no prepared
# statement (psycopg 3 prepares a statement on the server after a few runs of it),
# no session setting (PgBouncer 1.18 refuses the ``options`` start-up parameter,
# and a session SET would leak to other clients), no session advisory lock (the
# service takes none). The statement timeout is then set per transaction.


def configure_pgbouncer(engine: Engine, statement_timeout_ms: int, connect_timeout_s: int) -> None:
    """Keep a PostgreSQL engine safe behind PgBouncer in transaction mode.

    No server-side prepared statements, no start-up options, and each
    transaction begins with ``SET LOCAL statement_timeout``, which ends with it.
    Reads then run in a transaction too (see :func:`reads_in_autocommit`).
    """

    @event.listens_for(engine, "do_connect")
    def _on_do_connect(_dialect, _record, _cargs, cparams):
        cparams["prepare_threshold"] = None
        cparams.setdefault("connect_timeout", connect_timeout_s)

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            connection.exec_driver_sql(f"SET LOCAL statement_timeout = {int(statement_timeout_ms)}")


def behind_pgbouncer(app: Flask) -> bool:
    """Whether the app reaches PostgreSQL through PgBouncer (``DATABASE_POOLER``)."""
    return app.config.get("DATABASE_POOLER") == "pgbouncer"


def dispose_pool(app: Flask) -> None:
    """Forget pooled connections inherited from a parent process (call after a fork)."""
    with app.app_context():
        for engine in db.engines.values():
            engine.dispose(close=False)


def begin_write_transaction() -> None:
    """Open the request's transaction as a write transaction (SQLite only)."""
    if request.method in WRITE_METHODS and db.engine.dialect.name == "sqlite":
        db.session.connection(execution_options={SQLITE_WRITE_OPTION: True})


def reads_in_autocommit() -> bool:
    """Whether this request's reads run in autocommit: a read request, on PostgreSQL directly.

    Under READ COMMITTED every statement takes its own snapshot even inside a
    transaction, so a read in autocommit sees exactly what it would see there,
    without the ``BEGIN`` and ``ROLLBACK`` round trips. Writes keep their
    transaction (their reads must see their own changes); behind PgBouncer a
    read keeps its transaction too, since the statement timeout is set in it.
    """
    return (
        has_request_context()
        and request.method in READ_METHODS
        and db.engine.dialect.name == "postgresql"
        and not behind_pgbouncer(current_app)
    )


def read_connection() -> Connection:
    """The request session's connection for a read: in autocommit when it may be.

    The first read of a read request opens it in autocommit (see
    :func:`reads_in_autocommit`); a request that never reads through the session
    (liveness, the OpenAPI document, the reads of :func:`fetch_records`) checks
    none out.
    """
    if reads_in_autocommit() and not db.session().in_transaction():
        return db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    return db.session.connection()


# --- the hottest reads on the driver's cursor -----------------------------------------
#
# The single-resource reads (a student, a student's courses, a course) are a few fixed
# statements run thousands of times a second. Through SQLAlchemy's execution layer each
# run costs more than its round trip to PostgreSQL (docs/PERFORMANCE.md); compiled once
# to the driver's SQL, they run on the cursor of a pooled connection in autocommit.


class DriverStatement:
    """A fixed select compiled once for PostgreSQL: its SQL, fixed parameters and labels."""

    def __init__(self, statement: Select, engine: Engine):
        compiled = statement.compile(dialect=engine.dialect)
        self.required = frozenset(name for name, bind in compiled.binds.items() if bind.required)
        expanded = compiled.construct_expanded_state(dict.fromkeys(self.required))
        self.sql = expanded.statement
        # The fixed values as the driver takes them (a StrEnum member as its string).
        self.fixed = {
            name: value.value if isinstance(value, Enum) else value
            for name, value in expanded.parameters.items()
            if name not in self.required
        }
        self.labels = tuple(statement.selected_columns.keys())

    def parameters(self, given: Mapping) -> dict:
        """The fixed parameters and the given ones (exactly the required names)."""
        if given.keys() != self.required:
            raise TypeError(f"expected the parameters {sorted(self.required)}, got {sorted(given)}")
        return {**self.fixed, **given}


_driver_statements: dict[tuple[str, Select], DriverStatement] = {}


def fetch_records(statement: Select, parameters: Mapping) -> list[dict]:
    """The rows of a fixed, column-only select as dicts keyed by label.

    In a read request on PostgreSQL (reached directly) the statement runs on
    the driver's cursor of a pooled connection in autocommit (see above);
    otherwise on the request session's connection, so writes read their own
    changes. The rows and errors are the same either way: a driver error is
    raised as SQLAlchemy's (a lost connection is invalidated, so the error
    handlers answer 503 as for any other read).
    """
    if not reads_in_autocommit():
        return records(read_connection().execute(statement, parameters))
    engine = db.engine
    key = (engine.dialect.name, statement)
    compiled = _driver_statements.get(key)
    if compiled is None:
        compiled = _driver_statements[key] = DriverStatement(statement, engine)
    values = compiled.parameters(parameters)
    pooled = None
    try:
        pooled = engine.raw_connection()
        driver = pooled.driver_connection
        driver.autocommit = True
        try:
            with driver.cursor() as cursor:
                cursor.execute(compiled.sql, values)
                rows = cursor.fetchall()
        finally:
            if not driver.closed:
                driver.autocommit = False
    except engine.dialect.loaded_dbapi.Error as error:
        # As SQLAlchemy raises it: wrapped, a lost connection invalidated (not pooled again).
        lost = pooled is None or engine.dialect.is_disconnect(error, pooled.dbapi_connection, None)
        if lost and pooled is not None:
            pooled.invalidate(error)
        raise DBAPIError.instance(
            compiled.sql,
            values,
            error,
            engine.dialect.loaded_dbapi.Error,
            connection_invalidated=lost,
            dialect=engine.dialect,
        ) from error
    finally:
        if pooled is not None:
            pooled.close()
    return labelled(compiled.labels, rows)


def records(result: Result) -> list[dict]:
    """The rows of ``result`` as dicts keyed by column label.

    Plain dicts, because serializers read them about a third faster than
    SQLAlchemy's row mappings.
    """
    # Fetched at once: iterating a result fetches its rows from the cursor one by one.
    return labelled(tuple(result.keys()), result.all())


def labelled(labels: tuple[str, ...], rows) -> list[dict]:
    """Each row as a dict of its values keyed by ``labels``, in order."""
    return [dict(zip(labels, row, strict=True)) for row in rows]


def release_session(_error: BaseException | None = None) -> None:
    """End the request's session; a connection the server already dropped is discarded.

    Flask-SQLAlchemy's own teardown rolls back whatever is still open. When the
    database has just gone away (a restart or fast shutdown terminates every
    session), that ROLLBACK fails, and an exception raised in a teardown escapes
    Flask's error handlers: the client would get gunicorn's HTML 500 instead of
    the answer the view already produced. The server has aborted the
    transaction anyway, so the connection is invalidated instead. A
    ``teardown_request`` hook: Flask runs those before any
    ``teardown_appcontext`` hook, so this comes before Flask-SQLAlchemy's.
    A request that never used the database (``/livez``) has no session to end.
    """
    if not db.session.registry.has():
        return
    try:
        db.session.close()
    except (OperationalError, InterfaceError) as error:
        logger.warning("database connection lost after the response: %s", type(error.orig).__name__)
        db.session().invalidate()


def register_database(app: Flask) -> None:
    """Bind the database and migrations to the app, with the engine's per-backend settings.

    On PostgreSQL pooled connections are checked on checkout without a round
    trip (:func:`check_liveness_on_checkout`) instead of by the pool's pre-ping.
    """
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        options = app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {})
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {**options, "pool_pre_ping": False}
    db.init_app(app)
    migrate.init_app(app, db, render_as_batch=True, compare_type=True)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            configure_sqlite(db.engine, current_app.config["SQLITE_BUSY_TIMEOUT_SECONDS"])
        if db.engine.dialect.name == "postgresql":
            check_liveness_on_checkout(db.engine)
        if behind_pgbouncer(app):
            configure_pgbouncer(
                db.engine,
                current_app.config["DB_STATEMENT_TIMEOUT_MS"],
                current_app.config["DB_CONNECT_TIMEOUT_SECONDS"],
            )
        elif db.engine.dialect.name == "postgresql":
            configure_postgresql(
                db.engine,
                current_app.config["DB_STATEMENT_TIMEOUT_MS"],
                current_app.config["DB_CONNECT_TIMEOUT_SECONDS"],
            )


@contextmanager
def unique_or_raise(error: Exception | Callable[[str], Exception]) -> Iterator[None]:
    """Run a write; a unique-constraint violation in it rolls back and raises ``error``.

    A callable ``error`` is given the violated constraint (PostgreSQL's name,
    e.g. ``uq_students_email``, or SQLite's ``students.email``) and returns the error.
    """
    try:
        yield
    except IntegrityError as violation:
        db.session.rollback()
        if callable(error):
            error = error(violated_constraint(violation))
        raise error from violation


def violated_constraint(violation: IntegrityError) -> str:
    """The constraint an IntegrityError names, as the backend names it ("" if unknown)."""
    diag = getattr(violation.orig, "diag", None)
    if diag is not None:
        return diag.constraint_name or ""
    # SQLite: "UNIQUE constraint failed: students.email"
    return str(violation.orig).rpartition(": ")[2]
