"""Clients generated from the spec work as their callers use them; Spectral finds no warning.

The Python client (openapi-python-client), generated from the spec a live
server serves, drives a whole enrollment through ``clients/python/usage.py``.
The TypeScript steps run clients/typescript's npm scripts on the committed
openapi.json (tests/test_openapi.py keeps it equal to the code), as
``make contract`` does: openapi-typescript, ``tsc --strict`` on
``src/usage.ts``, Spectral.
"""

import importlib.util
import json
import re
import subprocess
from http import HTTPStatus
from pathlib import Path

import pytest

from app.models import Enrollment, Student
from tests.support.servers import ROOT, GunicornServer
from tests.support.tools import missing_command, require
from tools import python_client

pytestmark = pytest.mark.slow

TYPESCRIPT = ROOT / "clients" / "typescript"
NODE_BIN = TYPESCRIPT / "node_modules" / ".bin"


@pytest.fixture
def node_tools() -> Path:
    """clients/typescript's node_modules, installed from its lock file when missing."""
    require(missing_command("npm"))
    if not NODE_BIN.is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=TYPESCRIPT, check=True)
    return NODE_BIN


def load_usage(client_dir: Path, monkeypatch):
    """Import clients/python/usage.py with the client generated into ``client_dir``."""
    monkeypatch.syspath_prepend(str(client_dir))
    spec = importlib.util.spec_from_file_location("usage", ROOT / "clients/python/usage.py")
    usage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(usage)
    return usage


def test_the_generated_python_client_drives_a_whole_enrollment(
    app, tmp_path, monkeypatch, db_rows, enrollment_statuses
):
    generator = python_client.BIN / "openapi-python-client"
    require(None if generator.exists() else "openapi-python-client is not installed")
    with GunicornServer(tmp_path, database_url=app.config["SQLALCHEMY_DATABASE_URI"]) as server:
        spec = tmp_path / "openapi.json"
        spec.write_text(json.dumps(server.get("/openapi.json").body))
        python_client.generate(spec, tmp_path / "client" / python_client.PACKAGE)
        usage = load_usage(tmp_path / "client", monkeypatch)

        flow = usage.enrollment_flow(server.url, "ada@example.edu")

    student, course = flow.student, flow.course
    assert (student.name, student.email, student.external_id) == (
        "Ada Lovelace",
        "ada@example.edu",
        None,
    )
    assert (student.courses, student.waitlist) == ([], [])
    assert (course.code, course.capacity, course.enrolled_count, course.seats_left) == (
        "CS101",
        2,
        0,
        2,
    )
    assert flow.enroll_status == HTTPStatus.CREATED
    assert [(c.id, c.code) for c in flow.enrolled.courses] == [(course.id, "CS101")]
    assert [(c.id, c.enrolled_count) for c in flow.courses] == [(course.id, 1)]
    assert flow.courses[0].enrolled_at.tzinfo is not None
    assert flow.seats_while_enrolled == "1 of 2"
    assert (flow.email_taken.status, flow.email_taken.title) == (409, "Email Taken")
    assert flow.drop_status == HTTPStatus.NO_CONTENT
    assert flow.courses_after_drop == []
    assert flow.course_after_drop.enrolled_count == 0
    assert [row.email for row in db_rows(Student)] == ["ada@example.edu"]
    assert enrollment_statuses() == {(student.id, course.id): "dropped"}
    assert len(db_rows(Enrollment)) == 1


def npm_run(script: str) -> subprocess.CompletedProcess:
    """Run an npm script of clients/typescript (package.json); the caller checks the status."""
    return subprocess.run(
        ["npm", "run", "--silent", script],
        cwd=TYPESCRIPT,
        capture_output=True,
        text=True,
        check=False,
    )


def code_of(typescript: str) -> str:
    """TypeScript source without its comments."""
    return re.sub(r"//[^\n]*|/\*.*?\*/", "", typescript, flags=re.DOTALL)


def test_the_typescript_usage_compiles_strictly_against_the_generated_types(node_tools):
    generated = npm_run("generate")
    compiled = npm_run("typecheck")

    assert generated.returncode == 0, generated.stderr
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    types = (TYPESCRIPT / "src" / "generated" / "api.ts").read_text()
    assert "listStudents: {" in types
    assert "readonly id: number;" in types
    usage = code_of((TYPESCRIPT / "src" / "usage.ts").read_text())
    assert not re.search(r"\bas\s|<[A-Z]\w*>\s*\w", usage), "the usage file casts"


def test_spectral_finds_no_error_and_no_warning_in_the_spec(node_tools):
    linted = npm_run("lint-spec")

    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert "No results with a severity of 'warn' or higher" in linted.stdout
