"""The enrollment lifecycle: waitlists and promotion, drops kept, windows, deadlines, overrides."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from app.extensions import db
from app.models import Course, Enrollment, EnrollmentHistory
from app.services import enrollment
from app.services.actors import NamedActor
from app.services.errors import OverrideNotAllowed
from tests.support.problems import assert_problem, invalid

NOW = datetime.now(UTC)
PAST, FUTURE = NOW - timedelta(days=7), NOW + timedelta(days=7)


def iso(moment: datetime) -> str:
    """A datetime as the API sends it."""
    return moment.isoformat()


@pytest.fixture
def history_rows(app):
    """Every history row as (student_id, course_id, from, to, actor, reason), oldest first."""

    def read() -> list[tuple]:
        with app.app_context():
            rows = db.session.execute(
                db.select(
                    EnrollmentHistory.student_id,
                    EnrollmentHistory.course_id,
                    EnrollmentHistory.from_status,
                    EnrollmentHistory.to_status,
                    EnrollmentHistory.actor,
                    EnrollmentHistory.reason,
                ).order_by(EnrollmentHistory.id)
            )
            return [tuple(row) for row in rows]

    return read


@pytest.fixture
def enroll(client):
    """POST /students/{id}/courses for one student and some courses; returns the response."""

    def send(student: int, *courses: int, **flags):
        return client.post(f"/students/{student}/courses", json={"course_ids": courses, **flags})

    return send


@pytest.fixture
def full_course(make_course, make_student, enroll):
    """A course of ``capacity`` seats, all taken, with a waitlist of ``waitlist_capacity``."""

    def factory(capacity: int = 1, waitlist_capacity: int | None = 10, **fields) -> int:
        course = make_course(capacity=capacity, waitlist_capacity=waitlist_capacity, **fields)
        for _ in range(capacity):
            assert enroll(make_student(), course).status_code == 201
        return course

    return factory


def waitlist_of(client, course: int) -> list[tuple[int, int]]:
    """The course's waitlist as (student id, position), in promotion order."""
    body = client.get(f"/courses/{course}/waitlist?page_size=100").get_json()
    return [(entry["id"], entry["position"]) for entry in body]


# --- courses ------------------------------------------------------------------


def test_a_course_has_waitlist_window_and_deadline_fields_and_read_only_counts(client):
    response = client.post(
        "/courses",
        json={
            "code": "BIO1",
            "title": "Biology",
            "capacity": 2,
            "waitlist_capacity": None,
            "enrollment_opens_at": "2026-01-10T09:00:00+01:00",
            "enrollment_closes_at": "2026-02-01T00:00:00Z",
            "drop_deadline": "2026-03-01T00:00:00Z",
        },
    )

    assert response.status_code == 201
    body = response.get_json()
    assert body["waitlist_capacity"] is None
    assert body["enrollment_opens_at"] == "2026-01-10T08:00:00+00:00"
    assert body["enrollment_closes_at"] == "2026-02-01T00:00:00+00:00"
    assert body["drop_deadline"] == "2026-03-01T00:00:00+00:00"
    assert (body["enrolled_count"], body["waitlist_count"], body["seats_left"]) == (0, 0, 2)
    unlimited = client.post("/courses", json={"code": "ANY1", "title": "Any"}).get_json()
    assert (unlimited["capacity"], unlimited["seats_left"], unlimited["waitlist_capacity"]) == (
        None,
        None,
        0,
    )
    for read_only in ("enrolled_count", "waitlist_count", "seats_left"):
        refused = client.patch(f"/courses/{body['id']}", json={read_only: 1})
        assert refused.status_code == 422


def test_a_window_that_closes_before_it_opens_is_422_on_create_and_update(
    client, make_course, db_rows
):
    refused = client.post(
        "/courses",
        json={
            "code": "W1",
            "title": "W",
            "enrollment_opens_at": iso(FUTURE),
            "enrollment_closes_at": iso(PAST),
        },
    )
    course = make_course(enrollment_opens_at=PAST)
    # Checked against the stored opening time too.
    patched = client.patch(f"/courses/{course}", json={"enrollment_closes_at": iso(PAST)})

    assert refused.status_code == 422
    assert_problem(refused, 422, "invalid-enrollment-window")
    assert list(invalid(refused)) == ["/enrollment_closes_at"]
    assert patched.status_code == 422
    assert [(c.code, c.enrollment_closes_at) for c in db_rows(Course)] == [("C0001", None)]


