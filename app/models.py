"""Database models: students, courses, the ``student_courses`` association and its history."""

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    TypeDecorator,
    and_,
    case,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, aliased, column_property, mapped_column, relationship
from sqlalchemy.sql.functions import GenericFunction

from app.extensions import db

NAME_MAX = 200
EMAIL_MAX = 254
CODE_MAX = 32
TITLE_MAX = 200
DESCRIPTION_MAX = 2000
EXTERNAL_ID_MAX = 64
INT32_MAX = 2**31 - 1
STATUS_MAX = 16
ACTOR_MAX = 255
REASON_MAX = 32
IDEMPOTENCY_KEY_MAX = 255
SHA256_HEX = 64


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


class greatest(GenericFunction):
    """The largest of its arguments: ``greatest`` on PostgreSQL, ``max`` on SQLite."""

    type = Integer()
    inherit_cache = True


@compiles(greatest, "sqlite")
def _greatest_on_sqlite(element, compiler, **kwargs):
    """SQLite spells ``greatest`` as the scalar ``max`` of several arguments."""
    return f"max({compiler.process(element.clauses, **kwargs)})"


# SQLite's CURRENT_TIMESTAMP has whole seconds; this has SQLAlchemy's stored
# format (six decimals, millisecond resolution), as every other timestamp.
SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f000', 'now')"


class current_timestamp_us(GenericFunction):
    """The server's current UTC time with fractional seconds, on every backend."""

    type = DateTime(timezone=True)
    inherit_cache = True


@compiles(current_timestamp_us)
def _current_timestamp(element, compiler, **kwargs):
    """PostgreSQL's CURRENT_TIMESTAMP already has microseconds."""
    return "CURRENT_TIMESTAMP"


@compiles(current_timestamp_us, "sqlite")
def _current_timestamp_on_sqlite(element, compiler, **kwargs):
    """SQLite needs strftime for fractional seconds (parenthesized: a DEFAULT expression)."""
    return f"({SQLITE_NOW})"


# SQLite reuses the largest id after a delete unless a table says AUTOINCREMENT:
# a stale link could then show another student. PostgreSQL sequences never reuse ids.
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


def utcnow() -> datetime:
    """Current time in UTC (a callable default, evaluated per row)."""
    return datetime.now(UTC)


class Status(StrEnum):
    """Where a student stands in a course."""

    ENROLLED = "enrolled"
    WAITLISTED = "waitlisted"
    DROPPED = "dropped"


class Reason(StrEnum):
    """Why an enrollment changed status, as its history records it."""

    REQUESTED = "requested"
    PROMOTED = "promoted"
    CAPACITY_RAISED = "capacity_raised"
    OVERRIDE = "override"
    MIGRATED = "migrated"
    STUDENT_DELETED = "student_deleted"
    COURSE_DELETED = "course_deleted"


STATUSES = ", ".join(f"'{status}'" for status in Status)


class Enrollment(db.Model):
    """One student in one course, in one status: a row of ``student_courses``.

    Each ``*_at`` column holds the latest time the enrollment entered that
    status, and stays null until it first does.
    """

    __tablename__ = "student_courses"
    __table_args__ = (
        # The primary key serves "courses of student X"; this serves "students in
        # course X" by status, the enrolled and waiting counts, and the waitlist in
        # promotion order (earliest waitlisted_at, then lowest student id).
        Index(
            "ix_student_courses_course_id_status",
            "course_id",
            "status",
            "waitlisted_at",
            "student_id",
        ),
        CheckConstraint(f"status IN ({STATUSES})", name="status"),
        CheckConstraint(
            "(status <> 'enrolled' OR enrolled_at IS NOT NULL) AND "
            "(status <> 'waitlisted' OR waitlisted_at IS NOT NULL) AND "
            "(status <> 'dropped' OR dropped_at IS NOT NULL)",
            name="status_time",
        ),
    )

    student_id: Mapped[int] = mapped_column(
        ForeignKey("students.id", ondelete="CASCADE"), primary_key=True
    )
    course_id: Mapped[int] = mapped_column(
        ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True
    )
    # A row inserted with only its ids is an enrollment made now, as before statuses.
    status: Mapped[str] = mapped_column(
        String(STATUS_MAX), server_default=text(f"'{Status.ENROLLED}'")
    )
    enrolled_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime(), server_default=current_timestamp_us()
    )
    waitlisted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    dropped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    student: Mapped["Student"] = relationship(back_populates="enrollments")
    course: Mapped["Course"] = relationship(back_populates="enrollments")


# Promotion order, which is also the waitlist's order: positions are not stored.
WAITLIST_ORDER = (Enrollment.waitlisted_at, Enrollment.student_id)


