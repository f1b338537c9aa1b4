"""Student writes: create, update, delete, each one transaction.

``update_student`` and ``delete_student`` take an optional ``precondition``:
a callable run once the student is locked, before anything changes, which
raises to leave the student as it is (the HTTP layer checks ``If-Match`` there).
"""

from collections.abc import Callable, Mapping

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


def lock_for_update(student_id: int) -> Student:
    """The student with this id, locked for an update; raises StudentNotFound.

    ``FOR NO KEY UPDATE`` is the lock the UPDATE takes anyway, taken when the
    student is read, so a precondition checked next sees what is updated;
    enrollments of the student (``FOR KEY SHARE``) go on meanwhile.
    """
    student = db.session.get(Student, student_id, with_for_update={"key_share": True})
    if student is None:
        raise StudentNotFound(student_id)
    return student


def duplicate(fields: Mapping):
    """The error factory for ``fields`` clashing with another student's email or external_id."""

    def error(constraint: str) -> DuplicateStudent:
        sent = [name for name in UNIQUE_FIELDS if fields.get(name)]
        # The violated constraint names the column; an unknown one blames the first sent.
        field = next((name for name in sent if name in constraint), sent[0])
        return DuplicateStudent(field, fields[field])

    return error


def create_student(fields: Mapping) -> int:
    """Add a student from validated ``fields``; return its id. Raises DuplicateStudent."""
    student = Student(**fields)
    with unique_or_raise(duplicate(fields)):
        db.session.add(student)
        db.session.flush()
        student_id = student.id
        db.session.commit()
    return student_id


def update_student(
    student_id: int, changes: Mapping, *, precondition: Callable[[], None] | None = None
) -> None:
    """Apply validated ``changes`` to a student. Raises StudentNotFound, DuplicateStudent."""
    student = lock_for_update(student_id)
    if precondition:
        precondition()
    for field, value in changes.items():
        setattr(student, field, value)
    with unique_or_raise(duplicate(changes)):
        db.session.commit()


def delete_student(
    student_id: int, *, actor: Actor, precondition: Callable[[], None] | None = None
) -> None:
    """Delete a student and their enrollments; their seats go to the waitlists.

    The student is locked first, so no enrollment of them is added meanwhile,
    then every course they are enrolled in or waiting for, in id order; in each
    course where they held a seat, the first waitlisted student is promoted in
    the same transaction. Their history stays, with a ``student_deleted`` row
    for each enrollment that was active. Raises StudentNotFound.
    """
    if not lock_student(student_id, for_delete=True):
        raise StudentNotFound(student_id)
    if precondition:
        precondition()
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
