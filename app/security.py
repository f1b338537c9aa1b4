"""Security headers on every response, errors included; no cookie sessions.

Who may call what is in :mod:`app.auth`.
"""

from flask import Flask, Response, request
from flask.sessions import SessionInterface

# A JSON API renders nothing, so it may load nothing and be framed by no one.
API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"
# Static files (the docs page's assets) keep Flask's revalidation headers.
STATIC_ENDPOINTS = frozenset({"static", "docs.static"})


SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", API_CONTENT_SECURITY_POLICY),
)


def add_security_headers(response: Response) -> Response:
    """Harden every response, errors included; a view may set its own policy."""
    headers = response.headers
    # One pass over the response's few headers instead of one per header added.
    present = {name.lower() for name in headers.keys()}  # noqa: SIM118 - Headers iterates pairs
    for name, value in SECURITY_HEADERS:
        if name.lower() not in present:
            headers.add(name, value)
    if request.endpoint not in STATIC_ENDPOINTS:
        headers["Cache-Control"] = "no-store"
    return response


class NoSessions(SessionInterface):
    """No cookie session: callers identify with a bearer token on every request.

    ``SECRET_KEY`` is set (production requires it), so Flask's default interface
    would read and sign a session cookie on every request for nothing; this
    one gives every request Flask's null session and never sets a cookie.
    """

    def open_session(self, app: Flask, request) -> None:
        """No session: Flask falls back to its null session."""
        return None

    def save_session(self, app: Flask, session, response: Response) -> None:
        """Nothing to save."""


def register_no_sessions(app: Flask) -> None:
    """Open no cookie session on any request."""
    app.session_interface = NoSessions()
