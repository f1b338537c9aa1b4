"""The query budget: how many SQL statements each hot endpoint sends, exactly.

The counts are fixed by design (a student's courses come in the same joined
statement, a page's courses in one more, never one statement per course), so
they are the same for a student with one course or fifty; a change that adds a
lazy load inside a loop fails here.
"""

import pytest
from sqlalchemy import insert

from app.extensions import db
from app.models import Course, Enrollment, Student
from tests.support.databases import TEST_DATABASE_URL, explained_plans

COURSES_PER_STUDENT = [1, 50]


@pytest.fixture
def seed(app):
    """Bulk-insert ``students`` students each enrolled in the first ``per_student`` courses."""

    def factory(*, students: int, courses: int, per_student: int) -> tuple[list[int], list[int]]:
        with app.app_context():
            course_ids = list(
                db.session.scalars(
                    insert(Course).returning(Course.id),
                    [
                        {
                            "code": f"C{n:04d}",
                            "title": f"Course {n}",
                            "seats_taken": students if n < per_student else 0,
                        }
                        for n in range(courses)
                    ],
                )
            )
            student_ids = list(
                db.session.scalars(
                    insert(Student).returning(Student.id),
                    [
                        {"name": f"Student {n:04d}", "email": f"s{n}@example.edu"}
                        for n in range(students)
                    ],
                )
            )
            rows = [
                {"student_id": student_id, "course_id": course_id}
                for student_id in student_ids
                for course_id in course_ids[:per_student]
            ]
            if rows:
                db.session.execute(insert(Enrollment), rows)
            db.session.commit()
        return student_ids, course_ids

    return factory


@pytest.mark.parametrize("per_student", COURSES_PER_STUDENT)
def test_get_student_takes_one_joined_statement(client, seed, count_queries, per_student):
    [student], _ = seed(students=1, courses=per_student, per_student=per_student)

    with count_queries() as statements:
        response = client.get(f"/students/{student}")

    assert response.status_code == 200
    assert len(response.get_json()["courses"]) == per_student
    assert len(statements) == 1


@pytest.fixture
def full_courses_with_waitlists(client, seed):
    """``courses`` full courses (one seat, taken) each with ``waiting`` students waiting."""

    def factory(*, courses: int, waiting: int) -> tuple[list[int], list[int]]:
        students, course_ids = seed(students=1 + waiting, courses=courses, per_student=0)
        with client.application.app_context():
            for course_id in course_ids:
                course = db.session.get(Course, course_id)
                course.capacity, course.waitlist_capacity = 1, None
            db.session.commit()
        seated, *others = students
        client.post(f"/students/{seated}/courses", json={"course_ids": course_ids})
        for other in others:
            answer = client.post(
                f"/students/{other}/courses", json={"course_ids": course_ids, "waitlist": True}
            )
            assert answer.status_code == 201
        return students, course_ids

    return factory


@pytest.mark.parametrize("courses", COURSES_PER_STUDENT)
def test_get_student_with_a_waitlist_takes_one_statement(
    client, full_courses_with_waitlists, count_queries, courses
):
    students, _ = full_courses_with_waitlists(courses=courses, waiting=3)

    with count_queries() as statements:
        response = client.get(f"/students/{students[-1]}")

    assert response.status_code == 200
    body = response.get_json()
    assert (len(body["courses"]), len(body["waitlist"])) == (0, courses)
    assert {entry["position"] for entry in body["waitlist"]} == {3}
    assert len(statements) == 1


@pytest.mark.parametrize("waiting", [1, 120])
def test_course_waitlist_takes_three_statements(
    client, full_courses_with_waitlists, count_queries, waiting
):
    _, [course] = full_courses_with_waitlists(courses=1, waiting=waiting)

    with count_queries() as statements:
        response = client.get(f"/courses/{course}/waitlist?page_size=100")

    assert response.status_code == 200
    assert [entry["position"] for entry in response.get_json()] == list(
        range(1, min(waiting, 100) + 1)
    )
    # The course exists, the count, the page (positions come with it).
    assert len(statements) == 3


@pytest.mark.parametrize("per_student", COURSES_PER_STUDENT)
def test_student_courses_takes_one_statement(client, seed, count_queries, per_student):
    [student], _ = seed(students=1, courses=per_student, per_student=per_student)

    with count_queries() as statements:
        response = client.get(f"/students/{student}/courses")

    assert response.status_code == 200
    assert len(response.get_json()) == per_student
    assert len(statements) == 1


