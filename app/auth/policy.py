"""Who may call what: one access rule per operation, checked before the view runs.

Each view declares its rule with :func:`access` (next to its route); the table
in the README is the list of these declarations. :func:`authorize_request`
runs first in the request pipeline, before the body is read or any database
write begins, so a refused request changes nothing and learns nothing from
validation errors. ``POST /enroll`` names its student in the body: its rule
lets any role through, and the view calls :func:`require_access_to_student`
once the body is valid.

Operations without a rule are for ``admin`` only: a new view is closed until
it says otherwise. The endpoints in ``PUBLIC_ENDPOINTS`` (health probes, the
OpenAPI document, the docs page and the problem type pages) belong to no resource and are open.
"""

from dataclasses import dataclass

from flask import current_app, request

from app.auth.caller import ADMIN, REGISTRAR, STUDENT, Caller, current_caller, set_current_caller
from app.auth.errors import NotAllowed, NotAuthenticated
from app.limits import refuse_after_failed_authentications
from app.routing import document, view_method

PUBLIC_ENDPOINTS = frozenset(
    {
        "health.livez",
        "health.readyz",
        "api-docs.openapi_json",
        "docs.docs_page",
        "docs.swagger_initializer",
        "docs.static",
        "problems.list_problem_types",
        "problems.describe_problem_type",
        "static",
    }
)
METRICS_ENDPOINT = "prometheus_metrics"


@dataclass(frozen=True)
class Rule:
    """Roles that may call an operation, and whether a student may call it for themselves."""

    name: str
    roles: frozenset[str]
    # "path": a student may call it for the student id in the path; "body": the
    # view checks the student named in the body once the body is valid.
    owner: str | None = None

    @property
    def public(self) -> bool:
        """Anyone may call, without credentials."""
        return self.name == "public"

    @property
    def staff_roles(self) -> str:
        """The roles that may call for any student, in words (``admin or registrar``)."""
        return " or ".join(role for role in (ADMIN, REGISTRAR) if role in self.roles)

    def describe(self) -> str:
        """Who may call, in words (for the OpenAPI description)."""
        if self.public:
            return "anyone, without credentials"
        if self.owner:
            return f"{self.staff_roles}; a student for their own record"
        return self.staff_roles

    def check(self, caller: Caller, path_ids: dict) -> None:
        """Refuse (403) a caller this rule does not let through."""
        if self.public or caller.role in self.roles:
            return
        if self.owner and caller.role == STUDENT:
            if self.owner == "body":
                return
            _require_owner(caller, path_ids["student_id"])
            return
        held = f"your role is {caller.role}" if caller.role else "your token carries no role"
        raise NotAllowed(f"This operation needs the role {self.staff_roles}; {held}.")


PUBLIC = Rule("public", frozenset({ADMIN, REGISTRAR, STUDENT}))
ADMIN_ONLY = Rule("admin", frozenset({ADMIN}))
STAFF = Rule("staff", frozenset({ADMIN, REGISTRAR}))
OWNER_OR_STAFF = Rule("owner", frozenset({ADMIN, REGISTRAR}), owner="path")
BODY_OWNER_OR_STAFF = Rule("owner_in_body", frozenset({ADMIN, REGISTRAR}), owner="body")
RULES = {
    rule.name: rule for rule in (PUBLIC, ADMIN_ONLY, STAFF, OWNER_OR_STAFF, BODY_OWNER_OR_STAFF)
}
ACCESS_DOC_KEY = "x-access"


def access(rule: Rule):
    """Declare the rule of a view method; the spec plugin documents it per mode."""

    def decorator(func):
        func.access_rule = rule
        document(func, ACCESS_DOC_KEY, rule.name)
        return func

    return decorator


def rule_for(endpoint: str, method: str) -> Rule | None:
    """The rule of an endpoint and method; None for the public and metrics endpoints."""
    if endpoint in PUBLIC_ENDPOINTS or endpoint == METRICS_ENDPOINT:
        return None
    view = current_app.view_functions[endpoint]
    if hasattr(view, "view_class"):
        view = view_method(endpoint, method)
    return getattr(view, "access_rule", ADMIN_ONLY)


def _require_owner(caller: Caller, student_id: int) -> None:
    """Refuse (403) a student caller acting on another student's record."""
    if caller.owns(student_id):
        return
    if caller.student_id is None:
        raise NotAllowed(
            f"Your token's subject is no student's external_id, so it may not act on "
            f"student {student_id}."
        )
    raise NotAllowed(
        f"A student may only act on their own record, and student {student_id} is not yours."
    )


def authorize_request() -> None:
    """Authenticate the caller when the operation needs one and apply its rule (401/403)."""
    if request.routing_exception is not None or request.method == "OPTIONS":
        return
    identity = current_app.extensions["identity"]
    if request.endpoint == METRICS_ENDPOINT:
        _authorize_metrics(identity)
        return
    if identity.open:
        set_current_caller(identity.caller(request))
        return
    rule = rule_for(request.endpoint, request.method)
    if rule is None or rule.public:
        return
    # An address that used up its failed authentications learns nothing more (429).
    refuse_after_failed_authentications()
    caller = identity.caller(request)
    set_current_caller(caller)
    rule.check(caller, request.view_args or {})


def _authorize_metrics(identity) -> None:
    """``/metrics``: the scrape token, or an admin caller (anyone in ``none`` mode without one)."""
    if identity.is_metrics_token(request):
        return
    if identity.open and not identity.metrics_token:
        return
    refuse_after_failed_authentications()
    if identity.open:
        identity.bearer_token(request)  # 401 when nothing was sent
        raise NotAuthenticated("The bearer token is not METRICS_TOKEN.")
    caller = identity.caller(request)
    set_current_caller(caller)
    ADMIN_ONLY.check(caller, {})


def require_access_to_student(student_id: int) -> None:
    """Refuse (403) a caller who may not act on student ``student_id`` (body-named targets)."""
    caller = current_caller()
    if not caller.may_act_for(student_id):
        _require_owner(caller, student_id)
