"""AUTH_MODE=jwt: tokens checked against a JWKS served over real HTTP by the test.

Every refusal is a 401 problem with ``WWW-Authenticate: Bearer error="invalid_token"``
and a detail naming the failed check (never the token); a JWKS that cannot be
fetched is a 503 with ``Retry-After``, and the service recovers when it is back.
"""

import base64
import hashlib
import hmac
import json
import time

import pytest

from app.models import Student
from tests.support.identity_provider import AUDIENCE, new_private_key, public_pem

STAFF_ONLY = "/students"  # GET: registrar or admin


class ManualClock:
    """A monotonic clock the test moves forward by hand (the JWKS refetch interval)."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def provider(identity_provider, auth_mode, clock):
    """The app in jwt mode against the test's identity provider, on a clock of the test's."""
    auth_mode(clock=clock, **identity_provider.settings())
    return identity_provider


def call(client, token: str | None, path: str = STAFF_ONLY, method: str = "get", **kwargs):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return getattr(client, method)(path, headers=headers, **kwargs)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(header: dict, payload: dict, secret: bytes | None = None) -> str:
    """A token built by hand: unsigned (alg none), or HMAC-signed with ``secret``."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = b""
    if secret is not None:
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def assert_invalid_token(response, check: str, token: str | None = None) -> None:
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert check in response.json["detail"]
    if token:
        assert token not in response.get_data(as_text=True)
        for part in token.split("."):
            assert not part or part not in response.json["detail"]


# --- accepted tokens ----------------------------------------------------------


@pytest.mark.parametrize("kind", ["RSA", "EC"])
def test_a_valid_token_signed_with_an_rsa_or_ec_key_is_accepted(provider, client, kind):
    kid = provider.add_key(kind)
    response = call(client, provider.token(roles=["admin"], kid=kid))
    assert response.status_code == 200


def test_an_expiry_inside_the_leeway_is_accepted(provider, client):
    now = int(time.time())
    token = provider.token(roles=["admin"], exp=now - 10, iat=now - 100, nbf=now - 100)
    assert call(client, token).status_code == 200


def test_keycloak_nested_roles_claim_gives_the_role(identity_provider, auth_mode, client):
    auth_mode(**identity_provider.settings(AUTH_ROLES_CLAIM="realm_access.roles"))
    token = identity_provider.token(
        roles=None, realm_access={"roles": ["offline_access", "registrar"]}
    )
    assert call(client, token).status_code == 200
    refused = call(client, token, "/courses", "post", json={"code": "X1", "title": "X"})
    assert refused.status_code == 403
    assert "needs the role admin; your role is registrar" in refused.json["detail"]


def test_a_token_without_any_known_role_is_forbidden(provider, client):
    response = call(client, provider.token(roles=["teacher"]))
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"
    assert "your token carries no role" in response.json["detail"]


# --- refused tokens -----------------------------------------------------------


def test_no_credentials_is_401_with_a_plain_bearer_challenge(provider, client):
    response = call(client, None)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="enrollment"'
    assert "Authorization: Bearer" in response.json["detail"]


@pytest.mark.parametrize(
    ("claims", "check"),
    [
        ({"exp": -100}, "expired (exp)"),
        ({"nbf": 120}, "not valid yet (nbf)"),
        ({"iat": 120}, "not valid yet (iat)"),
        ({"iss": "https://evil.example.com/"}, "issuer (iss)"),
        ({"aud": "another-api"}, "audience (aud)"),
        ({"sub": None}, "no sub claim"),
        ({"exp": None}, "no exp claim"),
    ],
    ids=["expired", "not-yet-valid", "issued-in-the-future", "wrong-issuer", "wrong-audience",
         "no-subject", "no-expiry"],
)  # fmt: skip
def test_a_token_failing_a_claim_check_is_401_naming_the_check(provider, client, claims, check):
    now = int(time.time())
    relative = {name: now + value if name in {"exp", "nbf", "iat"} and value is not None else value
                for name, value in claims.items()}  # fmt: skip
    token = provider.token(roles=["admin"], **relative)
    assert_invalid_token(call(client, token), check, token)


def test_a_token_signed_with_another_key_under_a_published_kid_is_401(provider, client):
    token = provider.token(roles=["admin"], key=new_private_key("RSA"))
    assert_invalid_token(call(client, token), "signature does not verify", token)


def test_an_unsigned_alg_none_token_is_401(provider, client):
    now = int(time.time())
    payload = {"iss": provider.settings()["AUTH_ISSUER"], "aud": AUDIENCE, "sub": "x",
               "iat": now, "exp": now + 60, "roles": ["admin"]}  # fmt: skip
    token = unsigned_token({"alg": "none", "typ": "JWT", "kid": provider.default_kid}, payload)
    assert_invalid_token(call(client, token), 'algorithm "none" is not accepted', token)


def test_an_hs256_token_signed_with_the_public_key_as_secret_is_401(provider, client):
    now = int(time.time())
    payload = {"iss": provider.settings()["AUTH_ISSUER"], "aud": AUDIENCE, "sub": "x",
               "iat": now, "exp": now + 60, "roles": ["admin"]}  # fmt: skip
    secret = public_pem(provider.published[provider.default_kid])
    token = unsigned_token({"alg": "HS256", "kid": provider.default_kid}, payload, secret)
    assert_invalid_token(call(client, token), 'algorithm "HS256" is not accepted', token)


