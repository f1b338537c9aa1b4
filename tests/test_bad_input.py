"""Bad-input matrix: every malformed request is a 4xx problem+json and changes nothing.

Each case sends raw bytes (so invalid JSON, NaN and lone surrogates reach the
server exactly as written), then checks the status, the media type, that the
detail or errors name the problem, and that the rows are as they were.
"""

import pytest

from app.models import Course, Enrollment, Student
from config import MAX_BODY_BYTES
from tests.support.servers import Figures

JSON = "application/json"
STUDENT = '{"name": "Ada", "email": "ada@example.edu"}'


def body(text: str) -> bytes:
    """A request body written as JSON text (escapes such as \\ud800 stay as written)."""
    return text.encode()


# (id, method, path, raw body, content type, status, words the detail or errors must contain)
CASES = [
    ("malformed-json", "POST", "/students", b'{"name": "Ada",', JSON, 400, "json"),
    ("json-array", "POST", "/students", b"[1, 2]", JSON, 422, "json"),
    ("json-null", "POST", "/students", b"null", JSON, 422, "json"),
    ("json-string", "POST", "/courses", b'"CS101"', JSON, 422, "json"),
    ("empty-body", "POST", "/students", b"", JSON, 422, "missing data"),
    ("wrong-content-type", "POST", "/students", body(STUDENT), "text/plain", 415, "json"),
    (
        "form-content-type",
        "POST",
        "/courses",
        b"code=X&title=Y",
        "application/x-www-form-urlencoded",
        415,
        "json",
    ),
    ("missing-content-type", "POST", "/students", body(STUDENT), None, 415, "json"),
    (
        "body-over-1-mib",
        "POST",
        "/students",
        b'{"name": "' + b"a" * MAX_BODY_BYTES + b'"}',
        JSON,
        413,
        "too large: the limit is 1048576 bytes",
    ),
    (
        "name-over-200",
        "POST",
        "/students",
        body('{"name": "' + "n" * 201 + '", "email": "a@example.edu"}'),
        JSON,
        422,
        "name",
    ),
    (
        "email-over-254",
        "POST",
        "/students",
        body('{"name": "A", "email": "' + "e" * 250 + '@example.edu"}'),
        JSON,
        422,
        "email",
    ),
    (
        "code-over-32",
        "POST",
        "/courses",
        body('{"code": "' + "C" * 33 + '", "title": "T"}'),
        JSON,
        422,
        "code",
    ),
    (
        "title-over-200",
        "POST",
        "/courses",
        body('{"code": "C1", "title": "' + "t" * 201 + '"}'),
        JSON,
        422,
        "title",
    ),
    (
        "description-over-2000",
        "POST",
        "/courses",
        body('{"code": "C1", "title": "T", "description": "' + "d" * 2001 + '"}'),
        JSON,
        422,
        "description",
    ),
    (
        "capacity-2^31",
        "POST",
        "/courses",
        body(f'{{"code": "C1", "title": "T", "capacity": {2**31}}}'),
        JSON,
        422,
        "capacity",
    ),
    (
        "capacity-2^63",
        "POST",
        "/courses",
        body(f'{{"code": "C1", "title": "T", "capacity": {2**63}}}'),
        JSON,
        422,
        "capacity",
    ),
    (
        "capacity-2^70",
        "POST",
        "/courses",
        body(f'{{"code": "C1", "title": "T", "capacity": {2**70}}}'),
        JSON,
        422,
        "capacity",
    ),
    (
        "capacity-float",
        "POST",
        "/courses",
        body('{"code": "C1", "title": "T", "capacity": 5.5}'),
        JSON,
        422,
        "capacity",
    ),
    (
        "capacity-integral-float",
        "POST",
        "/courses",
        body('{"code": "C1", "title": "T", "capacity": 5.0}'),
        JSON,
        422,
        "capacity",
    ),
    (
        "capacity-boolean",
        "POST",
        "/courses",
        body('{"code": "C1", "title": "T", "capacity": true}'),
        JSON,
        422,
        "capacity",
    ),
    (
        "capacity-string",
        "POST",
        "/courses",
        body('{"code": "C1", "title": "T", "capacity": "5"}'),
        JSON,
        422,
        "capacity",
    ),
    (
        "capacity-zero",
        "POST",
        "/courses",
        body('{"code": "C1", "title": "T", "capacity": 0}'),
        JSON,
        422,
        "capacity",
    ),
    (
        "capacity-negative",
        "POST",
        "/courses",
        body('{"code": "C1", "title": "T", "capacity": -1}'),
        JSON,
        422,
        "capacity",
    ),
    (
        "capacity-nan",
        "POST",
        "/courses",
        body('{"code": "C1", "title": "T", "capacity": NaN}'),
        JSON,
        422,
        "capacity",
    ),
    (
        "capacity-infinity",
        "POST",
        "/courses",
        body('{"code": "C1", "title": "T", "capacity": Infinity}'),
        JSON,
        422,
        "capacity",
    ),
    (
        "course-id-2^63",
        "POST",
        "/enroll",
        body(f'{{"student_id": 1, "course_id": {2**63}}}'),
        JSON,
        422,
        "course_id",
    ),
    (
        "student-id-float",
        "POST",
        "/enroll",
        body('{"student_id": 1.5, "course_id": 1}'),
        JSON,
        422,
        "student_id",
    ),
    (
        "student-id-boolean",
        "POST",
        "/enroll",
        body('{"student_id": true, "course_id": 1}'),
        JSON,
        422,
        "student_id",
    ),
    (
        "student-id-string",
        "POST",
        "/enroll",
        body('{"student_id": "1", "course_id": 1}'),
        JSON,
        422,
        "student_id",
    ),
    (
        "course-ids-not-a-list",
        "POST",
        "/students/{student}/courses",
        body('{"course_ids": 1}'),
        JSON,
        422,
        "course_ids",
    ),
    (
        "course-ids-2^70",
        "POST",
        "/students/{student}/courses",
        body(f'{{"course_ids": [{2**70}]}}'),
        JSON,
        422,
        "course_ids",
    ),
    (
        "course-ids-empty",
        "POST",
        "/students/{student}/courses",
        body('{"course_ids": []}'),
        JSON,
        422,
        "course_ids",
    ),
    (
        "name-nul",
        "POST",
        "/students",
        body('{"name": "A\\u0000B", "email": "n@example.edu"}'),
        JSON,
        422,
        "NUL",
    ),
    (
        "email-nul",
        "POST",
        "/students",
        body('{"name": "A", "email": "n\\u0000@example.edu"}'),
        JSON,
        422,
        "email",
    ),
    ("code-nul", "POST", "/courses", body('{"code": "C\\u00001", "title": "T"}'), JSON, 422, "NUL"),
    (
        "name-lone-surrogate",
        "POST",
        "/students",
        body('{"name": "A\\ud800", "email": "s@example.edu"}'),
        JSON,
        422,
        "Unicode",
    ),
    (
        "title-lone-surrogate",
        "POST",
        "/courses",
        body('{"code": "C1", "title": "\\udfff"}'),
        JSON,
        422,
        "Unicode",
    ),
    (
        "invalid-utf8-bytes",
        "POST",
        "/students",
        b'{"name": "\xff\xfe", "email": "u@example.edu"}',
        JSON,
        400,
        "json",
    ),
    (
        "blank-name",
        "POST",
        "/students",
        body('{"name": "   ", "email": "b@example.edu"}'),
        JSON,
        422,
        "blank",
    ),
    (
        "unknown-field",
        "POST",
        "/students",
        body('{"name": "A", "email": "u@example.edu", "admin": true}'),
        JSON,
        422,
        "admin",
    ),
    (
        "set-id",
        "POST",
        "/students",
        body('{"id": 7, "name": "A", "email": "i@example.edu"}'),
        JSON,
        422,
        "id",
    ),
    (
        "set-created-at",
        "POST",
        "/courses",
        body('{"code": "C1", "title": "T", "created_at": "2020-01-01T00:00:00Z"}'),
        JSON,
        422,
        "created_at",
    ),
    (
        "set-enrolled-count",
        "POST",
        "/courses",
        body('{"code": "C1", "title": "T", "enrolled_count": 0}'),
        JSON,
        422,
        "enrolled_count",
    ),
    (
        "patch-enrolled-count",
        "PATCH",
        "/courses/{course}",
        body('{"enrolled_count": 99}'),
        JSON,
        422,
        "enrolled_count",
    ),
    ("patch-id", "PATCH", "/students/{student}", body('{"id": 99}'), JSON, 422, "id"),
    (
        "patch-capacity-2^31",
        "PATCH",
        "/courses/{course}",
        body(f'{{"capacity": {2**31}}}'),
        JSON,
        422,
        "capacity",
    ),
    ("page-size-0", "GET", "/students?page_size=0", None, None, 422, "page_size"),
    ("page-size-101", "GET", "/courses?page_size=101", None, None, 422, "page_size"),
    ("page-size-10^9", "GET", "/students?page_size=1000000000", None, None, 422, "page_size"),
    ("page-0", "GET", "/courses?page=0", None, None, 422, "page"),
    ("page-not-a-number", "GET", "/courses?page=abc", None, None, 422, "page"),
    (
        "roster-page-size-101",
        "GET",
        "/courses/{course}/students?page_size=101",
        None,
        None,
        422,
        "page_size",
    ),
    ("negative-student-id", "GET", "/students/-1", None, None, 404, "not found"),
    ("zero-student-id", "GET", "/students/0", None, None, 404, "not found"),
    ("non-numeric-course-id", "GET", "/courses/abc", None, None, 404, "not found"),
    ("student-id-2^31", "GET", f"/students/{2**31}", None, None, 404, "not found"),
    ("student-id-2^70", "DELETE", f"/students/{2**70}", None, None, 404, "not found"),
    (
        "negative-course-id-in-unenroll",
        "DELETE",
        "/students/{student}/courses/-5",
        None,
        None,
        404,
        "not found",
    ),
    ("float-id-in-path", "PATCH", "/courses/1.5", body('{"title": "T"}'), JSON, 404, "not found"),
]


