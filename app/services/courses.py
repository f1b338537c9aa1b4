"""Course writes: create, update (capacity never below the enrolled count), delete."""

from collections.abc import Mapping

from sqlalchemy import select

from app.database import unique_or_raise
from app.extensions import db
from app.metrics import ENROLLMENTS_REMOVED
from app.models import Course, Enrollment
from app.services.audit import audit
from app.services.enrollment import lock_courses, seats_taken
from app.services.errors import CapacityBelowEnrolled, CourseNotFound, DuplicateCourseCode


def load_course(course_id: int) -> Course:
    """The course with this id; raises CourseNotFound."""
    course = db.session.get(Course, course_id)
    if course is None:
        raise CourseNotFound(course_id)
    return course


def create_course(fields: Mapping) -> int:
    """Add a course from validated ``fields``; return its id. Raises DuplicateCourseCode."""
    course = Course(**fields)
    with unique_or_raise(DuplicateCourseCode(fields.get("code"))):
        db.session.add(course)
        db.session.flush()
        course_id = course.id
        db.session.commit()
    return course_id


def update_course(course_id: int, changes: Mapping) -> None:
    """Apply validated ``changes`` to a course.

    Raises CourseNotFound, CapacityBelowEnrolled (the course is locked before
    its seats are counted), DuplicateCourseCode.
    """
    course = load_course(course_id)
    capacity = changes.get("capacity")
    if capacity is not None:
        lock_courses([course_id])
        taken = seats_taken([course_id]).get(course_id, 0)
        if capacity < taken:
            raise CapacityBelowEnrolled(course.code, capacity, taken)
    for field, value in changes.items():
        setattr(course, field, value)
    with unique_or_raise(DuplicateCourseCode(changes.get("code"))):
        db.session.commit()


def delete_course(course_id: int) -> None:
    """Delete a course; the database cascades its enrollments away (audited per student)."""
    course = load_course(course_id)
    lock_courses([course_id])
    student_ids = list(
        db.session.scalars(select(Enrollment.student_id).where(Enrollment.course_id == course_id))
    )
    db.session.delete(course)
    db.session.commit()
    for student_id in sorted(student_ids):
        audit("delete_course", student_id, [course_id], "removed")
    ENROLLMENTS_REMOVED.inc(len(student_ids))
