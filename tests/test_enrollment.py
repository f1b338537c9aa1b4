"""Enrollment: all-or-nothing, idempotent, capacity-bound; compatibility forms."""

from app.models import Enrollment
from tests.support.problems import assert_problem, invalid


def test_enroll_in_several_courses_returns_201_and_the_student(
    client, make_student, make_course, enrollment_pairs
):
    student = make_student()
    math = make_course(code="MATH101")
    cs = make_course(code="CS101")

    response = client.post(f"/students/{student}/courses", json={"course_ids": [math, cs, math]})

    assert response.status_code == 201
    body = response.get_json()
    assert body["id"] == student
    assert [c["code"] for c in body["courses"]] == ["CS101", "MATH101"]
    assert all(c["enrolled_at"].endswith("+00:00") for c in body["courses"])
    assert enrollment_pairs() == {(student, math), (student, cs)}


def test_enrolling_again_is_idempotent_and_answers_200(
    client, make_student, make_course, enroll_rows, enrollment_pairs
):
    student = make_student()
    course = make_course()
    enroll_rows(student, course)

    response = client.post(f"/students/{student}/courses", json={"course_ids": [course]})

    assert response.status_code == 200
    assert [c["id"] for c in response.get_json()["courses"]] == [course]
    assert enrollment_pairs() == {(student, course)}


def test_mixing_known_and_new_courses_creates_only_the_new(
    client, make_student, make_course, enroll_rows, enrollment_pairs
):
    student = make_student()
    old = make_course()
    new = make_course()
    enroll_rows(student, old)

    response = client.post(f"/students/{student}/courses", json={"course_ids": [old, new]})

    assert response.status_code == 201
    assert enrollment_pairs() == {(student, old), (student, new)}


def test_unknown_course_ids_are_422_naming_them_and_enroll_nothing(
    client, make_student, make_course, enrollment_pairs
):
    student = make_student()
    course = make_course()

    response = client.post(
        f"/students/{student}/courses", json={"course_ids": [course, 999998, 999999]}
    )

    assert response.status_code == 422
    body = assert_problem(response, 422, "unknown-courses")
    assert body["course_ids"] == [999998, 999999]
    assert invalid(response) == {"/course_ids": ["Unknown course ids: 999998, 999999."]}
    assert enrollment_pairs() == set()


def test_full_course_is_409_naming_it_and_enrolls_nothing(
    client, make_student, make_course, enroll_rows, enrollment_pairs
):
    seated = make_student()
    student = make_student()
    full = make_course(code="FULL1", capacity=1)
    open_course = make_course(code="OPEN1", capacity=10)
    enroll_rows(seated, full)

    response = client.post(f"/students/{student}/courses", json={"course_ids": [open_course, full]})

    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert "FULL1" in response.get_json()["detail"]
    assert f"id {full}" in response.get_json()["detail"]
    assert enrollment_pairs() == {(seated, full)}


def test_capacity_counts_every_course_in_the_request(client, make_student, make_course):
    course = make_course(capacity=2)
    first, second, third = make_student(), make_student(), make_student()

    statuses = [
        client.post(f"/students/{s}/courses", json={"course_ids": [course]}).status_code
        for s in (first, second, third)
    ]

    assert statuses == [201, 201, 409]
    assert client.get(f"/courses/{course}").get_json()["enrolled_count"] == 2


def test_unlimited_course_takes_everyone(client, make_student, make_course):
    course = make_course(capacity=None)
    for _ in range(12):
        student = make_student()
        assert (
            client.post(f"/students/{student}/courses", json={"course_ids": [course]}).status_code
            == 201
        )
    assert client.get(f"/courses/{course}").get_json()["enrolled_count"] == 12


def test_enroll_unknown_student_is_404(client, make_course, enrollment_pairs):
    course = make_course()

    response = client.post("/students/424242/courses", json={"course_ids": [course]})

    assert response.status_code == 404
    assert enrollment_pairs() == set()


def test_course_ids_must_be_1_to_100_positive_integers(client, make_student):
    student = make_student()
    bad_bodies = [
        {"course_ids": []},
        {"course_ids": list(range(1, 102))},
        {"course_ids": [0]},
        {"course_ids": [-1]},
        {"course_ids": ["1"]},
        {"course_ids": [1.5]},
        {"course_ids": [True]},
        {"course_ids": [2**31]},
        {"course_ids": 1},
        {},
    ]
    for body in bad_bodies:
        response = client.post(f"/students/{student}/courses", json=body)
        assert response.status_code == 422, body
        assert any(pointer.startswith("/course_ids") for pointer in invalid(response)), body


