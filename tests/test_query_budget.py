"""The query budget: how many SQL statements each hot endpoint sends, exactly.

The counts are fixed by design (a student's courses come in the same joined
statement, a page's courses in one more, never one statement per course), so
they are the same for a student with one course or fifty; a change that adds a
lazy load inside a loop fails here.
"""

import pytest
from sqlalchemy import event, insert

from app.extensions import db
from app.models import Course, Enrollment, Student
from tests.support.databases import TEST_DATABASE_URL

COURSES_PER_STUDENT = [1, 50]


@pytest.fixture
def seed(app):
    """Bulk-insert ``students`` students each enrolled in the first ``per_student`` courses."""

    def factory(*, students: int, courses: int, per_student: int) -> tuple[list[int], list[int]]:
        with app.app_context():
            course_ids = list(
                db.session.scalars(
                    insert(Course).returning(Course.id),
                    [{"code": f"C{n:04d}", "title": f"Course {n}"} for n in range(courses)],
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


@pytest.mark.parametrize("course_count", [1, 100])
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
    # Student exists, lock the courses, already enrolled, seats taken, one
    # multi-row insert, then the student with their courses for the answer.
    assert len(statements) == 6


def test_unenroll_takes_two_statements(client, seed, count_queries, enrollment_pairs):
    [student], [course] = seed(students=1, courses=1, per_student=1)

    with count_queries() as statements:
        response = client.delete(f"/students/{student}/courses/{course}")

    assert response.status_code == 204
    assert enrollment_pairs() == set()
    assert len(statements) == 2


def explained_plans(app, client, url: str) -> list[str]:
    """Run ``url`` and return PostgreSQL's plan for every SELECT it sent.

    Sequential scans are disabled for the EXPLAIN, so the plan names an index
    whenever one can serve the lookup (tiny test tables would otherwise be scanned).
    """
    sent: list[tuple[str, object]] = []

    def record(_conn, _cursor, statement, parameters, *_args):
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, parameters))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert client.get(url).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    plans = []
    with engine.connect() as connection:
        connection.exec_driver_sql("SET enable_seqscan = off")
        for statement, parameters in sent:
            rows = connection.exec_driver_sql("EXPLAIN " + statement, parameters)
            plans.append("\n".join(row[0] for row in rows))
    return plans


@pytest.mark.skipif(
    not TEST_DATABASE_URL, reason="EXPLAIN plans are checked on PostgreSQL (set TEST_DATABASE_URL)"
)
def test_roster_and_student_courses_use_indexes(app, client, seed):
    [student, *_], [course] = seed(students=30, courses=1, per_student=1)

    roster = explained_plans(app, client, f"/courses/{course}/students?page=1&page_size=10")
    student_courses = explained_plans(app, client, f"/students/{student}/courses")

    assert len(roster) == 3
    assert all("Seq Scan" not in plan for plan in roster + student_courses), roster
    assert sum("ix_student_courses_course_id_student_id" in plan for plan in roster) == 2
    assert len(student_courses) == 1
    assert "pk_student_courses" in student_courses[0]
    # The enrolled count of each course is read from the roster index too.
    assert "ix_student_courses_course_id_student_id" in student_courses[0]
