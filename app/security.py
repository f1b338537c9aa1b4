"""Security headers on every response, and bearer tokens for writes.

When ``API_TOKENS`` is set, every POST, PUT, PATCH and DELETE must carry
``Authorization: Bearer <token>`` naming one of them; reads stay open. The
OpenAPI spec declares the scheme on the write operations.
"""

import hmac
import logging

from apispec import BasePlugin
from flask import Flask, Response, current_app, request

from app.errors import problem_response
from app.routing import WRITE_METHODS

SECURITY_SCHEME = "bearerAuth"
# A JSON API renders nothing, so it may load nothing and be framed by no one.
API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"
# Static files (the docs page's assets) keep Flask's revalidation headers.
STATIC_ENDPOINTS = frozenset({"static", "docs.static"})

logger = logging.getLogger(__name__)


def add_security_headers(response: Response) -> Response:
    """Harden every response, errors included; a view may set its own policy."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Content-Security-Policy", API_CONTENT_SECURITY_POLICY)
    if request.endpoint not in STATIC_ENDPOINTS:
        response.headers["Cache-Control"] = "no-store"
    return response


def token_is_valid(presented: str, tokens: list[str]) -> bool:
    """Compare ``presented`` with every configured token in constant time."""
    matches = [hmac.compare_digest(presented.encode(), token.encode()) for token in tokens]
    return any(matches)


def require_write_token() -> Response | None:
    """Refuse writes without a configured bearer token (401) when tokens are set."""
    tokens = current_app.config.get("API_TOKENS")
    if not tokens or request.method not in WRITE_METHODS or request.routing_exception is not None:
        return None
    authorization = request.authorization
    if authorization is None or authorization.type != "bearer" or not authorization.token:
        return problem_response(
            401,
            "Send Authorization: Bearer <token> to change data.",
            headers={"WWW-Authenticate": 'Bearer realm="enrollment"'},
        )
    if not token_is_valid(authorization.token, tokens):
        return problem_response(
            401,
            "The bearer token is not valid.",
            headers={"WWW-Authenticate": 'Bearer realm="enrollment", error="invalid_token"'},
        )
    return None


class BearerAuthPlugin(BasePlugin):
    """Declare the bearer scheme, and mark every write operation as needing it."""

    def init_spec(self, spec):
        """Declare the bearer token scheme in the spec's components."""
        spec.components.security_scheme(
            SECURITY_SCHEME,
            {
                "type": "http",
                "scheme": "bearer",
                "description": "Required on writes when the server sets API_TOKENS.",
            },
        )

    def operation_helper(self, path=None, operations=None, **kwargs):
        """Add the security requirement and the 401 answer to write operations."""
        for method, operation in (operations or {}).items():
            if method.upper() in WRITE_METHODS:
                operation.setdefault("security", [{SECURITY_SCHEME: []}])
                operation.setdefault("responses", {}).setdefault("401", "UNAUTHORIZED")


def warn_if_writes_are_open(app: Flask) -> None:
    """Log a warning when a production app lets anyone write (no API_TOKENS)."""
    if app.config["APP_ENV"] == "production" and not app.config.get("API_TOKENS"):
        logger.warning("API_TOKENS is not set: anyone who can reach the service can change data")
