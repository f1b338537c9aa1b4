"""The OpenAPI spec is generated from the code, documents errors, and is committed."""

import json
from pathlib import Path

COMMITTED = Path(__file__).resolve().parent.parent / "openapi.json"


def test_spec_is_served(client):
    response = client.get("/openapi.json")

    assert response.status_code == 200
    spec = response.get_json()
    assert spec["info"]["title"] == "Student enrollment API"
    assert "/students/{student_id}/courses" in spec["paths"]


def test_committed_spec_is_up_to_date(client):
    served = client.get("/openapi.json").get_json()

    assert json.loads(COMMITTED.read_text()) == served, "run `make openapi` and commit openapi.json"


def test_every_operation_documents_its_errors_as_problem_json(client):
    spec = client.get("/openapi.json").get_json()
    responses = spec["components"]["responses"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            codes = operation["responses"]
            assert "default" in codes, (method, path)
            errors = [code for code in codes if code[0] in "45"]
            assert errors, (method, path)
            for code in errors:
                name = codes[code]["$ref"].rsplit("/", 1)[-1]
                assert "application/problem+json" in responses[name]["content"], (
                    method,
                    path,
                    code,
                )
