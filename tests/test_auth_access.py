"""The access table (README "Authentication and roles"), cell by cell, in AUTH_MODE=tokens.

Each cell calls one operation as one caller on fresh records, and checks the
status; every refusal is problem+json and leaves the database exactly as it
was. The suite runs it on SQLite, and on PostgreSQL with TEST_DATABASE_URL.
"""

import pytest
from sqlalchemy import text

from app.auth.policy import METRICS_ENDPOINT, PUBLIC_ENDPOINTS
from app.extensions import db
from app.models import Course, Enrollment, EnrollmentHistory, Reason, Status, Student, utcnow
from tests.support.access_table import Cell, cells

SECRET_LENGTH = 40
OWN_EXTERNAL_ID = "s1001"
TOKENS = {
    "admin": ("admin-console", "admin"),
    "registrar": ("registrar-batch", "registrar"),
    # A student token's name is the subject that ties it to a student's external_id.
    "student": (OWN_EXTERNAL_ID, "student"),
    "unlinked": ("s9999", "student"),
}
METRICS_TOKEN = "m" * SECRET_LENGTH


def secret(caller: str) -> str:
    """The secret of a caller's token (32 characters at least, as start-up requires)."""
    return caller.ljust(SECRET_LENGTH, "x")


API_TOKENS = ",".join(f"{name}:{role}:{secret(caller)}" for caller, (name, role) in TOKENS.items())


def bearer(caller: str) -> dict:
    """The Authorization header of a caller (none for anonymous)."""
    return {} if caller == "anonymous" else {"Authorization": f"Bearer {secret(caller)}"}


@pytest.fixture
def tokens_mode(auth_mode):
    """The app in tokens mode with one token per caller of the table."""
    return auth_mode(AUTH_MODE="tokens", API_TOKENS=API_TOKENS, METRICS_TOKEN=METRICS_TOKEN)


@pytest.fixture
def records(app):
    """The student tied to the student token, another student, a shared course and a free one.

    Both students hold a seat in the shared course, with its history row.
    """
    with app.app_context():
        own = Student(name="Own", email="own@example.edu", external_id=OWN_EXTERNAL_ID)
        other = Student(name="Other", email="other@example.edu", external_id="s2002")
        course = Course(code="SHARED", title="Shared", seats_taken=2)
        free = Course(code="FREE", title="Free")
        db.session.add_all([own, other, course, free])
        db.session.flush()
        for student in (own, other):
            db.session.add(Enrollment(student=student, course=course))
            db.session.add(
                EnrollmentHistory(
                    at=utcnow(),
                    student_id=student.id,
                    course_id=course.id,
                    from_status=None,
                    to_status=Status.ENROLLED,
                    actor="registrar-batch",
                    reason=Reason.REQUESTED,
                )
            )
        db.session.commit()
        ids = {"own": own.id, "other": other.id, "course": course.id, "free": free.id}
        db.session.remove()
    return ids


@pytest.fixture
def snapshot(app):
    """Every row of every table, to compare before and after a refusal."""

    def read() -> dict:
        with app.app_context():
            tables = {
                name: [tuple(row) for row in db.session.execute(text(f"SELECT * FROM {name}"))]  # noqa: S608
                for name in ("students", "courses", "student_courses", "enrollment_history")
            }
            db.session.remove()
        return {name: sorted(rows, key=repr) for name, rows in tables.items()}

    return read


def send(client, cell: Cell, records: dict, headers: dict):
    method, path, body = cell.request({**records, "student": records[cell.target]})
    return client.open(path, method=method, json=body, headers=headers)


@pytest.mark.usefixtures("tokens_mode")
@pytest.mark.parametrize("cell", cells(), ids=lambda cell: cell.id)
def test_access_table_cell(client, records, snapshot, cell):
    before = snapshot()

    response = send(client, cell, records, bearer(cell.caller))

    assert response.status_code == cell.expected, response.get_data(as_text=True)
    if cell.expected in (401, 403):
        assert response.mimetype == "application/problem+json"
        assert snapshot() == before


@pytest.mark.usefixtures("tokens_mode")
def test_refusals_name_the_missing_role_or_ownership(client, records):
    registrar = client.post(
        "/courses", json={"code": "X1", "title": "X"}, headers=bearer("registrar")
    )
    other = client.get(f"/students/{records['other']}", headers=bearer("student"))
    unlinked = client.get(f"/students/{records['own']}", headers=bearer("unlinked"))
    anonymous = client.get("/students")

    assert (
        registrar.json["detail"] == "This operation needs the role admin; your role is registrar."
    )
    assert other.json["detail"] == (
        f"A student may only act on their own record, and student {records['other']} is not yours."
    )
    assert "subject is no student's external_id" in unlinked.json["detail"]
    assert anonymous.headers["WWW-Authenticate"] == 'Bearer realm="enrollment"'


