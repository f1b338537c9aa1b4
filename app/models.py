"""Database models: students, courses and the ``student_courses`` association."""

from datetime import UTC, datetime

from sqlalchemy import (
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    TypeDecorator,
    func,
    select,
)
from sqlalchemy.orm import Mapped, column_property, mapped_column, relationship

from app.extensions import db

NAME_MAX = 200
EMAIL_MAX = 254
CODE_MAX = 32
TITLE_MAX = 200
DESCRIPTION_MAX = 2000
EXTERNAL_ID_MAX = 64
INT32_MAX = 2**31 - 1


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC timestamp on every backend.

    SQLite hands back naive values (``CURRENT_TIMESTAMP`` is UTC); PostgreSQL
    hands back aware ones. Both leave here as aware UTC datetimes.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        """Store aware datetimes converted to UTC."""
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value

    def process_result_value(self, value, dialect):
        """Attach UTC to naive values read back."""
        if value is not None:
            value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value


def utcnow() -> datetime:
    """Current time in UTC (a callable default, evaluated per row)."""
    return datetime.now(UTC)


class Enrollment(db.Model):
    """One student enrolled in one course: a row of ``student_courses``."""

    __tablename__ = "student_courses"
    __table_args__ = (
        # The primary key serves "courses of student X"; this serves "students in course X".
        Index("ix_student_courses_course_id_student_id", "course_id", "student_id"),
    )

    student_id: Mapped[int] = mapped_column(
        ForeignKey("students.id", ondelete="CASCADE"), primary_key=True
    )
    course_id: Mapped[int] = mapped_column(
        ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True
    )
    enrolled_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), server_default=func.current_timestamp(), nullable=False
    )

    student: Mapped["Student"] = relationship(back_populates="enrollments")
    course: Mapped["Course"] = relationship(back_populates="enrollments")


class Student(db.Model):
    """A person who can enroll in courses."""

    __tablename__ = "students"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    # Stored lower-cased, so the unique constraint is case-insensitive.
    email: Mapped[str] = mapped_column(String(EMAIL_MAX), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The institution's student number or the identity provider's subject: a
    # student token whose ``sub`` equals it acts as this student.
    external_id: Mapped[str | None] = mapped_column(String(EXTERNAL_ID_MAX), unique=True)

    enrollments: Mapped[list[Enrollment]] = relationship(
        back_populates="student", cascade="all, delete-orphan", passive_deletes=True
    )


class Course(db.Model):
    """A course with an optional seat limit."""

    __tablename__ = "courses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Stored upper-cased, so the unique constraint is case-insensitive.
    code: Mapped[str] = mapped_column(String(CODE_MAX), unique=True)
    title: Mapped[str] = mapped_column(String(TITLE_MAX))
    description: Mapped[str | None] = mapped_column(String(DESCRIPTION_MAX))
    capacity: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    enrollments: Mapped[list[Enrollment]] = relationship(
        back_populates="course", cascade="all, delete-orphan", passive_deletes=True
    )

    # Counted from the association table, so it can never drift from the real rows.
    enrolled_count: Mapped[int] = column_property(
        select(func.count())
        .where(Enrollment.course_id == id)
        .correlate_except(Enrollment)
        .scalar_subquery(),
        deferred=True,
    )
