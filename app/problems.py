"""The problem types: every kind of error the service answers, defined once.

Each type has a slug, a status, a title, a description and the extension
members its problem documents carry. Its ``type`` URI is the relative
reference ``/problems/<slug>``: the same string on every deployment, so a
client compares it as is, and it resolves on the service itself to a JSON
description of the type (``GET /problems/<slug>``; ``GET /problems`` lists
them all). Statuses with no type of their own keep ``about:blank``.

Adding a type is one entry in ``PROBLEM_TYPES``; an HTTP exception names its
type with a ``problem`` attribute (else its status's default type is used),
and :mod:`app.errors` maps each domain error to one.
"""

from dataclasses import dataclass

import marshmallow as ma
from flask import Blueprint, Flask, abort

PATH_PREFIX = "/problems/"
BLANK = "about:blank"


def _member(field: ma.fields.Field, description: str, example) -> ma.fields.Field:
    """An extension member: its JSON field, described (with an example) for the spec."""
    field.metadata.update(description=description, example=example)
    return field


# Every extension member, one definition per name, shared by the types that carry it.
MEMBERS: dict[str, ma.fields.Field] = {
    "course_ids": _member(
        ma.fields.List(ma.fields.Integer()), "The ids of the courses the problem is about", [7, 9]
    ),
    "course_id": _member(ma.fields.Integer(), "The course the problem is about", 7),
    "student_id": _member(ma.fields.Integer(), "The student the problem is about", 42),
    "waitlist": _member(ma.fields.Boolean(), "Whether the request asked for the waitlist", False),
    "field": _member(ma.fields.String(), "The request body field whose value conflicts", "email"),
    "value": _member(ma.fields.String(), "The conflicting value, as stored", "ada@example.edu"),
    "code": _member(ma.fields.String(), "The course's code", "CS101"),
    "capacity": _member(ma.fields.Integer(), "The capacity asked for", 20),
    "enrolled": _member(ma.fields.Integer(), "The students enrolled in the course", 25),
    "waitlist_capacity": _member(ma.fields.Integer(), "The waitlist capacity asked for", 2),
    "waiting": _member(ma.fields.Integer(), "The students on the course's waitlist", 5),
    "deadline": _member(
        ma.fields.DateTime(), "The drop deadline that passed", "2026-09-15T00:00:00+00:00"
    ),
}
EXAMPLE_ERRORS = [{"location": "json", "pointer": "/email", "detail": "Not a valid email address."}]


@dataclass(frozen=True)
class ProblemType:
    """One kind of error: its slug (the last segment of its URI), status and meaning."""

    slug: str
    status: int
    title: str
    description: str
    members: tuple[str, ...] = ()

    @property
    def uri(self) -> str:
        """The ``type`` member of its problem documents."""
        return PATH_PREFIX + self.slug

    def describe(self) -> dict:
        """The type as ``GET /problems/<slug>`` serves it."""
        return {
            "type": self.uri,
            "status": self.status,
            "title": self.title,
            "description": self.description,
            "members": {name: MEMBERS[name].metadata["description"] for name in self.members},
        }