def waitlist_position(entry=Enrollment):
    """The place of the waitlisted enrollment ``entry`` in its course's waitlist (1: next).

    A correlated count of the waitlisted enrollments of the course up to and
    including ``entry`` in promotion order; null when ``entry`` is not waitlisted.
    """
    ahead = aliased(Enrollment)
    count = (
        select(func.count())
        .where(
            ahead.course_id == entry.course_id,
            ahead.status == Status.WAITLISTED,
            or_(
                ahead.waitlisted_at < entry.waitlisted_at,
                and_(
                    ahead.waitlisted_at == entry.waitlisted_at,
                    ahead.student_id <= entry.student_id,
                ),
            ),
        )
        .scalar_subquery()
    )
    return case((entry.status == Status.WAITLISTED, count), else_=None)


class EnrollmentHistory(db.Model):
    """One change of status of one enrollment; rows are only ever added.

    No foreign keys: the history of a deleted student or course stays, with its ids.
    """

    __tablename__ = "enrollment_history"
    __table_args__ = (
        Index("ix_enrollment_history_student_id_course_id", "student_id", "course_id", "id"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    student_id: Mapped[int] = mapped_column(Integer)
    course_id: Mapped[int] = mapped_column(Integer)
    from_status: Mapped[str | None] = mapped_column(String(STATUS_MAX))
    to_status: Mapped[str] = mapped_column(String(STATUS_MAX))
    # The caller's name, or "system" for what the service does by itself.
    actor: Mapped[str] = mapped_column(String(ACTOR_MAX))
    reason: Mapped[str] = mapped_column(String(REASON_MAX))


class Student(db.Model):
    """A person who can enroll in courses."""

    __tablename__ = "students"
    # The roster's order (name, then id), and the students list sorted by name.
    __table_args__ = (Index("ix_students_name_id", "name", "id"), NEVER_REUSE_IDS)

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


def _count(status: Status, course_id):
    """A correlated count of the course's enrollments in ``status``."""
    return (
        select(func.count())
        .where(Enrollment.course_id == course_id, Enrollment.status == status)
        .correlate_except(Enrollment)
        .scalar_subquery()
    )


class Course(db.Model):
    """A course with an optional seat limit, waitlist, enrollment window and drop deadline."""

    __tablename__ = "courses"
    __table_args__ = (
        CheckConstraint("waitlist_capacity >= 0", name="waitlist_capacity"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Stored upper-cased, so the unique constraint is case-insensitive.
    code: Mapped[str] = mapped_column(String(CODE_MAX), unique=True)
    title: Mapped[str] = mapped_column(String(TITLE_MAX))
    description: Mapped[str | None] = mapped_column(String(DESCRIPTION_MAX))
    capacity: Mapped[int | None] = mapped_column(Integer)
    # 0: no waitlist; null: a waitlist without limit.
    waitlist_capacity: Mapped[int | None] = mapped_column(Integer, server_default=text("0"))
    enrollment_opens_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    enrollment_closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    drop_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Its enrolled students, kept equal to the count of its enrolled rows by every
    # write (app/services/enrollment.py): a free seat is taken with one conditional
    # UPDATE of this column, the only moment the course's row is locked.
    seats_taken: Mapped[int] = mapped_column(Integer, server_default=text("0"))

    enrollments: Mapped[list[Enrollment]] = relationship(
        back_populates="course", cascade="all, delete-orphan", passive_deletes=True
    )

    # Counted from the association table, so they can never drift from the real rows.
    enrolled_count: Mapped[int] = column_property(_count(Status.ENROLLED, id), deferred=True)
    waitlist_count: Mapped[int] = column_property(_count(Status.WAITLISTED, id), deferred=True)
    # Never negative: an override may enroll past capacity.
    seats_left: Mapped[int | None] = column_property(
        case(
            (capacity.is_(None), None),
            else_=greatest(0, capacity - _count(Status.ENROLLED, id)),
        ),
        deferred=True,
    )


class IdempotencyKey(db.Model):
    """A POST sent with an ``Idempotency-Key``: claimed while it runs, then its answer.

    One row per caller and key (``caller`` is a hash of the caller's issuer and
    name). ``status`` is null while the first request runs; then the answer's
    status, headers and body are kept for its retries (``app.idempotency``).
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)

    caller: Mapped[str] = mapped_column(String(SHA256_HEX), primary_key=True)
    key: Mapped[str] = mapped_column(String(IDEMPOTENCY_KEY_MAX), primary_key=True)
    # A hash of the method, the path and the body: a retry must send the same request.
    fingerprint: Mapped[str] = mapped_column(String(SHA256_HEX))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[int | None] = mapped_column(Integer)
    headers: Mapped[list | None] = mapped_column(JSON)
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
