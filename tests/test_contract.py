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