def test_times_without_a_utc_offset_are_refused(client):
    response = client.post(
        "/courses", json={"code": "N1", "title": "N", "drop_deadline": "2026-03-01T00:00:00"}
    )

    assert response.status_code == 422
    assert list(invalid(response)) == ["/drop_deadline"]


# --- waitlisting --------------------------------------------------------------


def test_a_full_course_waitlists_a_student_who_asks_for_it(
    client, enroll, make_student, full_course, enrollment_statuses, history_rows
):
    course = full_course(capacity=1)
    student = make_student()

    response = enroll(student, course, waitlist=True)

    assert response.status_code == 201
    body = response.get_json()
    assert body["courses"] == []
    [waiting] = body["waitlist"]
    assert (waiting["id"], waiting["position"]) == (course, 1)
    assert waiting["waitlisted_at"].endswith("+00:00")
    assert enrollment_statuses()[(student, course)] == "waitlisted"
    assert history_rows()[-1] == (student, course, None, "waitlisted", "anonymous", "requested")
    counts = client.get(f"/courses/{course}").get_json()
    assert (counts["enrolled_count"], counts["waitlist_count"], counts["seats_left"]) == (1, 1, 0)
    assert client.get(f"/students/{student}").get_json()["waitlist"] == body["waitlist"]


def test_a_full_course_without_waitlist_is_409_and_writes_nothing(
    enroll, make_student, make_course, full_course, enrollment_statuses, history_rows
):
    full, free = full_course(capacity=1), make_course(code="FREE1")
    student = make_student()
    before = (enrollment_statuses(), history_rows())

    response = enroll(student, free, full)

    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert f"(id {full}, capacity 1)" in response.get_json()["detail"]
    assert (enrollment_statuses(), history_rows()) == before


@pytest.mark.parametrize("waitlist_capacity", [0, 2])
def test_a_full_waitlist_is_409_naming_the_course_and_writes_nothing(
    enroll, make_student, full_course, enrollment_statuses, history_rows, waitlist_capacity
):
    course = full_course(capacity=1, waitlist_capacity=waitlist_capacity)
    for _ in range(waitlist_capacity):
        assert enroll(make_student(), course, waitlist=True).status_code == 201
    before = (enrollment_statuses(), history_rows())

    response = enroll(make_student(), course, waitlist=True)

    assert response.status_code == 409
    detail = response.get_json()["detail"]
    assert f"(id {course}, capacity 1) and no room on their waitlists" in detail
    assert (enrollment_statuses(), history_rows()) == before


def test_a_waitlist_without_limit_takes_everyone_in_order(
    client, enroll, make_student, full_course
):
    course = full_course(capacity=1, waitlist_capacity=None)
    students = [make_student() for _ in range(5)]

    for student in students:
        assert enroll(student, course, waitlist=True).status_code == 201

    assert waitlist_of(client, course) == [(s, n) for n, s in enumerate(students, start=1)]


def test_enrollment_is_all_or_nothing_across_waitlists_and_windows(
    enroll, make_student, make_course, full_course, enrollment_statuses, history_rows
):
    waitlisted = full_course(capacity=1)
    closed = make_course(code="LATE1", enrollment_closes_at=PAST)
    student = make_student()
    before = (enrollment_statuses(), history_rows())

    response = enroll(student, waitlisted, closed, waitlist=True)

    assert response.status_code == 409
    detail = response.get_json()["detail"]
    assert detail.startswith(f"Enrollment is not open for: LATE1 (id {closed}, closes ")
    assert detail.endswith("Nothing was enrolled.")
    assert (enrollment_statuses(), history_rows()) == before


