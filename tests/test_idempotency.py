"""Idempotent retries: the Idempotency-Key header on the POSTs that create or enroll."""

from datetime import timedelta

import pytest
from sqlalchemy import update

from app.extensions import db
from app.idempotency import KEY_LIFETIME, purge_expired
from app.models import Course, Enrollment, IdempotencyKey, Student, utcnow
from tests.support.databases import flask_cli
from tests.support.servers import GunicornServer
from tests.support.threads import run_at_once

ADA = {"name": "Ada Lovelace", "email": "ada@example.edu"}
KEY = {"Idempotency-Key": "8e03978e-40d5-43e8-bc93-6894a57f9324"}
SECRET = "s" * 32
OTHER_SECRET = "o" * 32


def test_a_retry_replays_the_first_answer_and_creates_nothing_more(client, db_rows):
    first = client.post("/students", json=ADA, headers=KEY)
    retry = client.post("/students", json=ADA, headers=KEY)

    assert first.status_code == retry.status_code == 201
    assert retry.data == first.data
    assert retry.headers["Location"] == first.headers["Location"]
    assert retry.headers["Content-Type"] == "application/json"
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert [s.email for s in db_rows(Student)] == [ADA["email"]]


def test_the_same_json_spelled_differently_is_the_same_request(client, db_rows):
    client.post("/students", json=ADA, headers=KEY)

    retry = client.post(
        "/students",
        data='{ "email": "ada@example.edu",\n "name": "Ada Lovelace" }',
        content_type="application/json",
        headers=KEY,
    )

    assert retry.status_code == 201
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert len(db_rows(Student)) == 1


def test_a_retried_course_creation_answers_201_again_not_409(client, db_rows):
    course = {"code": "CS101", "title": "Programming"}

    first = client.post("/courses", json=course, headers=KEY)
    retry = client.post("/courses", json=course, headers=KEY)
    unkeyed = client.post("/courses", json=course)

    assert (first.status_code, retry.status_code, unkeyed.status_code) == (201, 201, 409)
    assert retry.get_json() == first.get_json()
    assert len(db_rows(Course)) == 1


def test_the_same_key_with_another_body_is_422_and_changes_nothing(client, db_rows):
    client.post("/students", json=ADA, headers=KEY)

    reused = client.post(
        "/students", json={"name": "Alan Turing", "email": "alan@example.edu"}, headers=KEY
    )

    assert reused.status_code == 422
    assert reused.mimetype == "application/problem+json"
    assert "Idempotency-Key" in reused.get_json()["detail"]
    assert [s.email for s in db_rows(Student)] == [ADA["email"]]


def test_the_same_key_on_another_path_is_422(client, make_course, db_rows):
    client.post("/students", json=ADA, headers=KEY)

    reused = client.post("/courses", json={"code": "CS101", "title": "Programming"}, headers=KEY)

    assert reused.status_code == 422
    assert db_rows(Course) == []


@pytest.mark.parametrize("form", ["courses", "enroll", "pair"])
def test_enroll_forms_replay_the_first_answer(client, make_student, make_course, db_rows, form):
    student, course = make_student(), make_course(capacity=5)
    path, body = {
        "courses": (f"/students/{student}/courses", {"course_ids": [course]}),
        "enroll": (f"/students/{student}/enroll", {"course_id": course}),
        "pair": ("/enroll", {"student_id": student, "course_id": course}),
    }[form]

    first = client.post(path, json=body, headers=KEY)
    retry = client.post(path, json=body, headers=KEY)
    unkeyed = client.post(path, json=body)

    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.data == first.data
    assert retry.headers["Idempotent-Replayed"] == "true"
    # Without the key, enrolling again is the usual "nothing changed".
    assert unkeyed.status_code == 200
    assert [(e.student_id, e.course_id) for e in db_rows(Enrollment)] == [(student, course)]


@pytest.mark.parametrize("key", ["", "   ", "k" * 256])
def test_an_empty_or_too_long_key_is_400_and_nothing_is_created(client, db_rows, key):
    response = client.post("/students", json=ADA, headers={"Idempotency-Key": key})

    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert "Idempotency-Key" in response.get_json()["detail"]
    assert db_rows(Student) == []
    assert db_rows(IdempotencyKey) == []


