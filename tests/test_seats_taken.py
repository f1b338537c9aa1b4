"""``courses.seats_taken``: the count the free-seat path updates equals the enrolled rows.

Every path that changes who is enrolled keeps it exact: enrolling (a free seat,
several courses, an override past capacity, a waitlist), dropping, promoting,
raising the capacity, deleting a student. Each test checks it after each step.
"""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Course, Enrollment, Status


@pytest.fixture
def seats(app):
    """Each course's (seats_taken, enrolled rows), read from the database."""

    def read() -> dict[int, tuple[int, int]]:
        enrolled = (
            select(func.count())
            .where(Enrollment.course_id == Course.id, Enrollment.status == Status.ENROLLED)
            .scalar_subquery()
        )
        with app.app_context():
            rows = db.session.execute(select(Course.id, Course.seats_taken, enrolled)).all()
            db.session.rollback()
        return {course_id: (taken, count) for course_id, taken, count in rows}

    return read


def assert_exact(seats, **expected: int) -> None:
    """seats_taken equals the rows for every course, and the given courses hold so many."""
    found = seats()
    assert all(taken == count for taken, count in found.values()), found
    for name, count in expected.items():
        course_id = int(name.removeprefix("c"))
        assert found[course_id] == (count, count), (name, found)


def enroll(client, student: int, *courses: int, **flags) -> int:
    response = client.post(
        f"/students/{student}/courses", json={"course_ids": list(courses), **flags}
    )
    return response.status_code


def test_a_free_seat_and_a_full_course_keep_seats_taken_exact(
    client, make_student, make_course, seats
):
    first, second = make_student(), make_student()
    course = make_course(capacity=1)

    assert enroll(client, first, course) == 201
    assert_exact(seats, **{f"c{course}": 1})
    assert enroll(client, second, course) == 409
    assert_exact(seats, **{f"c{course}": 1})
    assert enroll(client, first, course) == 200
    assert_exact(seats, **{f"c{course}": 1})


def test_several_courses_an_override_and_a_waitlist_keep_seats_taken_exact(
    client, make_student, make_course, seats
):
    first, second, third = make_student(), make_student(), make_student()
    small, large = make_course(capacity=1, waitlist_capacity=5), make_course(capacity=10)

    assert enroll(client, first, small, large) == 201
    assert enroll(client, second, small, large, waitlist=True) == 201
    assert_exact(seats, **{f"c{small}": 1, f"c{large}": 2})
    assert enroll(client, third, small, override=True) == 201
    assert_exact(seats, **{f"c{small}": 2, f"c{large}": 2})


def test_drops_promotions_and_a_raised_capacity_keep_seats_taken_exact(
    client, make_student, make_course, seats
):
    students = [make_student() for _ in range(5)]
    course = make_course(capacity=2, waitlist_capacity=None)
    for student in students:
        assert enroll(client, student, course, waitlist=True) == 201
    assert_exact(seats, **{f"c{course}": 2})

    assert client.delete(f"/students/{students[0]}/courses/{course}").status_code == 204
    assert_exact(seats, **{f"c{course}": 2})  # the first in line took the seat
    assert client.patch(f"/courses/{course}", json={"capacity": 4}).status_code == 200
    assert_exact(seats, **{f"c{course}": 4})
    assert client.delete(f"/students/{students[1]}/courses/{course}").status_code == 204
    assert_exact(seats, **{f"c{course}": 3})  # nobody left waiting
    assert client.delete(f"/students/{students[4]}/courses/{course}").status_code == 204
    assert_exact(seats, **{f"c{course}": 2})


def test_deleting_a_student_keeps_seats_taken_exact_with_and_without_a_waitlist(
    client, make_student, make_course, seats
):
    leaving, waiting = make_student(), make_student()
    course, other = make_course(capacity=1, waitlist_capacity=5), make_course()
    assert enroll(client, leaving, course, other) == 201
    assert enroll(client, waiting, course, waitlist=True) == 201

    assert client.delete(f"/students/{leaving}").status_code == 204

    assert_exact(seats, **{f"c{course}": 1, f"c{other}": 0})


def test_a_seat_in_a_closed_window_is_not_taken_by_the_free_seat_path(
    client, make_student, make_course, seats
):
    student = make_student()
    closed = make_course(enrollment_closes_at=datetime.now(UTC) - timedelta(days=1))

    assert enroll(client, student, closed) == 409
    assert_exact(seats, **{f"c{closed}": 0})
