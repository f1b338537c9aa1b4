"""Enrollment rules: capacity, idempotency and all-or-nothing, enforced in the database.

Every write here locks the course rows it depends on (``SELECT ... FOR UPDATE``
on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite) before counting seats, so
concurrent requests in any number of workers or instances serialise per
course; the composite primary key of ``student_courses`` is the last guard
against a pair stored twice.

Every enrollment change, and every refusal, is an audit event
(:mod:`app.services.audit`) and is counted in the Prometheus counters of
:mod:`app.metrics`.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.metrics import ENROLLMENTS_CREATED, ENROLLMENTS_REFUSED_CAPACITY, ENROLLMENTS_REMOVED
from app.models import Course, Enrollment
from app.services.audit import audit
from app.services.errors import (
    CourseNotFound,
    CoursesFull,
    NotEnrolled,
    StudentNotFound,
    UnknownCourses,
)
from app.services.students import load_student


def lock_courses(course_ids: list[int]) -> list:
    """Lock the given courses in id order (a fixed order cannot deadlock)."""
    statement = (
        select(Course.id, Course.code, Course.capacity)
        .where(Course.id.in_(course_ids))
        .order_by(Course.id)
        .with_for_update()
    )
    return list(db.session.execute(statement))


def seats_taken(course_ids: list[int]) -> dict[int, int]:
    """Enrolled students per course, for the given courses."""
    if not course_ids:
        return {}
    statement = (
        select(Enrollment.course_id, func.count())
        .where(Enrollment.course_id.in_(course_ids))
        .group_by(Enrollment.course_id)
    )
    return dict(db.session.execute(statement).all())


@dataclass(frozen=True)
class Enrolled:
    """What an enrollment request left: the new course ids, and when each pair was made."""

    created: set[int]
    enrolled_at: dict[int, datetime]


def enroll(student_id: int, course_ids: Iterable[int]) -> Enrolled:
    """Enroll a student in courses, all or nothing.

    Raises StudentNotFound, UnknownCourses naming the courses that do not
    exist, CoursesFull naming the courses without a free seat. Courses the
    student already has are left as they are. The enrollment times are read
    inside the same locked transaction, so they describe exactly what this
    request found or made.
    """
    wanted = sorted(set(course_ids))
    try:
        load_student(student_id)
    except StudentNotFound:
        audit("enroll", student_id, wanted, "unknown")
        raise
    courses = lock_courses(wanted)
    unknown = sorted(set(wanted) - {course.id for course in courses})
    if unknown:
        audit("enroll", student_id, unknown, "unknown")
        raise UnknownCourses(unknown)
    already = dict(
        db.session.execute(
            select(Enrollment.course_id, Enrollment.enrolled_at).where(
                Enrollment.student_id == student_id, Enrollment.course_id.in_(wanted)
            )
        ).all()
    )
    new = [course for course in courses if course.id not in already]
    if not new:
        db.session.rollback()
        audit("enroll", student_id, wanted, "unchanged")
        return Enrolled(created=set(), enrolled_at=already)
    taken = seats_taken([course.id for course in new if course.capacity is not None])
    full = [c for c in new if c.capacity is not None and taken.get(c.id, 0) >= c.capacity]
    if full:
        audit("enroll", student_id, [c.id for c in full], "refused_capacity")
        ENROLLMENTS_REFUSED_CAPACITY.inc()
        raise CoursesFull([(c.id, c.code, c.capacity) for c in full])
    try:
        inserted = db.session.execute(
            insert(Enrollment).returning(Enrollment.course_id, Enrollment.enrolled_at),
            [{"student_id": student_id, "course_id": course.id} for course in new],
        ).all()
        db.session.commit()
    except IntegrityError as error:
        # The student was deleted between the lookup and the insert.
        db.session.rollback()
        audit("enroll", student_id, wanted, "unknown")
        raise StudentNotFound(student_id) from error
    created = {course.id for course in new}
    audit("enroll", student_id, created, "created")
    ENROLLMENTS_CREATED.inc(len(created))
    return Enrolled(created=created, enrolled_at={**already, **dict(inserted)})


def enroll_one(student_id: int, course_id: int) -> tuple[dict, bool]:
    """Enroll one student in one course; return the enrollment and whether it was created.

    Raises StudentNotFound, CourseNotFound, or CoursesFull.
    """
    try:
        result = enroll(student_id, [course_id])
    except UnknownCourses as error:
        raise CourseNotFound(course_id) from error
    enrollment = {
        "student_id": student_id,
        "course_id": course_id,
        "enrolled_at": result.enrolled_at[course_id],
    }
    return enrollment, bool(result.created)


def unenroll(student_id: int, course_id: int) -> None:
    """Remove one enrollment; raises StudentNotFound or NotEnrolled."""
    try:
        load_student(student_id)
    except StudentNotFound:
        audit("unenroll", student_id, [course_id], "unknown")
        raise
    result = db.session.execute(
        delete(Enrollment).where(
            Enrollment.student_id == student_id, Enrollment.course_id == course_id
        )
    )
    if result.rowcount == 0:
        db.session.rollback()
        audit("unenroll", student_id, [course_id], "unknown")
        raise NotEnrolled(student_id, course_id)
    db.session.commit()
    audit("unenroll", student_id, [course_id], "removed")
    ENROLLMENTS_REMOVED.inc()
