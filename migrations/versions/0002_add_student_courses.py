"""Add student_courses, the enrollments of students in courses.

Adds the association table only; existing students and courses are untouched.

Downgrading drops the table and with it EVERY ENROLLMENT: students and courses
stay, but which student was in which course is gone. Back up first (see the
README's "Migrations" section).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    """Create ``student_courses`` with its composite key and roster index."""
    op.create_table(
        "student_courses",
        sa.Column("student_id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column(
            "enrolled_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["courses.id"],
            name=op.f("fk_student_courses_course_id_courses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["student_id"],
            ["students.id"],
            name=op.f("fk_student_courses_student_id_students"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("student_id", "course_id", name=op.f("pk_student_courses")),
    )
    op.create_index(
        "ix_student_courses_course_id_student_id",
        "student_courses",
        ["course_id", "student_id"],
    )


def downgrade():
    """Drop ``student_courses``: every enrollment is discarded."""
    op.drop_index("ix_student_courses_course_id_student_id", table_name="student_courses")
    op.drop_table("student_courses")
