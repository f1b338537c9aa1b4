"""Logs: JSON lines, one line per request with its id, enrollment audit events, tracebacks once."""

import json
import logging

import pytest

from app.extensions import db
from app.logs import install_stdout_handler
from app.models import Enrollment
from logformat import HANDLER_NAME, JsonLineFormatter
from tests.support.databases import make_app


@pytest.fixture
def logs(caplog):
    """The records logged at INFO and above during the test."""
    caplog.set_level(logging.INFO)
    return caplog


def request_records(caplog):
    return [r for r in caplog.records if r.name == "app.requests"]


def audit_events(caplog):
    return [
        {key: getattr(r, key) for key in ("action", "student_id", "course_ids", "outcome")}
        for r in caplog.records
        if r.name == "app.audit" and r.event == "enrollment"
    ]


def write_events(caplog):
    return [
        (r.action, r.outcome, r.status, r.actor, r.actor_role,
         getattr(r, "student_id", None), getattr(r, "course_id", None))
        for r in caplog.records
        if r.name == "app.audit" and r.event == "write"
    ]  # fmt: skip


def test_every_request_is_logged_once_with_method_path_status_duration_and_id(client, logs):
    response = client.get("/students?q=ada")

    [record] = request_records(logs)
    assert (record.method, record.path, record.status) == ("GET", "/students", 200)
    assert record.duration_ms >= 0
    assert record.request_id == response.headers["X-Request-ID"]
    assert len(record.request_id) == 32


def test_a_request_id_sent_by_the_caller_is_used_and_echoed(client, logs):
    response = client.get("/students/999", headers={"X-Request-ID": "edge-7f3a.42"})

    assert response.status_code == 404
    assert response.headers["X-Request-ID"] == "edge-7f3a.42"
    [record] = request_records(logs)
    assert (record.status, record.request_id) == (404, "edge-7f3a.42")


@pytest.mark.parametrize("sent", ["", "x" * 129, "bad id with spaces", "ünïcode"])
def test_an_unusable_request_id_is_replaced_by_a_generated_one(client, logs, sent):
    response = client.get("/livez", headers={"X-Request-ID": sent})

    echoed = response.headers["X-Request-ID"]
    assert echoed != sent
    assert len(echoed) == 32
    assert request_records(logs)[0].request_id == echoed


def test_a_log_line_is_one_json_object_with_the_request_fields(client, logs):
    client.get("/livez", headers={"X-Request-ID": "abc-123"})

    [record] = request_records(logs)
    line = JsonLineFormatter().format(record)

    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "INFO"
    assert entry["logger"] == "app.requests"
    assert entry["message"] == "GET /livez 200"
    assert entry["time"].endswith("+00:00")
    assert isinstance(entry["pid"], int)
    assert {k: entry[k] for k in ("method", "path", "status", "request_id")} == {
        "method": "GET",
        "path": "/livez",
        "status": 200,
        "request_id": "abc-123",
    }
    assert isinstance(entry["duration_ms"], float)


def test_the_json_handler_is_installed_once(monkeypatch):
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", root.level)

    install_stdout_handler("warning")
    install_stdout_handler("info")

    assert [h.name for h in root.handlers] == [HANDLER_NAME]
    assert root.level == logging.INFO


def test_enrolling_logs_created_then_unchanged_with_the_request_id(
    client, logs, make_student, make_course
):
    student = make_student()
    first, second = make_course(), make_course()

    client.post(
        f"/students/{student}/courses",
        json={"course_ids": [second, first]},
        headers={"X-Request-ID": "enroll-1"},
    )
    client.post(f"/students/{student}/courses", json={"course_ids": [first]})

    assert audit_events(logs) == [
        {"action": "enroll", "student_id": student, "course_ids": [first, second],
         "outcome": "created"},
        {"action": "enroll", "student_id": student, "course_ids": [first], "outcome": "unchanged"},
    ]  # fmt: skip
    assert next(r for r in logs.records if r.name == "app.audit").request_id == "enroll-1"


def test_a_full_course_logs_refused_capacity_naming_the_full_course(
    client, logs, make_student, make_course, enroll_rows, db_rows
):
    taken, student = make_student(), make_student()
    full, free = make_course(capacity=1), make_course()
    enroll_rows(taken, full)

    response = client.post(f"/students/{student}/courses", json={"course_ids": [full, free]})

    assert response.status_code == 409
    assert [(e.student_id, e.course_id) for e in db_rows(Enrollment)] == [(taken, full)]
    assert audit_events(logs) == [
        {"action": "enroll", "student_id": student, "course_ids": [full],
         "outcome": "refused_capacity"}
    ]  # fmt: skip


def test_unknown_students_and_courses_log_unknown(client, logs, make_student, make_course):
    student, course = make_student(), make_course()

    client.post("/students/999999/courses", json={"course_ids": [course]})
    client.post("/enroll", json={"student_id": student, "course_id": 999999})
    client.delete(f"/students/{student}/courses/{course}")
    client.delete(f"/students/999999/courses/{course}")

    assert [(e["action"], e["student_id"], e["course_ids"], e["outcome"])
            for e in audit_events(logs)] == [
        ("enroll", 999999, [course], "unknown"),
        ("enroll", student, [999999], "unknown"),
        ("unenroll", student, [course], "unknown"),
        ("unenroll", 999999, [course], "unknown"),
    ]  # fmt: skip


