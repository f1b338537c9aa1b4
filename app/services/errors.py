"""Domain errors: what went wrong, in the domain's terms (ids, rules), nothing about requests."""


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
    """Courses without a free seat: each is (id, code, capacity); nothing was enrolled."""

    def __init__(self, courses: list[tuple[int, str, int]]):
        names = ", ".join(f"{code} (id {id_}, capacity {seats})" for id_, code, seats in courses)
        super().__init__(f"No seats left in: {names}. Nothing was enrolled.")
        self.courses = courses


class DuplicateEmail(DomainError):
    """Another student already has this email."""

    def __init__(self, email: str | None):
        super().__init__(f"A student with email {email} already exists.")
        self.email = email


class DuplicateCourseCode(DomainError):
    """Another course already has this code."""

    def __init__(self, code: str | None):
        super().__init__(f"A course with code {code} already exists.")
        self.code = code


class CapacityBelowEnrolled(DomainError):
    """A course's capacity may not drop below the students already enrolled."""

    def __init__(self, code: str, capacity: int, enrolled: int):
        super().__init__(
            f"Capacity {capacity} is below the {enrolled} students enrolled in {code}."
        )
        self.code = code
        self.capacity = capacity
        self.enrolled = enrolled
