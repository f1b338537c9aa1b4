"""Every error is application/problem+json with type, title, status, detail and instance."""

import logging

import pytest

from app.errors import DOMAIN_PROBLEMS, DUPLICATE_STUDENT_PROBLEMS
from app.models import Student
from app.problems import PROBLEM_TYPES
from app.services.errors import DomainError, DuplicateStudent
from tests.support.databases import make_app
from tests.support.problems import assert_problem


def test_unknown_route_is_404_problem(client):
    assert_problem(client.get("/no/such/thing"), 404, "not-found")


def test_wrong_method_is_405_problem_with_allow(client):
    response = client.put("/students")

    assert_problem(response, 405, "method-not-allowed")
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}


def test_malformed_json_is_400_problem(client, db_rows):
    response = client.post("/students", data='{"name": ', content_type="application/json")

    body = assert_problem(response, 400, "bad-request")
    assert body["errors"] == [{"location": "json", "pointer": "", "detail": "Invalid JSON body."}]
    assert body["detail"] == "Invalid request: json: Invalid JSON body."
    assert db_rows(Student) == []


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_non_json_body_is_415_problem(client, content_type, db_rows):
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post(
        "/students", data='{"name": "A", "email": "a@example.edu"}', headers=headers
    )

    assert_problem(response, 415, "unsupported-media-type")
    assert db_rows(Student) == []


def test_body_over_one_mebibyte_is_413_problem(client, db_rows):
    payload = '{"name": "' + "x" * (1024 * 1024) + '", "email": "a@example.edu"}'

    response = client.post("/students", data=payload, content_type="application/json")

    assert_problem(response, 413, "content-too-large")
    assert db_rows(Student) == []


@pytest.mark.parametrize("payload", ["[]", "null", "42", '"text"'])
def test_json_that_is_not_an_object_is_422(client, payload, db_rows):
    response = client.post("/students", data=payload, content_type="application/json")

    body = assert_problem(response, 422, "validation-error")
    assert body["errors"] == [{"location": "json", "pointer": "", "detail": "Invalid input type."}]
    assert db_rows(Student) == []


def test_validation_problem_names_location_and_field(client):
    response = client.post("/students", json={"name": "A", "email": "a@example.edu", "age": 3})

    body = assert_problem(response, 422, "validation-error")
    assert body["errors"] == [{"location": "json", "pointer": "/age", "detail": "Unknown field."}]
    assert "json.age" in body["detail"]


@pytest.mark.parametrize("text", ["bad\x00name", "lone \ud800 surrogate"])
def test_nul_and_lone_surrogates_are_422(client, text, db_rows):
    response = client.post("/students", json={"name": text, "email": "a@example.edu"})

    assert_problem(response, 422)
    assert db_rows(Student) == []


@pytest.mark.parametrize(
    "path", ["/students/0", "/students/-1", "/students/abc", "/students/2147483648"]
)
def test_ids_outside_the_32_bit_range_are_404(client, path):
    assert_problem(client.get(path), 404, "not-found")


def test_unexpected_exception_is_generic_500_logged_once(databases, caplog):
    app = make_app(databases.new("boom"))

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals: SELECT * FROM students")

    with caplog.at_level(logging.ERROR):
        response = app.test_client().get("/boom")

    body = assert_problem(response, 500, "internal-error")
    assert "secret" not in response.get_data(as_text=True)
    assert "SELECT" not in body["detail"]
    records = [r for r in caplog.records if r.exc_info]
    assert len(records) == 1
    assert "secret internals" in str(records[0].exc_info[1])


def test_every_domain_error_has_a_problem_type():
    mapped = set(DOMAIN_PROBLEMS) | {DuplicateStudent}

    assert mapped == set(DomainError.__subclasses__())
    assert set(DOMAIN_PROBLEMS.values()) <= set(PROBLEM_TYPES)
    assert set(DUPLICATE_STUDENT_PROBLEMS.values()) <= set(PROBLEM_TYPES)
