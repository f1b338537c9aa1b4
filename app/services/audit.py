"""Audit events: the one writer of the ``app.audit`` logger.

Every event names the caller (:func:`app.auth.current_caller`): ``actor`` (the
token name, or the JWT ``sub`` with ``actor_issuer``; ``anonymous`` in
``AUTH_MODE=none`` or when no valid credentials were sent; ``system`` outside a
request and for what the service does by itself, such as promotions) and
``actor_role``, then the ``event`` kind, the ``action``, the ids and the
``outcome``. The request id is added to every record by :mod:`app.logs`.
"""

import logging
from collections.abc import Iterable

from app.auth.caller import current_caller
from app.services.actors import Actor

audit_log = logging.getLogger("app.audit")


def actor_fields(actor: Actor) -> dict:
    """An actor as audit events name it: ``actor``, ``actor_role``, ``actor_issuer``."""
    return {
        "actor": actor.name,
        "actor_role": actor.role,
        "actor_issuer": getattr(actor, "issuer", None),
    }


def audit_event(
    event: str, action: str, outcome: str, actor: Actor | None = None, **fields
) -> None:
    """Log one audit event of kind ``event`` naming ``actor`` (default: the current caller)."""
    named = " ".join(f"{key} {value}" for key, value in fields.items())
    extra = {"event": event, "action": action, "outcome": outcome, **fields}
    who = actor_fields(actor or current_caller())
    audit_log.info("%s %s: %s", action, named, outcome, extra={**extra, **who})


def audit(
    action: str,
    student_id: int,
    course_ids: Iterable[int],
    outcome: str,
    actor: Actor | None = None,
    **fields,
) -> None:
    """Log one enrollment audit event.

    Outcomes: created, waitlisted, promoted (with its ``reason``, by the system
    actor), dropped, unchanged, unknown, removed, and the refusals
    refused_capacity, refused_window, refused_deadline and refused_override.
    """
    audit_event(
        "enrollment",
        action,
        outcome,
        actor,
        student_id=student_id,
        course_ids=sorted(course_ids),
        **fields,
    )
