"""Enrollment rules: capacity, idempotency and all-or-nothing, enforced in the database.

Every write here locks the course rows it depends on (``SELECT ... FOR UPDATE``
on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite) before counting seats, so
concurrent requests in any number of workers or instances serialise per
course; the composite primary key of ``student_courses`` is the last guard
against a pair stored twice.
"""

from collections.abc import Iterable

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from app.errors import ConflictError, NotFoundError, UnprocessableError
from app.extensions import db
from app.models import Course, Enrollment, Student
from app.queries import get_student

PAIR_ATTEMPTS = 3


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


def enroll(student_id: int, course_ids: Iterable[int]) -> set[int]:
    """Enroll a student in courses, all or nothing; return the course ids newly enrolled.

    Raises NotFoundError for an unknown student, UnprocessableError naming
    unknown courses, ConflictError naming courses without a free seat. Courses
    the student already has are left as they are.
    """
    wanted = sorted(set(course_ids))
    get_student(student_id)
    courses = _lock_courses(wanted)
    unknown = sorted(set(wanted) - {course.id for course in courses})
    if unknown:
        listed = ", ".join(map(str, unknown))
        raise UnprocessableError(
            f"Unknown course ids: {listed}.",
            errors={"json": {"course_ids": [f"Unknown course ids: {listed}."]}},
        )
    already = set(
        db.session.scalars(
            select(Enrollment.course_id).where(
                Enrollment.student_id == student_id, Enrollment.course_id.in_(wanted)
            )
        )
    )
    new = [course for course in courses if course.id not in already]
    if not new:
        db.session.rollback()
        return set()
    taken = _seats_taken([course.id for course in new if course.capacity is not None])
    full = [c for c in new if c.capacity is not None and taken.get(c.id, 0) >= c.capacity]
    if full:
        names = ", ".join(f"{c.code} (id {c.id}, capacity {c.capacity})" for c in full)
        raise ConflictError(f"No seats left in: {names}. Nothing was enrolled.")
    try:
        db.session.execute(
            insert(Enrollment),
            [{"student_id": student_id, "course_id": course.id} for course in new],
        )
        db.session.commit()
    except IntegrityError as error:
        # The student was deleted between the lookup and the insert.
        db.session.rollback()
        raise NotFoundError(f"Student {student_id} does not exist.") from error
    return {course.id for course in new}


def _enroll_one(student_id: int, course_id: int, *, student_in_body: bool) -> bool:
    """Enroll one student in one course; return whether it was created.

    An unknown student named in the body is a 422, one named in the path a 404;
    an unknown course is always named in the body.
    """
    try:
        created = enroll(student_id, [course_id])
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
    return bool(created)


def enroll_pair(
    student_id: int, course_id: int, *, student_in_body: bool
) -> tuple[Enrollment, bool]:
    """Enroll one student in one course; return the enrollment and whether it was created.

    A concurrent unenroll can remove an existing enrollment between the check
    and the read-back; the request then simply enrolls again.
    """
    for _attempt in range(PAIR_ATTEMPTS):
        created = _enroll_one(student_id, course_id, student_in_body=student_in_body)
        row = db.session.get(Enrollment, (student_id, course_id))
        if row is not None:
            return row, created
    raise ConflictError(f"Enrollment of student {student_id} in course {course_id} kept changing.")


def unenroll(student_id: int, course_id: int) -> None:
    """Remove one enrollment; 404 when the student or the enrollment does not exist."""
    get_student(student_id)
    result = db.session.execute(
        delete(Enrollment).where(
            Enrollment.student_id == student_id, Enrollment.course_id == course_id
        )
    )
    if result.rowcount == 0:
        db.session.rollback()
        raise NotFoundError(f"Student {student_id} is not enrolled in course {course_id}.")
    db.session.commit()


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
    """Delete a student; the database cascades its enrollments away."""
    db.session.delete(student)
    db.session.commit()


def delete_course(course: Course) -> None:
    """Delete a course; the database cascades its enrollments away."""
    db.session.delete(course)
    db.session.commit()