PROBLEM_TYPES = {
    problem.slug: problem
    for problem in (
        # Requests the service cannot read or does not serve.
        ProblemType(
            "bad-request",
            400,
            "Bad Request",
            "The request could not be read: malformed JSON, a body nested too deeply, a number "
            "literal too long, too many values, or a header too long (nginx, gunicorn).",
        ),
        ProblemType(
            "unauthorized",
            401,
            "Unauthorized",
            "The operation needs credentials and none were sent: send a bearer token.",
        ),
        ProblemType(
            "invalid-token",
            401,
            "Invalid Token",
            "The bearer token was refused (unknown, malformed, expired, wrong issuer or "
            "audience, bad signature); detail says which check failed.",
        ),
        ProblemType(
            "forbidden",
            403,
            "Forbidden",
            "The caller is known but lacks the role, or the record is not theirs.",
        ),
        ProblemType(
            "override-not-allowed",
            403,
            "Override Not Allowed",
            "Only a registrar or an admin may send override.",
        ),
        ProblemType(
            "not-found",
            404,
            "Not Found",
            "No such route, or no student or course with the id in the URL path.",
        ),
        ProblemType(
            "not-enrolled",
            404,
            "Not Enrolled",
            "The student holds no seat and no waitlist place in the course: nothing to drop.",
            ("student_id", "course_id"),
        ),
        ProblemType(
            "no-history",
            404,
            "No Enrollment History",
            "The student has never had an enrollment in the course.",
            ("student_id", "course_id"),
        ),
        ProblemType(
            "method-not-allowed",
            405,
            "Method Not Allowed",
            "The route does not serve this method; the Allow header lists those it serves.",
        ),
        ProblemType(
            "request-timeout",
            408,
            "Request Timeout",
            "The request was not sent in time (nginx).",
        ),
        ProblemType(
            "conflict",
            409,
            "Conflict",
            "The request conflicts with the current state of the resource.",
        ),
        ProblemType(
            "email-taken",
            409,
            "Email Taken",
            "Another student already has this email (compared case-insensitively).",
            ("field", "value"),
        ),
        ProblemType(
            "external-id-taken",
            409,
            "External Id Taken",
            "Another student already has this external_id.",
            ("field", "value"),
        ),
        ProblemType(
            "course-code-taken",
            409,
            "Course Code Taken",
            "Another course already has this code.",
            ("field", "value"),
        ),
        ProblemType(
            "course-full",
            409,
            "Course Full",
            "Some of the courses have no free seat (nor waitlist room, when the waitlist was "
            "asked for); nothing was enrolled. course_ids lists the full ones.",
            ("course_ids", "waitlist"),
        ),
        ProblemType(
            "enrollment-closed",
            409,
            "Enrollment Closed",
            "Some of the courses are outside their enrollment window; nothing was enrolled. "
            "course_ids lists them; a registrar or an admin may send override.",
            ("course_ids",),
        ),
        ProblemType(
            "drop-deadline-passed",
            409,
            "Drop Deadline Passed",
            "The course's drop deadline is over; nothing was dropped. A registrar or an admin "
            "may send override.",
            ("course_id", "deadline"),
        ),
        ProblemType(
            "capacity-below-enrolled",
            409,
            "Capacity Below Enrolled",
            "A course's capacity may not drop below the students already enrolled in it.",
            ("code", "capacity", "enrolled"),
        ),
        ProblemType(
            "waitlist-capacity-below-waiting",
            409,
            "Waitlist Capacity Below Waiting",
            "A course's waitlist capacity may not drop below the students already waiting.",
            ("code", "waitlist_capacity", "waiting"),
        ),
        ProblemType(
            "idempotency-key-in-use",
            409,
            "Idempotency Key In Use",
            "A request with the same Idempotency-Key is still being processed; retry after "
            "Retry-After.",
        ),
        ProblemType(
            "precondition-failed",
            412,
            "Precondition Failed",
            "The resource changed since the version named in If-Match; read it again.",
        ),
        ProblemType(
            "content-too-large",
            413,
            "Content Too Large",
            "The request body is over the size limit (1 MiB by default).",
        ),
        ProblemType(
            "uri-too-long",
            414,
            "URI Too Long",
            "The request line is too long (nginx).",
        ),
        ProblemType(
            "unsupported-media-type",
            415,
            "Unsupported Media Type",
            "The request body was not sent as application/json.",
        ),
        ProblemType(
            "validation-error",
            422,
            "Validation Error",
            "Some fields or parameters are invalid; errors lists each one.",
        ),
        ProblemType(
            "unknown-courses",
            422,
            "Unknown Courses",
            "The body names courses that do not exist; course_ids lists them.",
            ("course_ids",),
        ),
        ProblemType(
            "unknown-student",
            422,
            "Unknown Student",
            "The body names a student that does not exist.",
            ("student_id",),
        ),
        ProblemType(
            "invalid-enrollment-window",
            422,
            "Invalid Enrollment Window",
            "enrollment_opens_at must be before enrollment_closes_at.",
        ),
        ProblemType(
            "idempotency-key-reused",
            422,
            "Idempotency Key Reused",
            "The Idempotency-Key was already used with a different request body.",
        ),
        ProblemType(
            "rate-limited",
            429,
            "Too Many Requests",
            "A rate limit is used up; Retry-After says when to try again, RateLimit which "
            "limit it was.",
        ),
        ProblemType(
            "headers-too-large",
            431,
            "Request Header Fields Too Large",
            "A request header is over the size limit (gunicorn: 8 KiB).",
        ),
        ProblemType(
            "internal-error",
            500,
            "Internal Server Error",
            "The server could not complete the request; the failure is logged with this "
            "problem's instance (the request id).",
        ),
        ProblemType(
            "service-unavailable",
            503,
            "Service Unavailable",
            "The service cannot answer now; retry after Retry-After seconds.",
        ),
        ProblemType(
            "database-unavailable",
            503,
            "Database Unavailable",
            "The database cannot answer (down, restarting, timed out); retry after Retry-After "
            "seconds.",
        ),
        ProblemType(
            "identity-provider-unavailable",
            503,
            "Identity Provider Unavailable",
            "The identity provider's signing keys cannot be fetched; retry after Retry-After "
            "seconds.",
        ),
        ProblemType(
            "gateway-timeout",
            504,
            "Gateway Timeout",
            "The service did not answer nginx in time.",
        ),
    )
}

