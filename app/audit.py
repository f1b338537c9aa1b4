"""Audit events on the ``app.audit`` logger: every write request, and every enrollment change.

Each event names the caller (``actor``: the token name, or the JWT ``sub`` with
``actor_issuer``; ``anonymous`` in ``AUTH_MODE=none`` or when no valid
credentials were sent; ``system`` outside a request) and its ``actor_role``,
the ``event`` kind, the ``action``, the ids involved and the ``outcome``.

- ``event: write``: one per POST, PATCH and DELETE on the API, whatever its end,
  refusals (401, 403) included. ``action`` is the method and route template
  (``DELETE /students/<id:student_id>``), the ids come from the path, the body
  (``student_id``, ``course_id``, ``course_ids``) and, for creates, the new id;
  ``outcome`` says how it ended and ``status`` is the HTTP status.
- ``event: enrollment``: what the enrollment rules did (:mod:`app.enrollment`).

The request id is added to every record by :mod:`app.logs`.
"""

import logging

from flask import Flask, Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from app.auth.caller import current_caller
from app.routing import WRITE_METHODS

audit_log = logging.getLogger("app.audit")

OUTCOMES = {401: "unauthenticated", 403: "forbidden", 404: "not_found", 409: "conflict"}
BODY_IDS = ("student_id", "course_id", "course_ids")
# Creates answer with the new record; its id is logged under the name of its kind.
CREATED_ID = {"students.Students": "student_id", "courses.Courses": "course_id"}


def audit(event: str, action: str, outcome: str, **fields) -> None:
    """Log one audit event with the current caller."""
    named = " ".join(f"{key} {value}" for key, value in fields.items())
    extra = {"event": event, "action": action, "outcome": outcome, **fields}
    audit_log.info(
        "%s %s: %s", action, named, outcome, extra={**extra, **current_caller().audit_fields()}
    )


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
        body = request.get_json(silent=True) if request.is_json else None
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
        audit(
            "write",
            f"{request.method} {rule}",
            outcome_of(response.status_code),
            status=response.status_code,
            **request_ids(response),
        )
    return response


def register_audit(app: Flask) -> None:
    """Log an audit event for every write request."""
    app.after_request(audit_write)
