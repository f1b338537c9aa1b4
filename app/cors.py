"""Cross-origin access for browser frontends on other origins (flask-cors)."""

from flask import Flask
from flask_cors import CORS

ALLOWED_METHODS = ["GET", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS"]
# The conditional request headers (app.etags) and Idempotency-Key (app.idempotency) too.
ALLOWED_HEADERS = [
    "Content-Type",
    "Authorization",
    "X-Request-ID",
    "If-Match",
    "If-None-Match",
    "Idempotency-Key",
]
# Headers a page's script may read; browsers hide all but a few by default.
EXPOSED_HEADERS = [
    "X-Pagination",
    "X-Request-ID",
    "Location",
    "Link",
    "ETag",
    "Retry-After",
    "Idempotent-Replayed",
]
PREFLIGHT_MAX_AGE_SECONDS = 600


def register_cors(app: Flask) -> None:
    """Allow the origins listed in ``CORS_ORIGINS``; with none listed, allow none."""
    origins = app.config.get("CORS_ORIGINS")
    if not origins:
        return
    CORS(
        app,
        origins=origins,
        methods=ALLOWED_METHODS,
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        max_age=PREFLIGHT_MAX_AGE_SECONDS,
        supports_credentials=False,
    )
