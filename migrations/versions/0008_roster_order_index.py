"""An index on students (name, id): the roster's order, and the students list sorted by name.

A course's roster is ordered by student name then id. Without an index in
that order, every page of a big course read all of the course's enrollments,
joined each to its student and sorted them all, so the last page of a
10,000-student course cost 4.5 times that of a 1,000-student one
(docs/PERFORMANCE.md). With it, PostgreSQL walks the students in roster order
from the page's first row (a keyset cursor seeks straight to it) and keeps
those enrolled in the course, through the enrollments' primary key; the same
index serves ``GET /students?sort=name``.

No data changes; downgrading drops the index.

Revision ID: 0008
Revises: 0005
Create Date: 2026-11-23
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    """Create the index on students (name, id)."""
    op.create_index("ix_students_name_id", "students", ["name", "id"])


def downgrade():
    """Drop the index on students (name, id)."""
    op.drop_index("ix_students_name_id", table_name="students")
