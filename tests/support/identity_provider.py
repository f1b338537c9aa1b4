"""A stand-in identity provider for tests: a JWKS over real HTTP and tokens signed with its keys.

Keys (RSA and EC) and tokens are made with PyJWT and cryptography, the same
libraries the service checks them with. The JWKS is served by a real HTTP
server on a port of the test range, so the service fetches it exactly as it
fetches a provider's; ``stop`` and ``start`` take it down and bring it back on
the same port, and ``fetches`` counts the JWKS requests it answered.
"""

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from tests.support.servers import free_port

ISSUER = "https://idp.example.edu/realms/school"
AUDIENCE = "enrollment-api"
JWKS_PATH = "/realms/school/protocol/openid-connect/certs"
ALGORITHM = {"RSA": "RS256", "EC": "ES256"}


def new_private_key(kind: str):
    """A fresh RSA (2048-bit) or EC (P-256) private key."""
    if kind == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def public_jwk(private_key, kid: str) -> dict:
    """The public half of a key as a JWK with its kid, use and alg."""
    if isinstance(private_key, rsa.RSAPrivateKey):
        jwk = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
        algorithm = "RS256"
    else:
        jwk = ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
        algorithm = "ES256"
    return {**jwk, "kid": kid, "use": "sig", "alg": algorithm}


def public_pem(private_key) -> bytes:
    """The public half of a key in PEM (what an attacker could use as an HMAC secret)."""
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class IdentityProvider:
    """Published signing keys, a JWKS server for them, and a token factory."""

    def __init__(self):
        self.port = free_port()
        self.published: dict[str, object] = {}
        self.fetches = 0
        self._server: ThreadingHTTPServer | None = None
        self.default_kid = self.add_key("RSA")
        self.start()

    @property
    def jwks_url(self) -> str:
        """Where the JWKS is served."""
        return f"http://127.0.0.1:{self.port}{JWKS_PATH}"

    def settings(self, **overrides) -> dict:
        """The service's environment for ``AUTH_MODE=jwt`` against this provider."""
        return {
            "AUTH_MODE": "jwt",
            "AUTH_JWKS_URL": self.jwks_url,
            "AUTH_ISSUER": ISSUER,
            "AUTH_AUDIENCE": AUDIENCE,
            **overrides,
        }

    def add_key(self, kind: str = "RSA") -> str:
        """Publish a new key (RSA or EC); return its kid."""
        kid = f"{kind.lower()}-{uuid.uuid4().hex[:8]}"
        self.published[kid] = new_private_key(kind)
        return kid

    def retire(self, kid: str) -> None:
        """Stop publishing a key (tokens signed with it stop verifying after a refetch)."""
        del self.published[kid]

    def jwks(self) -> dict:
        """The published keys as a JWKS document."""
        return {"keys": [public_jwk(key, kid) for kid, key in self.published.items()]}

    def token(
        self,
        sub: str = "user-1",
        roles: list[str] | None = None,
        *,
        kid: str | None = None,
        key=None,
        headers: dict | None = None,
        lifetime: int = 300,
        **claims,
    ) -> str:
        """A signed token; claims given as keyword arguments replace the defaults (None drops)."""
        kid = kid or self.default_kid
        if key is None:  # a kid the provider never published still gets a real signature
            key = self.published.get(kid) or self.published[self.default_kid]
        now = int(time.time())
        payload = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": sub,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "roles": roles if roles is not None else [],
            **claims,
        }
        payload = {name: value for name, value in payload.items() if value is not None}
        algorithm = ALGORITHM["RSA" if isinstance(key, rsa.RSAPrivateKey) else "EC"]
        return jwt.encode(
            payload, key, algorithm=algorithm, headers={"kid": kid, **(headers or {})}
        )

    def start(self) -> None:
        """Serve the JWKS on the provider's port."""
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path != JWKS_PATH:
                    self.send_error(404)
                    return
                provider.fetches += 1
                body = json.dumps(provider.jwks()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args):
                """Keep the test output quiet."""

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Take the JWKS server down (its port refuses connections)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
