"""The Makefile a newcomer uses: help, run (signals reach gunicorn), reset-db, audit."""

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from config import normalize_database_url
from tests.support.databases import migrate
from tests.support.servers import ROOT, GunicornServer, free_port


def make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``make`` in the project with ``args``; the exit status is the caller's to check."""
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )


def query(database_url: str, statement: str) -> list[tuple]:
    """Every row ``statement`` returns from the database at ``database_url``."""
    engine = create_engine(normalize_database_url(database_url))
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(statement))]
    finally:
        engine.dispose()


def add_student(database_url: str) -> None:
    """Store one student, straight through SQL."""
    engine = create_engine(normalize_database_url(database_url))
    try:
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO students (name, email, created_at) VALUES (:n, :e, :t)"),
                {"n": "Ada", "e": "ada@example.edu", "t": "2026-01-01 00:00:00"},
            )
    finally:
        engine.dispose()


def head_revision() -> str:
    """The newest revision id in migrations/versions."""
    revisions, parents = set(), set()
    for path in (ROOT / "migrations" / "versions").glob("*.py"):
        source = path.read_text()
        revisions.add(re.search(r'^revision = "(\w+)"', source, re.M).group(1))
        parents.add(re.search(r"^down_revision = (.+)$", source, re.M).group(1).strip("\"'"))
    [head] = revisions - parents
    return head


def test_make_help_lists_every_target_with_its_summary():
    makefile = (ROOT / "Makefile").read_text()
    documented = dict(re.findall(r"^## ([a-z-]+): (.+)$", makefile, re.M))
    phony = {
        name for line in re.findall(r"^\.PHONY: (.+)$", makefile, re.M) for name in line.split()
    }

    shown = make("help")
    default = make()

    assert shown.returncode == 0, shown.stderr
    assert default.stdout == shown.stdout  # `make` alone is `make help`
    listed = dict(line.split(None, 1) for line in shown.stdout.splitlines())
    assert listed == documented
    assert phony <= set(listed), f"targets without a `## name: text` line: {phony - set(listed)}"
    assert {"run", "test", "lock", "db-upgrade", "db-check", "reset-db", "audit"} <= set(listed)


def children_of(pid: int) -> list[int]:
    """Process ids whose parent is ``pid``."""
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def running(pid: int) -> bool:
    """True while process ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def port_is_free(port: int) -> bool:
    """True when nothing accepts connections on 127.0.0.1:``port``."""
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.slow
def test_killing_make_run_stops_gunicorn_and_frees_the_port(tmp_path, databases):
    # `make run` upgrades the database itself, then serves
    server = GunicornServer(
        tmp_path, database_url=databases.new("makerun"), workers=1, command=("make", "run")
    )
    server.start()
    try:
        make_pid = server.process.pid
        # exec: the shell that ran the recipe line became gunicorn, so make's child is the master
        [master] = children_of(make_pid)
        assert Path(f"/proc/{master}/comm").read_text().strip() == "gunicorn"  # not "sh"

        os.kill(make_pid, signal.SIGTERM)  # what `kill <pid of make run>` does
        server.process.wait(timeout=30)

        deadline = time.monotonic() + 30
        while (running(master) or not port_is_free(server.port)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not running(master)
        assert port_is_free(server.port)
    finally:
        # whatever is left of make's process group (nothing, when the test passes)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGKILL)


def test_reset_db_empties_the_development_sqlite_database(tmp_path):
    database = f"sqlite:///{tmp_path / 'dev.db'}"
    migrate(database)
    add_student(database)

    reset = make("reset-db", env={"APP_ENV": "development", "DATABASE_URL": database})

    assert reset.returncode == 0, reset.stderr
    assert query(database, "SELECT id FROM students") == []
    assert query(database, "SELECT version_num FROM alembic_version") == [(head_revision(),)]


@pytest.mark.parametrize(
    ("app_env", "database"),
    [
        ("development", "postgresql://nobody@127.0.0.1:1/never"),  # refused before connecting
        ("production", "sqlite"),
    ],
)
def test_reset_db_refuses_other_databases_and_production_and_changes_nothing(
    tmp_path, app_env, database
):
    if database == "sqlite":
        database = f"sqlite:///{tmp_path / 'prod.db'}"
        migrate(database)
        add_student(database)

    reset = make(
        "reset-db", env={"APP_ENV": app_env, "SECRET_KEY": "s3cret", "DATABASE_URL": database}
    )

    assert reset.returncode != 0
    assert "refusing to reset" in reset.stderr
    assert "FORCE=1" in reset.stderr
    if database.startswith("sqlite"):
        assert query(database, "SELECT name FROM students") == [("Ada",)]


def test_reset_db_with_force_resets_any_database(databases):
    database = databases.new("reset")  # PostgreSQL when TEST_DATABASE_URL is set
    migrate(database)
    add_student(database)

    reset = make(
        "reset-db",
        "FORCE=1",
        env={"APP_ENV": "production", "SECRET_KEY": "s3cret", "DATABASE_URL": database},
    )

    assert reset.returncode == 0, reset.stderr
    assert query(database, "SELECT id FROM students") == []
    assert query(database, "SELECT version_num FROM alembic_version") == [(head_revision(),)]


def unreachable_proxy() -> dict[str, str]:
    """Proxy settings that send every HTTP(S) request to a closed port of the test range."""
    proxy = f"http://127.0.0.1:{free_port()}"
    return dict.fromkeys(("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"), proxy)


def test_make_audit_fails_plainly_when_no_vulnerability_source_answers():
    audit = make("audit", env={**unreachable_proxy(), "NO_PROXY": "", "no_proxy": ""})

    assert audit.returncode != 0
    assert "NOT AUDITED: no vulnerability source answered" in audit.stdout
    assert "PyPI:" in audit.stdout
    assert "OSV:" in audit.stdout
    assert "No known vulnerabilities" not in audit.stdout + audit.stderr


def test_make_audit_can_be_told_to_go_on_unchecked_and_still_says_so():
    audit = make(
        "audit",
        "AUDIT_FLAGS=--allow-unchecked",
        env={**unreachable_proxy(), "NO_PROXY": "", "no_proxy": ""},
    )

    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "NOT AUDITED: no vulnerability source answered" in audit.stdout
