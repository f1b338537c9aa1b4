"""Turning a request's credentials into a :class:`Caller`, in the configured ``AUTH_MODE``."""

import hmac
import time
from collections.abc import Mapping

from flask import Request
from sqlalchemy import select

from app.auth.caller import ROLE_ORDER, STUDENT, UNRESTRICTED, Caller
from app.auth.errors import NotAuthenticated
from app.auth.jwks import JwtVerifier, KeySet
from app.extensions import db
from app.models import Student


def _equal(presented: str, secret: str) -> bool:
    """Compare in constant time."""
    return hmac.compare_digest(presented.encode(), secret.encode())


def claim_at(claims: Mapping, path: list[str]):
    """The claim at a dotted path (``realm_access.roles``), or None."""
    value = claims
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def highest_role(value) -> str | None:
    """The highest known role in a roles claim (a list, or one space-separated string)."""
    if isinstance(value, str):
        value = value.split()
    if not isinstance(value, list):
        return None
    held = {role for role in value if isinstance(role, str)}
    return next((role for role in ROLE_ORDER if role in held), None)


def student_id_for(external_id: str) -> int | None:
    """The id of the student whose ``external_id`` is this, or None.

    Runs on a connection of its own, before the request's session starts its
    transaction (which must begin the way the request's method needs).
    """
    with db.engine.connect() as connection:
        return connection.scalar(select(Student.id).where(Student.external_id == external_id))


class Identity:
    """The configured way of knowing who calls: ``jwt``, ``tokens`` or ``none``."""

    def __init__(self, config: Mapping, *, clock=time.monotonic):
        self.mode = config["AUTH_MODE"]
        self.tokens = list(config["API_TOKENS"])
        self.metrics_token = config["METRICS_TOKEN"]
        self.roles_claim = config["AUTH_ROLES_CLAIM"]
        self.verifier = None
        if self.mode == "jwt":
            keys = KeySet(
                config["AUTH_JWKS_URL"],
                refetch_seconds=config["AUTH_JWKS_REFETCH_SECONDS"],
                clock=clock,
            )
            self.verifier = JwtVerifier(
                keys=keys,
                issuer=config["AUTH_ISSUER"],
                audience=config["AUTH_AUDIENCE"],
                algorithms=config["AUTH_ALGORITHMS"],
                leeway=config["AUTH_LEEWAY_SECONDS"],
            )

    @property
    def open(self) -> bool:
        """No authentication at all (``AUTH_MODE=none``)."""
        return self.mode == "none"

    def caller(self, request: Request) -> Caller:
        """The authenticated caller; raises NotAuthenticated (401) naming what failed."""
        if self.open:
            return UNRESTRICTED
        token = self.bearer_token(request)
        check = self._jwt_caller if self.verifier is not None else self._token_caller
        caller = check(token)
        if caller.role == STUDENT:
            return Caller(caller.name, caller.role, caller.issuer, student_id_for(caller.name))
        return caller

    def is_metrics_token(self, request: Request) -> bool:
        """The request carries ``METRICS_TOKEN`` as its bearer token."""
        authorization = request.authorization
        if not self.metrics_token or authorization is None or authorization.type != "bearer":
            return False
        return _equal(authorization.token or "", self.metrics_token)

    @staticmethod
    def bearer_token(request: Request) -> str:
        """The bearer token of the request; raises NotAuthenticated when there is none."""
        authorization = request.authorization
        if authorization is None:
            raise NotAuthenticated(
                "This operation needs a caller: send Authorization: Bearer <token>.",
                invalid_token=False,
            )
        if authorization.type != "bearer" or not authorization.token:
            raise NotAuthenticated("The Authorization header must be 'Bearer <token>'.")
        return authorization.token

    def _token_caller(self, presented: str) -> Caller:
        """The ``API_TOKENS`` entry whose secret was presented (every entry is compared)."""
        matches = [token for token in self.tokens if _equal(presented, token.secret)]
        if not matches:
            raise NotAuthenticated("The bearer token is not one of the configured API_TOKENS.")
        return Caller(name=matches[0].name, role=matches[0].role)

    def _jwt_caller(self, token: str) -> Caller:
        """The caller named by a verified JWT: ``sub``, ``iss`` and the highest role."""
        claims = self.verifier.claims(token)
        role = highest_role(claim_at(claims, self.roles_claim.split(".")))
        return Caller(name=str(claims["sub"]), role=role, issuer=str(claims["iss"]))
