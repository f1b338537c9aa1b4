"""Every problem type of app/problems.py, as a client meets it.

Each type is produced the way a client would run into it and checked for its
status, type, title, extension members, ``errors`` shape and ``instance``
(the ``X-Request-ID`` response header); no text carries a Python repr. The
types only nginx or gunicorn answer are checked against their configuration
and in tests/test_hostile_bodies.py and tests/test_reverse_proxy.py.
"""

import json
import re
from datetime import UTC, datetime, timedelta
from http import HTTPStatus

import pytest
from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import Conflict, ServiceUnavailable

from app.errors import PROBLEM_MIMETYPE
from app.extensions import db
from app.models import IdempotencyKey
from app.problems import BLANK, MEMBERS, PROBLEM_TYPES, ProblemSchema
from tests.support.databases import make_app
from tests.support.problems import PROBLEM_KEYS, assert_problem
from tests.support.servers import ROOT

NOW = datetime.now(UTC)
PAST, FUTURE = NOW - timedelta(days=7), NOW + timedelta(days=7)
SECRET = "s" * 32
OWN = "own-student"
API_TOKENS = f"staff:registrar:{'r' * 32},{OWN}:student:{SECRET}"
# Answered by nginx (deploy/nginx-problems.conf) or gunicorn, never by the app.
OUTSIDE_THE_APP = {"request-timeout", "uri-too-long", "gateway-timeout", "headers-too-large"}
# What a Python repr of a list, tuple, dict or string looks like inside a sentence.
REPR = re.compile(r"\[\d|\['|\('|\{'|'\w+'")


def iso(moment: datetime) -> str:
    """A timestamp as the API takes it."""
    return moment.isoformat()


@pytest.fixture
def tokens(auth_mode):
    """The app in tokens mode: a registrar token and a student token tied to ``OWN``."""
    return auth_mode(AUTH_MODE="tokens", API_TOKENS=API_TOKENS)


@pytest.fixture
def raising(databases):
    """An app with one route per error the suite's app has no request for."""
    app = make_app(databases.new("problem-types"))
    errors = {
        "conflict": Conflict("The request conflicts."),
        "service-unavailable": ServiceUnavailable("Retry shortly."),
        "database-unavailable": OperationalError("SELECT 1", {}, ConnectionError("down")),
        "internal-error": RuntimeError("secret internals"),
    }

    @app.get("/raise/<slug>")
    def raise_error(slug):
        raise errors[slug]

    yield app.test_client()
    with app.app_context():
        db.engine.dispose()


# Each case: (request, the extension members the problem must carry).
def bad_request(client, **_):
    return client.post("/students", data='{"name": ', content_type="application/json"), {}


def unauthorized(client, tokens, **_):
    return client.get("/students"), {}


def invalid_token(client, tokens, **_):
    return client.get("/students", headers={"Authorization": "Bearer not-a-token"}), {}


def forbidden(client, tokens, **_):
    return client.get("/students", headers={"Authorization": f"Bearer {SECRET}"}), {}


def override_not_allowed(client, tokens, make_student, make_course, **_):
    student, course = make_student(external_id=OWN), make_course()
    response = client.post(
        f"/students/{student}/courses",
        json={"course_ids": [course], "override": True},
        headers={"Authorization": f"Bearer {SECRET}"},
    )
    return response, {}


def not_found(client, **_):
    return client.get("/students/31337"), {}


def not_enrolled(client, make_student, make_course, **_):
    student, course = make_student(), make_course()
    response = client.delete(f"/students/{student}/courses/{course}")
    return response, {"student_id": student, "course_id": course}


def no_history(client, make_student, make_course, **_):
    student, course = make_student(), make_course()
    response = client.get(f"/students/{student}/courses/{course}/history")
    return response, {"student_id": student, "course_id": course}


def method_not_allowed(client, **_):
    return client.put("/students"), {}


def email_taken(client, make_student, **_):
    make_student(email="ada@example.edu")
    response = client.post("/students", json={"name": "Ada", "email": "ADA@example.edu"})
    return response, {"field": "email", "value": "ada@example.edu"}


