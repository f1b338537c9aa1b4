"""The audit of write requests: one ``event: write`` per POST, PATCH and DELETE on the API.

Logged after the view, whatever the request's end, refusals (401, 403)
included, through :func:`app.services.audit.audit_event` (which names the
caller). ``action`` is the method and route template (``DELETE
/students/<id:student_id>``); the ids come from the path, the body
(``student_id``, ``course_id``, ``course_ids``) and, for creates, the new id;
``outcome`` says how it ended and ``status`` is the HTTP status. What the
enrollment rules did is logged by :mod:`app.services.enrollment` as
``event: enrollment``.
"""

from flask import Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from app.bodies import json_body_or_none
from app.routing import WRITE_METHODS
from app.services.audit import audit_event

OUTCOMES = {401: "unauthenticated", 403: "forbidden", 404: "not_found", 409: "conflict"}
BODY_IDS = ("student_id", "course_id", "course_ids")
# Creates answer with the new record; its id is logged under the name of its kind.
CREATED_ID = {"students.Students": "student_id", "courses.Courses": "course_id"}


def outcome_of(status: int) -> str:
    """A word for how a write ended."""
    if status < 400:
        return "done"
    if status >= 500:
        return "failed"
    return OUTCOMES.get(status, "invalid")


def request_ids(response: Response) -> dict:
    """The ids a write named: in its path, its JSON body and (for creates) its answer."""
    ids = dict(request.view_args or {})
    try:
        body = json_body_or_none(request)
    except RequestEntityTooLarge:
        body = None
    if isinstance(body, dict):
        ids.update({key: body[key] for key in BODY_IDS if key in body and key not in ids})
    created = CREATED_ID.get(request.endpoint)
    if created and response.status_code == 201 and response.is_json:
        ids[created] = response.get_json()["id"]
    return ids


def audit_write(response: Response) -> Response:
    """Log every write request on the API with its caller, ids and outcome."""
    if request.method in WRITE_METHODS and request.blueprint in {"students", "courses"}:
        rule = request.url_rule.rule
        audit_event(
            "write",
            f"{request.method} {rule}",
            outcome_of(response.status_code),
            status=response.status_code,
            **request_ids(response),
        )
    return response