def test_student_without_courses_takes_a_second_statement_for_the_404_check(
    client, seed, count_queries
):
    [student], _ = seed(students=1, courses=1, per_student=0)

    with count_queries() as statements:
        found = client.get(f"/students/{student}/courses")
    with count_queries() as missing_statements:
        missing = client.get(f"/students/{student + 1000}/courses")

    assert (found.status_code, found.get_json()) == (200, [])
    assert missing.status_code == 404
    assert len(statements) == 2
    assert len(missing_statements) == 2


@pytest.mark.parametrize("per_student", COURSES_PER_STUDENT)
def test_page_of_100_students_takes_three_statements_with_the_count(
    client, seed, count_queries, per_student
):
    seed(students=120, courses=per_student, per_student=per_student)

    with count_queries() as statements:
        response = client.get("/students?page_size=100&page=1")

    assert response.status_code == 200
    body = response.get_json()
    assert len(body) == 100
    assert all(len(student["courses"]) == per_student for student in body)
    # The count, the page of students, and all their courses in one statement.
    assert len(statements) == 3
    assert "count(" in statements[0].lower()


@pytest.mark.parametrize("per_student", COURSES_PER_STUDENT)
def test_course_roster_takes_three_statements(client, seed, count_queries, per_student):
    _, [course, *_] = seed(students=150, courses=per_student, per_student=per_student)

    with count_queries() as statements:
        response = client.get(f"/courses/{course}/students?page=2&page_size=100")

    assert response.status_code == 200
    assert len(response.get_json()) == 50
    # The course exists, the count, the page.
    assert len(statements) == 3


def test_enrolling_into_one_course_with_a_free_seat_takes_six_statements(
    client, seed, count_queries, enrollment_pairs
):
    [student], [course] = seed(students=1, courses=1, per_student=0)
    with client.application.app_context():
        db.session.get(Course, course).capacity = 10
        db.session.commit()

    with count_queries() as statements:
        response = client.post(f"/students/{student}/courses", json={"course_ids": [course]})

    assert response.status_code == 201
    assert enrollment_pairs() == {(student, course)}
    # Was seven (the course locked second, then four statements under its lock). Lock
    # the student, read the course's seats and the student's status in it (no lock),
    # insert the enrollment, its history, then take the seat: the conditional UPDATE
    # is the only statement that locks the course, and the commit follows it. Then
    # the student for the answer.
    assert len(statements) == 6
    assert statements[4].startswith("UPDATE courses SET seats_taken")
    with client.application.app_context():
        assert db.session.get(Course, course).seats_taken == 1


@pytest.mark.parametrize("course_count", [2, 100])
def test_enrolling_in_many_courses_takes_a_fixed_number_of_statements(
    client, seed, count_queries, course_count, enrollment_pairs
):
    [student], course_ids = seed(students=1, courses=course_count, per_student=0)
    for course_id in course_ids[::2]:
        # Half the courses have a seat limit, so the seat count runs too.
        with client.application.app_context():
            db.session.get(Course, course_id).capacity = 10
            db.session.commit()

    with count_queries() as statements:
        response = client.post(f"/students/{student}/courses", json={"course_ids": course_ids})

    assert response.status_code == 201
    assert len(response.get_json()["courses"]) == course_count
    assert enrollment_pairs() == {(student, course_id) for course_id in course_ids}
    # Lock the student, lock the courses, their current statuses, seats taken and
    # waiting, each course's new seats_taken (one executemany: was not there before
    # the maintained count), one multi-row insert, one multi-row history insert
    # (every change is recorded), then the student for the answer.
    assert len(statements) == 8
    assert statements[4].startswith("UPDATE courses SET seats_taken")
    assert statements[6].startswith("INSERT INTO enrollment_history")


def test_dropping_takes_five_statements(client, seed, count_queries, enrollment_statuses):
    [student], [course] = seed(students=1, courses=1, per_student=1)

    with count_queries() as statements:
        response = client.delete(f"/students/{student}/courses/{course}")

    assert response.status_code == 204
    assert enrollment_statuses() == {(student, course): "dropped"}
    # Was two (a DELETE). A drop is kept and may promote, so: lock the course
    # (a freed seat must not be taken by anyone but the next waitlisted student),
    # the enrollment's status with the course's counts, the update, the course's
    # seats_taken (a freed seat: added with the maintained count), the history.
    assert len(statements) == 5


