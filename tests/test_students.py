"""Students: create, read, list, update, delete."""

import json
import re

from sqlalchemy import text

from app.extensions import db
from app.models import Course, Enrollment, Student
from tests.support.problems import invalid


def test_create_student_returns_201_with_location_and_stores_it(client, db_rows):
    response = client.post(
        "/students", json={"name": "  Ada Lovelace ", "email": "Ada@Example.EDU"}
    )

    assert response.status_code == 201
    body = response.get_json()
    assert body["name"] == "Ada Lovelace"
    assert body["email"] == "ada@example.edu"
    assert body["courses"] == []
    assert body["created_at"].endswith("+00:00")
    assert response.headers["Location"] == f"/students/{body['id']}"
    [stored] = db_rows(Student)
    assert (stored.id, stored.name, stored.email) == (body["id"], "Ada Lovelace", "ada@example.edu")


def test_duplicate_email_ignoring_case_is_409(client, make_student, db_rows):
    make_student(email="ada@example.edu")

    response = client.post("/students", json={"name": "Other", "email": "ADA@example.edu"})

    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert "ada@example.edu" in response.get_json()["detail"]
    assert len(db_rows(Student)) == 1


def test_get_student_includes_courses_ordered_by_code(
    client, make_student, make_course, enroll_rows
):
    student = make_student(name="Ada", email="ada@example.edu")
    math = make_course(code="MATH101", title="Calculus")
    cs = make_course(code="CS101", title="Programming")
    enroll_rows(student, math, cs)

    response = client.get(f"/students/{student}")

    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"id", "name", "email", "external_id", "created_at", "courses", "waitlist"}
    assert [c["code"] for c in body["courses"]] == ["CS101", "MATH101"]
    assert body["waitlist"] == []
    assert set(body["courses"][0]) == {"id", "code", "title", "enrolled_at"}
    assert body["courses"][0]["id"] == cs


def test_get_unknown_student_is_404_problem(client):
    response = client.get("/students/999999")

    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["detail"] == "Student 999999 does not exist."


def test_list_students_is_paginated_and_ordered_by_id(client, make_student):
    ids = [make_student() for _ in range(25)]

    first = client.get("/students")
    second = client.get("/students?page=2&page_size=20")

    assert first.status_code == 200
    assert [s["id"] for s in first.get_json()] == ids[:20]
    assert [s["id"] for s in second.get_json()] == ids[20:]
    assert json.loads(first.headers["X-Pagination"]) == {
        "total": 25,
        "total_pages": 2,
        "first_page": 1,
        "last_page": 2,
        "page": 1,
        "next_page": 2,
    }
    assert json.loads(second.headers["X-Pagination"])["previous_page"] == 1


def test_list_students_filters_by_name_or_email_case_insensitively(client, make_student):
    ada = make_student(name="Ada Lovelace", email="countess@example.edu")
    alan = make_student(name="Alan Turing", email="ADA.fan@example.edu")
    make_student(name="Grace Hopper", email="grace@example.edu")

    response = client.get("/students?q=ada")

    assert [s["id"] for s in response.get_json()] == [ada, alan]
    assert json.loads(response.headers["X-Pagination"])["total"] == 2


def test_list_filter_treats_like_wildcards_literally(client, make_student):
    make_student(name="Percent 100%")
    make_student(name="Plain")

    response = client.get("/students?q=%25")

    assert [s["name"] for s in response.get_json()] == ["Percent 100%"]


def test_list_students_nests_their_courses(client, make_student, make_course, enroll_rows):
    student = make_student()
    course = make_course(code="CS101")
    enroll_rows(student, course)

    [item] = client.get("/students").get_json()

    assert [c["code"] for c in item["courses"]] == ["CS101"]


def test_page_size_outside_1_to_100_is_422(client):
    for query in ("page_size=0", "page_size=101", "page=0"):
        response = client.get(f"/students?{query}")
        assert response.status_code == 422, query
        assert invalid(response, "query"), query


def test_patch_student_changes_only_given_fields(client, make_student, db_rows):
    student = make_student(name="Ada", email="ada@example.edu")

    response = client.patch(f"/students/{student}", json={"name": "Ada King"})

    assert response.status_code == 200
    assert response.get_json()["name"] == "Ada King"
    [stored] = db_rows(Student)
    assert (stored.name, stored.email) == ("Ada King", "ada@example.edu")