@pytest.mark.parametrize(
    ("window", "words"),
    [
        ({"enrollment_opens_at": FUTURE}, f"opens {FUTURE.isoformat()}"),
        ({"enrollment_closes_at": PAST}, f"closes {PAST.isoformat()}"),
        (
            {"enrollment_opens_at": PAST - timedelta(days=1), "enrollment_closes_at": PAST},
            f"opens {(PAST - timedelta(days=1)).isoformat()}, closes {PAST.isoformat()}",
        ),
    ],
)
def test_outside_its_window_a_course_is_409_naming_it_with_its_window(
    enroll, make_student, make_course, enrollment_statuses, window, words
):
    course = make_course(code="WIN1", **window)

    response = enroll(make_student(), course)

    assert response.status_code == 409
    assert f"WIN1 (id {course}, {words})" in response.get_json()["detail"]
    assert enrollment_statuses() == {}


def test_inside_its_window_a_course_enrolls(enroll, make_student, make_course):
    course = make_course(enrollment_opens_at=PAST, enrollment_closes_at=FUTURE)

    assert enroll(make_student(), course).status_code == 201


def test_repeating_a_request_is_idempotent_for_enrolled_and_waitlisted(
    client, enroll, make_student, make_course, full_course, history_rows
):
    full, free = full_course(capacity=1), make_course()
    student = make_student()
    first = enroll(student, full, free, waitlist=True)
    rows = history_rows()

    again = enroll(student, full, free, waitlist=True)
    without_waitlist = enroll(student, full, free)

    assert first.status_code == 201
    assert (again.status_code, without_waitlist.status_code) == (200, 200)
    assert again.get_json() == first.get_json() == without_waitlist.get_json()
    assert history_rows() == rows


def test_201_when_any_status_changed_200_when_none_did(
    enroll, make_student, make_course, full_course
):
    known, new = make_course(), full_course(capacity=1)
    student = make_student()
    enroll(student, known)

    assert enroll(student, known, new, waitlist=True).status_code == 201
    assert enroll(student, known, new, waitlist=True).status_code == 200


def test_a_dropped_student_who_enrolls_again_is_enrolled_and_the_history_keeps_the_drop(
    client, enroll, make_student, make_course, enrollment_statuses
):
    course = make_course()
    student = make_student()
    enroll(student, course)
    client.delete(f"/students/{student}/courses/{course}")

    response = enroll(student, course)

    assert response.status_code == 201
    assert [c["id"] for c in response.get_json()["courses"]] == [course]
    assert enrollment_statuses() == {(student, course): "enrolled"}
    history = client.get(f"/students/{student}/courses/{course}/history").get_json()
    assert [(h["from_status"], h["to_status"], h["reason"]) for h in history] == [
        (None, "enrolled", "requested"),
        ("enrolled", "dropped", "requested"),
        ("dropped", "enrolled", "requested"),
    ]
    [row] = client.get(f"/students/{student}/enrollments").get_json()
    # Each time is the latest of its status: the drop stays on record.
    assert row["dropped_at"] is not None
    assert row["enrolled_at"] > row["dropped_at"]


def test_a_dropped_student_who_asks_again_for_a_full_course_is_waitlisted(
    client, enroll, make_student, make_course
):
    course = make_course(capacity=1, waitlist_capacity=5)
    student = make_student()
    enroll(student, course)
    client.delete(f"/students/{student}/courses/{course}")
    enroll(make_student(), course)

    response = enroll(student, course, waitlist=True)

    assert response.status_code == 201
    assert [(w["id"], w["position"]) for w in response.get_json()["waitlist"]] == [(course, 1)]


# --- dropping and promotion ----------------------------------------------------


