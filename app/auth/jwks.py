"""JSON Web Tokens checked against the identity provider's published keys (PyJWT).

:class:`KeySet` keeps the provider's signing keys by ``kid``. It fetches the
JWKS (with PyJWT's ``PyJWKClient``) the first time a key is needed, again when
a token names a key it does not know (key rotation needs no restart) or when
the keys are older than ``KEYS_MAX_AGE_SECONDS``, but never more often than
once per ``refetch_seconds``, failed attempts included. While the JWKS cannot
be fetched, known keys keep working and requests needing an unknown one get
:class:`KeysUnavailable` (503 with ``Retry-After``).

:class:`JwtVerifier` checks a token: only the configured algorithms, the key
named by ``kid``, the signature, ``exp``/``nbf``/``iat`` with the leeway, and
``iss``/``aud`` exactly. Each refusal says which check failed, never the token.
A token it accepted is accepted again without those checks until it expires, as
long as its key is still published (the last 1,024 tokens, per worker).
"""

import json
import logging
import math
import threading
import time

import jwt
from jwt import PyJWK, PyJWKClient

from app.auth.errors import KeysUnavailable, NotAuthenticated

# Revoked keys disappear from the JWKS; cached keys are checked against it this often.
KEYS_MAX_AGE_SECONDS = 300
# A provider that does not answer within this time counts as unreachable.
JWKS_TIMEOUT_SECONDS = 5
# Claims every accepted token must carry (sub names the caller).
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub")
VERIFIED_TOKENS_KEPT = 1024  # per worker; the oldest goes first
# Header values quoted back in a refusal are cut to this length.
QUOTE_MAX = 64

logger = logging.getLogger(__name__)


def _quote(value) -> str:
    """A header value, safe and short enough to name in a refusal (JSON-quoted)."""
    return json.dumps(value)[:QUOTE_MAX]


class UnknownKey(Exception):
    """The JWKS has no key with the token's ``kid``."""


class KeySet:
    """The provider's signing keys by ``kid``, cached and refreshed as described above."""

    def __init__(self, url: str, *, refetch_seconds: float, clock=time.monotonic):
        self._client = PyJWKClient(url, cache_jwk_set=False, timeout=JWKS_TIMEOUT_SECONDS)
        self._refetch_seconds = refetch_seconds
        self._clock = clock
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._last_attempt_failed = False
        self._lock = threading.Lock()
        self.fetches = 0

    def key(self, kid: str) -> PyJWK:
        """The signing key ``kid``; raises UnknownKey or KeysUnavailable."""
        with self._lock:
            now = self._clock()
            key = self._keys.get(kid)
            fresh = self._fetched_at is not None and now - self._fetched_at < KEYS_MAX_AGE_SECONDS
            if key is not None and fresh:
                return key
            if self._may_fetch(now):
                try:
                    self._fetch(now)
                except (jwt.PyJWTError, ValueError) as error:
                    logger.warning("JWKS fetch failed: %s", type(error).__name__)
                    if key is not None:
                        return key  # the provider is down: a known key stays good meanwhile
                    raise KeysUnavailable(self._retry_after(now)) from error
                key = self._keys.get(kid)
            elif key is None and self._last_attempt_failed:
                raise KeysUnavailable(self._retry_after(now))
            if key is None:
                raise UnknownKey(kid)
            return key

    def _may_fetch(self, now: float) -> bool:
        """At most one fetch per refetch interval, whatever its outcome."""
        return self._attempted_at is None or now - self._attempted_at >= self._refetch_seconds

    def _retry_after(self, now: float) -> int:
        """Whole seconds until the next fetch may be tried (at least 1)."""
        waited = now - (self._attempted_at or now)
        return max(1, math.ceil(self._refetch_seconds - waited))

    def _fetch(self, now: float) -> None:
        """Replace the cached keys with the JWKS's signing keys."""
        self._attempted_at = now
        self._last_attempt_failed = True
        self.fetches += 1
        keys = self._client.get_signing_keys()
        self._keys = {key.key_id: key for key in keys}
        self._fetched_at = now
        self._last_attempt_failed = False


