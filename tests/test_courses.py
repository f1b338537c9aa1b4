"""Courses: create, read, list, update (capacity rule), delete, roster."""

import json

from app.models import Course, Enrollment, Student


def test_create_course_returns_201_with_location(client, db_rows):
    response = client.post(
        "/courses",
        json={"code": " cs101 ", "title": "Programming", "description": "Intro", "capacity": 30},
    )

    assert response.status_code == 201
    body = response.get_json()
    assert body == {
        "id": body["id"],
        "code": "CS101",
        "title": "Programming",
        "description": "Intro",
        "capacity": 30,
        "waitlist_capacity": 0,
        "enrollment_opens_at": None,
        "enrollment_closes_at": None,
        "drop_deadline": None,
        "enrolled_count": 0,
        "waitlist_count": 0,
        "seats_left": 30,
        "created_at": body["created_at"],
    }
    assert response.headers["Location"] == f"/courses/{body['id']}"
    [stored] = db_rows(Course)
    assert (stored.code, stored.capacity) == ("CS101", 30)


def test_a_code_of_full_length_is_stored_whole_even_when_a_capital_is_longer(client, db_rows):
    code = "straße-" + "x" * 25  # 32 characters; "ß".upper() is "SS"

    response = client.post("/courses", json={"code": code, "title": "German", "capacity": 5})

    assert response.status_code == 201, response.get_json()
    assert response.get_json()["code"] == "STRAßE-" + "X" * 25
    assert [course.code for course in db_rows(Course)] == ["STRAßE-" + "X" * 25]


def test_capacity_may_be_null_for_unlimited(client):
    response = client.post("/courses", json={"code": "X1", "title": "T", "capacity": None})

    assert response.status_code == 201
    assert response.get_json()["capacity"] is None


def test_duplicate_code_ignoring_case_is_409(client, make_course, db_rows):
    make_course(code="CS101")

    response = client.post("/courses", json={"code": "cs101", "title": "Again"})

    assert response.status_code == 409
    assert "CS101" in response.get_json()["detail"]
    assert len(db_rows(Course)) == 1


def test_invalid_course_fields_are_422(client, db_rows):
    cases = [
        {"code": "", "title": "T"},
        {"code": "X" * 33, "title": "T"},
        {"code": "OK", "title": "T" * 201},
        {"code": "OK", "title": "T", "description": "d" * 2001},
        {"code": "OK", "title": "T", "capacity": 0},
        {"code": "OK", "title": "T", "capacity": 2**31},
        {"code": "OK", "title": "T", "capacity": "5"},
        {"code": "OK", "title": "T", "capacity": 2.5},
        {"code": "OK", "title": "T", "capacity": True},
        {"title": "T"},
    ]
    for body in cases:
        response = client.post("/courses", json=body)
        assert response.status_code == 422, body
    assert db_rows(Course) == []


def test_list_courses_ordered_by_code_with_filter(client, make_course):
    make_course(code="MATH101", title="Calculus")
    make_course(code="CS201", title="Data structures")
    make_course(code="CS101", title="Programming")

    everything = client.get("/courses")
    filtered = client.get("/courses?q=calc")

    assert [c["code"] for c in everything.get_json()] == ["CS101", "CS201", "MATH101"]
    assert json.loads(everything.headers["X-Pagination"])["total"] == 3
    assert [c["code"] for c in filtered.get_json()] == ["MATH101"]


def test_enrolled_count_equals_real_enrollments(client, make_student, make_course, enroll_rows):
    course = make_course(capacity=10)
    for _ in range(3):
        enroll_rows(make_student(), course)

    assert client.get(f"/courses/{course}").get_json()["enrolled_count"] == 3
    assert client.get("/courses").get_json()[0]["enrolled_count"] == 3


def test_patch_course_updates_fields(client, make_course, db_rows):
    course = make_course(code="CS101", title="Old")

    response = client.patch(f"/courses/{course}", json={"title": "New", "description": None})

    assert response.status_code == 200
    assert response.get_json()["title"] == "New"
    assert db_rows(Course)[0].title == "New"


def test_lowering_capacity_below_enrolled_count_is_409(
    client, make_student, make_course, enroll_rows, db_rows
):
    course = make_course(capacity=5)
    for _ in range(3):
        enroll_rows(make_student(), course)

    refused = client.patch(f"/courses/{course}", json={"capacity": 2})
    allowed = client.patch(f"/courses/{course}", json={"capacity": 3})

    assert refused.status_code == 409
    assert "3 students" in refused.get_json()["detail"]
    assert allowed.status_code == 200
    assert allowed.get_json()["capacity"] == 3
    assert db_rows(Course)[0].capacity == 3


def test_patch_code_to_taken_code_is_409(client, make_course):
    make_course(code="CS101")
    other = make_course(code="CS102")

    assert client.patch(f"/courses/{other}", json={"code": "cs101"}).status_code == 409


def test_delete_course_removes_enrollments_but_keeps_students(
    client, make_student, make_course, enroll_rows, db_rows
):
    student = make_student()
    course = make_course()
    enroll_rows(student, course)

    response = client.delete(f"/courses/{course}")

    assert response.status_code == 204
    assert db_rows(Course) == []
    assert db_rows(Enrollment) == []
    assert [s.id for s in db_rows(Student)] == [student]
    assert client.get(f"/students/{student}").get_json()["courses"] == []


def test_unknown_course_is_404(client):
    assert client.get("/courses/777").status_code == 404
    assert client.patch("/courses/777", json={"title": "x"}).status_code == 404
    assert client.delete("/courses/777").status_code == 404
    assert client.get("/courses/777/students").status_code == 404


def test_roster_is_paginated_and_ordered_by_name_then_id(
    client, make_student, make_course, enroll_rows
):
    course = make_course()
    zed = make_student(name="Zed")
    bob_1 = make_student(name="Bob")
    bob_2 = make_student(name="Bob")
    amy = make_student(name="Amy")
    outsider = make_student(name="Aaron")
    for student in (zed, bob_1, bob_2, amy):
        enroll_rows(student, course)
    enroll_rows(outsider, make_course())  # another course, whose roster must not leak in

    first = client.get(f"/courses/{course}/students?page_size=3")
    second = client.get(f"/courses/{course}/students?page_size=3&page=2")

    assert first.status_code == 200
    assert [s["id"] for s in first.get_json()] == [amy, bob_1, bob_2]
    assert [s["id"] for s in second.get_json()] == [zed]
    assert set(first.get_json()[0]) == {"id", "name", "email", "enrolled_at"}
    assert json.loads(first.headers["X-Pagination"])["total"] == 4
