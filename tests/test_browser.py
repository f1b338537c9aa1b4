"""A real headless Chromium talking to a real server: CORS from a frontend, and /docs.

The service runs in a werkzeug server thread; a second server on another port
plays the frontend's origin. Chromium loads a page, lets its scripts run
(``--virtual-time-budget``) and prints the resulting DOM (``--dump-dom``),
from which the test reads what the page's script wrote.
"""

import html
import json
import re
import shutil
import subprocess
import threading
from contextlib import contextmanager

import pytest
from werkzeug.serving import make_server

from app.extensions import db
from app.models import Course, Enrollment, Student
from tests.support.databases import make_app
from tests.support.servers import free_port
from tests.support.tools import missing_command, require

pytestmark = pytest.mark.slow

TOKEN = "browser-test-token"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--enable-logging=stderr",
]

FRONTEND_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Frontend</title></head>
<body><pre id="result">pending</pre>
<script>
const api = %(api)s;
const json = {"Content-Type": "application/json"};
const auth = {...json, "Authorization": "Bearer " + %(token)s};
async function send(method, path, body, headers) {
  return fetch(api + path, {method, headers, body: JSON.stringify(body)});
}
async function run() {
  const out = {};
  let r = await send("POST", "/students", {name: "Nobody", email: "no@example.edu"}, json);
  out.without_token = {status: r.status, type: r.headers.get("Content-Type")};
  r = await send("POST", "/students", {name: "Grace Hopper", email: "grace@example.edu"}, auth);
  const student = await r.json();
  out.student = {status: r.status, location: r.headers.get("Location"), id: student.id};
  r = await send("POST", "/courses", {code: "CS101", title: "Compilers", capacity: 10}, auth);
  const course = await r.json();
  out.course = {status: r.status, location: r.headers.get("Location"), id: course.id};
  r = await send("POST", "/students/" + student.id + "/courses", {course_ids: [course.id]}, auth);
  out.enroll = {status: r.status, courses: (await r.json()).courses.map(c => c.code)};
  r = await fetch(api + "/students?page_size=1");
  out.list = {status: r.status, pagination: JSON.parse(r.headers.get("X-Pagination"))};
  return out;
}
run().then(
  out => { document.getElementById("result").textContent = JSON.stringify(out); },
  err => { document.getElementById("result").textContent = "error: " + err; }
);
</script></body></html>
"""


@pytest.fixture(scope="session")
def chromium():
    """Debian's chromium (apt-get install chromium); CI installs it."""
    require(missing_command("chromium"))
    return shutil.which("chromium")


@contextmanager
def serve(wsgi_app):
    """Serve ``wsgi_app`` on a free port of the test range; yield its origin."""
    port = free_port()
    server = make_server("127.0.0.1", port, wsgi_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def static_page(body: dict):
    """A WSGI app answering every request with ``body["html"]``."""

    def wsgi_app(_environ, start_response):
        payload = body["html"].encode()
        start_response(
            "200 OK",
            [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(payload)))],
        )
        return [payload]

    return wsgi_app


@pytest.fixture(scope="module")
def servers(app):
    """The frontend's origin and the service's origin (which allows the frontend)."""
    page = {"html": ""}
    with serve(static_page(page)) as frontend:
        service = make_app(
            app.config["SQLALCHEMY_DATABASE_URI"], CORS_ORIGINS=[frontend], API_TOKENS=[TOKEN]
        )
        with serve(service) as api:
            page["html"] = FRONTEND_PAGE % {"api": json.dumps(api), "token": json.dumps(TOKEN)}
            yield {"frontend": frontend, "api": api}
        with service.app_context():
            db.engine.dispose()


def load(chromium, url: str, profile_dir) -> tuple[str, str]:
    """Load ``url`` in a fresh profile, run its scripts, return (DOM, browser log)."""
    result = subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile_dir}",
            "--virtual-time-budget=30000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout, result.stderr


def test_frontend_on_another_origin_creates_enrolls_and_pages(
    chromium, servers, tmp_path, make_student, db_rows
):
    make_student(name="Ada Lovelace", email="ada@example.edu")

    dom, log = load(chromium, servers["frontend"] + "/", tmp_path / "profile")

    match = re.search(r'<pre id="result">(.*?)</pre>', dom, re.S)
    assert match, dom
    text = html.unescape(match.group(1))
    assert text.startswith("{"), f"page script did not finish: {text}\n{log}"
    out = json.loads(text)
    assert out["without_token"] == {"status": 401, "type": "application/problem+json"}
    student_id, course_id = out["student"]["id"], out["course"]["id"]
    assert out["student"] == {
        "status": 201,
        "location": f"/students/{student_id}",
        "id": student_id,
    }
    assert out["course"] == {"status": 201, "location": f"/courses/{course_id}", "id": course_id}
    assert out["enroll"] == {"status": 201, "courses": ["CS101"]}
    assert out["list"]["status"] == 200
    assert out["list"]["pagination"] == {
        "total": 2,
        "total_pages": 2,
        "first_page": 1,
        "last_page": 2,
        "page": 1,
        "next_page": 2,
    }
    students = {s.email: s.id for s in db_rows(Student)}
    assert students == {
        "ada@example.edu": students["ada@example.edu"],
        "grace@example.edu": student_id,
    }
    assert [c.code for c in db_rows(Course)] == ["CS101"]
    assert [(e.student_id, e.course_id) for e in db_rows(Enrollment)] == [(student_id, course_id)]


def test_docs_page_lists_the_operations(chromium, app, servers, tmp_path):
    with app.test_client() as client:
        spec = client.get("/openapi.json").json
    summaries = {
        operation["summary"]
        for operations in spec["paths"].values()
        for operation in operations.values()
        if isinstance(operation, dict) and "summary" in operation
    }
    assert "Create a student" in summaries

    dom, log = load(chromium, servers["api"] + "/docs", tmp_path / "profile")

    rendered = html.unescape(dom)
    assert "opblock" in dom, f"Swagger UI did not render\n{log}"
    missing = sorted(summary for summary in summaries if summary not in rendered)
    assert missing == []
    assert "Content Security Policy" not in log