def test_hundred_course_ids_are_accepted(client, make_student, make_course, enrollment_pairs):
    student = make_student()
    courses = [make_course() for _ in range(100)]

    response = client.post(f"/students/{student}/courses", json={"course_ids": courses})

    assert response.status_code == 201
    assert len(response.get_json()["courses"]) == 100
    assert len(enrollment_pairs()) == 100


def test_list_student_courses_has_course_representation_and_enrolled_at(
    client, make_student, make_course, enroll_rows
):
    student = make_student()
    other = make_student()
    b = make_course(code="B200", title="Bee", capacity=3, description="About bees")
    a = make_course(code="A100", title="Ay")
    enroll_rows(student, b, a)
    enroll_rows(other, b)

    response = client.get(f"/students/{student}/courses")

    assert response.status_code == 200
    body = response.get_json()
    assert [c["code"] for c in body] == ["A100", "B200"]
    assert set(body[1]) == {
        "id",
        "code",
        "title",
        "description",
        "capacity",
        "waitlist_capacity",
        "enrollment_opens_at",
        "enrollment_closes_at",
        "drop_deadline",
        "enrolled_count",
        "waitlist_count",
        "seats_left",
        "created_at",
        "enrolled_at",
    }
    assert (body[1]["enrolled_count"], body[1]["seats_left"]) == (2, 1)
    assert body[1]["description"] == "About bees"


def test_list_courses_of_unknown_student_is_404(client):
    assert client.get("/students/5555/courses").status_code == 404


def test_unenroll_drops_the_pair_and_frees_the_seat(
    client, make_student, make_course, enroll_rows, enrollment_statuses
):
    student, waiting = make_student(), make_student()
    course = make_course(capacity=1)
    enroll_rows(student, course)

    response = client.delete(f"/students/{student}/courses/{course}")

    assert response.status_code == 204
    assert enrollment_statuses() == {(student, course): "dropped"}
    assert (
        client.post(f"/students/{waiting}/courses", json={"course_ids": [course]}).status_code
        == 201
    )


def test_unenroll_when_not_enrolled_is_404(client, make_student, make_course):
    student = make_student()
    course = make_course()

    response = client.delete(f"/students/{student}/courses/{course}")

    assert response.status_code == 404
    assert "not enrolled" in response.get_json()["detail"]


def test_compat_enroll_creates_then_reports_existing(client, make_student, make_course, db_rows):
    student = make_student()
    course = make_course()

    created = client.post("/enroll", json={"student_id": student, "course_id": course})
    again = client.post("/enroll", json={"student_id": student, "course_id": course})

    assert created.status_code == 201
    assert again.status_code == 200
    assert created.get_json()["student_id"] == student
    assert created.get_json()["course_id"] == course
    assert created.get_json() == again.get_json()
    assert len(db_rows(Enrollment)) == 1


def test_compat_enroll_unknown_ids_in_body_are_422_naming_them(client, make_student, make_course):
    student = make_student()
    course = make_course()

    unknown_student = client.post("/enroll", json={"student_id": 99999, "course_id": course})
    unknown_course = client.post("/enroll", json={"student_id": student, "course_id": 99999})

    assert assert_problem(unknown_student, 422, "unknown-student")["student_id"] == 99999
    assert list(invalid(unknown_student)) == ["/student_id"]
    assert assert_problem(unknown_course, 422, "unknown-courses")["course_ids"] == [99999]
    assert list(invalid(unknown_course)) == ["/course_id"]


def test_compat_enroll_respects_capacity(client, make_student, make_course, enroll_rows):
    course = make_course(capacity=1)
    enroll_rows(make_student(), course)

    response = client.post("/enroll", json={"student_id": make_student(), "course_id": course})

    assert response.status_code == 409


def test_student_enroll_form(client, make_student, make_course, enrollment_pairs):
    student = make_student()
    course = make_course()

    created = client.post(f"/students/{student}/enroll", json={"course_id": course})
    again = client.post(f"/students/{student}/enroll", json={"course_id": course})
    missing_student = client.post("/students/99999/enroll", json={"course_id": course})
    missing_course = client.post(f"/students/{student}/enroll", json={"course_id": 99999})

    assert (created.status_code, again.status_code) == (201, 200)
    assert set(created.get_json()) == {
        "student_id",
        "course_id",
        "status",
        "enrolled_at",
        "waitlisted_at",
        "dropped_at",
        "position",
    }
    assert (created.get_json()["status"], created.get_json()["position"]) == ("enrolled", None)
    assert missing_student.status_code == 404
    assert missing_course.status_code == 422
    assert enrollment_pairs() == {(student, course)}
