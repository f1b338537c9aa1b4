"""Every entry of the OpenAPI links table names a documented response and a real operation."""

from app.links import LINKS


def operations_by_id(spec: dict) -> dict[str, tuple[dict, dict]]:
    """Each documented operation's id -> (its path item, the operation)."""
    return {
        operation["operationId"]: (path_item, operation)
        for path_item in spec["paths"].values()
        for method, operation in path_item.items()
        if method != "parameters"
    }


def parameters_of(spec: dict, path_item: dict, operation: dict) -> set[str]:
    """The parameter names of an operation, those of its path included."""
    declared = path_item.get("parameters", []) + operation.get("parameters", [])
    # Shared header parameters (If-Match, Idempotency-Key) are components.
    components = spec["components"].get("parameters", {})
    declared = [components[p["$ref"].rsplit("/", 1)[1]] if "$ref" in p else p for p in declared]
    return {parameter["name"] for parameter in declared}


def test_every_links_key_is_a_documented_response_carrying_its_links(client):
    spec = client.get("/openapi.json").get_json()

    for (path, method, status), links in LINKS.items():
        response = spec["paths"][path][method]["responses"][status]
        assert response["links"] == links, (path, method, status)


def test_every_link_points_at_a_real_operation_with_the_parameters_it_fills(client):
    spec = client.get("/openapi.json").get_json()
    operations = operations_by_id(spec)

    for links in LINKS.values():
        for name, link in links.items():
            assert "operationRef" not in link, name
            path_item, operation = operations[link["operationId"]]
            assert set(link["parameters"]) <= parameters_of(spec, path_item, operation), name
            if "requestBody" in link:
                body_schema = operation["requestBody"]["content"]["application/json"]["schema"]
                name_of_schema = body_schema["$ref"].rsplit("/", 1)[-1]
                properties = spec["components"]["schemas"][name_of_schema]["properties"]
                assert set(link["requestBody"]) <= set(properties), name
