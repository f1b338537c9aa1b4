"""The service under real gunicorn: configuration, JSON logs, metrics across workers."""

import os
import runpy
import subprocess
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from app.extensions import db
from tests.support.servers import GUNICORN, ROOT, GunicornServer, create, scrape


@pytest.fixture
def migrated_database(databases):
    """A new database at the head migration; returns its URL."""
    return databases.migrated("gunicorn")


def test_gunicorn_check_config_passes(tmp_path, migrated_database):
    env = {
        **os.environ,
        "DATABASE_URL": migrated_database,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [GUNICORN, "--check-config", "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr


def load_settings(monkeypatch, tmp_path, **env) -> dict:
    """gunicorn.conf.py's settings for the given environment."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    for name in ("HOST", "PORT", "WEB_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def test_gunicorn_defaults_serve_on_localhost_8000(monkeypatch, tmp_path):
    settings = load_settings(monkeypatch, tmp_path)

    assert settings["bind"] == "127.0.0.1:8000"
    assert settings["workers"] == 2 * len(os.sched_getaffinity(0)) + 1
    assert settings["timeout"] * 1000 > 5000  # the default statement timeout
    assert settings["accesslog"] is None  # the app logs each request itself


def test_gunicorn_reads_host_port_and_workers_from_the_environment(monkeypatch, tmp_path):
    settings = load_settings(
        monkeypatch, tmp_path, HOST="192.0.2.10", PORT="9000", WEB_CONCURRENCY="3"
    )

    assert (settings["bind"], settings["workers"]) == ("192.0.2.10:9000", 3)


def test_post_fork_drops_connections_inherited_from_the_master(monkeypatch, tmp_path, app):
    settings = load_settings(monkeypatch, tmp_path)
    with app.app_context():
        db.session.execute(db.select(1))
        db.session.remove()
        inherited = db.engine.pool
    assert inherited.checkedin() >= 1

    preloaded = SimpleNamespace(app=SimpleNamespace(callable=app))  # gunicorn's arbiter
    settings["post_fork"](preloaded, None)

    with app.app_context():
        assert db.engine.pool is not inherited
        assert db.engine.pool.checkedin() == 0
    inherited.dispose()  # this process is the parent after all: close them


@pytest.mark.slow
def test_two_workers_log_json_lines_and_metrics_add_up_across_workers(tmp_path, migrated_database):
    with GunicornServer(tmp_path, env={"DATABASE_URL": migrated_database}) as server:
        student = create(server, "/students", {"name": "A", "email": "a@x.edu"})
        course = create(server, "/courses", {"code": "C1", "title": "T"})
        enrolled = server.request("POST", f"/students/{student}/courses", {"course_ids": [course]})
        assert enrolled.status == 201

        # Concurrent requests until both workers have answered some (bounded).
        sent = 0
        with ThreadPoolExecutor(max_workers=6) as pool:
            for _round in range(20):
                statuses = list(pool.map(lambda _i: server.get("/students").status, range(12)))
                assert statuses == [200] * 12
                sent += 12
                pids = {
                    line["pid"] for line in server.log_lines()
                    if line.get("path") == "/students" and line.get("method") == "GET"
                }  # fmt: skip
                if len(pids) == 2:
                    break
        assert len(pids) == 2, "one worker answered every request"

        # Whichever worker answers the scrape, it reports every worker's requests.
        key = (
            "flask_http_request_duration_seconds_count",
            (("method", "GET"), ("route", "/students"), ("status", "200")),
        )
        for _scrape in range(4):
            metrics = server.get("/metrics")
            assert metrics.status == 200
            samples = scrape(metrics.body)
            assert samples[key] == sent
            assert samples[("enrollments_created_total", ())] == 1
        livez = server.get("/livez", headers={"X-Request-ID": "probe-1"})
        assert livez.headers["X-Request-ID"] == "probe-1"

    lines = server.log_lines()  # every line is JSON, or this fails
    assert any(line["logger"] == "gunicorn.error" for line in lines)
    requests = [line for line in lines if line["logger"] == "app.requests"]
    assert len(requests) >= sent + 3
    assert all(
        {"method", "path", "status", "duration_ms", "request_id"} <= set(line) for line in requests
    )
    assert any(line["path"] == "/livez" and line["request_id"] == "probe-1" for line in requests)
    [audit] = [line for line in lines if line["logger"] == "app.audit"]
    assert (audit["student_id"], audit["course_ids"], audit["outcome"]) == (
        student, [course], "created"
    )  # fmt: skip
