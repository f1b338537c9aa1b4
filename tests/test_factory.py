"""The application factory and configuration from the environment."""

import pytest

from app import create_app
from config import DEFAULT_DATABASE_URL, load_config, normalize_database_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql://u@h:5432/db", "postgresql+psycopg://u@h:5432/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_database_urls_map_to_psycopg3(url, expected):
    assert normalize_database_url(url) == expected


def test_defaults_are_development_on_sqlite_in_instance():
    config = load_config({})

    assert config["APP_ENV"] == "development"
    assert config["SQLALCHEMY_DATABASE_URI"] == DEFAULT_DATABASE_URL
    assert config["MAX_CONTENT_LENGTH"] == 1024 * 1024


def test_production_requires_a_secret_key():
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        load_config({"APP_ENV": "production"})


def test_production_uses_the_given_secret_key():
    config = load_config({"APP_ENV": "production", "SECRET_KEY": "s3cret", "AUTH_MODE": "none"})

    assert config["SECRET_KEY"] == "s3cret"
    assert config["TESTING"] is False


def test_unknown_app_env_is_refused():
    with pytest.raises(RuntimeError, match="APP_ENV"):
        load_config({"APP_ENV": "staging"})


def test_factory_applies_test_config(tmp_path):
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/f.db"})

    assert app.testing
    assert "students" in app.blueprints
    assert "courses" in app.blueprints


def test_factory_does_not_create_tables(tmp_path):
    import sqlite3

    path = tmp_path / "untouched.db"
    create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}"})

    assert not path.exists() or sqlite3.connect(path).execute(
        "select count(*) from sqlite_master"
    ).fetchone() == (0,)


def test_hooks_and_views_are_run_as_they_are_written(app, client):
    """The kept "is it a coroutine?" answers: synchronous callables as they are, async refused."""

    def hook():
        return None

    class Holder:
        def method(self):
            return None

    assert app.ensure_sync(hook) is hook
    assert app.ensure_sync(hook) is hook  # the kept answer
    first, second = Holder().method, Holder().method
    assert app.ensure_sync(first) is first
    assert app.ensure_sync(second) is second  # a new binding of the same function

    async def coroutine():
        return None

    # Flask runs a coroutine only through its async extra, which the service does not install:
    # it is never handed back as if it were synchronous.
    with pytest.raises(RuntimeError, match="async"):
        app.ensure_sync(coroutine)
    assert client.get("/livez").status_code == 200
