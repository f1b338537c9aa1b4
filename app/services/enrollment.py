"""Enrollment rules: the lifecycle of an enrollment, enforced in the database.

An enrollment (one per student and course) is ``enrolled``, ``waitlisted`` or
``dropped``; every change of status is also added to ``enrollment_history``
with its actor and reason, in the same transaction. Requests are all or
nothing and idempotent. A seat that frees up (a drop, a deleted student, a
larger capacity) goes to the first waitlisted student (earliest
``waitlisted_at``, then lowest student id) in the transaction that freed it,
so no one ever sees a free seat while someone waits. Waitlist positions are
not stored: they are that order.

Locking. Every write locks the rows it decides on before it reads any count:
the student first when it needs one (``FOR NO KEY UPDATE`` to enroll, which
serialises the requests of one student, ``FOR UPDATE`` to delete), then the
courses in id order (``FOR UPDATE``; a fixed order cannot deadlock). Counts
and statuses are read by statements that start after the locks are granted,
so under READ COMMITTED they see every change committed before. On SQLite a
write request holds the database's write lock from its first statement
(``BEGIN IMMEDIATE``), which serialises everything. The composite primary key
of ``student_courses`` is the last guard against a pair stored twice.

Free seats. Enrolling a new student into one course that looks open with a
seat left (registration morning: hundreds of students into one course) locks
no course up front: the row and its history are written first, and the seat
is taken last, by ``UPDATE courses SET seats_taken = seats_taken + 1`` under
a condition that re-checks capacity and window on the row's latest version.
The course's row lock is then held for that statement and the commit only.
When the condition fails (a seat went meanwhile), the transaction is rolled
back and the request is decided under the course locks as above.
``courses.seats_taken`` is kept equal to the count of enrolled rows: every
path that decides under the course locks writes the count it computed there.

Every change and refusal is an audit event (:mod:`app.services.audit`) and is
counted in the Prometheus counters of :mod:`app.metrics`.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.metrics import (
    ENROLLMENTS_CREATED,
    ENROLLMENTS_PROMOTED,
    ENROLLMENTS_REFUSED_CAPACITY,
    ENROLLMENTS_REMOVED,
    ENROLLMENTS_WAITLISTED,
)
from app.models import (
    WAITLIST_ORDER,
    Course,
    Enrollment,
    EnrollmentHistory,
    Reason,
    Status,
    Student,
    utcnow,
    waitlist_position,
)
from app.services.actors import SYSTEM, SYSTEM_ACTOR, Actor, may_override
from app.services.audit import audit
from app.services.errors import (
    CourseNotFound,
    CoursesFull,
    DropDeadlinePassed,
    EnrollmentClosed,
    NotEnrolled,
    OverrideNotAllowed,
    StudentNotFound,
    UnknownCourses,
)

ACTIVE = (Status.ENROLLED, Status.WAITLISTED)
ENROLLMENT_TIMES = (Enrollment.enrolled_at, Enrollment.waitlisted_at, Enrollment.dropped_at)


# --- locks and counts ----------------------------------------------------------


def lock_student(student_id: int, *, for_delete: bool = False) -> bool:
    """Lock a student row; whether it exists.

    ``FOR NO KEY UPDATE`` (enrolling) keeps the student from being deleted until
    the transaction ends and makes other enrollment requests of the same student
    wait, so two requests never write the same pair at once; it does not block the
    key checks of other students' rows. ``FOR UPDATE`` (deleting) keeps any new
    enrollment of it out.
    """
    statement = select(Student.id).where(Student.id == student_id)
    if for_delete:
        statement = statement.with_for_update()
    else:
        statement = statement.with_for_update(key_share=True)
    return db.session.scalar(statement) is not None


def lock_courses(course_ids: Iterable[int]) -> list:
    """Lock the given courses in id order (a fixed order cannot deadlock); their rule fields."""
    statement = (
        select(
            Course.id,
            Course.code,
            Course.capacity,
            Course.waitlist_capacity,
            Course.enrollment_opens_at,
            Course.enrollment_closes_at,
            Course.drop_deadline,
        )
        .where(Course.id.in_(sorted(course_ids)))
        .order_by(Course.id)
        .with_for_update()
    )
    return list(db.session.execute(statement))


@dataclass
class Counts:
    """Students enrolled in and waiting for one course."""

    enrolled: int = 0
    waitlisted: int = 0


def counts(course_ids: Iterable[int]) -> dict[int, Counts]:
    """Enrolled and waitlisted students per course (read after the courses are locked)."""
    course_ids = sorted(course_ids)
    found = {course_id: Counts() for course_id in course_ids}
    if not course_ids:
        return found
    statement = (
        select(Enrollment.course_id, Enrollment.status, func.count())
        .where(Enrollment.course_id.in_(course_ids), Enrollment.status.in_(ACTIVE))
        .group_by(Enrollment.course_id, Enrollment.status)
    )
    for course_id, status, number in db.session.execute(statement):
        setattr(found[course_id], status, number)
    return found


def store_seats_taken(tallies: Mapping[int, Counts]) -> None:
    """Write each locked course's enrolled count, as computed under its lock, to ``seats_taken``."""
    if tallies:
        courses = Course.__table__
        db.session.execute(
            update(courses)
            .where(courses.c.id == bindparam("locked_id"))
            .values(seats_taken=bindparam("enrolled")),
            [
                {"locked_id": course_id, "enrolled": tally.enrolled}
                for course_id, tally in sorted(tallies.items())
            ],
        )


