"""Every entry of the OpenAPI links table names a documented response and a real operation."""

from app.links import LINKS


def parameters_of(spec: dict, operation_ref: str) -> set[str]:
    """The parameter names of the operation an ``#/paths/...`` pointer names (path ones too)."""
    assert operation_ref.startswith("#/paths/")
    pointer, method = operation_ref.removeprefix("#/paths/").rsplit("/", 1)
    path_item = spec["paths"][pointer.replace("~1", "/").replace("~0", "~")]
    declared = path_item.get("parameters", []) + path_item[method].get("parameters", [])
    # Shared header parameters (If-Match, Idempotency-Key) are components.
    components = spec["components"]["parameters"]
    declared = [components[p["$ref"].rsplit("/", 1)[1]] if "$ref" in p else p for p in declared]
    return {parameter["name"] for parameter in declared}


def test_every_links_key_is_a_documented_response_carrying_its_links(client):
    spec = client.get("/openapi.json").get_json()

    for (path, method, status), links in LINKS.items():
        response = spec["paths"][path][method]["responses"][status]
        assert response["links"] == links, (path, method, status)


def test_every_link_points_at_a_real_operation_with_the_parameters_it_fills(client):
    spec = client.get("/openapi.json").get_json()

    for links in LINKS.values():
        for name, link in links.items():
            assert set(link["parameters"]) <= parameters_of(spec, link["operationRef"]), name