# The type of an error that names none: the first type listed with its status.
STATUS_TYPES = {problem.status: problem for problem in reversed(PROBLEM_TYPES.values())}


def problem_type(problem: str | int) -> ProblemType | None:
    """The type with this slug, or the default type of this status (None: about:blank)."""
    if isinstance(problem, str):
        return PROBLEM_TYPES[problem]
    return STATUS_TYPES.get(problem)


def type_uris() -> list[str]:
    """Every ``type`` a problem document may carry."""
    return [problem.uri for problem in PROBLEM_TYPES.values()] + [BLANK]


def _types_table() -> str:
    """The problem types as a Markdown table, for the spec."""
    rows = [
        f"| `{problem.uri}` | {problem.status} | {problem.description} |"
        for problem in PROBLEM_TYPES.values()
    ]
    return "\n".join(["| type | status | meaning |", "| --- | --- | --- |", *rows])


class ProblemErrorSchema(ma.Schema):
    """One invalid member of the request (documentation only)."""

    location = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(["json", "query", "path", "headers"]),
        metadata={"description": "Where the member is: the JSON body, the query or the path"},
    )
    pointer = ma.fields.String(
        required=True,
        metadata={
            "description": "RFC 6901 JSON Pointer to the member within its location "
            '("/email", "/course_ids/0"); "" for the location as a whole'
        },
    )
    detail = ma.fields.String(required=True, metadata={"description": "What is wrong with it"})


# An RFC 9457 problem document (documentation only): the five members every
# problem carries, ``errors``, and every extension member of the registry.
ProblemSchema = type(
    "ProblemSchema",
    (ma.Schema,),
    {
        "__doc__": "An RFC 9457 problem document (README: Errors).",
        "type": ma.fields.String(
            required=True,
            validate=ma.validate.OneOf(type_uris()),
            metadata={
                "description": "The problem type, a URI reference that resolves on the service "
                "(GET /problems/<slug> describes it); compare it as a string. about:blank only "
                "for statuses with no type of their own.\n\n" + _types_table()
            },
        ),
        "title": ma.fields.String(required=True, metadata={"description": "The type's title"}),
        "status": ma.fields.Integer(required=True, metadata={"description": "HTTP status code"}),
        "detail": ma.fields.String(
            required=True, metadata={"description": "What went wrong with this request"}
        ),
        "instance": ma.fields.String(
            required=True,
            metadata={
                "description": "This occurrence: the request id, as in the X-Request-ID "
                "response header and the service's logs"
            },
        ),
        "errors": ma.fields.List(
            ma.fields.Nested(ProblemErrorSchema),
            metadata={
                "description": "Every invalid member of the request, one message each "
                "(validation-error, bad-request and the unknown-* types)"
            },
        ),
        **MEMBERS,
    },
)


def example(problem: ProblemType) -> dict:
    """A problem document of this type, for the spec's examples."""
    body = {
        "type": problem.uri,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.description,
        "instance": "3f1c9a0e5d6b4f2a8c7e1d0b9a8f7e6d",
    }
    body.update({name: MEMBERS[name].metadata["example"] for name in problem.members})
    if problem.slug == "validation-error":
        body["errors"] = EXAMPLE_ERRORS
    return body


bp = Blueprint("problems", __name__)


@bp.get("/problems")
def list_problem_types():
    """Every problem type, keyed by slug."""
    return {slug: problem.describe() for slug, problem in PROBLEM_TYPES.items()}


@bp.get("/problems/<slug>")
def describe_problem_type(slug: str):
    """What one problem type means and which members it carries (404 for an unknown slug)."""
    if slug not in PROBLEM_TYPES:
        abort(404, f"There is no problem type {slug}.")
    return PROBLEM_TYPES[slug].describe()


def register_problem_pages(app: Flask) -> None:
    """Serve the problem types at their URIs (outside the OpenAPI spec, like the probes)."""
    app.register_blueprint(bp)