def test_a_key_of_255_characters_is_accepted(client, db_rows):
    response = client.post("/students", json=ADA, headers={"Idempotency-Key": "k" * 255})

    assert response.status_code == 201
    [stored] = db_rows(IdempotencyKey)
    assert (stored.key, stored.status) == ("k" * 255, 201)


def test_an_error_answer_is_not_kept_so_a_corrected_retry_runs(client, make_student, db_rows):
    taken = make_student(email=ADA["email"])

    refused = client.post("/students", json=ADA, headers=KEY)
    client.delete(f"/students/{taken}")
    retried = client.post("/students", json=ADA, headers=KEY)

    assert refused.status_code == 409
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried.headers
    assert [s.email for s in db_rows(Student)] == [ADA["email"]]


def test_a_key_still_claimed_by_a_running_request_is_409(app, client, db_rows):
    client.post("/students", json=ADA, headers=KEY)
    with app.app_context():
        # As if the first request were still running: its answer is not stored yet.
        db.session.execute(update(IdempotencyKey).values(status=None, body=None, headers=None))
        db.session.commit()

    response = client.post("/students", json=ADA, headers=KEY)

    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert "still being processed" in response.get_json()["detail"]
    assert response.headers["Retry-After"] == "1"
    assert len(db_rows(Student)) == 1


def test_a_claim_abandoned_by_a_dead_worker_is_taken_over(app, client, db_rows):
    with app.app_context():
        db.session.add(
            IdempotencyKey(
                caller="x" * 64, key="k", fingerprint="f", created_at=utcnow() - timedelta(hours=1)
            )
        )
        db.session.commit()
    client.post("/students", json=ADA, headers=KEY)
    with app.app_context():
        db.session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == KEY["Idempotency-Key"])
            .values(status=None, created_at=utcnow() - timedelta(minutes=10))
        )
        db.session.commit()
    client.delete(f"/students/{db_rows(Student)[0].id}")

    response = client.post("/students", json=ADA, headers=KEY)

    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response.headers
    assert len(db_rows(Student)) == 1


def test_an_expired_key_is_ignored_and_runs_as_a_new_request(app, client, db_rows):
    first = client.post("/students", json=ADA, headers=KEY)
    with app.app_context():
        db.session.execute(
            update(IdempotencyKey).values(created_at=utcnow() - KEY_LIFETIME - timedelta(1))
        )
        db.session.commit()
    client.delete(first.headers["Location"])

    # A different body would be a 422 within the lifetime; after it, the key is free.
    response = client.post(
        "/students", json={"name": "Alan", "email": "alan@example.edu"}, headers=KEY
    )

    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response.headers
    assert [s.email for s in db_rows(Student)] == ["alan@example.edu"]
    [stored] = db_rows(IdempotencyKey)
    assert stored.created_at > utcnow() - timedelta(hours=1)


def test_purge_deletes_only_expired_keys(app, client, db_rows):
    client.post("/students", json=ADA, headers=KEY)
    client.post(
        "/students",
        json={"name": "A", "email": "a@example.edu"},
        headers={"Idempotency-Key": "old"},
    )
    with app.app_context():
        db.session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == "old")
            .values(created_at=utcnow() - KEY_LIFETIME - timedelta(minutes=1))
        )
        db.session.commit()
        assert purge_expired() == 1

    assert [row.key for row in db_rows(IdempotencyKey)] == [KEY["Idempotency-Key"]]


def test_keys_belong_to_their_caller(client, auth_mode, db_rows):
    auth_mode(AUTH_MODE="tokens", API_TOKENS=f"one:admin:{SECRET},two:admin:{OTHER_SECRET}")
    one = {**KEY, "Authorization": f"Bearer {SECRET}"}
    two = {**KEY, "Authorization": f"Bearer {OTHER_SECRET}"}

    first = client.post("/students", json=ADA, headers=one)
    # The other caller's key of the same name is theirs: their request runs (and conflicts).
    other = client.post("/students", json=ADA, headers=two)
    # With another body, no 422 either: nothing of the first caller's is visible to them.
    other_body = client.post(
        "/students", json={"name": "Alan", "email": "alan@example.edu"}, headers=two
    )

    assert first.status_code == 201
    assert other.status_code == 409
    assert "Idempotent-Replayed" not in other.headers
    assert other_body.status_code == 201
    assert "Idempotent-Replayed" not in other_body.headers
    assert sorted(s.email for s in db_rows(Student)) == ["ada@example.edu", "alan@example.edu"]
    assert len({row.caller for row in db_rows(IdempotencyKey)}) == 2


