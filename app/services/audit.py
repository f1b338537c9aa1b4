"""Audit events: the one writer of the ``app.audit`` logger.

Every event names the caller (:func:`app.auth.current_caller`): ``actor`` (the
token name, or the JWT ``sub`` with ``actor_issuer``; ``anonymous`` in
``AUTH_MODE=none`` or when no valid credentials were sent; ``system`` outside a
request) and ``actor_role``, then the ``event`` kind, the ``action``, the ids
and the ``outcome``. The request id is added to every record by :mod:`app.logs`.
"""

import logging
from collections.abc import Iterable

from app.auth.caller import current_caller

audit_log = logging.getLogger("app.audit")


def audit_event(event: str, action: str, outcome: str, **fields) -> None:
    """Log one audit event of kind ``event`` with the current caller."""
    named = " ".join(f"{key} {value}" for key, value in fields.items())
    extra = {"event": event, "action": action, "outcome": outcome, **fields}
    audit_log.info(
        "%s %s: %s", action, named, outcome, extra={**extra, **current_caller().audit_fields()}
    )


def audit(action: str, student_id: int, course_ids: Iterable[int], outcome: str) -> None:
    """Log one enrollment audit event (created, unchanged, refused_capacity, unknown, removed)."""
    audit_event("enrollment", action, outcome, student_id=student_id, course_ids=sorted(course_ids))
