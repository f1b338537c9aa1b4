"""Who acts on an enrollment: a name for its history and a role for the override rule.

The service layer needs only these two attributes, so any caller object with a
``name`` and a ``role`` (the request's caller, a job's own identity) can act.
"""

from dataclasses import dataclass
from typing import Protocol

# The roles that may enroll past capacity or outside the window, and drop after the deadline.
OVERRIDE_ROLES = frozenset({"registrar", "admin"})
# The actor the history names for what the service does by itself (promotions, migration).
SYSTEM = "system"


class Actor(Protocol):
    """Anyone who acts: a name for the history, a role (None: no role)."""

    name: str
    role: str | None


@dataclass(frozen=True)
class NamedActor:
    """An actor given by name and role (a command-line job, a test)."""

    name: str
    role: str | None


def may_override(actor: Actor) -> bool:
    """Whether the actor may override the capacity, window and deadline rules."""
    return actor.role in OVERRIDE_ROLES


# What the service does by itself (promotions) and command-line jobs act as this actor.
SYSTEM_ACTOR = NamedActor(name=SYSTEM, role="admin")