def test_dropping_keeps_the_enrollment_and_promotes_the_first_waitlisted_in_the_same_request(
    client, app, enroll, make_student, full_course, enrollment_statuses, history_rows
):
    course = full_course(capacity=1)
    [seated] = [s for (s, c), status in enrollment_statuses().items() if c == course]
    first, second, third = (make_student() for _ in range(3))
    for student in (third, second, first):
        enroll(student, course, waitlist=True)
    # The same waitlisted_at for all three: the lowest student id goes first.
    with app.app_context():
        db.session.execute(
            update(Enrollment)
            .where(Enrollment.course_id == course, Enrollment.status == "waitlisted")
            .values(waitlisted_at=NOW)
        )
        db.session.commit()

    response = client.delete(f"/students/{seated}/courses/{course}")

    assert response.status_code == 204
    statuses = enrollment_statuses()
    assert (statuses[(seated, course)], statuses[(first, course)]) == ("dropped", "enrolled")
    assert waitlist_of(client, course) == [(second, 1), (third, 2)]
    assert history_rows()[-2:] == [
        (seated, course, "enrolled", "dropped", "anonymous", "requested"),
        (first, course, "waitlisted", "enrolled", "system", "promoted"),
    ]
    counts = client.get(f"/courses/{course}").get_json()
    assert (counts["enrolled_count"], counts["waitlist_count"], counts["seats_left"]) == (1, 2, 0)
    [row] = client.get(f"/students/{seated}/enrollments").get_json()
    assert row["status"] == "dropped"
    assert row["enrolled_at"] is not None
    assert row["dropped_at"] is not None


def test_leaving_a_waitlist_promotes_no_one_and_closes_the_gap(
    client, enroll, make_student, full_course, enrollment_statuses
):
    course = full_course(capacity=1)
    first, second, third = (make_student() for _ in range(3))
    for student in (first, second, third):
        enroll(student, course, waitlist=True)
    before = {pair: s for pair, s in enrollment_statuses().items() if s == "enrolled"}

    assert client.delete(f"/students/{second}/courses/{course}").status_code == 204

    assert {p: s for p, s in enrollment_statuses().items() if s == "enrolled"} == before
    assert waitlist_of(client, course) == [(first, 1), (third, 2)]


def test_nothing_to_drop_is_404(client, enroll, make_student, make_course):
    course = make_course()
    never, dropped = make_student(), make_student()
    enroll(dropped, course)
    client.delete(f"/students/{dropped}/courses/{course}")

    assert client.delete(f"/students/{never}/courses/{course}").status_code == 404
    again = client.delete(f"/students/{dropped}/courses/{course}")
    assert again.status_code == 404
    assert again.get_json()["detail"] == f"Student {dropped} is not enrolled in course {course}."
    unknown = client.delete(f"/students/999999/courses/{course}")
    assert unknown.get_json()["detail"] == "Student 999999 does not exist."


def test_after_the_drop_deadline_a_drop_is_409_and_changes_nothing(
    client, enroll, make_student, make_course, enrollment_statuses, history_rows
):
    course = make_course(code="DL1", drop_deadline=PAST)
    student = make_student()
    enroll(student, course)
    before = (enrollment_statuses(), history_rows())

    response = client.delete(f"/students/{student}/courses/{course}")

    assert response.status_code == 409
    assert response.get_json()["detail"] == (
        f"The drop deadline of DL1 (id {course}) was {PAST.isoformat()}; nothing was dropped."
    )
    assert (enrollment_statuses(), history_rows()) == before


def test_before_the_drop_deadline_a_drop_goes_through(client, enroll, make_student, make_course):
    course = make_course(drop_deadline=FUTURE)
    student = make_student()
    enroll(student, course)

    assert client.delete(f"/students/{student}/courses/{course}").status_code == 204


# --- capacity changes ---------------------------------------------------------


def test_raising_the_capacity_promotes_into_the_new_seats_in_order(
    client, enroll, make_student, full_course, enrollment_statuses, history_rows
):
    course = full_course(capacity=1)
    waiting = [make_student() for _ in range(4)]
    for student in waiting:
        enroll(student, course, waitlist=True)

    response = client.patch(f"/courses/{course}", json={"capacity": 3})

    assert response.status_code == 200
    body = response.get_json()
    assert (body["enrolled_count"], body["waitlist_count"], body["seats_left"]) == (3, 2, 0)
    statuses = enrollment_statuses()
    assert [statuses[(s, course)] for s in waiting] == [
        "enrolled",
        "enrolled",
        "waitlisted",
        "waitlisted",
    ]
    assert history_rows()[-2:] == [
        (waiting[0], course, "waitlisted", "enrolled", "system", "capacity_raised"),
        (waiting[1], course, "waitlisted", "enrolled", "system", "capacity_raised"),
    ]
    assert waitlist_of(client, course) == [(waiting[2], 1), (waiting[3], 2)]


