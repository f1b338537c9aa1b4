"""docker/entrypoint.sh outside a container: migrate (bounded retries), then exec gunicorn."""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.servers import ROOT, GunicornServer, free_port

ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
VENV_BIN = str(Path(sys.executable).parent)
# A free port of the test range: nothing listens there.
UNREACHABLE_DATABASE = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"


def stub(bin_dir: Path, name: str, script: str) -> None:
    """A fake command on PATH that records its pid and arguments in calls.log."""
    path = bin_dir / name
    path.write_text(f'#!/bin/sh\necho "{name} $$ $*" >> "{bin_dir}/calls.log"\n{script}\n')
    path.chmod(0o755)


def run_entrypoint(tmp_path: Path, env: dict[str, str], *, path_first: Path | None = None):
    """Run the script to its end; returns (process, calls recorded by the stubs)."""
    search_path = os.pathsep.join(
        str(p) for p in (path_first, VENV_BIN, os.environ["PATH"]) if p is not None
    )
    process = subprocess.Popen(
        [str(ENTRYPOINT)],
        env={**os.environ, "MIGRATION_RETRY_DELAY": "0", **env, "PATH": search_path},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output, _ = process.communicate(timeout=120)
    log = (path_first / "calls.log") if path_first else None
    calls = log.read_text().splitlines() if log and log.exists() else []
    return process, output, calls


@pytest.fixture
def stubs(tmp_path):
    """A directory for fake commands; gunicorn is always a stub that exits 0."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub(bin_dir, "gunicorn", "exit 0")
    return bin_dir


def test_run_migrations_0_skips_them_and_execs_gunicorn_with_the_config(tmp_path, stubs):
    stub(stubs, "flask", "exit 1")

    process, output, calls = run_entrypoint(tmp_path, {"RUN_MIGRATIONS": "0"}, path_first=stubs)

    assert process.returncode == 0, output
    [call] = calls
    name, pid, *args = call.split()
    assert (name, args) == ("gunicorn", ["-c", "gunicorn.conf.py", "wsgi:app"])
    assert int(pid) == process.pid  # exec: gunicorn replaced the shell
    assert json.loads(output.splitlines()[0])["message"] == "RUN_MIGRATIONS=0: skipping migrations"


def test_migrations_are_retried_until_the_database_answers(tmp_path, stubs):
    # flask fails twice (database not up yet), then succeeds
    stub(stubs, "flask", f'[ "$(grep -c ^flask "{stubs}/calls.log")" -ge 3 ] || exit 1')

    process, output, calls = run_entrypoint(tmp_path, {}, path_first=stubs)

    assert process.returncode == 0, output
    assert [call.split()[0] for call in calls] == ["flask", "flask", "flask", "gunicorn"]
    assert all(call.split()[2:] == ["db", "upgrade"] for call in calls[:3])
    retries = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert [entry["level"] for entry in retries] == ["WARNING", "WARNING"]


def test_an_unreachable_database_gives_up_after_the_attempts_without_serving(tmp_path, stubs):
    process, output, calls = run_entrypoint(
        tmp_path,
        {
            "DATABASE_URL": UNREACHABLE_DATABASE,
            "MIGRATION_ATTEMPTS": "2",
            "DB_CONNECT_TIMEOUT": "2",
        },
        path_first=stubs,
    )  # the real flask, against a port where nothing listens

    assert process.returncode == 1
    assert calls == []  # gunicorn never started
    assert output.count("Connection refused") >= 2
    last = json.loads(output.strip().splitlines()[-1])
    assert (last["logger"], last["level"]) == ("entrypoint", "ERROR")
    assert "2 times" in last["message"]


@pytest.mark.slow
def test_the_real_entrypoint_migrates_a_new_database_then_serves(tmp_path):
    database = tmp_path / "fresh.sqlite3"
    env = {
        "DATABASE_URL": f"sqlite:///{database}",
        "PATH": os.pathsep.join((VENV_BIN, os.environ["PATH"])),
    }
    with GunicornServer(tmp_path, env=env, command=(str(ENTRYPOINT),)) as server:
        assert server.get("/readyz").status == 200
        students = server.get("/students")
        assert (students.status, students.body) == (200, [])

    with sqlite3.connect(database) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert {"students", "courses", "student_courses", "alembic_version"} <= tables
    assert server.process.returncode == 0