def external_id_taken(client, make_student, **_):
    make_student(external_id="s1001")
    response = client.post(
        "/students", json={"name": "B", "email": "b@example.edu", "external_id": "s1001"}
    )
    return response, {"field": "external_id", "value": "s1001"}


def course_code_taken(client, make_course, **_):
    make_course(code="CS101")
    response = client.post("/courses", json={"code": "cs101", "title": "Again"})
    return response, {"field": "code", "value": "CS101"}


def course_full(client, make_student, make_course, enroll_rows, **_):
    full, free = make_course(capacity=1), make_course()
    enroll_rows(make_student(), full)
    response = client.post(f"/students/{make_student()}/courses", json={"course_ids": [free, full]})
    return response, {"course_ids": [full], "waitlist": False}


def enrollment_closed(client, make_student, make_course, **_):
    later = make_course(enrollment_opens_at=FUTURE)
    response = client.post(f"/students/{make_student()}/courses", json={"course_ids": [later]})
    return response, {"course_ids": [later]}


def drop_deadline_passed(client, make_student, make_course, enroll_rows, **_):
    student, course = make_student(), make_course(drop_deadline=PAST)
    enroll_rows(student, course)
    response = client.delete(f"/students/{student}/courses/{course}")
    return response, {"course_id": course, "deadline": iso(PAST)}


def capacity_below_enrolled(client, make_student, make_course, enroll_rows, **_):
    course = make_course(code="CS101", capacity=2)
    enroll_rows(make_student(), course)
    enroll_rows(make_student(), course)
    response = client.patch(f"/courses/{course}", json={"capacity": 1})
    return response, {"code": "CS101", "capacity": 1, "enrolled": 2}


def waitlist_capacity_below_waiting(client, make_student, make_course, enroll_rows, **_):
    course = make_course(code="SEM1", capacity=1, waitlist_capacity=2)
    enroll_rows(make_student(), course)
    client.post(
        f"/students/{make_student()}/courses", json={"course_ids": [course], "waitlist": True}
    )
    response = client.patch(f"/courses/{course}", json={"waitlist_capacity": 0})
    return response, {"code": "SEM1", "waitlist_capacity": 0, "waiting": 1}


def content_too_large(client, **_):
    body = '{"name": "' + "x" * (1024 * 1024) + '", "email": "a@example.edu"}'
    return client.post("/students", data=body, content_type="application/json"), {}


def unsupported_media_type(client, **_):
    return client.post("/students", data="name=A", content_type="text/plain"), {}


def validation_error(client, **_):
    return client.post("/students", json={"name": " ", "email": "a@example.edu"}), {}


def unknown_courses(client, make_student, make_course, **_):
    known = make_course()
    response = client.post(
        f"/students/{make_student()}/courses", json={"course_ids": [known, 999999, 999998]}
    )
    return response, {"course_ids": [999998, 999999]}


def unknown_student(client, make_course, **_):
    response = client.post("/enroll", json={"student_id": 999999, "course_id": make_course()})
    return response, {"student_id": 999999}


def invalid_enrollment_window(client, **_):
    window = {"enrollment_opens_at": iso(FUTURE), "enrollment_closes_at": iso(PAST)}
    return client.post("/courses", json={"code": "W1", "title": "W", **window}), {}


def rate_limited(app, **_):
    limited = make_app(
        app.config["SQLALCHEMY_DATABASE_URI"], RATELIMIT_ENABLED=True, RATELIMIT_WRITES="1/minute"
    )
    client = limited.test_client()
    client.post("/courses", json={"code": "R1", "title": "R"})
    response = client.post("/courses", json={"code": "R2", "title": "R"})
    with limited.app_context():
        db.engine.dispose()
    return response, {}


def identity_provider_unavailable(client, auth_mode, **_):
    auth_mode(
        AUTH_MODE="jwt",
        AUTH_JWKS_URL="http://127.0.0.1:9/jwks",
        AUTH_ISSUER="https://idp.example.edu",
        AUTH_AUDIENCE="enrollment",
    )
    token = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJ4In0.c2ln"
    return client.get("/students", headers={"Authorization": f"Bearer {token}"}), {}