def test_making_the_capacity_unlimited_promotes_everyone_waiting(
    client, enroll, make_student, full_course
):
    course = full_course(capacity=2)
    for _ in range(3):
        enroll(make_student(), course, waitlist=True)

    body = client.patch(f"/courses/{course}", json={"capacity": None}).get_json()

    assert (body["enrolled_count"], body["waitlist_count"], body["seats_left"]) == (5, 0, None)


def test_lowering_capacities_below_the_counts_is_409_and_changes_nothing(
    client, enroll, make_student, full_course, db_rows
):
    course = full_course(capacity=2, waitlist_capacity=5)
    for _ in range(2):
        enroll(make_student(), course, waitlist=True)

    seats = client.patch(f"/courses/{course}", json={"capacity": 1, "title": "New"})
    places = client.patch(f"/courses/{course}", json={"waitlist_capacity": 1, "title": "New"})

    assert seats.status_code == 409
    assert seats.get_json()["detail"] == "Capacity 1 is below the 2 students enrolled in C0001."
    assert places.status_code == 409
    assert places.get_json()["detail"] == (
        "Waitlist capacity 1 is below the 2 students waiting for C0001."
    )
    [stored] = db_rows(Course)
    assert (stored.title, stored.capacity, stored.waitlist_capacity) == ("A course", 2, 5)
    assert client.patch(f"/courses/{course}", json={"waitlist_capacity": 2}).status_code == 200


# --- deleting -----------------------------------------------------------------


def test_deleting_a_seat_holder_promotes_the_next_in_each_course_they_held_a_seat_in(
    client, enroll, make_student, make_course, enrollment_statuses, history_rows
):
    holder = make_student()
    first, second = (
        make_course(capacity=1, waitlist_capacity=5),
        make_course(capacity=1, waitlist_capacity=5),
    )
    waited = make_course(capacity=1, waitlist_capacity=5)
    enroll(holder, first, second)
    enroll(make_student(), waited)
    enroll(holder, waited, waitlist=True)
    next_in_first, next_in_second, behind_holder = make_student(), make_student(), make_student()
    enroll(next_in_first, first, waitlist=True)
    enroll(next_in_second, second, waitlist=True)
    enroll(behind_holder, waited, waitlist=True)

    assert client.delete(f"/students/{holder}").status_code == 204

    statuses = enrollment_statuses()
    assert not [pair for pair in statuses if pair[0] == holder]
    assert statuses[(next_in_first, first)] == "enrolled"
    assert statuses[(next_in_second, second)] == "enrolled"
    assert statuses[(behind_holder, waited)] == "waitlisted"
    assert waitlist_of(client, waited) == [(behind_holder, 1)]
    # The deleted student's history stays, with the deletion recorded.
    deleted = [row for row in history_rows() if row[0] == holder and row[5] == "student_deleted"]
    assert deleted == [
        (holder, first, "enrolled", "dropped", "anonymous", "student_deleted"),
        (holder, second, "enrolled", "dropped", "anonymous", "student_deleted"),
        (holder, waited, "waitlisted", "dropped", "anonymous", "student_deleted"),
    ]


def test_deleting_a_course_keeps_its_history_with_the_course_id(
    client, enroll, make_student, make_course, enrollment_statuses
):
    course = make_course(capacity=1, waitlist_capacity=3)
    seated, waiting = make_student(), make_student()
    enroll(seated, course)
    enroll(waiting, course, waitlist=True)

    assert client.delete(f"/courses/{course}").status_code == 204

    assert enrollment_statuses() == {}
    history = client.get(f"/students/{waiting}/courses/{course}/history").get_json()
    assert [(h["course_id"], h["to_status"], h["reason"]) for h in history] == [
        (course, "waitlisted", "requested"),
        (course, "dropped", "course_deleted"),
    ]


# --- overrides ----------------------------------------------------------------


