"""Domain errors: what went wrong, in the domain's terms (ids, rules), nothing about requests."""

from datetime import datetime


class DomainError(Exception):
    """An operation the domain refuses; ``str()`` says why in one sentence."""


class StudentNotFound(DomainError):
    """No student has this id."""

    def __init__(self, student_id: int):
        super().__init__(f"Student {student_id} does not exist.")
        self.student_id = student_id


class CourseNotFound(DomainError):
    """No course has this id."""

    def __init__(self, course_id: int):
        super().__init__(f"Course {course_id} does not exist.")
        self.course_id = course_id


class UnknownCourses(DomainError):
    """Some of the courses asked for do not exist."""

    def __init__(self, course_ids: list[int]):
        super().__init__(f"Unknown course ids: {', '.join(map(str, course_ids))}.")
        self.course_ids = course_ids


class NotEnrolled(DomainError):
    """The student is not enrolled in the course."""

    def __init__(self, student_id: int, course_id: int):
        super().__init__(f"Student {student_id} is not enrolled in course {course_id}.")
        self.student_id = student_id
        self.course_id = course_id


class CoursesFull(DomainError):
    """Courses without a free seat: each is (id, code, capacity); nothing was enrolled.

    ``waitlist`` says the request asked for the waitlist, whose room ran out too.
    """

    def __init__(self, courses: list[tuple[int, str, int]], *, waitlist: bool = False):
        names = ", ".join(f"{code} (id {id_}, capacity {seats})" for id_, code, seats in courses)
        waiting = " and no room on their waitlists" if waitlist else ""
        super().__init__(f"No seats left in: {names}{waiting}. Nothing was enrolled.")
        self.courses = courses
        self.waitlist = waitlist

    @property
    def course_ids(self) -> list[int]:
        """The ids of the full courses."""
        return [id_ for id_, _code, _seats in self.courses]


class DuplicateStudent(DomainError):
    """Another student already has this unique value (``field`` is email or external_id)."""

    def __init__(self, field: str, value: str):
        super().__init__(f"A student with {field} {value} already exists.")
        self.field = field
        self.value = value


class DuplicateCourseCode(DomainError):
    """Another course already has this code."""

    def __init__(self, code: str | None):
        super().__init__(f"A course with code {code} already exists.")
        self.field = "code"
        self.value = code


class CapacityBelowEnrolled(DomainError):
    """A course's capacity may not drop below the students already enrolled."""

    def __init__(self, code: str, capacity: int, enrolled: int):
        super().__init__(
            f"Capacity {capacity} is below the {enrolled} students enrolled in {code}."
        )
        self.code = code
        self.capacity = capacity
        self.enrolled = enrolled


class EnrollmentClosed(DomainError):
    """Courses outside their enrollment window: each is (id, code, opens_at, closes_at)."""

    def __init__(self, courses: list[tuple[int, str, datetime | None, datetime | None]]):
        names = ", ".join(
            f"{code} (id {id_}, {_window(opens, closes)})" for id_, code, opens, closes in courses
        )
        super().__init__(f"Enrollment is not open for: {names}. Nothing was enrolled.")
        self.courses = courses

    @property
    def course_ids(self) -> list[int]:
        """The ids of the closed courses."""
        return [id_ for id_, *_window in self.courses]


class DropDeadlinePassed(DomainError):
    """The course's drop deadline is over."""

    def __init__(self, course_id: int, code: str, deadline: datetime):
        super().__init__(
            f"The drop deadline of {code} (id {course_id}) was {deadline.isoformat()}; "
            "nothing was dropped."
        )
        self.course_id = course_id
        self.deadline = deadline


class OverrideNotAllowed(DomainError):
    """Only a registrar or an admin may override the enrollment rules."""

    def __init__(self, role: str | None):
        held = f"your role is {role}" if role else "you have no role"
        super().__init__(f"Only registrar or admin may send override; {held}.")
        self.role = role


class WaitlistCapacityBelowWaiting(DomainError):
    """A course's waitlist capacity may not drop below the students already waiting."""

    def __init__(self, code: str, waitlist_capacity: int, waiting: int):
        super().__init__(
            f"Waitlist capacity {waitlist_capacity} is below the {waiting} students "
            f"waiting for {code}."
        )
        self.code = code
        self.waitlist_capacity = waitlist_capacity
        self.waiting = waiting


class InvalidEnrollmentWindow(DomainError):
    """An enrollment window must open before it closes."""

    def __init__(self, opens_at: datetime, closes_at: datetime):
        super().__init__(
            f"enrollment_opens_at ({opens_at.isoformat()}) must be before "
            f"enrollment_closes_at ({closes_at.isoformat()})."
        )
        self.opens_at = opens_at
        self.closes_at = closes_at


class NoHistory(DomainError):
    """The student has never had an enrollment in the course."""

    def __init__(self, student_id: int, course_id: int):
        super().__init__(f"Student {student_id} has no enrollment history in course {course_id}.")
        self.student_id = student_id
        self.course_id = course_id


def _window(opens_at: datetime | None, closes_at: datetime | None) -> str:
    """An enrollment window in words."""
    parts = []
    if opens_at is not None:
        parts.append(f"opens {opens_at.isoformat()}")
    if closes_at is not None:
        parts.append(f"closes {closes_at.isoformat()}")
    return ", ".join(parts)
