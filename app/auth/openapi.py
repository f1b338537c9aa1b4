"""The OpenAPI document tells the truth about access in the running ``AUTH_MODE``.

In ``none`` mode no operation declares security or a 401. In ``jwt`` and
``tokens`` modes every operation that needs a caller declares the bearer
scheme (``bearerFormat: JWT`` in ``jwt`` mode), its 401 and 403 answers, and
who may call it in its description. Each operation's rule comes from its
:func:`app.auth.policy.access` declaration, carried here under ``x-access``.
"""

from apispec import BasePlugin

from app.auth.policy import ACCESS_DOC_KEY, ADMIN_ONLY, RULES

SECURITY_SCHEME = "bearerAuth"
SCHEME_DESCRIPTIONS = {
    "jwt": "A JSON Web Token from the institution's identity provider; its roles claim "
    "names admin, registrar or student.",
    "tokens": "A service token from API_TOKENS (each names its caller and role).",
}


def security_scheme(mode: str) -> dict:
    """The bearer scheme as declared in ``components.securitySchemes``."""
    scheme = {"type": "http", "scheme": "bearer", "description": SCHEME_DESCRIPTIONS[mode]}
    if mode == "jwt":
        scheme["bearerFormat"] = "JWT"
    return scheme


class AccessPlugin(BasePlugin):
    """Turn each operation's access rule into security, 401/403 and a description."""

    def __init__(self, mode: str):
        self.mode = mode

    def init_spec(self, spec):
        """Declare the bearer scheme, unless nothing is checked."""
        super().init_spec(spec)
        if self.mode != "none":
            spec.components.security_scheme(SECURITY_SCHEME, security_scheme(self.mode))

    def operation_helper(self, path=None, operations=None, **kwargs):
        """Document who may call each operation (nothing in ``none`` mode)."""
        for operation in (operations or {}).values():
            rule = RULES.get(operation.pop(ACCESS_DOC_KEY, None), ADMIN_ONLY)
            if self.mode == "none" or rule.public:
                continue
            operation["security"] = [{SECURITY_SCHEME: []}]
            responses = operation.setdefault("responses", {})
            responses.setdefault("401", "UNAUTHORIZED")
            responses.setdefault("403", "FORBIDDEN")
            callers = f"Callers: {rule.describe()}."
            description = operation.get("description")
            operation["description"] = f"{description}\n\n{callers}" if description else callers