def free_seats(capacity: int | None, enrolled: int) -> int | None:
    """Seats left in a course (None: unlimited); never negative (overrides may overfill)."""
    return None if capacity is None else max(0, capacity - enrolled)


def waitlist_has_room(waitlist_capacity: int | None, waitlisted: int) -> bool:
    """Whether one more student fits on a waitlist (None: no limit; 0: no waitlist)."""
    return waitlist_capacity is None or waitlisted < waitlist_capacity


def enrollment_is_open(course, now: datetime) -> bool:
    """Whether ``now`` is inside the course's enrollment window (null ends: open)."""
    opens, closes = course.enrollment_opens_at, course.enrollment_closes_at
    return (opens is None or opens <= now) and (closes is None or now < closes)


# --- history ----------------------------------------------------------------------


@dataclass
class Changes:
    """The status changes of one transaction, written to the history in one statement."""

    at: datetime
    rows: list[dict] = field(default_factory=list)

    def add(
        self,
        student_id: int,
        course_id: int,
        from_status: str | None,
        to_status: str,
        actor: str,
        reason: str,
    ) -> None:
        """Record one change of status."""
        self.rows.append(
            {
                "at": self.at,
                "student_id": student_id,
                "course_id": course_id,
                "from_status": from_status,
                "to_status": to_status,
                "actor": actor,
                "reason": reason,
            }
        )

    def write(self) -> None:
        """Add every recorded change to the history (one statement, every column sent)."""
        if self.rows:
            db.session.execute(insert(EnrollmentHistory.__table__), self.rows)


def promote(course_id: int, capacity: int | None, tally: Counts, changes: Changes, reason: str):
    """Move the first waitlisted students into the free seats of a locked course.

    ``tally`` holds the course's counts as they stand in this transaction; it
    is updated. Returns the promoted student ids, first promoted first.
    """
    seats = free_seats(capacity, tally.enrolled)
    number = tally.waitlisted if seats is None else min(seats, tally.waitlisted)
    if number <= 0:
        return []
    first = (
        select(Enrollment.student_id)
        .where(Enrollment.course_id == course_id, Enrollment.status == Status.WAITLISTED)
        .order_by(*WAITLIST_ORDER)
        .limit(number)
    )
    promoted = db.session.execute(
        update(Enrollment)
        .where(Enrollment.course_id == course_id, Enrollment.student_id.in_(first))
        .values(status=Status.ENROLLED, enrolled_at=changes.at)
        .returning(Enrollment.student_id, Enrollment.waitlisted_at)
    ).all()
    promoted = [
        row.student_id
        for row in sorted(promoted, key=lambda row: (row.waitlisted_at, row.student_id))
    ]
    for student_id in promoted:
        changes.add(student_id, course_id, Status.WAITLISTED, Status.ENROLLED, SYSTEM, reason)
    tally.enrolled += len(promoted)
    tally.waitlisted -= len(promoted)
    return promoted


def report_promotions(course_id: int, promoted: list[int], reason: str) -> None:
    """Audit and count promotions once their transaction is committed."""
    for student_id in promoted:
        audit("promote", student_id, [course_id], "promoted", reason=reason, actor=SYSTEM_ACTOR)
    if promoted:
        ENROLLMENTS_PROMOTED.labels(reason=reason).inc(len(promoted))


