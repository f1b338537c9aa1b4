"""Student writes: create, update, delete, each one transaction."""

from collections.abc import Mapping

from sqlalchemy import delete, select

from app.database import unique_or_raise
from app.extensions import db
from app.metrics import ENROLLMENTS_REMOVED
from app.models import Enrollment, Reason, Status, Student, utcnow
from app.services.actors import Actor
from app.services.audit import audit
from app.services.enrollment import (
    ACTIVE,
    Changes,
    counts,
    lock_courses,
    lock_student,
    promote,
    report_promotions,
    store_seats_taken,
)
from app.services.errors import DuplicateStudent, StudentNotFound

# The student fields another student may not share.
UNIQUE_FIELDS = ("email", "external_id")


def load_student(student_id: int) -> Student:
    """The student with this id; raises StudentNotFound."""
    student = db.session.get(Student, student_id)
    if student is None:
        raise StudentNotFound(student_id)
    return student


def duplicate(fields: Mapping) -> DuplicateStudent:
    """The error for ``fields`` clashing with another student's email or external_id."""
    unique = {name: fields[name] for name in UNIQUE_FIELDS if fields.get(name)}
    return DuplicateStudent(unique)


def create_student(fields: Mapping) -> int:
    """Add a student from validated ``fields``; return its id. Raises DuplicateStudent."""
    student = Student(**fields)
    with unique_or_raise(duplicate(fields)):
        db.session.add(student)
        db.session.flush()
        student_id = student.id
        db.session.commit()
    return student_id


def update_student(student_id: int, changes: Mapping) -> None:
    """Apply validated ``changes`` to a student. Raises StudentNotFound, DuplicateStudent."""
    student = load_student(student_id)
    for field, value in changes.items():
        setattr(student, field, value)
    with unique_or_raise(duplicate(changes)):
        db.session.commit()


def delete_student(student_id: int, *, actor: Actor) -> None:
    """Delete a student and their enrollments; their seats go to the waitlists.

    The student is locked first, so no enrollment of them is added meanwhile,
    then every course they are enrolled in or waiting for, in id order; in each
    course where they held a seat, the first waitlisted student is promoted in
    the same transaction. Their history stays, with a ``student_deleted`` row
    for each enrollment that was active. Raises StudentNotFound.
    """
    if not lock_student(student_id, for_delete=True):
        raise StudentNotFound(student_id)
    active = select(Enrollment.course_id).where(
        Enrollment.student_id == student_id, Enrollment.status.in_(ACTIVE)
    )
    courses = lock_courses(db.session.scalars(active))
    # Read again under the course locks: a promotion may have seated them meanwhile.
    statuses = dict(db.session.execute(active.add_columns(Enrollment.status)).all())
    changes = Changes(utcnow())
    for course_id, status in sorted(statuses.items()):
        changes.add(
            student_id, course_id, status, Status.DROPPED, actor.name, Reason.STUDENT_DELETED
        )
    db.session.execute(delete(Student).where(Student.id == student_id))
    seated = [course for course in courses if statuses.get(course.id) == Status.ENROLLED]
    tallies = counts(course.id for course in seated)
    promoted = {
        course.id: promote(course.id, course.capacity, tallies[course.id], changes, Reason.PROMOTED)
        for course in seated
    }
    store_seats_taken(tallies)
    changes.write()
    db.session.commit()
    if statuses:
        audit("delete_student", student_id, statuses, "removed", actor=actor)
        ENROLLMENTS_REMOVED.inc(len(statuses))
    for course_id, students in promoted.items():
        report_promotions(course_id, students, Reason.PROMOTED)