def test_an_override_enrolls_past_capacity_and_outside_the_window(
    client, enroll, make_student, full_course, make_course, history_rows
):
    full = full_course(capacity=1)
    closed = make_course(enrollment_closes_at=PAST)
    student = make_student()

    response = enroll(student, full, closed, override=True, waitlist=True)

    assert response.status_code == 201
    assert sorted(c["id"] for c in response.get_json()["courses"]) == sorted([full, closed])
    counts = client.get(f"/courses/{full}").get_json()
    assert (counts["enrolled_count"], counts["seats_left"]) == (2, 0)
    assert history_rows()[-2:] == [
        (student, full, None, "enrolled", "anonymous", "override"),
        (student, closed, None, "enrolled", "anonymous", "override"),
    ]
    # A course overfilled by an override still accepts other changes.
    assert client.patch(f"/courses/{full}", json={"title": "Renamed"}).status_code == 200


def test_an_override_drops_after_the_deadline(
    client, enroll, make_student, make_course, history_rows
):
    course = make_course(drop_deadline=PAST)
    student = make_student()
    enroll(student, course)

    response = client.delete(f"/students/{student}/courses/{course}?override=true")

    assert response.status_code == 204
    assert history_rows()[-1] == (student, course, "enrolled", "dropped", "anonymous", "override")


STUDENT_SECRET = "s" * 40


@pytest.mark.parametrize("override", ["true", "false"])
def test_override_from_a_student_token_is_403_and_changes_nothing(
    client,
    auth_mode,
    make_student,
    full_course,
    enrollment_statuses,
    history_rows,
    override,
):
    course = full_course(capacity=1)
    seated = next(s for (s, c) in enrollment_statuses() if c == course)
    student = make_student(external_id="s4242")
    auth_mode(AUTH_MODE="tokens", API_TOKENS=f"s4242:student:{STUDENT_SECRET}")
    headers = {"Authorization": f"Bearer {STUDENT_SECRET}"}
    before = (enrollment_statuses(), history_rows())

    answers = [
        client.post(
            f"/students/{student}/courses",
            json={"course_ids": [course], "override": True},
            headers=headers,
        ),
        client.post(
            "/enroll",
            json={"student_id": student, "course_id": course, "override": True},
            headers=headers,
        ),
        client.post(
            f"/students/{student}/enroll",
            json={"course_id": course, "override": True},
            headers=headers,
        ),
    ]

    for answer in answers:
        assert answer.status_code == 403
        assert answer.mimetype == "application/problem+json"
        assert answer.get_json()["detail"].startswith("Only registrar or admin may send override")
    assert (enrollment_statuses(), history_rows()) == before
    # Without the override the same student waitlists, and the history names their token.
    waitlisted = client.post(
        f"/students/{student}/courses",
        json={"course_ids": [course], "waitlist": True},
        headers=headers,
    )
    assert waitlisted.status_code == 201
    assert history_rows()[-1] == (student, course, None, "waitlisted", "s4242", "requested")
    # Dropping their own place with override=true is refused too; override=false is a plain drop.
    drop = client.delete(
        f"/students/{student}/courses/{course}?override={override}", headers=headers
    )
    if override == "true":
        assert drop.status_code == 403
        assert enrollment_statuses()[(student, course)] == "waitlisted"
    else:
        assert drop.status_code == 204
        assert enrollment_statuses()[(student, course)] == "dropped"
    assert enrollment_statuses()[(seated, course)] == "enrolled"


def test_the_override_rule_holds_for_any_caller_of_the_service(app, make_student, make_course):
    student, course = make_student(), make_course()

    with app.app_context(), pytest.raises(OverrideNotAllowed):
        enrollment.enroll(student, [course], actor=NamedActor("job", "student"), override=True)


# --- compatibility forms ------------------------------------------------------


def test_the_compatibility_forms_waitlist_and_answer_with_the_status(
    client, make_student, full_course
):
    course = full_course(capacity=1)
    student, other = make_student(), make_student()

    pair = client.post(
        "/enroll", json={"student_id": student, "course_id": course, "waitlist": True}
    )
    again = client.post(
        "/enroll", json={"student_id": student, "course_id": course, "waitlist": True}
    )
    path = client.post(f"/students/{other}/enroll", json={"course_id": course, "waitlist": True})

    assert (pair.status_code, again.status_code, path.status_code) == (201, 200, 201)
    body = pair.get_json()
    assert (body["status"], body["position"], body["enrolled_at"]) == ("waitlisted", 1, None)
    assert again.get_json() == body
    assert (path.get_json()["status"], path.get_json()["position"]) == ("waitlisted", 2)