# --- enrolling --------------------------------------------------------------------


@dataclass(frozen=True)
class Enrolled:
    """What an enrollment request left: each course's enrollment, and which of them changed."""

    enrollments: dict[int, dict]
    changed: set[int]


def _new_enrollment(student_id: int, course_id: int, status: str, now: datetime) -> dict:
    """The row of an enrollment made now, every column given."""
    row = {"enrolled_at": None, "waitlisted_at": None, "dropped_at": None, f"{status}_at": now}
    return {"student_id": student_id, "course_id": course_id, "status": status, **row}


def _take_free_seat(student_id: int, course_id: int, actor: Actor) -> Enrolled | None:
    """Enroll a locked student into a course with a free seat, locking the course last.

    Only for a student new to the course, when the course, read without a lock,
    has a seat and is open. Returns None, having written nothing, when that is
    not so, or when the seat went meanwhile (the transaction is then rolled back
    and the student locked again; raises StudentNotFound if it was deleted meanwhile).
    """
    now = utcnow()
    course = db.session.execute(
        select(
            Course.capacity,
            Course.seats_taken,
            Course.enrollment_opens_at,
            Course.enrollment_closes_at,
            Enrollment.status,
        )
        .outerjoin(
            Enrollment,
            and_(Enrollment.course_id == Course.id, Enrollment.student_id == student_id),
        )
        .where(Course.id == course_id)
    ).one_or_none()
    if (
        course is None
        or course.status is not None
        or free_seats(course.capacity, course.seats_taken) == 0
        or not enrollment_is_open(course, now)
    ):
        return None
    row = _new_enrollment(student_id, course_id, Status.ENROLLED, now)
    changes = Changes(now)
    changes.add(student_id, course_id, None, Status.ENROLLED, actor.name, Reason.REQUESTED)
    try:
        db.session.execute(insert(Enrollment.__table__), [row])
        changes.write()
        # The only statement that locks the course; the commit follows.
        seated = db.session.execute(take_seat(course_id, now)).rowcount == 1
    except IntegrityError:  # the course was deleted meanwhile
        seated = False
    if not seated:
        db.session.rollback()
        if not lock_student(student_id):  # deleted while the lock was released
            audit("enroll", student_id, [course_id], "unknown", actor=actor)
            raise StudentNotFound(student_id)
        return None
    return Enrolled(enrollments={course_id: row}, changed={course_id})


def take_seat(course_id: int, now: datetime):
    """Count one more enrolled student in a course, if it has a free seat and is open at ``now``.

    Under READ COMMITTED an UPDATE that waited for the row's lock checks its
    condition again on the latest version: it never takes a seat that is gone.
    """
    return (
        update(Course)
        .where(
            Course.id == course_id,
            or_(Course.capacity.is_(None), Course.seats_taken < Course.capacity),
            or_(Course.enrollment_opens_at.is_(None), Course.enrollment_opens_at <= now),
            or_(Course.enrollment_closes_at.is_(None), Course.enrollment_closes_at > now),
        )
        .values(seats_taken=Course.seats_taken + 1)
        .execution_options(synchronize_session=False)
    )


def _enroll(
    student_id: int, course_ids: Iterable[int], *, waitlist: bool, override: bool, actor: Actor
) -> Enrolled:
    """Decide and write an enrollment request inside the current transaction (no commit)."""
    wanted = sorted(set(course_ids))
    if override and not may_override(actor):
        audit("enroll", student_id, wanted, "refused_override", actor=actor)
        raise OverrideNotAllowed(actor.role)
    if not lock_student(student_id):
        audit("enroll", student_id, wanted, "unknown", actor=actor)
        raise StudentNotFound(student_id)
    if len(wanted) == 1 and not override:
        seated = _take_free_seat(student_id, wanted[0], actor)
        if seated is not None:
            return seated
    return _enroll_under_course_locks(
        student_id, wanted, waitlist=waitlist, override=override, actor=actor
    )


