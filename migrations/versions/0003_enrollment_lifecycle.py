"""Enrollment lifecycle: statuses, their history, waitlists, windows and drop deadlines.

Upgrade keeps every row. Each existing enrollment becomes ``enrolled`` with
its ``enrolled_at`` unchanged, and gets one history row (``from_status`` null,
``to_status`` enrolled, ``actor`` system, ``reason`` migrated, ``at`` its
``enrolled_at``). Existing courses get ``waitlist_capacity`` 0 (no waitlist),
no enrollment window and no drop deadline, so they behave as before.

Downgrading keeps students, courses and every ``enrolled`` enrollment, but
DISCARDS WAITLISTS, DROPS AND HISTORY: waitlisted and dropped rows are deleted,
the history table is dropped, and the courses lose their waitlist capacity,
enrollment window and drop deadline. Back up first (see the README's
"Migrations" section).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

STATUS_CHECK = "status IN ('enrolled', 'waitlisted', 'dropped')"
STATUS_TIME_CHECK = (
    "(status <> 'enrolled' OR enrolled_at IS NOT NULL) AND "
    "(status <> 'waitlisted' OR waitlisted_at IS NOT NULL) AND "
    "(status <> 'dropped' OR dropped_at IS NOT NULL)"
)


def upgrade():
    """Add the lifecycle columns and the history table; every enrollment becomes enrolled."""
    with op.batch_alter_table("courses") as batch:
        batch.add_column(
            sa.Column("waitlist_capacity", sa.Integer(), server_default=sa.text("0"), nullable=True)
        )
        batch.add_column(sa.Column("enrollment_opens_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("enrollment_closes_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("drop_deadline", sa.DateTime(timezone=True)))
        batch.create_check_constraint(
            op.f("ck_courses_waitlist_capacity"), "waitlist_capacity >= 0"
        )

    with op.batch_alter_table("student_courses") as batch:
        batch.add_column(
            sa.Column(
                "status",
                sa.String(length=16),
                server_default=sa.text("'enrolled'"),
                nullable=False,
            )
        )
        batch.add_column(sa.Column("waitlisted_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("dropped_at", sa.DateTime(timezone=True)))
        # Null until the enrollment first becomes enrolled (a waitlisted student).
        batch.alter_column(
            "enrolled_at",
            existing_type=sa.DateTime(timezone=True),
            existing_server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=True,
        )
        batch.create_check_constraint(op.f("ck_student_courses_status"), STATUS_CHECK)
        batch.create_check_constraint(op.f("ck_student_courses_status_time"), STATUS_TIME_CHECK)
        # The new index leads with course_id too, so it also serves what the old one did.
        batch.drop_index("ix_student_courses_course_id_student_id")
        batch.create_index(
            "ix_student_courses_course_id_status",
            ["course_id", "status", "waitlisted_at", "student_id"],
        )

    op.create_table(
        "enrollment_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("student_id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollment_history")),
    )
    op.create_index(
        "ix_enrollment_history_student_id_course_id",
        "enrollment_history",
        ["student_id", "course_id", "id"],
    )
    # In (student, course) order, so the history ids follow the primary key.
    op.execute(
        "INSERT INTO enrollment_history "
        "(at, student_id, course_id, from_status, to_status, actor, reason) "
        "SELECT enrolled_at, student_id, course_id, NULL, 'enrolled', 'system', 'migrated' "
        "FROM student_courses ORDER BY student_id, course_id"
    )


def downgrade():
    """Back to enrollments without statuses: waitlists, drops and history are discarded."""
    op.execute("DELETE FROM student_courses WHERE status <> 'enrolled'")
    op.drop_index("ix_enrollment_history_student_id_course_id", table_name="enrollment_history")
    op.drop_table("enrollment_history")

    with op.batch_alter_table("student_courses") as batch:
        batch.drop_index("ix_student_courses_course_id_status")
        batch.create_index("ix_student_courses_course_id_student_id", ["course_id", "student_id"])
        batch.drop_constraint(op.f("ck_student_courses_status_time"), type_="check")
        batch.drop_constraint(op.f("ck_student_courses_status"), type_="check")
        batch.alter_column(
            "enrolled_at",
            existing_type=sa.DateTime(timezone=True),
            existing_server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        )
        batch.drop_column("dropped_at")
        batch.drop_column("waitlisted_at")
        batch.drop_column("status")

    with op.batch_alter_table("courses") as batch:
        batch.drop_constraint(op.f("ck_courses_waitlist_capacity"), type_="check")
        batch.drop_column("drop_deadline")
        batch.drop_column("enrollment_closes_at")
        batch.drop_column("enrollment_opens_at")
        batch.drop_column("waitlist_capacity")