def test_unenrolling_logs_dropped(client, logs, make_student, make_course, enroll_rows):
    student, course = make_student(), make_course()
    enroll_rows(student, course)

    assert client.delete(f"/students/{student}/courses/{course}").status_code == 204

    assert audit_events(logs) == [
        {"action": "unenroll", "student_id": student, "course_ids": [course], "outcome": "dropped"}
    ]


def test_deleting_a_student_logs_the_enrollments_it_removed(
    client, logs, make_student, make_course, enroll_rows, db_rows
):
    student, other = make_student(), make_student()
    first, second = make_course(), make_course()
    enroll_rows(student, second, first)
    enroll_rows(other, first)

    assert client.delete(f"/students/{student}").status_code == 204

    assert [(e.student_id, e.course_id) for e in db_rows(Enrollment)] == [(other, first)]
    assert audit_events(logs) == [
        {"action": "delete_student", "student_id": student, "course_ids": [first, second],
         "outcome": "removed"}
    ]  # fmt: skip


def test_deleting_a_course_logs_one_removal_per_enrolled_student(
    client, logs, make_student, make_course, enroll_rows, db_rows
):
    ada, bob = make_student(), make_student()
    course, kept = make_course(), make_course()
    enroll_rows(bob, course)
    enroll_rows(ada, course, kept)

    assert client.delete(f"/courses/{course}").status_code == 204

    assert [(e.student_id, e.course_id) for e in db_rows(Enrollment)] == [(ada, kept)]
    assert audit_events(logs) == [
        {"action": "delete_course", "student_id": ada, "course_ids": [course],
         "outcome": "removed"},
        {"action": "delete_course", "student_id": bob, "course_ids": [course],
         "outcome": "removed"},
    ]  # fmt: skip


def test_deleting_records_without_enrollments_logs_the_writes_but_no_enrollment_event(
    client, logs, make_student, make_course
):
    student, course = make_student(), make_course()
    client.delete(f"/students/{student}")
    client.delete(f"/courses/{course}")

    assert audit_events(logs) == []
    assert write_events(logs) == [
        ("DELETE /students/<id:student_id>", "done", 204, "anonymous", "admin", student, None),
        ("DELETE /courses/<id:course_id>", "done", 204, "anonymous", "admin", None, course),
    ]


def test_every_write_is_audited_with_its_ids_and_outcome(client, logs, make_student):
    taken = make_student(email="taken@example.edu")
    created = client.post("/students", json={"name": "Ada", "email": "ada@example.edu"})
    client.patch(f"/students/{taken}", json={"email": "ada@example.edu"})
    client.post("/courses", json={"code": ""})
    client.delete("/students/999999")
    client.post("/enroll", json={"student_id": taken, "course_id": 999999})

    new_id = created.json["id"]
    assert write_events(logs) == [
        ("POST /students", "done", 201, "anonymous", "admin", new_id, None),
        ("PATCH /students/<id:student_id>", "conflict", 409, "anonymous", "admin", taken, None),
        ("POST /courses", "invalid", 422, "anonymous", "admin", None, None),
        ("DELETE /students/<id:student_id>", "not_found", 404, "anonymous", "admin", 999999,
         None),
        ("POST /enroll", "invalid", 422, "anonymous", "admin", taken, 999999),
    ]  # fmt: skip


def test_an_unexpected_error_logs_its_traceback_once_and_answers_a_generic_500(databases, caplog):
    app = make_app(databases.new("boom"))

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internal detail")

    caplog.set_level(logging.INFO)
    response = app.test_client().get("/boom", headers={"X-Request-ID": "boom-1"})
    with app.app_context():
        db.engine.dispose()

    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    assert "secret internal detail" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
    with_traceback = [r for r in caplog.records if r.exc_info]
    assert len(with_traceback) == 1
    assert with_traceback[0].request_id == "boom-1"
    assert "secret internal detail" in JsonLineFormatter().format(with_traceback[0])
    [record] = request_records(caplog)
    assert (record.status, record.request_id) == (500, "boom-1")


def test_waitlisting_and_promotions_are_audit_events_naming_their_actor(
    client, logs, make_student, make_course
):
    course = make_course(capacity=1, waitlist_capacity=5)
    seated, waiting = make_student(), make_student()
    client.post(f"/students/{seated}/courses", json={"course_ids": [course]})
    logs.clear()

    client.post(f"/students/{waiting}/courses", json={"course_ids": [course], "waitlist": True})
    client.delete(f"/students/{seated}/courses/{course}")

    events = [r for r in logs.records if r.name == "app.audit" and r.event == "enrollment"]
    assert [
        (e.action, e.student_id, e.course_ids, e.outcome, e.actor, getattr(e, "reason", None))
        for e in events
    ] == [
        ("enroll", waiting, [course], "waitlisted", "anonymous", None),
        ("unenroll", seated, [course], "dropped", "anonymous", None),
        ("promote", waiting, [course], "promoted", "system", "promoted"),
    ]
