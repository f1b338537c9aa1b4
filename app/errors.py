"""The one error shape: ``application/problem+json`` (RFC 9457).

Every failure leaves the service through :func:`problem_response`: HTTP errors
raised by Flask, werkzeug and webargs, the domain errors the service layer
raises, database outages and unexpected exceptions.
"""

import logging
from http import HTTPStatus

import marshmallow as ma
from flask import Flask, current_app, json
from flask import Response as FlaskResponse
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

PROBLEM_MIMETYPE = "application/problem+json"
RETRY_AFTER_SECONDS = 5

logger = logging.getLogger(__name__)


class ProblemSchema(ma.Schema):
    """An RFC 9457 problem document (documentation only)."""

    type = ma.fields.String(
        metadata={"description": "URI reference; about:blank for plain HTTP errors"}
    )
    title = ma.fields.String(metadata={"description": "Short summary of the status"})
    status = ma.fields.Integer(metadata={"description": "HTTP status code"})
    detail = ma.fields.String(metadata={"description": "What went wrong with this request"})
    errors = ma.fields.Dict(
        metadata={
            "description": "Validation messages keyed by location (json, query, path), then field"
        }
    )


class ServiceError(Exception):
    """A failure the service layer reports to the client."""

    status = HTTPStatus.BAD_REQUEST

    def __init__(self, detail: str, *, errors: dict | None = None):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


class NotFoundError(ServiceError):
    """A resource named in the URL path does not exist."""

    status = HTTPStatus.NOT_FOUND


class ConflictError(ServiceError):
    """The request contradicts the current state (duplicates, full courses)."""

    status = HTTPStatus.CONFLICT


class UnprocessableError(ServiceError):
    """The body is well formed but refers to things that do not exist."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY


def problem_response(
    status: int, detail: str | None = None, *, errors: dict | None = None, headers=None
) -> FlaskResponse:
    """Render a problem+json response."""
    phrase = HTTPStatus(status).phrase
    body = {"type": "about:blank", "title": phrase, "status": status, "detail": detail or phrase}
    if errors:
        body["errors"] = errors
    response = FlaskResponse(json.dumps(body), status=status, mimetype=PROBLEM_MIMETYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _validation_detail(errors: dict) -> str:
    """Summarise webargs messages ({location: {field: [msg]}}) in one sentence."""
    parts = []
    for location, fields in errors.items():
        if isinstance(fields, dict):
            for field, messages in fields.items():
                text = messages[0] if isinstance(messages, list) and messages else messages
                parts.append(f"{location}.{field}: {text}")
        else:
            parts.append(f"{location}: {fields}")
    return "Invalid request: " + "; ".join(parts) if parts else "Invalid request."


def handle_http_exception(error: HTTPException) -> FlaskResponse:
    """Werkzeug and webargs errors (404, 405, 400, 413, 415, 422 ...)."""
    data = getattr(error, "data", None) or {}
    errors = data.get("errors") or data.get("messages")
    # Headers the exception carries (WWW-Authenticate, Retry-After), but not its HTML type.
    headers = {name: value for name, value in error.get_headers() if name != "Content-Type"}
    headers.update(data.get("headers") or {})
    if error.code == 405 and error.valid_methods:
        headers["Allow"] = ", ".join(sorted(error.valid_methods))
    if errors:
        detail = data.get("message") or _validation_detail(errors)
    elif isinstance(error, RequestEntityTooLarge):
        # werkzeug's default text ("exceeds the capacity limit") does not say which limit.
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        detail = f"The request body is too large: the limit is {limit} bytes."
    else:
        detail = data.get("message") or error.description
    return problem_response(error.code, detail, errors=errors, headers=headers)


def handle_service_error(error: ServiceError) -> FlaskResponse:
    """Domain errors raised by the service layer."""
    return problem_response(error.status, error.detail, errors=error.errors)


def handle_database_unavailable(error: OperationalError | InterfaceError) -> FlaskResponse:
    """The database cannot answer (down, restarting, timed out, locked): a 503, never a 500."""
    logger.warning("database unavailable: %s", type(error.orig).__name__)
    return problem_response(
        503,
        "The database is unavailable; retry shortly.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def handle_unexpected_error(error: Exception) -> FlaskResponse:
    """Anything else: log the traceback once, answer a generic 500."""
    logger.exception("unhandled exception", exc_info=error)
    return problem_response(500, "The server could not complete the request.")


def register_error_handlers(app: Flask) -> None:
    """Route every error through the problem+json renderer."""
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(ServiceError, handle_service_error)
    app.register_error_handler(OperationalError, handle_database_unavailable)
    app.register_error_handler(InterfaceError, handle_database_unavailable)
    app.register_error_handler(Exception, handle_unexpected_error)


class ProblemApi(Api):
    """flask-smorest's Api documenting errors as problem+json."""

    ERROR_SCHEMA = ProblemSchema

    def _register_error_handlers(self):
        """Leave error handling to :func:`register_error_handlers`."""

    def _register_pagination_header(self):
        """Document X-Pagination as what it is on the wire: a JSON-encoded string."""
        self.spec.components.header(
            "PAGINATION",
            {
                "description": "Pagination metadata as a JSON object: total, total_pages, "
                "first_page, last_page, page, previous_page, next_page",
                "schema": {"type": "string"},
            },
            lazy=True,
        )

    def _register_responses(self):
        """Document every error status with the problem+json schema."""
        for status in HTTPStatus:
            response = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
                prepare_response(response, self.spec, PROBLEM_MIMETYPE)
            else:
                prepare_response(response, self.spec, self.DEFAULT_RESPONSE_CONTENT_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_MIMETYPE)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, response, lazy=True)