def precondition_failed(client, make_course, **_):
    course = make_course()
    response = client.patch(
        f"/courses/{course}", json={"title": "Renamed"}, headers={"If-Match": '"stale"'}
    )
    return response, {}


def idempotency_key_reused(client, **_):
    key = {"Idempotency-Key": "create-ada"}
    client.post("/students", json={"name": "Ada", "email": "ada@example.edu"}, headers=key)
    response = client.post(
        "/students", json={"name": "Bob", "email": "bob@example.edu"}, headers=key
    )
    return response, {}


def idempotency_key_in_use(client, app, **_):
    key, body = {"Idempotency-Key": "create-ada"}, {"name": "Ada", "email": "ada@example.edu"}
    assert client.post("/students", json=body, headers=key).status_code == 201
    with app.app_context():  # the claim as it is while its first request still runs
        db.session.execute(update(IdempotencyKey).values(status=None, headers=None, body=None))
        db.session.commit()
    return client.post("/students", json=body, headers=key), {}


def raised(slug):
    """A case for an error the test app's route raises."""

    def case(raising, **_):
        return raising.get(f"/raise/{slug}"), {}

    return case


CASES = {
    "bad-request": bad_request,
    "unauthorized": unauthorized,
    "invalid-token": invalid_token,
    "forbidden": forbidden,
    "override-not-allowed": override_not_allowed,
    "not-found": not_found,
    "not-enrolled": not_enrolled,
    "no-history": no_history,
    "method-not-allowed": method_not_allowed,
    "conflict": raised("conflict"),
    "email-taken": email_taken,
    "external-id-taken": external_id_taken,
    "course-code-taken": course_code_taken,
    "course-full": course_full,
    "enrollment-closed": enrollment_closed,
    "drop-deadline-passed": drop_deadline_passed,
    "capacity-below-enrolled": capacity_below_enrolled,
    "waitlist-capacity-below-waiting": waitlist_capacity_below_waiting,
    "idempotency-key-in-use": idempotency_key_in_use,
    "precondition-failed": precondition_failed,
    "content-too-large": content_too_large,
    "unsupported-media-type": unsupported_media_type,
    "validation-error": validation_error,
    "unknown-courses": unknown_courses,
    "unknown-student": unknown_student,
    "invalid-enrollment-window": invalid_enrollment_window,
    "idempotency-key-reused": idempotency_key_reused,
    "rate-limited": rate_limited,
    "internal-error": raised("internal-error"),
    "service-unavailable": raised("service-unavailable"),
    "database-unavailable": raised("database-unavailable"),
    "identity-provider-unavailable": identity_provider_unavailable,
}


def test_every_problem_type_has_a_case_here_or_is_answered_outside_the_app():
    assert set(CASES) | OUTSIDE_THE_APP == set(PROBLEM_TYPES)
    assert not set(CASES) & OUTSIDE_THE_APP


@pytest.mark.parametrize("slug", list(CASES))
def test_each_problem_type_has_its_status_type_members_and_instance(slug, request):
    fixtures = {
        name: request.getfixturevalue(name)
        for name in CASES[slug].__code__.co_varnames[: CASES[slug].__code__.co_argcount]
    }
    response, members = CASES[slug](**fixtures)

    kind = PROBLEM_TYPES[slug]
    body = assert_problem(response, kind.status, slug)
    assert {name: body[name] for name in set(body) & set(MEMBERS)} == members
    assert set(body) <= PROBLEM_KEYS | {"errors"} | set(kind.members)
    for text in [body["title"], body["detail"], *(e["detail"] for e in body.get("errors", []))]:
        assert not REPR.search(text), text


