"""Configuration read from the environment.

Every setting the service reads is listed in the README's configuration table
and in ``.env.example``. Nothing here touches the database.
"""

import os

from dotenv import find_dotenv, load_dotenv

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
    """Settings for browser frontends and write access (CORS, API tokens, debug)."""
    settings = {
        "CORS_ORIGINS": split_list(environ.get("CORS_ORIGINS")),
        "API_TOKENS": split_list(environ.get("API_TOKENS")),
    }
    if app_env == "production":
        settings["DEBUG"] = False
    return settings


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
    return {
        "APP_ENV": app_env,
        "TESTING": app_env == "testing",
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": normalize_database_url(
            environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
        ),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "MAX_CONTENT_LENGTH": MAX_BODY_BYTES,
        "SQLITE_BUSY_TIMEOUT_SECONDS": float(environ.get("SQLITE_BUSY_TIMEOUT", "30")),
        # operations (README "Deploying"): keep the statement timeout below gunicorn's timeout
        "DB_STATEMENT_TIMEOUT_MS": int(environ.get("DB_STATEMENT_TIMEOUT_MS", "5000")),
        "DB_CONNECT_TIMEOUT_SECONDS": int(environ.get("DB_CONNECT_TIMEOUT", "5")),
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
    }
