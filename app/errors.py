"""The one error shape: ``application/problem+json`` (RFC 9457).

Every failure leaves the service through :func:`problem_response`: HTTP errors
raised by Flask, werkzeug and webargs, the domain errors of
:mod:`app.services.errors` (mapped to a problem type here, and only here),
database outages and unexpected exceptions. The types themselves (slug,
status, title, extension members) are defined in :mod:`app.problems`.

Every problem carries ``instance``: the request id, as in the ``X-Request-ID``
response header and the request's log lines.
"""

import logging
import uuid
from http import HTTPStatus

from flask import Flask, current_app, g, has_request_context, json, request
from flask import Response as FlaskResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from app.problems import BLANK, MEMBERS, problem_type
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


def problem_response(
    problem: str | int,
    detail: str | None = None,
    *,
    errors: list[dict] | None = None,
    members: dict | None = None,
    headers=None,
) -> FlaskResponse:
    """Render a problem+json response of a type (its slug) or of a status's default type.

    ``members`` are the type's extension members, serialized as the registry
    declares them; ``errors`` is the list :func:`error_items` builds.
    """
    kind = problem_type(problem)
    status = kind.status if kind else problem
    title = kind.title if kind else HTTPStatus(status).phrase
    body = {
        "type": kind.uri if kind else BLANK,
        "title": title,
        "status": status,
        "detail": detail or title,
        "instance": request_id(),
    }
    for name in kind.members if kind else ():
        if name in (members or {}):
            body[name] = MEMBERS[name].serialize(name, members)
    if errors:
        body["errors"] = errors
    response = FlaskResponse(json.dumps(body), status=status, mimetype=PROBLEM_MIMETYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def request_id() -> str:
    """The id of the current request, also sent back in ``X-Request-ID`` (app.logs)."""
    if has_request_context() and "request_id" in g:
        return g.request_id
    return uuid.uuid4().hex


def error_items(messages: dict) -> list[dict]:
    """webargs/marshmallow messages ({location: {field: [msg]}}, nested) as a flat list.

    Each item is one message: ``location`` (json, query, path, headers),
    ``pointer`` (an RFC 6901 JSON Pointer to the member within that location,
    "" for the location as a whole) and ``detail``.
    """
    items: list[dict] = []

    def walk(location: str, node, path: tuple[str, ...]) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                # marshmallow files messages about the whole object under "_schema".
                walk(location, value, path if key == "_schema" else (*path, str(key)))
        elif isinstance(node, list | tuple):
            for message in node:
                walk(location, message, path)
        else:
            pointer = "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in path)
            items.append({"location": location, "pointer": pointer, "detail": str(node)})

    for location, tree in messages.items():
        walk(location, tree, ())
    return items


def _validation_detail(items: list[dict]) -> str:
    """Summarise the error items in one sentence (``json.age: Unknown field.``)."""
    parts = [
        item["location"] + item["pointer"].replace("/", ".") + ": " + item["detail"]
        for item in items
    ]
    return "Invalid request: " + "; ".join(parts)


def handle_http_exception(error: HTTPException) -> FlaskResponse:
    """Werkzeug and webargs errors (404, 405, 400, 413, 415, 422 ...).

    An exception names its problem type with a ``problem`` attribute (a slug)
    and its members with ``problem_members``; otherwise its status's default
    type is used.
    """
    data = getattr(error, "data", None) or {}
    messages = data.get("errors") or data.get("messages")
    errors = error_items(messages) if messages else None
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
    return problem_response(
        getattr(error, "problem", error.code),
        detail,
        errors=errors,
        members=getattr(error, "problem_members", None),
        headers=headers,
    )


# The problem type of each domain error; the detail is the error's own sentence,
# the extension members the error's attributes of the same names.
DOMAIN_PROBLEMS: dict[type[DomainError], str] = {
    StudentNotFound: "not-found",
    CourseNotFound: "not-found",
    NotEnrolled: "not-enrolled",
    NoHistory: "no-history",
    UnknownCourses: "unknown-courses",
    CoursesFull: "course-full",
    DuplicateCourseCode: "course-code-taken",
    CapacityBelowEnrolled: "capacity-below-enrolled",
    WaitlistCapacityBelowWaiting: "waitlist-capacity-below-waiting",
    EnrollmentClosed: "enrollment-closed",
    DropDeadlinePassed: "drop-deadline-passed",
    OverrideNotAllowed: "override-not-allowed",
    InvalidEnrollmentWindow: "invalid-enrollment-window",
}
# DuplicateStudent's type depends on the field that conflicts.
DUPLICATE_STUDENT_PROBLEMS = {"email": "email-taken", "external_id": "external-id-taken"}


def _named_in_path(name: str, value: int) -> bool:
    """Whether the request's URL path names ``name`` with this value."""
    return (request.view_args or {}).get(name) == value


def _members(error: DomainError) -> dict:
    """The error's attributes, for the type's extension members to pick from."""
    return {name: getattr(error, name) for name in MEMBERS if hasattr(error, name)}


def _in_body(problem: str, detail: str, field: str, message: str, members: dict):
    """A 422 naming the body field that refers to something that does not exist."""
    errors = [{"location": "json", "pointer": f"/{field}", "detail": message}]
    return problem_response(problem, detail, errors=errors, members=members)


def handle_domain_error(error: DomainError) -> FlaskResponse:
    """Domain errors raised by the service layer and the queries.

    Something missing that the URL path names is a 404; something missing that
    the body names is a 422 on that body field.
    """
    if isinstance(error, StudentNotFound) and not _named_in_path("student_id", error.student_id):
        message = f"Unknown student id: {error.student_id}."
        return _in_body("unknown-student", str(error), "student_id", message, _members(error))
    if isinstance(error, CourseNotFound) and not _named_in_path("course_id", error.course_id):
        course_id = error.course_id
        return _in_body(
            "unknown-courses",
            f"Unknown course ids: {course_id}.",
            "course_id",
            f"Unknown course id: {course_id}.",
            {"course_ids": [course_id]},
        )
    if isinstance(error, UnknownCourses):
        return _in_body("unknown-courses", str(error), "course_ids", str(error), _members(error))
    if isinstance(error, InvalidEnrollmentWindow):
        return _in_body(
            "invalid-enrollment-window", str(error), "enrollment_closes_at", str(error), {}
        )
    if isinstance(error, DuplicateStudent):
        problem = DUPLICATE_STUDENT_PROBLEMS[error.field]
    else:
        problem = DOMAIN_PROBLEMS[type(error)]
    return problem_response(problem, str(error), members=_members(error))


def handle_database_unavailable(error: OperationalError | InterfaceError) -> FlaskResponse:
    """The database cannot answer (down, restarting, timed out, locked): a 503, never a 500."""
    logger.warning("database unavailable: %s", type(error.orig).__name__)
    return problem_response(
        "database-unavailable",
        "The database is unavailable; retry shortly.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def handle_unexpected_error(error: Exception) -> FlaskResponse:
    """Anything else: log the traceback once, answer a generic 500."""
    logger.exception("unhandled exception", exc_info=error)
    return problem_response("internal-error", "The server could not complete the request.")


def register_error_handlers(app: Flask) -> None:
    """Route every error through the problem+json renderer."""
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(OperationalError, handle_database_unavailable)
    app.register_error_handler(InterfaceError, handle_database_unavailable)
    app.register_error_handler(Exception, handle_unexpected_error)