def test_an_rs256_token_claiming_a_kid_of_an_ec_key_is_401(provider, client):
    ec_kid = provider.add_key("EC")
    rsa_key = provider.published[provider.default_kid]
    token = provider.token(roles=["admin"], kid=ec_kid, key=rsa_key)
    assert_invalid_token(call(client, token), "does not match its signing key", token)


@pytest.mark.parametrize(
    ("authorization", "check"),
    [
        ("Bearer not-a-jwt", "not a well-formed JWT"),
        ("Basic dXNlcjpwYXNz", "must be 'Bearer <token>'"),
        ("Bearer", "must be 'Bearer <token>'"),
    ],
)
def test_malformed_credentials_are_401(provider, client, authorization, check):
    response = client.get(STAFF_ONLY, headers={"Authorization": authorization})
    assert_invalid_token(response, check)


def test_a_refused_token_changes_nothing(provider, client, db_rows):
    token = provider.token(roles=["admin"], aud="another-api")
    response = call(client, token, "/students", "post", json={"name": "A", "email": "a@x.edu"})
    assert response.status_code == 401
    assert db_rows(Student) == []


# --- keys: cache, rotation, outage --------------------------------------------


def test_keys_are_fetched_once_and_cached(provider, client):
    before = provider.fetches
    for _ in range(3):
        assert call(client, provider.token(roles=["admin"])).status_code == 200
    assert provider.fetches == before + 1


def test_an_unknown_kid_refetches_the_jwks_at_most_every_five_seconds(provider, client, clock):
    assert call(client, provider.token(roles=["admin"])).status_code == 200
    fetched = provider.fetches
    clock.now += 5

    first = call(client, provider.token(roles=["admin"], kid="no-such-key"))
    clock.now += 4.9
    second = call(client, provider.token(roles=["admin"], kid="nor-this-one"))

    assert_invalid_token(first, '"no-such-key" is not in the identity provider\'s JWKS')
    assert_invalid_token(second, '"nor-this-one" is not in the identity provider\'s JWKS')
    assert provider.fetches == fetched + 1
    clock.now += 0.1
    call(client, provider.token(roles=["admin"], kid="again-unknown"))
    assert provider.fetches == fetched + 2


def test_a_key_rotation_needs_no_restart(provider, client, clock):
    old_kid = provider.default_kid
    old_key = provider.published[old_kid]
    assert call(client, provider.token(roles=["admin"])).status_code == 200

    provider.default_kid = provider.add_key("EC")
    provider.retire(old_kid)
    signed_with_the_new_key = provider.token(roles=["admin"])
    clock.now += 5
    signed_with_the_retired_key = provider.token(roles=["admin"], kid=old_kid, key=old_key)

    assert call(client, signed_with_the_new_key).status_code == 200
    assert_invalid_token(call(client, signed_with_the_retired_key), f'"{old_kid}" is not in')


def test_jwks_down_is_503_with_retry_after_and_the_service_recovers(
    identity_provider, auth_mode, client, clock
):
    auth_mode(clock=clock, **identity_provider.settings())
    token = identity_provider.token(roles=["admin"])
    identity_provider.stop()
    try:
        down = call(client, token)
        again = call(client, token)
        assert client.get("/courses").status_code == 200  # the catalog needs no key
    finally:
        identity_provider.start()
    assert down.status_code == 503
    assert down.mimetype == "application/problem+json"
    assert down.headers["Retry-After"] == "5"
    assert "signing keys cannot be fetched" in down.json["detail"]
    assert again.status_code == 503
    assert int(again.headers["Retry-After"]) >= 1

    clock.now += 5
    assert call(client, token).status_code == 200


def test_known_keys_keep_working_while_the_jwks_is_down(provider, client, clock):
    token = provider.token(roles=["admin"])
    assert call(client, token).status_code == 200
    provider.stop()
    try:
        clock.now += 600  # past the cache's age: a refetch is tried and fails
        assert call(client, token).status_code == 200
        unknown = call(client, provider.token(roles=["admin"], kid="unseen"))
    finally:
        provider.start()
    assert unknown.status_code == 503


# --- tokens verified once -----------------------------------------------------


def test_a_token_seen_before_is_not_verified_again(provider, client, monkeypatch):
    import app.auth.jwks as jwks

    decoded = []
    original = jwks.jwt.decode

    def counting(*args, **kwargs):
        decoded.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(jwks.jwt, "decode", counting)
    token, other = provider.token(roles=["admin"]), provider.token("user-2", roles=["admin"])

    assert [call(client, token).status_code for _ in range(3)] == [200, 200, 200]
    assert call(client, other).status_code == 200

    assert decoded == [token, other]


def test_a_token_seen_before_still_expires(identity_provider, auth_mode, client):
    auth_mode(**identity_provider.settings(AUTH_LEEWAY_SECONDS="0"))
    token = identity_provider.token(roles=["admin"], lifetime=1)
    assert call(client, token).status_code == 200

    time.sleep(1.2)

    assert_invalid_token(call(client, token), "expired (exp)", token)


def test_a_token_seen_before_is_refused_once_its_key_is_retired(provider, client, clock):
    kid = provider.add_key()  # not the provider's default key, which other tests sign with
    token = provider.token(roles=["admin"], kid=kid)
    clock.now += 5  # the JWKS may be fetched again for the new kid
    assert call(client, token).status_code == 200
    provider.retire(kid)

    clock.now += 3600  # past the keys' maximum age: the next use fetches the JWKS again

    assert_invalid_token(call(client, token), f'"{kid}" is not in', token)