@pytest.mark.parametrize(
    ("slug", "errors"),
    [
        ("bad-request", [{"location": "json", "pointer": "", "detail": "Invalid JSON body."}]),
        (
            "validation-error",
            [{"location": "json", "pointer": "/name", "detail": "Must not be blank."}],
        ),
        (
            "unknown-courses",
            [
                {
                    "location": "json",
                    "pointer": "/course_ids",
                    "detail": "Unknown course ids: 999998, 999999.",
                }
            ],
        ),
        (
            "unknown-student",
            [
                {
                    "location": "json",
                    "pointer": "/student_id",
                    "detail": "Unknown student id: 999999.",
                }
            ],
        ),
    ],
)
def test_errors_is_one_list_of_location_pointer_and_detail_on_every_status(slug, errors, request):
    fixtures = {
        name: request.getfixturevalue(name)
        for name in CASES[slug].__code__.co_varnames[: CASES[slug].__code__.co_argcount]
    }
    response, _members = CASES[slug](**fixtures)

    assert response.get_json()["errors"] == errors


def test_nested_and_query_errors_point_at_their_member(client, make_student):
    nested = client.post(f"/students/{make_student()}/courses", json={"course_ids": [1, "two"]})
    query = client.get("/students?page_size=0")

    assert assert_problem(nested, 422, "validation-error")["errors"] == [
        {"location": "json", "pointer": "/course_ids/1", "detail": "Not a valid integer."}
    ]
    assert assert_problem(query, 422, "validation-error")["errors"] == [
        {
            "location": "query",
            "pointer": "/page_size",
            "detail": "Must be greater than or equal to 1 and less than or equal to 100.",
        }
    ]
    assert "json.course_ids.1: Not a valid integer." in nested.get_json()["detail"]


def test_instance_is_the_request_id_the_caller_sent(client):
    response = client.get("/students/31337", headers={"X-Request-ID": "frontend-7f3a"})

    assert response.headers["X-Request-ID"] == "frontend-7f3a"
    assert response.get_json()["instance"] == "frontend-7f3a"


def test_each_type_uri_resolves_to_its_description(client):
    for slug, kind in PROBLEM_TYPES.items():
        page = client.get(kind.uri)

        assert page.status_code == 200, slug
        assert page.get_json() == {
            "type": kind.uri,
            "status": kind.status,
            "title": kind.title,
            "description": kind.description,
            "members": {name: MEMBERS[name].metadata["description"] for name in kind.members},
        }
    assert set(client.get("/problems").get_json()) == set(PROBLEM_TYPES)
    assert_problem(client.get("/problems/no-such-type"), 404, "not-found")


def test_the_type_pages_need_no_credentials(client, tokens):
    assert client.get("/problems/course-full").status_code == 200
    assert client.get("/problems").status_code == 200


def test_the_spec_lists_every_type_and_shows_each_as_an_example(client):
    spec = client.get("/openapi.json").get_json()

    problem = spec["components"]["schemas"]["Problem"]
    assert problem["properties"]["type"]["enum"] == [k.uri for k in PROBLEM_TYPES.values()] + [
        BLANK
    ]
    assert set(problem["required"]) == PROBLEM_KEYS
    assert set(problem["properties"]) == PROBLEM_KEYS | {"errors"} | set(MEMBERS)
    documented = {
        HTTPStatus[name]: response["content"][PROBLEM_MIMETYPE]["examples"]
        for name, response in spec["components"]["responses"].items()
        if name in HTTPStatus.__members__ and HTTPStatus[name] >= 400
    }
    assert {HTTPStatus.CONFLICT, HTTPStatus.UNPROCESSABLE_ENTITY} <= set(documented)
    for status, examples in documented.items():
        assert set(examples) == {s for s, k in PROBLEM_TYPES.items() if k.status == status}
        for slug, example in examples.items():
            assert example["value"]["type"] == PROBLEM_TYPES[slug].uri
            assert ProblemSchema().validate(example["value"]) == {}, slug


def test_nginx_answers_its_own_errors_with_registry_types_and_the_request_id():
    conf = (ROOT / "deploy" / "nginx-problems.conf").read_text()
    bodies = re.findall(r"return (\d+) '(.+)\\n';", conf)

    assert len(bodies) == 7
    for status, body in bodies:
        problem = json.loads(body.replace("$enrollment_request_id", "rid"))
        kind = next(k for k in PROBLEM_TYPES.values() if k.uri == problem["type"])
        assert (kind.status, kind.title) == (int(status), problem["title"])
        assert problem["status"] == int(status)
        assert problem["instance"] == "rid"
