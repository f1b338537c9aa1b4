"""How a Python caller drives a whole enrollment through the generated client.

``make contract`` generates the ``enrollment_client`` package next to this file
(git ignores it) from openapi.json and checks this file with ``mypy --strict``:
a field the API stops sending, or a renamed operation or parameter, fails the
check here before it fails a caller. tests/test_clients.py runs
:func:`enrollment_flow` against a live server.
"""

from dataclasses import dataclass
from http import HTTPStatus
from typing import TypeVar

from enrollment_client import Client
from enrollment_client.api.courses import create_course, get_course
from enrollment_client.api.students import (
    create_student,
    drop_student_from_course,
    enroll_student_in_courses,
    list_student_courses,
)
from enrollment_client.models import (
    Course,
    CourseCreate,
    EnrollmentRequest,
    Problem,
    Student,
    StudentCourse,
    StudentCreate,
)

T = TypeVar("T")


class ProblemAnswer(Exception):
    """The service answered a problem, or nothing it documents, where a result was expected."""

    def __init__(self, problem: Problem | None) -> None:
        self.problem = problem
        super().__init__(f"{problem.status} {problem.detail}" if problem else "undocumented answer")


def expect(answer: T | Problem | None, kind: type[T]) -> T:
    """The answer when it is a ``kind``; raise ProblemAnswer when it is a problem (or nothing)."""
    if isinstance(answer, kind):
        return answer
    raise ProblemAnswer(answer if isinstance(answer, Problem) else None)


def courses_of(client: Client, student_id: int) -> list[StudentCourse]:
    """The courses a student is enrolled in."""
    courses = list_student_courses.sync(student_id, client=client)
    if not isinstance(courses, list):
        raise ProblemAnswer(courses)
    return courses


def seats_text(course: Course) -> str:
    """A course's free seats as a page shows them; ``seats_left`` is None when unlimited."""
    if course.seats_left is None:
        return "unlimited"
    return f"{course.seats_left} of {course.capacity}"


@dataclass(frozen=True)
class EnrollmentFlow:
    """Everything the service answered along one enrollment, in order."""

    student: Student
    course: Course
    enroll_status: HTTPStatus
    enrolled: Student
    courses: list[StudentCourse]
    seats_while_enrolled: str
    email_taken: Problem
    drop_status: HTTPStatus
    courses_after_drop: list[StudentCourse]
    course_after_drop: Course


def enrollment_flow(base_url: str, email: str) -> EnrollmentFlow:
    """Create a student and a course, enroll, read back, hit a problem, drop, read back."""
    with Client(base_url=base_url) as client:
        new_student = StudentCreate(name="Ada Lovelace", email=email)
        student = expect(create_student.sync(client=client, body=new_student), Student)
        course = expect(
            create_course.sync(
                client=client, body=CourseCreate(code="CS101", title="Programming", capacity=2)
            ),
            Course,
        )
        enrolling = enroll_student_in_courses.sync_detailed(
            student.id, client=client, body=EnrollmentRequest(course_ids=[course.id])
        )
        enrolled = expect(enrolling.parsed, Student)
        courses = courses_of(client, student.id)
        seats = seats_text(expect(get_course.sync(course.id, client=client), Course))
        # The same email again (in capitals: emails are compared case-insensitively).
        taken = create_student.sync(
            client=client, body=StudentCreate(name="Ada King", email=email.upper())
        )
        if not isinstance(taken, Problem):
            raise AssertionError(f"a second student with {email} was accepted: {taken}")
        dropping = drop_student_from_course.sync_detailed(student.id, course.id, client=client)
        if isinstance(dropping.parsed, Problem):
            raise ProblemAnswer(dropping.parsed)
        return EnrollmentFlow(
            student=student,
            course=course,
            enroll_status=enrolling.status_code,
            enrolled=enrolled,
            courses=courses,
            seats_while_enrolled=seats,
            email_taken=taken,
            drop_status=dropping.status_code,
            courses_after_drop=courses_of(client, student.id),
            course_after_drop=expect(get_course.sync(course.id, client=client), Course),
        )