def test_patch_to_taken_email_is_409_and_changes_nothing(client, make_student, db_rows):
    make_student(email="ada@example.edu")
    other = make_student(email="alan@example.edu")

    response = client.patch(f"/students/{other}", json={"email": "ADA@example.edu"})

    assert response.status_code == 409
    assert {s.email for s in db_rows(Student)} == {"ada@example.edu", "alan@example.edu"}


def test_patch_unknown_student_is_404(client):
    assert client.patch("/students/424242", json={"name": "X"}).status_code == 404


def test_delete_student_removes_enrollments_but_keeps_courses(
    client, make_student, make_course, enroll_rows, db_rows
):
    student = make_student()
    course = make_course(capacity=1)
    enroll_rows(student, course)

    response = client.delete(f"/students/{student}")

    assert response.status_code == 204
    assert response.data == b""
    assert db_rows(Student) == []
    assert db_rows(Enrollment) == []
    assert [c.id for c in db_rows(Course)] == [course]
    assert client.get(f"/courses/{course}").get_json()["enrolled_count"] == 0


def test_delete_unknown_student_is_404(client):
    assert client.delete("/students/31337").status_code == 404


def test_read_only_fields_cannot_be_set(client, db_rows):
    for field, value in (("id", 5), ("created_at", "2020-01-01T00:00:00Z"), ("courses", [])):
        response = client.post(
            "/students", json={"name": "A", "email": "a@example.edu", field: value}
        )
        assert response.status_code == 422, field
        assert list(invalid(response)) == [f"/{field}"], field
    assert db_rows(Student) == []


def test_blank_name_and_invalid_email_are_422(client, db_rows):
    response = client.post("/students", json={"name": "   ", "email": "not-an-email"})

    assert response.status_code == 422
    assert set(invalid(response)) == {"/name", "/email"}
    assert db_rows(Student) == []


def test_name_and_email_limits_mirror_the_columns(client, db_rows):
    too_long_name = client.post("/students", json={"name": "x" * 201, "email": "a@example.edu"})
    too_long_email = client.post(
        "/students", json={"name": "A", "email": "a" * 64 + "@" + "b" * 186 + ".edu"}
    )
    longest = client.post("/students", json={"name": "x" * 200, "email": "c@example.edu"})

    assert too_long_name.status_code == 422
    assert too_long_email.status_code == 422
    assert longest.status_code == 201
    assert len(db_rows(Student)) == 1


def test_a_deleted_students_id_is_never_given_to_a_new_student(client):
    ids = [
        client.post("/students", json={"name": f"S{i}", "email": f"s{i}@example.edu"}).json["id"]
        for i in range(2)
    ]

    assert client.delete(f"/students/{ids[-1]}").status_code == 204
    newcomer = client.post("/students", json={"name": "New", "email": "new@example.edu"})

    assert newcomer.status_code == 201
    assert newcomer.json["id"] > ids[-1]
    assert client.get(f"/students/{ids[-1]}").status_code == 404


SIX_DECIMALS = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}"


def test_every_stored_timestamp_has_fractional_seconds(app, make_student, make_course):
    student, course = make_student(), make_course()
    with app.app_context():
        # Only the ids: enrolled_at is the column's server default.
        db.session.execute(
            text("INSERT INTO student_courses (student_id, course_id) VALUES (:s, :c)"),
            {"s": student, "c": course},
        )
        db.session.commit()
        stored = db.session.execute(
            text(
                "SELECT s.created_at, e.enrolled_at FROM students s "
                "JOIN student_courses e ON e.student_id = s.id"
            )
        ).one()
        precision = None
        if db.engine.dialect.name == "postgresql":
            precision = (
                db.session.execute(
                    text(
                        "SELECT DISTINCT datetime_precision FROM information_schema.columns "
                        "WHERE table_name IN ('students', 'student_courses') "
                        "AND column_name IN ('created_at', 'enrolled_at')"
                    )
                )
                .scalars()
                .all()
            )
        db.session.remove()

    if precision is None:
        # SQLite stores text: both with SQLAlchemy's six decimals.
        assert [bool(re.fullmatch(SIX_DECIMALS, value)) for value in stored] == [True, True]
    else:
        assert precision == [6]