def test_the_compatibility_forms_take_an_override(client, make_student, full_course):
    course = full_course(capacity=1)

    response = client.post(
        f"/students/{make_student()}/enroll", json={"course_id": course, "override": True}
    )

    assert response.status_code == 201
    assert response.get_json()["status"] == "enrolled"


def test_waitlist_and_override_must_be_json_booleans(client, make_student, make_course):
    student, course = make_student(), make_course()

    for flags in ({"waitlist": "yes"}, {"override": 1}, {"waitlist": None}):
        response = client.post(
            f"/students/{student}/courses", json={"course_ids": [course], **flags}
        )
        assert response.status_code == 422
    assert client.delete(f"/students/{student}/courses/{course}?override=1").status_code == 422


# --- reads --------------------------------------------------------------------


def test_the_waitlist_is_paginated_in_promotion_order(client, enroll, make_student, full_course):
    course = full_course(capacity=1)
    waiting = [make_student() for _ in range(5)]
    for student in waiting:
        enroll(student, course, waitlist=True)

    response = client.get(f"/courses/{course}/waitlist?page=2&page_size=2")

    assert response.status_code == 200
    assert [(e["id"], e["position"]) for e in response.get_json()] == [
        (waiting[2], 3),
        (waiting[3], 4),
    ]
    assert set(response.get_json()[0]) == {"id", "name", "email", "waitlisted_at", "position"}
    assert '"total": 5' in response.headers["X-Pagination"]
    assert client.get("/courses/999999/waitlist").status_code == 404


def test_rosters_list_only_enrolled_students(client, enroll, make_student, full_course):
    course = full_course(capacity=1)
    enroll(make_student(), course, waitlist=True)

    roster = client.get(f"/courses/{course}/students").get_json()

    assert len(roster) == 1
    assert client.get(f"/courses/{course}").get_json()["enrolled_count"] == 1


def test_a_students_enrollments_in_any_status_filterable_by_status(
    client, enroll, make_student, make_course, full_course
):
    kept, dropped, waited = make_course(), make_course(), full_course(capacity=1)
    student = make_student()
    enroll(student, kept, dropped)
    enroll(student, waited, waitlist=True)
    client.delete(f"/students/{student}/courses/{dropped}")

    everything = client.get(f"/students/{student}/enrollments").get_json()
    only_dropped = client.get(f"/students/{student}/enrollments?status=dropped").get_json()

    assert sorted((e["course_id"], e["status"], e["position"]) for e in everything) == sorted(
        [(kept, "enrolled", None), (dropped, "dropped", None), (waited, "waitlisted", 1)]
    )
    assert [e["course_id"] for e in only_dropped] == [dropped]
    assert client.get(f"/students/{student}/enrollments?status=gone").status_code == 422
    assert client.get("/students/999999/enrollments").status_code == 404
    empty = client.get(f"/students/{make_student()}/enrollments")
    assert (empty.status_code, empty.get_json()) == (200, [])


def test_an_enrollments_history_oldest_first_and_404_without_one(
    client, enroll, make_student, make_course
):
    course = make_course()
    student = make_student()
    enroll(student, course)
    client.delete(f"/students/{student}/courses/{course}")

    history = client.get(f"/students/{student}/courses/{course}/history").get_json()

    assert [(h["from_status"], h["to_status"]) for h in history] == [
        (None, "enrolled"),
        ("enrolled", "dropped"),
    ]
    assert set(history[0]) == {
        "at",
        "student_id",
        "course_id",
        "from_status",
        "to_status",
        "actor",
        "reason",
    }
    assert history[0]["at"] <= history[1]["at"]
    none = client.get(f"/students/{student}/courses/{make_course()}/history")
    assert none.status_code == 404
    assert "has no enrollment history" in none.get_json()["detail"]
    assert client.get(f"/students/999999/courses/{course}/history").status_code == 404
