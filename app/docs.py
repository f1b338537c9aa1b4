"""The API docs page: Swagger UI for /openapi.json, every asset served from here."""

from pathlib import Path

import flask_swagger_ui
from flask import Blueprint, Flask, Response, render_template, url_for

# The flask-swagger-ui wheel ships Swagger UI's built files; no CDN is needed.
SWAGGER_UI_DIST = Path(flask_swagger_ui.__file__).parent / "dist"
# Swagger UI needs its own scripts and styles, data: icons and a fetch of the spec.
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)

blp = Blueprint("docs", __name__, static_folder=SWAGGER_UI_DIST, static_url_path="/docs/assets")


@blp.get("/docs")
def docs_page() -> Response:
    """Swagger UI listing every operation of the API."""
    response = Response(render_template("docs.html"), mimetype="text/html")
    response.headers["Content-Security-Policy"] = DOCS_CONTENT_SECURITY_POLICY
    return response


@blp.get("/docs/swagger-initializer.js")
def swagger_initializer() -> Response:
    """Start Swagger UI on the spec (a file, not an inline script, for the CSP)."""
    spec_url = url_for("api-docs.openapi_json")
    script = render_template("swagger-initializer.js", spec_url=spec_url)
    return Response(script, mimetype="text/javascript")


def register_docs(app: Flask) -> None:
    """Serve the docs page at /docs and Swagger UI's assets under /docs/assets/."""
    app.register_blueprint(blp)
