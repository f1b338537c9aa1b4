"""The HTTP answers of authentication and authorization, rendered as problem+json.

They are werkzeug HTTP exceptions, so the one problem+json renderer in
:mod:`app.errors` shapes them and keeps the headers they carry; ``problem``
names each one's type in :mod:`app.problems`.
"""

from werkzeug.exceptions import Forbidden, ServiceUnavailable, Unauthorized

# RFC 6750: no error code when no credentials were sent at all.
CHALLENGE = 'Bearer realm="enrollment"'
INVALID_TOKEN_CHALLENGE = 'Bearer error="invalid_token"'  # noqa: S105 - a header, not a secret


class NotAuthenticated(Unauthorized):
    """401: no credentials, or credentials that fail a check (``detail`` names it)."""

    def __init__(self, detail: str, *, invalid_token: bool = True):
        super().__init__(description=detail)
        self.challenge = INVALID_TOKEN_CHALLENGE if invalid_token else CHALLENGE
        self.problem = "invalid-token" if invalid_token else "unauthorized"

    def get_headers(self, environ=None, scope=None):
        """Add the bearer challenge."""
        return [*super().get_headers(environ, scope), ("WWW-Authenticate", self.challenge)]


class NotAllowed(Forbidden):
    """403: the caller is known but lacks the role, or the record is not theirs."""

    problem = "forbidden"


class KeysUnavailable(ServiceUnavailable):
    """503: the identity provider's keys cannot be fetched; retry after ``retry_after`` s."""

    problem = "identity-provider-unavailable"

    def __init__(self, retry_after: int):
        super().__init__(
            description="The identity provider's signing keys cannot be fetched; retry shortly.",
            retry_after=retry_after,
        )
