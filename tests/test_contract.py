"""The OpenAPI document is a contract clients can be generated from.

Every operation has a stable camelCase ``operationId`` and a description;
every field an answer always carries is ``required`` (and ``nullable`` where it
may be null); request bodies mark the fields they need. The generated clients
themselves are built and driven in tests/test_clients.py.
"""

import re

from app.operations import OPERATIONS
from app.schemas import Representation

CAMEL_CASE = re.compile(r"^[a-z]+(?:[A-Z][a-z0-9]*)*$")
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def operations(spec: dict):
    """Every documented operation as (path, method, operation)."""
    for path, path_item in spec["paths"].items():
        for method, operation in path_item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def component(spec: dict, schema: dict) -> tuple[str | None, dict]:
    """A schema with its ``$ref`` resolved, and the component's name (None if inline)."""
    if "$ref" not in schema:
        return None, schema
    name = schema["$ref"].rsplit("/", 1)[-1]
    return name, spec["components"]["schemas"][name]


def object_schemas(spec: dict, schema: dict, seen: set[str]):
    """The object schemas reachable from ``schema`` (through arrays and properties), by name."""
    name, schema = component(spec, schema)
    if name in seen:
        return
    if name:
        seen.add(name)
    if schema.get("type") == "array":
        yield from object_schemas(spec, schema["items"], seen)
    elif "properties" in schema:
        yield name, schema
        for prop in schema["properties"].values():
            yield from object_schemas(spec, prop, seen)


def success_body_schemas(spec: dict):
    """Every object schema a 2xx answer's body (or one nested in it) is documented with."""
    seen: set[str] = set()
    for _path, _method, operation in operations(spec):
        for status, response in operation["responses"].items():
            if status.startswith("2") and "content" in response:
                for media in response["content"].values():
                    yield from object_schemas(spec, media["schema"], seen)


def representations(base: type = Representation):
    """Every output schema class (subclasses of subclasses included)."""
    for subclass in base.__subclasses__():
        yield subclass
        yield from representations(subclass)


def test_every_operation_has_a_unique_camel_case_operation_id_and_a_description(client):
    spec = client.get("/openapi.json").get_json()

    ids = [operation.get("operationId") for _path, _method, operation in operations(spec)]
    assert all(isinstance(operation_id, str) for operation_id in ids), ids
    assert all(CAMEL_CASE.match(operation_id) for operation_id in ids), ids
    assert len(set(ids)) == len(ids), ids
    for path, method, operation in operations(spec):
        assert operation.get("description"), (path, method)
        assert operation.get("summary"), (path, method)


def test_operation_ids_are_the_documented_ones_and_the_table_has_no_stale_entry(client):
    spec = client.get("/openapi.json").get_json()

    documented = {(path, method): op["operationId"] for path, method, op in operations(spec)}
    assert documented == {key: entry.operation_id for key, entry in OPERATIONS.items()}
    assert documented["/students/{student_id}/courses", "post"] == "enrollStudentInCourses"
    assert documented["/students", "get"] == "listStudents"


def test_every_field_of_every_success_body_is_required(client):
    spec = client.get("/openapi.json").get_json()

    checked = dict(success_body_schemas(spec))
    assert {"Student", "Course", "StudentCourse", "RosterEntry", "WaitlistEntry"} <= set(checked)
    assert {"Enrollment", "HistoryEntry", "EnrolledCourseSummary"} <= set(checked)
    for name, schema in checked.items():
        assert sorted(schema.get("required", [])) == sorted(schema["properties"]), name


def missing_required(spec: dict, schema: dict, body, at: str = "") -> list[str]:
    """Where ``body`` lacks a field its schema (or a nested one) says is required."""
    _name, schema = component(spec, schema)
    if schema.get("type") == "array":
        return [
            gap
            for index, item in enumerate(body)
            for gap in missing_required(spec, schema["items"], item, f"{at}/{index}")
        ]
    if "properties" not in schema or body is None:
        return []
    gaps = [f"{at}/{field}" for field in schema.get("required", []) if field not in body]
    for field, prop in schema["properties"].items():
        if field in body:
            gaps += missing_required(spec, prop, body[field], f"{at}/{field}")
    return gaps


def test_every_answer_carries_every_field_its_schema_requires(client):
    spec = client.get("/openapi.json").get_json()
    ada = client.post("/students", json={"name": "Ada", "email": "ada@example.edu"}).get_json()
    alan = client.post("/students", json={"name": "Alan", "email": "alan@example.edu"}).get_json()
    course = client.post(
        "/courses", json={"code": "CS1", "title": "One seat", "capacity": 1, "waitlist_capacity": 5}
    ).get_json()
    client.post(f"/students/{ada['id']}/courses", json={"course_ids": [course["id"]]})
    waitlisted = client.post(
        f"/students/{alan['id']}/enroll", json={"course_id": course["id"], "waitlist": True}
    )
    assert waitlisted.get_json()["status"] == "waitlisted"
    reads = {
        "/students": "/students",
        "/students/{student_id}": f"/students/{alan['id']}",
        "/students/{student_id}/courses": f"/students/{ada['id']}/courses",
        "/students/{student_id}/enrollments": f"/students/{alan['id']}/enrollments",
        "/students/{student_id}/courses/{course_id}/history": (
            f"/students/{alan['id']}/courses/{course['id']}/history"
        ),
        "/courses": "/courses",
        "/courses/{course_id}": f"/courses/{course['id']}",
        "/courses/{course_id}/students": f"/courses/{course['id']}/students",
        "/courses/{course_id}/waitlist": f"/courses/{course['id']}/waitlist",
    }

    for path, url in reads.items():
        answer = client.get(url)
        assert answer.status_code == 200, url
        assert answer.get_json(), url
        documented = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        assert missing_required(spec, documented["schema"], answer.get_json()) == [], url
    schema = spec["paths"]["/students/{student_id}/enroll"]["post"]["responses"]["201"]
    assert (
        missing_required(
            spec, schema["content"]["application/json"]["schema"], waitlisted.get_json()
        )
        == []
    )


def test_fields_that_may_be_null_are_nullable_and_the_others_are_not(client):
    spec = client.get("/openapi.json").get_json()
    schemas = spec["components"]["schemas"]

    for representation in representations():
        instance = representation()
        name = representation.__name__.removesuffix("Schema")
        for field_name, field in instance.fields.items():
            documented = schemas[name]["properties"][field_name]
            assert documented.get("nullable", False) is field.allow_none, (name, field_name)
    assert schemas["Student"]["properties"]["external_id"]["nullable"] is True
    assert schemas["Course"]["properties"]["seats_left"]["nullable"] is True
    assert "nullable" not in schemas["Course"]["properties"]["enrolled_count"]


def test_request_bodies_mark_the_fields_they_need(client):
    spec = client.get("/openapi.json").get_json()
    schemas = spec["components"]["schemas"]

    assert sorted(schemas["StudentCreate"]["required"]) == ["email", "name"]
    assert sorted(schemas["CourseCreate"]["required"]) == ["code", "title"]
    assert schemas["EnrollmentRequest"]["required"] == ["course_ids"]
    assert sorted(schemas["EnrollPair"]["required"]) == ["course_id", "student_id"]
    assert "required" not in schemas["StudentUpdate"]
    assert "required" not in schemas["CourseUpdate"]


def test_every_problem_carries_type_title_status_and_detail(client):
    spec = client.get("/openapi.json").get_json()
    problem = spec["components"]["schemas"]["Problem"]

    assert {"type", "title", "status", "detail"} <= set(problem["required"])
    body = client.get("/students/999").get_json()
    assert set(problem["required"]) <= set(body)
