"""The API docs page: Swagger UI served by this service under a strict CSP."""

import re


def test_docs_page_loads_swagger_ui_from_this_service(client):
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.headers["X-Frame-Options"] == "DENY"
    sources = re.findall(r'(?:src|href)="([^"]+)"', response.text)
    assert "/docs/assets/swagger-ui-bundle.js" in sources
    assert "/docs/assets/swagger-ui.css" in sources
    assert all(source.startswith("/") for source in sources), sources
    assert "<script>" not in response.text  # no inline script: the CSP forbids it


def test_docs_policy_allows_only_same_origin_content(client):
    policy = client.get("/docs").headers["Content-Security-Policy"]

    directives = dict(directive.strip().split(" ", 1) for directive in policy.split(";"))
    assert directives == {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data:",
        "connect-src": "'self'",
        "frame-ancestors": "'none'",
    }


def test_every_asset_of_the_docs_page_is_served(client):
    page = client.get("/docs").text
    for source in re.findall(r'(?:src|href)="([^"]+)"', page):
        with client.get(source) as response:
            assert response.status_code == 200, source
            assert len(response.data) > 0, source
            assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_swagger_initializer_points_at_the_spec(client):
    response = client.get("/docs/swagger-initializer.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert 'url: "/openapi.json"' in response.text
