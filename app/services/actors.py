"""Who acts on an enrollment: a name for its history and a role for the override rule."""

from dataclasses import dataclass

# The roles that may enroll past capacity or outside the window, and drop after the deadline.
OVERRIDE_ROLES = frozenset({"registrar", "admin"})
# The actor the history names for what the service does by itself (promotions, migration).
SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    """A caller as the service layer knows it: a name and a role (None: no role)."""

    name: str
    role: str | None

    @property
    def may_override(self) -> bool:
        """The actor may override the capacity, window and deadline rules."""
        return self.role in OVERRIDE_ROLES