class JwtVerifier:
    """Checks bearer JWTs against the provider's keys, issuer, audience and algorithms."""

    def __init__(
        self,
        *,
        keys: KeySet,
        issuer: str,
        audience: str,
        algorithms,
        leeway: int,
        wall_clock=time.time,
    ):
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.algorithms = list(algorithms)
        self.leeway = leeway
        self._wall_clock = wall_clock
        # token -> (claims, accepted until, kid, key): a signature is checked once per
        # token, not on every request it comes with (a tenth of a millisecond per check).
        self._verified: dict[str, tuple[dict, float, str, PyJWK]] = {}
        self._verified_lock = threading.Lock()

    def claims(self, token: str) -> dict:
        """The verified claims of ``token``; raises NotAuthenticated naming the failed check.

        A token verified before is accepted again without checking its signature
        while it has not expired (``exp`` plus the leeway) and its signing key is
        still the one the JWKS has under its ``kid``; anything else is verified
        in full, as the first time.
        """
        kept = self._verified.get(token)
        if kept is not None:
            claims, accepted_until, kid, key = kept
            if self._wall_clock() < accepted_until and self._still_signing(kid, key):
                return claims
            self._verified.pop(token, None)
        claims, kid, key = self._verify(token)
        with self._verified_lock:
            if len(self._verified) >= VERIFIED_TOKENS_KEPT:
                del self._verified[next(iter(self._verified))]  # the oldest
            self._verified[token] = (claims, float(claims["exp"]) + self.leeway, kid, key)
        return claims

    def _still_signing(self, kid: str, key: PyJWK) -> bool:
        """Whether the JWKS still has ``key`` under ``kid`` (fetched again as it would be)."""
        try:
            return self.keys.key(kid) is key
        except (UnknownKey, KeysUnavailable):
            return False  # verified in full, which says why it fails

    def _verify(self, token: str) -> tuple[dict, str, PyJWK]:
        """The claims of ``token`` checked in full, its ``kid`` and signing key."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise NotAuthenticated("The bearer token is not a well-formed JWT.") from error
        algorithm = header.get("alg")
        if algorithm not in self.algorithms:
            raise NotAuthenticated(
                f"The token's algorithm {_quote(algorithm)} is not accepted "
                f"(accepted: {', '.join(self.algorithms)})."
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise NotAuthenticated("The token names no signing key (no kid in its header).")
        try:
            key = self.keys.key(kid)
        except UnknownKey as error:
            raise NotAuthenticated(
                f"The token's signing key {_quote(kid)} is not in the identity provider's JWKS."
            ) from error
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.ExpiredSignatureError as error:
            raise NotAuthenticated("The token has expired (exp).") from error
        except jwt.ImmatureSignatureError as error:
            claim = "iat" if "iat" in str(error) else "nbf"
            raise NotAuthenticated(f"The token is not valid yet ({claim}).") from error
        except jwt.InvalidIssuerError as error:
            raise NotAuthenticated("The token's issuer (iss) is not the accepted one.") from error
        except jwt.InvalidAudienceError as error:
            raise NotAuthenticated("The token's audience (aud) is not this service.") from error
        except jwt.InvalidSignatureError as error:
            raise NotAuthenticated("The token's signature does not verify.") from error
        except jwt.MissingRequiredClaimError as error:
            raise NotAuthenticated(f"The token has no {error.claim} claim.") from error
        except jwt.InvalidAlgorithmError as error:
            raise NotAuthenticated(
                "The token's algorithm does not match its signing key's."
            ) from error
        except jwt.PyJWTError as error:
            raise NotAuthenticated(f"The token was refused: {error}.") from error
        return claims, kid, key
