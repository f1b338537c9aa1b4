"""Configuration read from the environment.

Every setting the service reads is listed in the README's configuration table
and in ``.env.example``. Nothing here touches the database.
"""

import os
from typing import NamedTuple

from dotenv import find_dotenv, load_dotenv
from limits import parse_many

ENVIRONMENTS = ("development", "production", "testing")
LOG_FORMATS = ("json", "text")
DEFAULT_DATABASE_URL = "sqlite:///enrollment.db"  # relative: lives in instance/
MAX_BODY_BYTES = 1024 * 1024


def normalize_database_url(url: str) -> str:
    """Map ``postgres://`` and ``postgresql://`` URLs onto the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def split_list(value: str | None) -> list[str]:
    """Split a comma-separated setting into its non-empty, stripped items."""
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def load_dotenv_file() -> None:
    """Add the nearest ``.env`` (from the working directory up) to the environment.

    As with the ``flask`` command: variables already set win over the file, and
    ``FLASK_SKIP_DOTENV=1`` leaves the file unread.
    """
    skip = os.environ.get("FLASK_SKIP_DOTENV", "")
    if skip and skip.lower() not in ("0", "false", "no"):
        return
    load_dotenv(find_dotenv(usecwd=True), override=False)


def log_format(environ=os.environ) -> str:
    """``LOG_FORMAT``: readable ``text`` by default in development, ``json`` everywhere else."""
    default = "text" if environ.get("APP_ENV", "development") == "development" else "json"
    chosen = (environ.get("LOG_FORMAT") or default).lower()
    if chosen not in LOG_FORMATS:
        raise RuntimeError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {chosen!r}")
    return chosen


def web_settings(environ, app_env: str) -> dict:
    """Settings for browser frontends (CORS) and debug."""
    settings = {"CORS_ORIGINS": split_list(environ.get("CORS_ORIGINS"))}
    if app_env == "production":
        settings["DEBUG"] = False
    return settings


# --- authentication (README "Authentication and roles") ---------------------------

AUTH_MODES = ("jwt", "tokens", "none")
ROLES = ("admin", "registrar", "student")
JWT_REQUIRED = ("AUTH_JWKS_URL", "AUTH_ISSUER", "AUTH_AUDIENCE")
# Keys come from a JWKS, so only public-key algorithms make sense: an HMAC
# algorithm would turn a published key into a shared secret.
JWT_ALGORITHMS = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
)  # fmt: skip
SECRET_MIN_LENGTH = 32
# Fixed by the contract: a token naming an unknown key fetches the JWKS again at
# most this often (per worker), so a flood of made-up key ids cannot hammer the provider.
JWKS_REFETCH_SECONDS = 5.0


class ServiceToken(NamedTuple):
    """One entry of ``API_TOKENS``: a named back-end caller with one role."""

    name: str
    role: str
    secret: str


def parse_api_tokens(value: str | None) -> list[ServiceToken]:
    """Parse ``name:role:secret`` entries; refuse bad ones naming the entry, never the secret."""
    tokens: list[ServiceToken] = []
    for position, entry in enumerate(split_list(value), start=1):
        name, _, rest = entry.partition(":")
        role, _, secret = rest.partition(":")
        label = f"API_TOKENS entry {position}"
        if not (name and role and secret) or not name.replace("-", "").replace("_", "").isalnum():
            raise RuntimeError(
                f"{label} does not parse: write name:role:secret (name of letters, digits, - and _)"
            )
        label = f"{label} ({name!r})"
        if role not in ROLES:
            raise RuntimeError(f"{label} has unknown role {role!r}: use one of {', '.join(ROLES)}")
        if len(secret) < SECRET_MIN_LENGTH:
            raise RuntimeError(f"{label} has a secret shorter than {SECRET_MIN_LENGTH} characters")
        if any(token.name == name for token in tokens):
            raise RuntimeError(f"{label} repeats the name {name!r}: names must be unique")
        tokens.append(ServiceToken(name, role, secret))
    return tokens


def auth_settings(environ, app_env: str) -> dict:
    """Who may call: ``AUTH_MODE`` and its settings, refusing to start on anything missing."""
    mode = environ.get("AUTH_MODE", "").strip().lower()
    if not mode:
        if app_env == "production":
            raise RuntimeError(
                "AUTH_MODE must be set when APP_ENV=production: jwt (tokens from your identity "
                "provider), tokens (API_TOKENS) or none (a trusted gateway checks every call)"
            )
        mode = "none"
    if mode not in AUTH_MODES:
        raise RuntimeError(f"AUTH_MODE must be one of {', '.join(AUTH_MODES)}, not {mode!r}")
    settings = {
        "AUTH_MODE": mode,
        "AUTH_JWKS_URL": environ.get("AUTH_JWKS_URL", "").strip(),
        "AUTH_ISSUER": environ.get("AUTH_ISSUER", "").strip(),
        "AUTH_AUDIENCE": environ.get("AUTH_AUDIENCE", "").strip(),
        "AUTH_ALGORITHMS": split_list(environ.get("AUTH_ALGORITHMS") or "RS256,ES256"),
        "AUTH_ROLES_CLAIM": environ.get("AUTH_ROLES_CLAIM", "roles").strip() or "roles",
        "AUTH_LEEWAY_SECONDS": _non_negative_int(environ, "AUTH_LEEWAY_SECONDS", "30"),
        "AUTH_JWKS_REFETCH_SECONDS": JWKS_REFETCH_SECONDS,
        "API_TOKENS": parse_api_tokens(environ.get("API_TOKENS")),
        "METRICS_TOKEN": environ.get("METRICS_TOKEN", ""),
    }
    if mode == "jwt":
        missing = [name for name in JWT_REQUIRED if not settings[name]]
        if missing:
            raise RuntimeError(f"AUTH_MODE=jwt needs {', '.join(missing)} to be set")
        refused = [alg for alg in settings["AUTH_ALGORITHMS"] if alg not in JWT_ALGORITHMS]
        if refused or not settings["AUTH_ALGORITHMS"]:
            raise RuntimeError(
                f"AUTH_ALGORITHMS may only list {', '.join(JWT_ALGORITHMS)}; "
                f"refused: {', '.join(refused) or 'an empty list'}"
            )
        if not settings["AUTH_JWKS_URL"].startswith(("https://", "http://")):
            raise RuntimeError("AUTH_JWKS_URL must be an http(s) URL")
    if mode == "tokens" and not settings["API_TOKENS"]:
        raise RuntimeError("AUTH_MODE=tokens needs API_TOKENS (name:role:secret, comma-separated)")
    if mode != "tokens" and settings["API_TOKENS"]:
        # Tokens listed but never checked would look like protection and be none.
        raise RuntimeError(f"API_TOKENS is set but AUTH_MODE is {mode}: set AUTH_MODE=tokens")
    if settings["METRICS_TOKEN"] and len(settings["METRICS_TOKEN"]) < SECRET_MIN_LENGTH:
        raise RuntimeError(f"METRICS_TOKEN must be at least {SECRET_MIN_LENGTH} characters")
    return settings


def _non_negative_int(environ, name: str, default: str) -> int:
    """An integer setting of 0 or more (empty means the default)."""
    value = (environ.get(name) or default).strip()
    if not value.isdigit():
        raise RuntimeError(f"{name} must be a whole number of seconds, not {value!r}")
    return int(value)


# Rate limits (README "Rate limits"): setting -> default, in the `limits` notation.
RATE_LIMIT_DEFAULTS = {
    "RATELIMIT_AUTH_FAILURES": "20 per minute",
    "RATELIMIT_WRITES": "60 per minute",
    "RATELIMIT_SEARCHES": "30 per minute",
    "RATELIMIT_GLOBAL": "1200 per minute",
}
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def parse_flag(name: str, value: str) -> bool:
    """A boolean setting: true/false, yes/no, on/off or 1/0; anything else stops start-up."""
    word = value.strip().lower()
    if word not in TRUE_WORDS + FALSE_WORDS:
        raise RuntimeError(f"{name} must be true or false, not {value!r}")
    return word in TRUE_WORDS


def proxy_and_limit_settings(environ, app_env: str) -> dict:
    """Trusted proxies and rate limits; a malformed value stops start-up with its name."""
    hops = environ.get("TRUSTED_PROXIES", "0")
    if not hops.isdigit():
        raise RuntimeError(f"TRUSTED_PROXIES must be a whole number of proxies, not {hops!r}")
    # The suite's shared app makes thousands of requests from one address: tests that
    # exercise the limits turn them on explicitly.
    enabled_default = "false" if app_env == "testing" else "true"
    settings = {
        "TRUSTED_PROXIES": int(hops),
        "RATELIMIT_ENABLED": parse_flag(
            "RATELIMIT_ENABLED", environ.get("RATELIMIT_ENABLED", enabled_default)
        ),
        "RATELIMIT_STORAGE_URI": environ.get("RATELIMIT_STORAGE_URI", "memory://"),
        "RATELIMIT_KEY_PREFIX": environ.get("RATELIMIT_KEY_PREFIX", "enrollment"),
    }
    for name, default in RATE_LIMIT_DEFAULTS.items():
        value = environ.get(name, default)
        try:
            parse_many(value)
        except ValueError as error:
            raise RuntimeError(f"{name} is not a rate limit such as '20 per minute'") from error
        settings[name] = value
    return settings


# --- connection pooling (README "Configuration", docs/SCALING.md) -------------------

DATABASE_POOLERS = ("none", "pgbouncer")


def pooler_settings(environ, database_url: str) -> dict:
    """``DATABASE_POOLER``: what sits between the service and PostgreSQL.

    ``pgbouncer`` (a transaction pooler) hands each transaction to any server
    connection, so the service must keep nothing on a connection between
    transactions (see :func:`app.database.configure_pgbouncer`).
    """
    pooler = (environ.get("DATABASE_POOLER") or "none").strip().lower()
    if pooler not in DATABASE_POOLERS:
        raise RuntimeError(
            f"DATABASE_POOLER must be one of {', '.join(DATABASE_POOLERS)}, not {pooler!r}"
        )
    if pooler != "none" and not database_url.startswith("postgresql"):
        raise RuntimeError(f"DATABASE_POOLER={pooler} needs a PostgreSQL DATABASE_URL")
    return {"DATABASE_POOLER": pooler}


def load_config(environ=os.environ) -> dict:
    """Build the Flask configuration mapping from environment variables."""
    app_env = environ.get("APP_ENV", "development")
    if app_env not in ENVIRONMENTS:
        raise RuntimeError(f"APP_ENV must be one of {', '.join(ENVIRONMENTS)}, not {app_env!r}")
    secret_key = environ.get("SECRET_KEY")
    if not secret_key:
        if app_env == "production":
            raise RuntimeError("SECRET_KEY must be set when APP_ENV=production")
        secret_key = "dev-only-not-secret"  # noqa: S105 - never used in production
    database_url = normalize_database_url(environ.get("DATABASE_URL", DEFAULT_DATABASE_URL))
    return {
        "APP_ENV": app_env,
        "TESTING": app_env == "testing",
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "MAX_CONTENT_LENGTH": MAX_BODY_BYTES,
        "SQLITE_BUSY_TIMEOUT_SECONDS": float(environ.get("SQLITE_BUSY_TIMEOUT", "30")),
        # operations (README "Deploying"): keep the statement timeout below gunicorn's timeout
        "DB_STATEMENT_TIMEOUT_MS": int(environ.get("DB_STATEMENT_TIMEOUT_MS", "5000")),
        "DB_CONNECT_TIMEOUT_SECONDS": int(environ.get("DB_CONNECT_TIMEOUT", "5")),
        # lists (app/queries.py count_rows): totals past this many rows are estimated on PostgreSQL
        "LIST_COUNT_EXACT_UP_TO": 10_000,
        "LOG_LEVEL": environ.get("LOG_LEVEL", "INFO").upper(),
        "LOG_FORMAT": log_format(environ),
        # flask-smorest / OpenAPI
        "API_TITLE": "Student enrollment API",
        "API_VERSION": "1.0.0",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
        "API_SPEC_OPTIONS": {
            "info": {
                "description": "Students, courses and course enrollment. "
                "Errors are application/problem+json (RFC 9457)."
            }
        },
        **web_settings(environ, app_env),
        **auth_settings(environ, app_env),
        **proxy_and_limit_settings(environ, app_env),
        **pooler_settings(environ, database_url),
    }