def _enroll_under_course_locks(
    student_id: int, wanted: list[int], *, waitlist: bool, override: bool, actor: Actor
) -> Enrolled:
    """Decide an enrollment request of a locked student with its courses locked (no commit)."""
    courses = lock_courses(wanted)
    unknown = sorted(set(wanted) - {course.id for course in courses})
    if unknown:
        audit("enroll", student_id, unknown, "unknown", actor=actor)
        raise UnknownCourses(unknown)
    current = {
        row["course_id"]: dict(row)
        for row in db.session.execute(
            select(Enrollment.course_id, Enrollment.status, *ENROLLMENT_TIMES).where(
                Enrollment.student_id == student_id, Enrollment.course_id.in_(wanted)
            )
        ).mappings()
    }
    # A waitlisted student stays waitlisted unless an override enrolls them now.
    settled = (Status.ENROLLED, Status.WAITLISTED) if not override else (Status.ENROLLED,)
    undecided = [c for c in courses if current.get(c.id, {}).get("status") not in settled]
    now = utcnow()
    closed = [c for c in undecided if not enrollment_is_open(c, now)]
    if closed and not override:
        audit("enroll", student_id, [c.id for c in closed], "refused_window", actor=actor)
        raise EnrollmentClosed(
            [(c.id, c.code, c.enrollment_opens_at, c.enrollment_closes_at) for c in closed]
        )
    tallies = counts(c.id for c in undecided)
    decided: dict[int, tuple[str, str]] = {}
    full = []
    for course in undecided:
        tally = tallies[course.id]
        forced = course.id in {c.id for c in closed}
        if free_seats(course.capacity, tally.enrolled) != 0:
            decided[course.id] = (Status.ENROLLED, Reason.OVERRIDE if forced else Reason.REQUESTED)
        elif override:
            decided[course.id] = (Status.ENROLLED, Reason.OVERRIDE)
        elif waitlist and waitlist_has_room(course.waitlist_capacity, tally.waitlisted):
            decided[course.id] = (Status.WAITLISTED, Reason.REQUESTED)
        else:
            full.append(course)
    if full:
        audit("enroll", student_id, [c.id for c in full], "refused_capacity", actor=actor)
        ENROLLMENTS_REFUSED_CAPACITY.inc()
        raise CoursesFull([(c.id, c.code, c.capacity) for c in full], waitlist=waitlist)

    seated = {
        c: tallies[c] for c, (status, _reason) in decided.items() if status == Status.ENROLLED
    }
    for tally in seated.values():
        tally.enrolled += 1
    store_seats_taken(seated)
    changes = Changes(now)
    new_rows, moves = [], {Status.ENROLLED: [], Status.WAITLISTED: []}
    for course_id, (status, reason) in decided.items():
        before = current.get(course_id)
        if before is None:
            after = _new_enrollment(student_id, course_id, status, now)
            new_rows.append(after)
        else:
            after = {**before, "course_id": course_id, "status": status, f"{status}_at": now}
            moves[status].append(course_id)
        current[course_id] = after
        changes.add(student_id, course_id, before and before["status"], status, actor.name, reason)
    if new_rows:
        # A Core insert: every row sends every column, so a waitlisted row's
        # null enrolled_at stays null instead of taking the column's default.
        db.session.execute(insert(Enrollment.__table__), new_rows)
    for status, moved in moves.items():
        if moved:
            db.session.execute(
                update(Enrollment)
                .where(Enrollment.student_id == student_id, Enrollment.course_id.in_(moved))
                .values({"status": status, f"{status}_at": now})
            )
    changes.write()
    return Enrolled(
        enrollments={
            course_id: {"student_id": student_id, **row} for course_id, row in current.items()
        },
        changed=set(decided),
    )


def _report_enrolled(
    student_id: int, result: Enrolled, wanted: Iterable[int], actor: Actor
) -> None:
    """Audit and count what an enrollment request did, once it is committed."""
    if not result.changed:
        audit("enroll", student_id, wanted, "unchanged", actor=actor)
        return
    for status, outcome, counter in (
        (Status.ENROLLED, "created", ENROLLMENTS_CREATED),
        (Status.WAITLISTED, "waitlisted", ENROLLMENTS_WAITLISTED),
    ):
        ids = [c for c in result.changed if result.enrollments[c]["status"] == status]
        if ids:
            audit("enroll", student_id, ids, outcome, actor=actor)
            counter.inc(len(ids))


