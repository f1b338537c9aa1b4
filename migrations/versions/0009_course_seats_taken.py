"""A maintained count of each course's enrolled students: ``courses.seats_taken``.

Enrolling into a course with a free seat takes the seat with one conditional
``UPDATE courses SET seats_taken = seats_taken + 1 WHERE … seats_taken < capacity``
as the request's last statement, so the course's row lock is held for that
statement and the commit only (``app/services/enrollment.py``). Every path
that changes who is enrolled keeps the column equal to the count of the
course's ``enrolled`` rows.

Upgrading adds the column (0 for a new course) and fills it with that count
for every existing course; downgrading drops it (the count stays derivable
from the rows, so nothing is lost).

Revision ID: 0009
Revises: 0005
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    """Add ``courses.seats_taken`` and fill it from the enrolled rows."""
    with op.batch_alter_table("courses") as batch:
        batch.add_column(
            sa.Column("seats_taken", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
    op.execute(
        "UPDATE courses SET seats_taken = (SELECT count(*) FROM student_courses e "
        "WHERE e.course_id = courses.id AND e.status = 'enrolled')"
    )


def downgrade():
    """Drop ``courses.seats_taken`` (the enrolled rows still hold the count)."""
    with op.batch_alter_table("courses") as batch:
        batch.drop_column("seats_taken")
