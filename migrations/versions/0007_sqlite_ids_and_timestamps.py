"""SQLite never reuses ids and stores every timestamp with fractional seconds.

SQLite gives a new row the largest id plus one unless its table says
``AUTOINCREMENT``, so deleting the newest student and adding another gave the
new one the deleted one's id (a stale link then showed someone else).
Upgrading rebuilds ``students``, ``courses`` and ``enrollment_history`` with
``AUTOINCREMENT``, every row and id kept; SQLite then remembers the largest id
each table ever held (from here on: an id deleted before the upgrade can still
come back once). ``student_courses.enrolled_at`` gets a server default with
fractional seconds (``CURRENT_TIMESTAMP`` has whole seconds), and every
timestamp stored with whole seconds is rewritten with six decimals, as
SQLAlchemy writes them (the same instant).

On PostgreSQL this migration does nothing: sequences never hand out an id
twice, and ``CURRENT_TIMESTAMP`` has microseconds.

Downgrading (SQLite) rebuilds the tables without ``AUTOINCREMENT`` and puts
``CURRENT_TIMESTAMP`` back as the default; rows, ids and timestamps stay.

Revision ID: 0007
Revises: 0005
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

AUTOINCREMENT_TABLES = ("students", "courses", "enrollment_history")
TIMESTAMP_COLUMNS = {
    "students": ("created_at",),
    "courses": ("created_at", "enrollment_opens_at", "enrollment_closes_at", "drop_deadline"),
    "student_courses": ("enrolled_at", "waitlisted_at", "dropped_at"),
    "enrollment_history": ("at",),
}
# As app.models.SQLITE_NOW: fractional seconds in SQLAlchemy's six-decimal format.
SQLITE_NOW = "(strftime('%Y-%m-%d %H:%M:%f000', 'now'))"
# "YYYY-MM-DD HH:MM:SS", the format of CURRENT_TIMESTAMP.
WHOLE_SECONDS_LENGTH = 19


def on_sqlite() -> bool:
    """Whether the migration runs on SQLite (it does nothing elsewhere)."""
    return op.get_bind().dialect.name == "sqlite"


def rebuild(table: str, *, autoincrement: bool) -> None:
    """Copy ``table`` into a new one with or without AUTOINCREMENT (ids, rows, indexes kept)."""
    with op.batch_alter_table(
        table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
    ):
        pass


def set_enrolled_at_default(default: str) -> None:
    """Give ``student_courses.enrolled_at`` this server default."""
    with op.batch_alter_table("student_courses") as batch:
        batch.alter_column(
            "enrolled_at",
            existing_type=sa.DateTime(timezone=True),
            existing_nullable=True,
            server_default=sa.text(default),
        )


def upgrade():
    """AUTOINCREMENT ids, and fractional seconds in every timestamp (SQLite)."""
    if not on_sqlite():
        return
    for table in AUTOINCREMENT_TABLES:
        rebuild(table, autoincrement=True)
    set_enrolled_at_default(SQLITE_NOW)
    for table, columns in TIMESTAMP_COLUMNS.items():
        for column in columns:
            op.execute(
                f"UPDATE {table} SET {column} = {column} || '.000000' "  # noqa: S608
                f"WHERE length({column}) = {WHOLE_SECONDS_LENGTH}"
            )


def downgrade():
    """Tables without AUTOINCREMENT, CURRENT_TIMESTAMP as default again; rows stay (SQLite)."""
    if not on_sqlite():
        return
    set_enrolled_at_default("CURRENT_TIMESTAMP")
    for table in reversed(AUTOINCREMENT_TABLES):
        rebuild(table, autoincrement=False)