def enroll(
    student_id: int,
    course_ids: Iterable[int],
    *,
    actor: Actor,
    waitlist: bool = False,
    override: bool = False,
) -> Enrolled:
    """Enroll a student in courses, all or nothing, and commit.

    A course with a free seat enrolls the student; a full one waitlists them
    when ``waitlist`` is set and its waitlist has room. ``override`` (registrar
    and admin only) enrolls past capacity and outside the enrollment window.
    Courses the student is already enrolled in or waiting for are left as
    they are; a dropped enrollment becomes active again.

    Raises OverrideNotAllowed, StudentNotFound, UnknownCourses, EnrollmentClosed
    naming the courses outside their window, or CoursesFull; nothing is
    written then.
    """
    wanted = sorted(set(course_ids))
    result = _enroll(student_id, wanted, waitlist=waitlist, override=override, actor=actor)
    db.session.commit()
    _report_enrolled(student_id, result, wanted, actor)
    return result


def position_in_waitlist(student_id: int, course_id: int) -> int | None:
    """The place of a student on a course's waitlist (1: promoted next); None if not waiting."""
    return db.session.scalar(
        select(waitlist_position()).where(
            Enrollment.student_id == student_id, Enrollment.course_id == course_id
        )
    )


def enroll_one(
    student_id: int,
    course_id: int,
    *,
    actor: Actor,
    waitlist: bool = False,
    override: bool = False,
) -> tuple[Mapping, bool]:
    """Enroll one student in one course; return the enrollment and whether its status changed.

    The enrollment (with its waitlist position) is read inside the transaction
    that decided it, so it describes exactly what this request found or made.
    Raises what :func:`enroll` raises, with CourseNotFound for an unknown course.
    """
    try:
        result = _enroll(student_id, [course_id], waitlist=waitlist, override=override, actor=actor)
    except UnknownCourses as error:
        raise CourseNotFound(course_id) from error
    enrollment = result.enrollments[course_id]
    position = None
    if enrollment["status"] == Status.WAITLISTED:
        position = position_in_waitlist(student_id, course_id)
    db.session.commit()
    _report_enrolled(student_id, result, [course_id], actor)
    return {**enrollment, "position": position}, bool(result.changed)


# --- dropping ---------------------------------------------------------------------


def drop(student_id: int, course_id: int, *, actor: Actor, override: bool = False) -> None:
    """Drop an enrolled or waitlisted enrollment (kept, as ``dropped``), and commit.

    A freed seat goes to the first waitlisted student in the same transaction.
    Raises OverrideNotAllowed, StudentNotFound, NotEnrolled (nothing to drop),
    or DropDeadlinePassed (unless ``override``).
    """
    if override and not may_override(actor):
        audit("unenroll", student_id, [course_id], "refused_override", actor=actor)
        raise OverrideNotAllowed(actor.role)
    locked = lock_courses([course_id])
    found = None
    if locked:
        # The counts include this enrollment: they are read before it changes.
        found = db.session.execute(
            select(Enrollment.status, Course.enrolled_count, Course.waitlist_count)
            .join(Course, Course.id == Enrollment.course_id)
            .where(Enrollment.student_id == student_id, Enrollment.course_id == course_id)
        ).one_or_none()
    if found is None or found.status not in ACTIVE:
        db.session.rollback()
        audit("unenroll", student_id, [course_id], "unknown", actor=actor)
        if db.session.get(Student, student_id) is None:
            raise StudentNotFound(student_id)
        raise NotEnrolled(student_id, course_id)
    [course], status = locked, found.status
    now = utcnow()
    reason = Reason.REQUESTED
    if course.drop_deadline is not None and now > course.drop_deadline:
        if not override:
            db.session.rollback()
            audit("unenroll", student_id, [course_id], "refused_deadline", actor=actor)
            raise DropDeadlinePassed(course_id, course.code, course.drop_deadline)
        reason = Reason.OVERRIDE
    changes = Changes(now)
    db.session.execute(
        update(Enrollment)
        .where(Enrollment.student_id == student_id, Enrollment.course_id == course_id)
        .values(status=Status.DROPPED, dropped_at=now)
    )
    changes.add(student_id, course_id, status, Status.DROPPED, actor.name, reason)
    promoted = []
    if status == Status.ENROLLED:
        tally = Counts(enrolled=found.enrolled_count - 1, waitlisted=found.waitlist_count)
        if found.waitlist_count:
            promoted = promote(course_id, course.capacity, tally, changes, Reason.PROMOTED)
        store_seats_taken({course_id: tally})
    changes.write()
    db.session.commit()
    audit("unenroll", student_id, [course_id], "dropped", actor=actor)
    ENROLLMENTS_REMOVED.inc()
    report_promotions(course_id, promoted, Reason.PROMOTED)
