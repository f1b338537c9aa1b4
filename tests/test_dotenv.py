""".env: read by gunicorn (its own settings and the app's) and by wsgi, real variables first."""

import json
import os
import subprocess
import sys

import pytest

from tests.support.servers import GUNICORN, ROOT, GunicornServer


def write_dotenv(directory, **settings) -> None:
    """A .env file in ``directory`` holding ``settings``."""
    lines = [f"{name}={value}" for name, value in settings.items()]
    (directory / ".env").write_text("\n".join(lines) + "\n")


def app_settings_in(directory, env: dict[str, str]) -> dict:
    """The settings ``wsgi.app`` ends up with when imported in ``directory`` with ``env``."""
    script = (
        "import json, wsgi; c = wsgi.app.config; names = "
        "('API_TOKENS', 'LOG_FORMAT', 'SQLALCHEMY_DATABASE_URI'); "
        "print(json.dumps({name: c[name] for name in names}))"
    )
    finished = subprocess.run(
        [sys.executable, "-c", script],
        cwd=directory,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(finished.stdout.splitlines()[-1])


def test_wsgi_reads_dotenv_and_variables_already_set_win(tmp_path):
    write_dotenv(
        tmp_path, API_TOKENS="from-dotenv", LOG_FORMAT="text", DATABASE_URL="sqlite:////dotenv.db"
    )

    settings = app_settings_in(
        tmp_path,
        {"FLASK_SKIP_DOTENV": "0", "APP_ENV": "testing", "DATABASE_URL": "sqlite:////real.db"},
    )

    assert settings == {
        "API_TOKENS": ["from-dotenv"],
        "LOG_FORMAT": "text",
        "SQLALCHEMY_DATABASE_URI": "sqlite:////real.db",
    }


def test_flask_skip_dotenv_leaves_the_file_unread(tmp_path):
    write_dotenv(tmp_path, API_TOKENS="from-dotenv", LOG_FORMAT="text")

    settings = app_settings_in(tmp_path, {"FLASK_SKIP_DOTENV": "1", "APP_ENV": "testing"})

    assert (settings["API_TOKENS"], settings["LOG_FORMAT"]) == ([], "json")


@pytest.mark.slow
def test_gunicorn_takes_its_settings_and_the_apps_from_dotenv(tmp_path, databases):
    database = databases.migrated("dotenv")
    write_dotenv(
        tmp_path,
        GUNICORN_WORKER_CLASS="gthread",  # gunicorn.conf.py reads it in the master
        WEB_CONCURRENCY="3",  # set for real below: the real variable wins
        API_TOKENS="from-dotenv",  # the app reads it in the worker
        DATABASE_URL="sqlite:////nonexistent/dotenv.db",  # set for real: never used
    )
    server = GunicornServer(
        tmp_path,
        database_url=database,
        workers=1,
        # run from the directory that holds the .env, with the project importable
        command=("env", "-C", str(tmp_path), GUNICORN, "-c", str(ROOT / "gunicorn.conf.py"),
                 "wsgi:app"),
        env={"FLASK_SKIP_DOTENV": "0", "PYTHONPATH": str(ROOT)},
    )  # fmt: skip

    with server:
        refused = server.request("POST", "/students", {"name": "Ada", "email": "ada@example.edu"})
        created = server.request(
            "POST",
            "/students",
            {"name": "Ada", "email": "ada@example.edu"},
            headers={"Authorization": "Bearer from-dotenv"},
        )
        listed = server.get("/students")
        workers = len(server.worker_pids())

    assert refused.status == 401
    assert created.status == 201
    assert [student["email"] for student in listed.body] == ["ada@example.edu"]
    assert workers == 1
    messages = [line["message"] for line in server.log_lines()]
    assert "Using worker: gthread" in messages
