"""Student writes: create, update, delete, each one transaction."""

from collections.abc import Mapping

from sqlalchemy import select

from app.database import unique_or_raise
from app.extensions import db
from app.metrics import ENROLLMENTS_REMOVED
from app.models import Enrollment, Student
from app.services.audit import audit
from app.services.errors import DuplicateEmail, StudentNotFound


def load_student(student_id: int) -> Student:
    """The student with this id; raises StudentNotFound."""
    student = db.session.get(Student, student_id)
    if student is None:
        raise StudentNotFound(student_id)
    return student


def create_student(fields: Mapping) -> int:
    """Add a student from validated ``fields``; return its id. Raises DuplicateEmail."""
    student = Student(**fields)
    with unique_or_raise(DuplicateEmail(fields.get("email"))):
        db.session.add(student)
        db.session.flush()
        student_id = student.id
        db.session.commit()
    return student_id


def update_student(student_id: int, changes: Mapping) -> None:
    """Apply validated ``changes`` to a student. Raises StudentNotFound, DuplicateEmail."""
    student = load_student(student_id)
    for field, value in changes.items():
        setattr(student, field, value)
    with unique_or_raise(DuplicateEmail(changes.get("email"))):
        db.session.commit()


def delete_student(student_id: int) -> None:
    """Delete a student; the database cascades its enrollments away (audited)."""
    student = load_student(student_id)
    # No enrollment of this student may be added until the transaction ends.
    db.session.execute(select(Student.id).where(Student.id == student_id).with_for_update())
    course_ids = list(
        db.session.scalars(select(Enrollment.course_id).where(Enrollment.student_id == student_id))
    )
    db.session.delete(student)
    db.session.commit()
    if course_ids:
        audit("delete_student", student_id, course_ids, "removed")
        ENROLLMENTS_REMOVED.inc(len(course_ids))
