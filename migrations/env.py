"""Alembic environment for Flask-Migrate (``flask db ...``) and the migration tests.

The connection comes from ``config.attributes["connection"]`` when a caller
(pytest-alembic) provides one, otherwise from the Flask app's engine.
"""

import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app, has_app_context
from sqlalchemy.engine import Connection

from app import models  # noqa: F401  (registers the tables on the metadata)
from app.extensions import db

config = context.config
if config.config_file_name is not None and not config.attributes.get("connection"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")
target_metadata = db.metadata


def skip_empty_autogenerate(context_, revision, directives):
    """Write no revision file when autogenerate finds nothing to change."""
    if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
        directives[:] = []
        logger.info("No changes in schema detected.")


def include_object(object_, name, type_, reflected, _compare_to) -> bool:
    """Leave the PostgreSQL-only trigram indexes (migration 0005) out of autogenerate.

    They are GIN expression indexes with an operator class, written by hand in
    0005: autogenerate cannot compare them, and would otherwise drop them.
    """
    return not (type_ == "index" and reflected and name and name.endswith("_trgm"))


def run_migrations(connection) -> None:
    """Run the migrations on one connection."""
    options = {"render_as_batch": True, "compare_type": True, "include_object": include_object}
    if has_app_context():
        options.update(current_app.extensions["migrate"].configure_args)
    options.setdefault("process_revision_directives", skip_empty_autogenerate)
    context.configure(connection=connection, target_metadata=target_metadata, **options)
    with context.begin_transaction():
        context.run_migrations()
        if connection.dialect.name == "sqlite":
            dangling = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if dangling:
                raise RuntimeError(f"migration left dangling foreign keys: {dangling[:5]}")


def run_migrations_online() -> None:
    """Migrate through the caller's connection, or a new one from the app's engine.

    On SQLite, a connection of our own runs with foreign keys off: batch mode
    rebuilds a table by copying and dropping it, and a DROP with foreign keys
    on would cascade-delete the rows that point at it. The foreign key check
    afterwards refuses to finish with dangling references, and the connection
    is discarded rather than handed back to the pool with foreign keys off.
    """
    given = config.attributes.get("connection")
    if isinstance(given, Connection):
        run_migrations(given)
        return
    engine = given if given is not None else current_app.extensions["migrate"].db.engine
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys = OFF")
        try:
            run_migrations(connection)
            if connection.in_transaction():
                connection.commit()
        finally:
            if sqlite:
                connection.invalidate()


if context.is_offline_mode():
    raise SystemExit("Offline (--sql) migrations are not supported; run against a database.")
run_migrations_online()
