"""Engine set-up and the transaction helpers of the request pipeline and the service layer."""

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flask import Flask, current_app, request
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

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
    connection attempt instead of hanging the worker.
    """

    @event.listens_for(engine, "do_connect")
    def _on_do_connect(_dialect, _record, _cargs, cparams):
        timeout = f"-c statement_timeout={statement_timeout_ms}"
        cparams["options"] = f"{cparams['options']} {timeout}" if "options" in cparams else timeout
        cparams.setdefault("connect_timeout", connect_timeout_s)


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
    Reads then run in a transaction too (see :func:`read_without_transaction`).
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


def read_without_transaction() -> None:
    """Serve a read on PostgreSQL in autocommit: no BEGIN and ROLLBACK round trips.

    Under READ COMMITTED every statement takes its own snapshot even inside a
    transaction, so a read in autocommit sees exactly what it would see there.
    Registered on the resource blueprints, so routes without the database
    (liveness, the OpenAPI document) never check a connection out. Behind
    PgBouncer a read keeps its transaction: the statement timeout is set in it.
    """
    if (
        request.method in READ_METHODS
        and db.engine.dialect.name == "postgresql"
        and not behind_pgbouncer(current_app)
    ):
        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


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
    """Bind the database and migrations to the app, with the engine's per-backend settings."""
    db.init_app(app)
    migrate.init_app(app, db, render_as_batch=True, compare_type=True)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            configure_sqlite(db.engine, current_app.config["SQLITE_BUSY_TIMEOUT_SECONDS"])
        elif behind_pgbouncer(app):
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
