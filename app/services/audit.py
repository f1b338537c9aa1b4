"""The enrollment audit trail: one event on the ``app.audit`` logger per change or refusal."""

import logging
from collections.abc import Iterable

audit_log = logging.getLogger("app.audit")


def audit(action: str, student_id: int, course_ids: Iterable[int], outcome: str, **fields) -> None:
    """Log one enrollment audit event.

    Outcomes: created, waitlisted, promoted (with its ``reason``), dropped,
    unchanged, unknown, removed, and the refusals refused_capacity,
    refused_window, refused_deadline and refused_override.
    """
    course_ids = sorted(course_ids)
    audit_log.info(
        "%s student %s courses %s: %s",
        action,
        student_id,
        course_ids,
        outcome,
        extra={
            "event": "enrollment",
            "action": action,
            "student_id": student_id,
            "course_ids": course_ids,
            "outcome": outcome,
            **fields,
        },
    )
