"""The one error shape: ``application/problem+json`` (RFC 9457).

Every failure leaves the service through :func:`problem_response`: HTTP errors
raised by Flask, werkzeug and webargs, the domain errors of
:mod:`app.services.errors` (mapped to a status here, and only here), database
outages and unexpected exceptions.
"""

import logging
from http import HTTPStatus

import marshmallow as ma
from flask import Flask, current_app, json, request
from flask import Response as FlaskResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from app.services.errors import (
    CapacityBelowEnrolled,
    CourseNotFound,
    CoursesFull,
    DomainError,
    DropDeadlinePassed,
    DuplicateCourseCode,
    DuplicateStudent,
    EnrollmentClosed,
    InvalidEnrollmentWindow,
    NoHistory,
    NotEnrolled,
    OverrideNotAllowed,
    StudentNotFound,
    UnknownCourses,
    WaitlistCapacityBelowWaiting,
)

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


# The status of each domain error; the detail is the error's own sentence.
DOMAIN_STATUS: dict[type[DomainError], int] = {
    StudentNotFound: 404,
    CourseNotFound: 404,
    NotEnrolled: 404,
    UnknownCourses: 422,
    CoursesFull: 409,
    DuplicateStudent: 409,
    DuplicateCourseCode: 409,
    CapacityBelowEnrolled: 409,
    WaitlistCapacityBelowWaiting: 409,
    EnrollmentClosed: 409,
    DropDeadlinePassed: 409,
    OverrideNotAllowed: 403,
    NoHistory: 404,
    InvalidEnrollmentWindow: 422,
}


def _named_in_path(name: str, value: int) -> bool:
    """Whether the request's URL path names ``name`` with this value."""
    return (request.view_args or {}).get(name) == value


def _unprocessable(detail: str, field: str, message: str) -> FlaskResponse:
    """A 422 naming the body field that refers to something that does not exist."""
    return problem_response(422, detail, errors={"json": {field: [message]}})


def handle_domain_error(error: DomainError) -> FlaskResponse:
    """Domain errors raised by the service layer and the queries.

    Something missing that the URL path names is a 404; something missing that
    the body names is a 422 on that body field.
    """
    if isinstance(error, StudentNotFound) and not _named_in_path("student_id", error.student_id):
        return _unprocessable(str(error), "student_id", f"Unknown student id: {error.student_id}.")
    if isinstance(error, CourseNotFound) and not _named_in_path("course_id", error.course_id):
        course_id = error.course_id
        return _unprocessable(
            f"Unknown course ids: {course_id}.", "course_id", f"Unknown course id: {course_id}."
        )
    if isinstance(error, UnknownCourses):
        return _unprocessable(str(error), "course_ids", str(error))
    if isinstance(error, InvalidEnrollmentWindow):
        return _unprocessable(str(error), "enrollment_closes_at", str(error))
    return problem_response(DOMAIN_STATUS[type(error)], str(error))


def handle_database_unavailable(error: OperationalError | InterfaceError) -> FlaskResponse:
    """The database cannot answer (down, restarting, timed out, locked): a 503, never a 500.

    A read whose pooled connection a restart killed is first run once more on
    a fresh connection.
    """
    # Imported here: app.database needs the extensions, and they need this module.
    from app.database import found_dead_connection, read_again_on_a_fresh_connection

    if found_dead_connection(error):
        return read_again_on_a_fresh_connection()
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
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(OperationalError, handle_database_unavailable)
    app.register_error_handler(InterfaceError, handle_database_unavailable)
    app.register_error_handler(Exception, handle_unexpected_error)
