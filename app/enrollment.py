"""Enrollment rules: capacity, idempotency and all-or-nothing, enforced in the database.

Every write here locks the course rows it depends on (``SELECT ... FOR UPDATE``
on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite) before counting seats, so
concurrent requests in any number of workers or instances serialise per
course; the composite primary key of ``student_courses`` is the last guard
against a pair stored twice.

Every enrollment change, and every refusal, is logged as an audit event on the
``app.audit`` logger (action, student id, course ids, outcome) and counted in
the Prometheus counters of :mod:`app.metrics`.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from app.audit import audit
from app.errors import ConflictError, NotFoundError, UnprocessableError
from app.extensions import db
from app.metrics import ENROLLMENTS_CREATED, ENROLLMENTS_REFUSED_CAPACITY, ENROLLMENTS_REMOVED
from app.models import Course, Enrollment, Student
from app.queries import get_student


def _audit(action: str, student_id: int, course_ids: Iterable[int], outcome: str) -> None:
    """Log one enrollment audit event (created, unchanged, refused_capacity, unknown, removed)."""
    audit("enrollment", action, outcome, student_id=student_id, course_ids=sorted(course_ids))


def _lock_student(student_id: int) -> None:
    """Lock a student row, so no enrollment of it is added until the transaction ends."""
    db.session.execute(select(Student.id).where(Student.id == student_id).with_for_update())


def _lock_courses(course_ids: list[int]) -> list:
    """Lock the given courses in id order (a fixed order cannot deadlock)."""
    statement = (
        select(Course.id, Course.code, Course.capacity)
        .where(Course.id.in_(course_ids))
        .order_by(Course.id)
        .with_for_update()
    )
    return list(db.session.execute(statement))


def _seats_taken(course_ids: list[int]) -> dict[int, int]:
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

    Raises NotFoundError for an unknown student, UnprocessableError naming
    unknown courses, ConflictError naming courses without a free seat. Courses
    the student already has are left as they are. The enrollment times are
    read inside the same locked transaction, so they describe exactly what
    this request found or made.
    """
    wanted = sorted(set(course_ids))
    try:
        get_student(student_id)
    except NotFoundError:
        _audit("enroll", student_id, wanted, "unknown")
        raise
    courses = _lock_courses(wanted)
    unknown = sorted(set(wanted) - {course.id for course in courses})
    if unknown:
        _audit("enroll", student_id, unknown, "unknown")
        listed = ", ".join(map(str, unknown))
        raise UnprocessableError(
            f"Unknown course ids: {listed}.",
            errors={"json": {"course_ids": [f"Unknown course ids: {listed}."]}},
        )
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
        _audit("enroll", student_id, wanted, "unchanged")
        return Enrolled(created=set(), enrolled_at=already)
    taken = _seats_taken([course.id for course in new if course.capacity is not None])
    full = [c for c in new if c.capacity is not None and taken.get(c.id, 0) >= c.capacity]
    if full:
        names = ", ".join(f"{c.code} (id {c.id}, capacity {c.capacity})" for c in full)
        _audit("enroll", student_id, [c.id for c in full], "refused_capacity")
        ENROLLMENTS_REFUSED_CAPACITY.inc()
        raise ConflictError(f"No seats left in: {names}. Nothing was enrolled.")
    try:
        inserted = db.session.execute(
            insert(Enrollment).returning(Enrollment.course_id, Enrollment.enrolled_at),
            [{"student_id": student_id, "course_id": course.id} for course in new],
        ).all()
        db.session.commit()
    except IntegrityError as error:
        # The student was deleted between the lookup and the insert.
        db.session.rollback()
        _audit("enroll", student_id, wanted, "unknown")
        raise NotFoundError(f"Student {student_id} does not exist.") from error
    created = {course.id for course in new}
    _audit("enroll", student_id, created, "created")
    ENROLLMENTS_CREATED.inc(len(created))
    return Enrolled(created=created, enrolled_at={**already, **dict(inserted)})


def enroll_pair(student_id: int, course_id: int, *, student_in_body: bool) -> tuple[dict, bool]:
    """Enroll one student in one course; return the enrollment and whether it was created.

    An unknown student named in the body is a 422, one named in the path a 404;
    an unknown course is always named in the body.
    """
    try:
        result = enroll(student_id, [course_id])
    except NotFoundError as error:
        if not student_in_body:
            raise
        raise UnprocessableError(
            str(error), errors={"json": {"student_id": [f"Unknown student id: {student_id}."]}}
        ) from error
    except UnprocessableError as error:
        raise UnprocessableError(
            error.detail, errors={"json": {"course_id": [f"Unknown course id: {course_id}."]}}
        ) from error
    enrollment = {
        "student_id": student_id,
        "course_id": course_id,
        "enrolled_at": result.enrolled_at[course_id],
    }
    return enrollment, bool(result.created)


def unenroll(student_id: int, course_id: int) -> None:
    """Remove one enrollment; 404 when the student or the enrollment does not exist."""
    try:
        get_student(student_id)
    except NotFoundError:
        _audit("unenroll", student_id, [course_id], "unknown")
        raise
    result = db.session.execute(
        delete(Enrollment).where(
            Enrollment.student_id == student_id, Enrollment.course_id == course_id
        )
    )
    if result.rowcount == 0:
        db.session.rollback()
        _audit("unenroll", student_id, [course_id], "unknown")
        raise NotFoundError(f"Student {student_id} is not enrolled in course {course_id}.")
    db.session.commit()
    _audit("unenroll", student_id, [course_id], "removed")
    ENROLLMENTS_REMOVED.inc()


def check_capacity_change(course: Course, capacity: int | None) -> None:
    """Refuse a capacity below the seats already taken (locks the course first)."""
    if capacity is None:
        return
    _lock_courses([course.id])
    taken = _seats_taken([course.id]).get(course.id, 0)
    if capacity < taken:
        raise ConflictError(
            f"Capacity {capacity} is below the {taken} students enrolled in {course.code}."
        )


def delete_student(student: Student) -> None:
    """Delete a student; the database cascades its enrollments away (audited)."""
    student_id = student.id
    _lock_student(student_id)
    course_ids = list(
        db.session.scalars(select(Enrollment.course_id).where(Enrollment.student_id == student_id))
    )
    db.session.delete(student)
    db.session.commit()
    if course_ids:
        _audit("delete_student", student_id, course_ids, "removed")
        ENROLLMENTS_REMOVED.inc(len(course_ids))


def delete_course(course: Course) -> None:
    """Delete a course; the database cascades its enrollments away (audited per student)."""
    course_id = course.id
    _lock_courses([course_id])
    student_ids = list(
        db.session.scalars(select(Enrollment.student_id).where(Enrollment.course_id == course_id))
    )
    db.session.delete(course)
    db.session.commit()
    for student_id in sorted(student_ids):
        _audit("delete_course", student_id, [course_id], "removed")
    ENROLLMENTS_REMOVED.inc(len(student_ids))
