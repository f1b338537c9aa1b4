"""Security headers on every response, errors included.

Who may call what is in :mod:`app.auth`.
"""

from flask import Flask, Response, request

# A JSON API renders nothing, so it may load nothing and be framed by no one.
API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"
# Static files (the docs page's assets) keep Flask's revalidation headers.
STATIC_ENDPOINTS = frozenset({"static", "docs.static"})


def add_security_headers(response: Response) -> Response:
    """Harden every response, errors included; a view may set its own policy."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Content-Security-Policy", API_CONTENT_SECURITY_POLICY)
    if request.endpoint not in STATIC_ENDPOINTS:
        response.headers["Cache-Control"] = "no-store"
    return response


def register_security(app: Flask) -> None:
    """Add the security headers to every response."""
    app.after_request(add_security_headers)
