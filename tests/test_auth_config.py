"""Start-up rules of AUTH_MODE: a production instance never starts open by accident.

Each refusal stops the service with a message saying what to set, and never
repeats a secret.
"""

import logging

import pytest

from app import create_app
from config import auth_settings, load_config

SECRET = "s" * 32
PRODUCTION = {"APP_ENV": "production", "SECRET_KEY": "a-real-secret"}
JWT = {
    "AUTH_MODE": "jwt",
    "AUTH_JWKS_URL": "https://idp.example.edu/certs",
    "AUTH_ISSUER": "https://idp.example.edu/",
    "AUTH_AUDIENCE": "enrollment-api",
}


def refusal(environ: dict) -> str:
    with pytest.raises(RuntimeError) as error:
        load_config(environ)
    return str(error.value)


def test_development_and_testing_default_to_none():
    assert load_config({})["AUTH_MODE"] == "none"
    assert load_config({"APP_ENV": "testing"})["AUTH_MODE"] == "none"


def test_production_without_auth_mode_refuses_to_start():
    message = refusal(PRODUCTION)
    assert message.startswith("AUTH_MODE must be set when APP_ENV=production")
    assert "jwt (tokens from your identity provider)" in message


@pytest.mark.parametrize("missing", ["AUTH_JWKS_URL", "AUTH_ISSUER", "AUTH_AUDIENCE"])
def test_jwt_mode_without_a_required_setting_refuses_to_start(missing):
    environ = {**PRODUCTION, **JWT}
    del environ[missing]
    assert refusal(environ) == f"AUTH_MODE=jwt needs {missing} to be set"


def test_jwt_mode_defaults():
    settings = auth_settings(JWT, "production")
    assert settings["AUTH_ALGORITHMS"] == ["RS256", "ES256"]
    assert settings["AUTH_ROLES_CLAIM"] == "roles"
    assert settings["AUTH_LEEWAY_SECONDS"] == 30


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("AUTH_ALGORITHMS", "RS256,HS256", "refused: HS256"),
        ("AUTH_ALGORITHMS", "none", "refused: none"),
        ("AUTH_LEEWAY_SECONDS", "-5", "AUTH_LEEWAY_SECONDS must be a whole number"),
        ("AUTH_JWKS_URL", "file:///etc/passwd", "AUTH_JWKS_URL must be an http(s) URL"),
        ("AUTH_MODE", "ldap", "AUTH_MODE must be one of jwt, tokens, none"),
    ],
)
def test_jwt_mode_refuses_unsafe_settings(setting, value, message):
    assert message in refusal({**PRODUCTION, **JWT, setting: value})


def test_tokens_mode_without_api_tokens_refuses_to_start():
    assert "AUTH_MODE=tokens needs API_TOKENS" in refusal({**PRODUCTION, "AUTH_MODE": "tokens"})


@pytest.mark.parametrize(
    ("api_tokens", "message"),
    [
        (f"bff:admin:{SECRET},{'q' * 40}", "API_TOKENS entry 2 does not parse"),
        (f"bff:admin:{'short-secret-value'}", "entry 1 ('bff') has a secret shorter than 32"),
        (f"bff:teacher:{SECRET}", "entry 1 ('bff') has unknown role 'teacher'"),
        (f"bff:admin:{SECRET},bff:student:{SECRET}", "entry 2 ('bff') repeats the name"),
        (f"bad name:admin:{SECRET}", "API_TOKENS entry 1 does not parse"),
        (f"bff::{SECRET}", "API_TOKENS entry 1 does not parse"),
    ],
    ids=["no-colons", "short", "unknown-role", "duplicate", "bad-name", "no-role"],
)
def test_malformed_api_tokens_refuse_to_start_naming_the_entry_never_the_secret(
    api_tokens, message
):
    text = refusal({**PRODUCTION, "AUTH_MODE": "tokens", "API_TOKENS": api_tokens})
    assert message in text
    for secret in (SECRET, "q" * 40, "short-secret-value"):
        assert secret not in text


def test_api_tokens_parse_into_names_roles_and_secrets():
    settings = auth_settings(
        {"AUTH_MODE": "tokens", "API_TOKENS": f" bff:student:{SECRET} , job:registrar:{SECRET}x ,"},
        "production",
    )
    assert [(t.name, t.role) for t in settings["API_TOKENS"]] == [
        ("bff", "student"),
        ("job", "registrar"),
    ]


def test_api_tokens_without_tokens_mode_refuse_to_start():
    message = refusal({**PRODUCTION, **JWT, "API_TOKENS": f"bff:admin:{SECRET}"})
    assert message == "API_TOKENS is set but AUTH_MODE is jwt: set AUTH_MODE=tokens"


def test_a_short_metrics_token_refuses_to_start():
    message = refusal({**PRODUCTION, "AUTH_MODE": "none", "METRICS_TOKEN": "short"})
    assert message == "METRICS_TOKEN must be at least 32 characters"


@pytest.fixture
def production_env(monkeypatch, tmp_path):
    """The environment of a production process, for create_app."""
    for name in ("AUTH_MODE", "API_TOKENS", "METRICS_TOKEN", "AUTH_JWKS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "a-real-secret")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'prod.sqlite3'}")
    return monkeypatch


def test_create_app_in_production_without_auth_mode_refuses(production_env):
    with pytest.raises(RuntimeError, match="AUTH_MODE must be set"):
        create_app()


def test_none_mode_in_production_starts_and_warns(production_env, caplog):
    production_env.setenv("AUTH_MODE", "none")
    with caplog.at_level(logging.WARNING, logger="app.auth"):
        application = create_app()
    assert application.config["AUTH_MODE"] == "none"
    assert any("AUTH_MODE=none" in record.getMessage() for record in caplog.records)


def test_empty_settings_mean_their_defaults_as_in_env_example():
    empty = dict.fromkeys(
        ("AUTH_MODE", "AUTH_ALGORITHMS", "AUTH_ROLES_CLAIM", "AUTH_LEEWAY_SECONDS", "API_TOKENS",
         "METRICS_TOKEN"), "")  # fmt: skip
    settings = auth_settings(empty, "development")
    assert settings["AUTH_MODE"] == "none"
    assert settings["AUTH_ALGORITHMS"] == ["RS256", "ES256"]
    assert settings["AUTH_LEEWAY_SECONDS"] == 30
    assert "AUTH_MODE must be set" in refusal({**PRODUCTION, **empty})
