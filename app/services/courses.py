"""Course writes: create, update (capacity never below the enrolled count), delete.

``update_course`` and ``delete_course`` take an optional ``precondition``: a
callable run once the course is locked, before anything changes, which raises
to leave the course as it is (the HTTP layer checks ``If-Match`` there).
"""

from collections.abc import Callable, Mapping
from datetime import datetime

from sqlalchemy import delete, null, select

from app.database import unique_or_raise
from app.extensions import db
from app.metrics import ENROLLMENTS_REMOVED
from app.models import Course, Enrollment, Reason, Status, utcnow
from app.services.actors import Actor
from app.services.audit import audit
from app.services.enrollment import (
    ACTIVE,
    Changes,
    counts,
    lock_courses,
    promote,
    report_promotions,
    store_seats_taken,
)
from app.services.errors import (
    CapacityBelowEnrolled,
    CourseNotFound,
    DuplicateCourseCode,
    InvalidEnrollmentWindow,
    WaitlistCapacityBelowWaiting,
)


def load_course(course_id: int) -> Course:
    """The course with this id; raises CourseNotFound."""
    course = db.session.get(Course, course_id)
    if course is None:
        raise CourseNotFound(course_id)
    return course


def create_course(fields: Mapping) -> int:
    """Add a course from validated ``fields``; return its id.

    Raises InvalidEnrollmentWindow, DuplicateCourseCode.
    """
    check_window(fields.get("enrollment_opens_at"), fields.get("enrollment_closes_at"))
    # The ORM leaves a None out of an INSERT when the column has a default;
    # null() stores what was asked for (a null waitlist_capacity: no limit).
    course = Course(**{name: null() if value is None else value for name, value in fields.items()})
    with unique_or_raise(DuplicateCourseCode(fields.get("code"))):
        db.session.add(course)
        db.session.flush()
        course_id = course.id
        db.session.commit()
    return course_id


def check_window(opens_at: datetime | None, closes_at: datetime | None) -> None:
    """Raise InvalidEnrollmentWindow unless the window opens before it closes."""
    if opens_at is not None and closes_at is not None and opens_at >= closes_at:
        raise InvalidEnrollmentWindow(opens_at, closes_at)


def update_course(
    course_id: int, changes: Mapping, *, precondition: Callable[[], None] | None = None
) -> None:
    """Apply validated ``changes`` to a course; a larger capacity promotes waitlisted students.

    The course is locked before its counts are read. Raises CourseNotFound,
    CapacityBelowEnrolled, WaitlistCapacityBelowWaiting, InvalidEnrollmentWindow,
    DuplicateCourseCode. Promotions into new seats (``capacity_raised``) happen
    in the same transaction, first waitlisted first.
    """
    locked = lock_courses([course_id])
    if not locked:
        raise CourseNotFound(course_id)
    if precondition:
        precondition()
    [current] = locked
    tally = counts([course_id])[course_id]
    # Only a change is checked: an override may have filled a course past its capacity.
    capacity = changes.get("capacity", current.capacity)
    if "capacity" in changes and capacity is not None and capacity < tally.enrolled:
        raise CapacityBelowEnrolled(current.code, capacity, tally.enrolled)
    waitlist_capacity = changes.get("waitlist_capacity")
    if waitlist_capacity is not None and waitlist_capacity < tally.waitlisted:
        raise WaitlistCapacityBelowWaiting(current.code, waitlist_capacity, tally.waitlisted)
    check_window(
        changes.get("enrollment_opens_at", current.enrollment_opens_at),
        changes.get("enrollment_closes_at", current.enrollment_closes_at),
    )
    course = db.session.get(Course, course_id)
    for name, value in changes.items():
        setattr(course, name, value)
    history = Changes(utcnow())
    with unique_or_raise(DuplicateCourseCode(changes.get("code"))):
        promoted = promote(course_id, capacity, tally, history, Reason.CAPACITY_RAISED)
        if promoted:
            store_seats_taken({course_id: tally})
        history.write()
        db.session.commit()
    report_promotions(course_id, promoted, Reason.CAPACITY_RAISED)


def delete_course(
    course_id: int, *, actor: Actor, precondition: Callable[[], None] | None = None
) -> None:
    """Delete a course and its enrollments (audited per student); its history stays.

    Each enrollment that was active gets a ``course_deleted`` history row.
    Raises CourseNotFound.
    """
    if not lock_courses([course_id]):
        raise CourseNotFound(course_id)
    if precondition:
        precondition()
    active = dict(
        db.session.execute(
            select(Enrollment.student_id, Enrollment.status).where(
                Enrollment.course_id == course_id, Enrollment.status.in_(ACTIVE)
            )
        ).all()
    )
    history = Changes(utcnow())
    for student_id, status in sorted(active.items()):
        history.add(
            student_id, course_id, status, Status.DROPPED, actor.name, Reason.COURSE_DELETED
        )
    history.write()
    db.session.execute(delete(Course).where(Course.id == course_id))
    db.session.commit()
    for student_id in sorted(active):
        audit("delete_course", student_id, [course_id], "removed", actor=actor)
    ENROLLMENTS_REMOVED.inc(len(active))