def test_without_the_header_nothing_is_stored(client, db_rows, count_queries):
    with count_queries() as statements:
        response = client.post("/students", json=ADA)

    assert response.status_code == 201
    assert db_rows(IdempotencyKey) == []
    assert not any("idempotency_keys" in statement for statement in statements)


def test_the_spec_documents_the_header_on_every_keyed_post(client):
    spec = client.get("/openapi.json").get_json()
    keyed = [
        (path, method)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if method != "parameters"
        and {"$ref": "#/components/parameters/Idempotency-Key"} in operation.get("parameters", [])
    ]

    assert sorted(keyed) == [
        ("/courses", "post"),
        ("/enroll", "post"),
        ("/students", "post"),
        ("/students/{student_id}/courses", "post"),
        ("/students/{student_id}/enroll", "post"),
    ]
    header = spec["components"]["parameters"]["Idempotency-Key"]
    assert (header["in"], header["schema"]["maxLength"]) == ("header", 255)


@pytest.mark.slow
def test_the_purge_command_runs_from_the_command_line(databases):
    url = databases.migrated("purge")

    done = flask_cli(url, "purge-idempotency-keys")

    assert "Deleted 0 expired idempotency keys." in done.stdout


# --- races: real threads, real commits ---------------------------------------

ROUNDS = 10
CLIENTS = 4


def test_concurrent_retries_with_one_key_create_one_student(app, db_rows):
    """Clients released at once with one key: one student, and no answer is "email taken".

    Without the claim, every request but one would fail with the duplicate-email
    409; with it, each is the creation, its replay, or "still being processed".
    """
    for round_ in range(ROUNDS):
        body = {"name": "Racer", "email": f"racer{round_}@example.edu"}
        headers = {"Idempotency-Key": f"race-{round_}"}

        def send(_n, body=body, headers=headers):
            response = app.test_client().post("/students", json=body, headers=headers)
            return response.status_code, response.get_json()

        answers = run_at_once(CLIENTS, send)

        created = [answer for status, answer in answers if status == 201]
        busy = [answer for status, answer in answers if status == 409]
        assert len(created) + len(busy) == CLIENTS, answers
        assert created, answers
        assert all(answer == created[0] for answer in created), answers
        assert all("still being processed" in answer["detail"] for answer in busy), answers
        assert [s.email for s in db_rows(Student)].count(body["email"]) == 1


@pytest.mark.slow
def test_concurrent_retries_through_gunicorn_workers_create_one_student(databases, tmp_path):
    """The same race through one gunicorn instance with three worker processes."""
    database_url = databases.migrated("idempotency-race")
    with GunicornServer(tmp_path, database_url=database_url, workers=3) as server:
        for round_ in range(ROUNDS):
            body = {"name": "Racer", "email": f"racer{round_}@example.edu"}
            headers = {"Idempotency-Key": f"race-{round_}"}
            answers = run_at_once(
                CLIENTS * 2,
                lambda _n, body=body, headers=headers: server.request(
                    "POST", "/students", body, headers=headers
                ),
            )

            created = [reply.body for reply in answers if reply.status == 201]
            busy = [reply.body for reply in answers if reply.status == 409]
            assert len(created) + len(busy) == CLIENTS * 2, answers
            assert created, answers
            assert all(answer == created[0] for answer in created), answers
            assert all("still being processed" in answer["detail"] for answer in busy), answers
        students = server.request("GET", "/students?page_size=100").body
        log = server.log()
    assert sorted(s["email"] for s in students) == sorted(
        f"racer{round_}@example.edu" for round_ in range(ROUNDS)
    )
    assert "Traceback" not in log
