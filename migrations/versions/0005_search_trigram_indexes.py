"""Trigram indexes for the q= substring search (PostgreSQL only).

``GET /students?q=`` and ``GET /courses?q=`` match
``column ILIKE '%' || q || '%'`` on PostgreSQL, which no B-tree index can
serve: every search read the whole table. pg_trgm's GIN indexes (operator
class ``gin_trgm_ops``, which serves ILIKE) let PostgreSQL answer these
searches from the index; queries of fewer than three characters still
read every row of the index, and are rate-limited like every search.
Creating the extension needs a role allowed to (the database owner, since
PostgreSQL 13, as pg_trgm is a trusted extension).

On SQLite this migration does nothing: SQLite has no trigram index, and the
searches stay table scans there (rate-limited, README "Rate limits").

No data changes; downgrading drops the indexes (the extension stays, as
other objects may use it).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# index name -> (table, column)
TRIGRAM_INDEXES = {
    "ix_students_name_trgm": ("students", "name"),
    "ix_students_email_trgm": ("students", "email"),
    "ix_courses_code_trgm": ("courses", "code"),
    "ix_courses_title_trgm": ("courses", "title"),
}


def upgrade():
    """Create pg_trgm and a GIN trigram index per searched column (PostgreSQL)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, (table, column) in TRIGRAM_INDEXES.items():
        op.create_index(
            name,
            table,
            [column],
            postgresql_using="gin",
            postgresql_ops={column: "gin_trgm_ops"},
        )


def downgrade():
    """Drop the trigram indexes (PostgreSQL)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, (table, _column) in TRIGRAM_INDEXES.items():
        op.drop_index(name, table_name=table)