@pytest.mark.usefixtures("tokens_mode")
@pytest.mark.parametrize(
    ("caller", "target", "expected"),
    [("anonymous", "own", 401), ("student", "other", 403), ("unlinked", "own", 403)],
)
def test_refusals_come_before_the_body_is_read(client, records, snapshot, caller, target, expected):
    before = snapshot()
    path = f"/students/{records[target]}/courses"
    response = client.post(
        path, data="{not json", content_type="text/plain", headers=bearer(caller)
    )
    assert response.status_code == expected
    assert snapshot() == before


@pytest.mark.usefixtures("tokens_mode")
def test_post_enroll_validates_the_body_before_checking_the_student_named_in_it(client, records):
    invalid = client.post("/enroll", json={"student_id": "x"}, headers=bearer("student"))
    assert invalid.status_code == 422
    anonymous = client.post("/enroll", json={"student_id": "x"})
    assert anonymous.status_code == 401


@pytest.mark.usefixtures("tokens_mode")
def test_a_wrong_service_token_is_401_invalid_token(client, db_rows):
    response = client.get("/students", headers={"Authorization": "Bearer " + "y" * 40})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert response.json["detail"] == "The bearer token is not one of the configured API_TOKENS."


@pytest.mark.usefixtures("tokens_mode")
@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, 401),
        (bearer("registrar"), 403),
        (bearer("admin"), 200),
        ({"Authorization": f"Bearer {METRICS_TOKEN}"}, 200),
    ],
    ids=["anonymous", "registrar", "admin", "scrape-token"],
)
def test_metrics_need_the_admin_role_or_the_scrape_token(client, headers, expected):
    assert client.get("/metrics", headers=headers).status_code == expected


def test_metrics_in_none_mode_need_the_scrape_token_when_one_is_set(client, auth_mode):
    auth_mode(AUTH_MODE="none", METRICS_TOKEN=METRICS_TOKEN)
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert (
        client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).status_code
        == 200
    )


def test_none_mode_lets_every_caller_act_as_admin(client, records):
    assert client.delete(f"/courses/{records['free']}").status_code == 204
    assert client.get("/students").status_code == 200


@pytest.mark.usefixtures("tokens_mode")
def test_writes_and_refusals_are_audited_with_the_caller(client, records, caplog):
    caplog.set_level("INFO", logger="app.audit")
    client.delete(f"/courses/{records['free']}", headers=bearer("registrar"))
    client.delete(f"/students/{records['own']}/courses/{records['course']}")
    client.delete(
        f"/students/{records['own']}/courses/{records['course']}", headers=bearer("student")
    )

    events = [
        (
            r.action,
            r.outcome,
            r.status,
            r.actor,
            r.actor_role,
            getattr(r, "student_id", None),
        )
        for r in caplog.records
        if r.name == "app.audit" and r.event == "write"
    ]
    unenroll = "DELETE /students/<id:student_id>/courses/<id:course_id>"
    assert events == [
        ("DELETE /courses/<id:course_id>", "forbidden", 403, "registrar-batch", "registrar", None),
        (unenroll, "unauthenticated", 401, "anonymous", None, records["own"]),
        (unenroll, "done", 204, OWN_EXTERNAL_ID, "student", records["own"]),
    ]


def test_every_api_operation_declares_its_access_rule(app):
    declared = []
    for url_rule in app.url_map.iter_rules():
        if url_rule.endpoint in PUBLIC_ENDPOINTS or url_rule.endpoint == METRICS_ENDPOINT:
            continue
        view_class = app.view_functions[url_rule.endpoint].view_class
        for method in sorted(url_rule.methods - {"HEAD", "OPTIONS"}):
            rule = getattr(getattr(view_class, method.lower()), "access_rule", None)
            assert rule is not None, f"{method} {url_rule.rule} declares no access rule"
            declared.append((method, url_rule.rule, rule.name))
    assert len(declared) == 19
    assert {
        ("GET", "/courses/<id:course_id>/waitlist", "staff"),
        ("GET", "/students/<id:student_id>/enrollments", "owner"),
        ("GET", "/students/<id:student_id>/courses/<id:course_id>/history", "owner"),
    } <= set(declared)