@pytest.mark.parametrize("waiting", [1, 30])
def test_dropping_a_seat_with_students_waiting_adds_one_promotion(
    client, seed, count_queries, enrollment_statuses, waiting
):
    [student, *others], [course] = seed(students=1 + waiting, courses=1, per_student=0)
    with client.application.app_context():
        db.session.get(Course, course).capacity = 1
        db.session.get(Course, course).waitlist_capacity = None
        db.session.commit()
    client.post(f"/students/{student}/courses", json={"course_ids": [course]})
    for other in others:
        client.post(f"/students/{other}/courses", json={"course_ids": [course], "waitlist": True})

    with count_queries() as statements:
        response = client.delete(f"/students/{student}/courses/{course}")

    assert response.status_code == 204
    assert enrollment_statuses()[(student, course)] == "dropped"
    assert enrollment_statuses()[(others[0], course)] == "enrolled"
    # The five of a drop, plus one UPDATE promoting the first in line, whatever the queue.
    assert len(statements) == 6


@pytest.mark.skipif(
    not TEST_DATABASE_URL, reason="EXPLAIN plans are checked on PostgreSQL (set TEST_DATABASE_URL)"
)
def test_roster_and_student_courses_use_indexes(app, client, seed):
    [student, *_], [course] = seed(students=30, courses=1, per_student=1)

    roster = explained_plans(app, client, f"/courses/{course}/students?page=1&page_size=10")
    student_courses = explained_plans(app, client, f"/students/{student}/courses")

    assert len(roster) == 3
    assert all("Seq Scan" not in plan for plan in roster + student_courses), roster
    assert sum("ix_student_courses_course_id_status" in plan for plan in roster) == 2
    assert len(student_courses) == 1
    assert "pk_student_courses" in student_courses[0]
    # The enrolled and waiting counts of each course are read from the roster index too.
    assert "ix_student_courses_course_id_status" in student_courses[0]


@pytest.mark.parametrize("if_match", [False, True])
def test_patching_a_student_takes_three_statements_and_if_match_one_more(
    client, seed, count_queries, db_rows, if_match
):
    [student], _ = seed(students=1, courses=3, per_student=3)
    headers = {"If-Match": client.get(f"/students/{student}").headers["ETag"]} if if_match else {}

    with count_queries() as statements:
        response = client.patch(f"/students/{student}", json={"name": "New"}, headers=headers)

    assert response.status_code == 200
    assert [s.name for s in db_rows(Student)] == ["New"]
    # Lock the student (FOR NO KEY UPDATE), the update, the student for the answer;
    # If-Match reads the current representation under that lock, one statement more.
    assert len(statements) == 3 + if_match


@pytest.mark.parametrize("if_match", [False, True])
def test_patching_a_course_with_if_match_adds_one_statement(
    client, seed, count_queries, db_rows, if_match
):
    _, [course] = seed(students=3, courses=1, per_student=1)
    headers = {"If-Match": client.get(f"/courses/{course}").headers["ETag"]} if if_match else {}

    with count_queries() as statements:
        response = client.patch(f"/courses/{course}", json={"title": "New"}, headers=headers)

    assert response.status_code == 200
    assert [c.title for c in db_rows(Course)] == ["New"]
    # Lock the course, its counts, the course for the change, the update, the course for
    # the answer; If-Match reads the current representation under the lock, one more.
    assert len(statements) == 5 + if_match


@pytest.mark.skipif(
    not TEST_DATABASE_URL, reason="EXPLAIN plans are checked on PostgreSQL (set TEST_DATABASE_URL)"
)
def test_a_roster_page_after_a_cursor_is_read_in_name_order_from_the_index(app, client, seed):
    _, [course] = seed(students=30, courses=1, per_student=1)
    first = client.get(f"/courses/{course}/students?page_size=10")
    after = first.headers["Link"].split("after=")[1].split(">")[0]

    plans = explained_plans(
        app, client, f"/courses/{course}/students?page_size=10&after={after}", "sort"
    )

    # The course exists, the count, the page: the page walks students by (name, id)
    # from the cursor and needs no sort. Sorts are off for the EXPLAIN, like sequential
    # scans, or a 30-row table would be sorted in memory; the bench shows it at scale.
    assert len(plans) == 3
    page = plans[2]
    assert "Index Scan using ix_students_name_id on students" in page
    assert "Index Cond: (ROW((name)::text, id) > ROW(" in page
    assert "Sort" not in page
