"""The caller of the current request: who they are and what their role lets them do.

Every request has one :class:`Caller`, read with :func:`current_caller`:

- ``AUTH_MODE=none``: :data:`UNRESTRICTED`, named ``anonymous`` with the ``admin`` role;
- ``jwt``: the token's ``sub`` (``name``) and ``iss`` (``issuer``) and the highest role
  found in its roles claim;
- ``tokens``: the ``API_TOKENS`` entry's name and role;
- a public operation called without credentials: :data:`ANONYMOUS` (no role);
- outside any request (CLI commands, jobs): :data:`SYSTEM`.

A ``student`` caller acts as the student whose ``external_id`` equals its name
(the JWT ``sub`` or the token name); ``student_id`` is that student's id, or None
when no student has it.
"""

from dataclasses import dataclass

from flask import g, has_request_context

ADMIN, REGISTRAR, STUDENT = "admin", "registrar", "student"
# Highest first: a caller holding several roles acts with the first one listed.
ROLE_ORDER = (ADMIN, REGISTRAR, STUDENT)


@dataclass(frozen=True)
class Caller:
    """Who is calling: a name for the audit log, a role, and the student they are (if any)."""

    name: str
    role: str | None
    issuer: str | None = None
    student_id: int | None = None

    @property
    def is_admin(self) -> bool:
        """The caller has the ``admin`` role."""
        return self.role == ADMIN

    @property
    def is_admin_or_registrar(self) -> bool:
        """The caller may act on any student (``admin`` or ``registrar``)."""
        return self.role in (ADMIN, REGISTRAR)

    def owns(self, student_id: int) -> bool:
        """The caller is a ``student`` tied to the student record ``student_id``."""
        return (
            self.role == STUDENT and self.student_id is not None and self.student_id == student_id
        )

    def may_act_for(self, student_id: int) -> bool:
        """The caller may read or change the records of student ``student_id``."""
        return self.is_admin_or_registrar or self.owns(student_id)

    def audit_fields(self) -> dict:
        """The caller as audit events name it: ``actor``, ``actor_role``, ``actor_issuer``."""
        return {"actor": self.name, "actor_role": self.role, "actor_issuer": self.issuer}


UNRESTRICTED = Caller(name="anonymous", role=ADMIN)
ANONYMOUS = Caller(name="anonymous", role=None)
SYSTEM = Caller(name="system", role=ADMIN)


def current_caller() -> Caller:
    """The caller of the current request (:data:`SYSTEM` outside a request)."""
    if not has_request_context():
        return SYSTEM
    return g.get("caller", ANONYMOUS)


def set_current_caller(caller: Caller) -> None:
    """Record the authenticated caller for the rest of the request."""
    g.caller = caller