def snapshot(db_rows) -> tuple:
    """Every row of every table, as comparable tuples."""
    return (
        sorted((s.id, s.name, s.email, s.created_at) for s in db_rows(Student)),
        sorted(
            (c.id, c.code, c.title, c.description, c.capacity, c.created_at)
            for c in db_rows(Course)
        ),
        sorted((e.student_id, e.course_id, e.enrolled_at) for e in db_rows(Enrollment)),
    )


@pytest.mark.parametrize(
    ("method", "path", "raw", "content_type", "status", "named"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_bad_input_is_a_problem_and_changes_nothing(
    client,
    make_student,
    make_course,
    enroll_rows,
    db_rows,
    method,
    path,
    raw,
    content_type,
    status,
    named,
):
    student = make_student(name="Existing", email="existing@example.edu")
    course = make_course(code="EXIST1", capacity=3)
    enroll_rows(student, course)
    before = snapshot(db_rows)
    headers = {"Content-Type": content_type} if content_type else {}

    response = client.open(
        path.format(student=student, course=course), method=method, data=raw, headers=headers
    )
    Figures.add("bad inputs tried")

    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["status"] == status
    explanation = (problem["detail"] + " " + str(problem.get("errors", ""))).lower()
    assert named.lower() in explanation, problem
    assert snapshot(db_rows) == before
