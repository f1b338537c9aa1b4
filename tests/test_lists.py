"""Lists: Link headers, sort orders, keyset cursors, totals, and refused query parameters."""

import base64
import json
import re

import pytest

from app.extensions import db
from app.models import Course, Student

LINK = re.compile(r'<([^>]*)>; rel="([^"]*)"')


def query_messages(response) -> dict[str, list[str]]:
    """The messages of a problem's ``errors``, by the query parameter they name."""
    messages: dict[str, list[str]] = {}
    for item in response.get_json()["errors"]:
        assert item["location"] == "query", item
        messages.setdefault(item["pointer"].removeprefix("/"), []).append(item["detail"])
    return messages


def link_targets(response) -> dict[str, str]:
    """The ``Link`` header of ``response`` as {relation: URL}."""
    return {rel: url for url, rel in LINK.findall(response.headers["Link"])}


def pagination(response) -> dict:
    """The ``X-Pagination`` object of ``response``."""
    return json.loads(response.headers["X-Pagination"])


def walk(client, url: str, between=lambda: None) -> list[dict]:
    """Every row of a list, following ``next`` links from ``url``; ``between`` runs after each."""
    rows = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.get_json()
        rows.extend(response.get_json())
        url = link_targets(response).get("next")
        between()
    return rows


def cursor(document) -> str:
    """A cursor holding ``document``, as a client could forge one."""
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


@pytest.fixture
def roster(client, make_student, make_course):
    """A course with the students named ``names`` enrolled in it, in that order."""

    def factory(*names: str) -> tuple[int, list[int]]:
        course = make_course(capacity=None)
        students = [make_student(name=name, email=f"{name.lower()}@example.edu") for name in names]
        for student in students:
            answer = client.post(f"/students/{student}/courses", json={"course_ids": [course]})
            assert answer.status_code == 201
        return course, students

    return factory


# --- Link headers -------------------------------------------------------------


def test_a_middle_page_links_first_prev_next_and_last_keeping_the_other_parameters(
    client, make_student
):
    ids = [make_student(name=f"Ada{n}") for n in range(7)]
    make_student(name="Grace")

    response = client.get("/students?q=ada&page_size=2&page=2")

    assert response.status_code == 200
    assert [s["id"] for s in response.get_json()] == ids[2:4]
    links = link_targets(response)
    assert set(links) == {"first", "prev", "next", "last"}
    assert links["first"] == "/students?q=ada&page_size=2&page=1"
    assert links["prev"] == "/students?q=ada&page_size=2&page=1"
    assert links["last"] == "/students?q=ada&page_size=2&page=4"
    assert links["next"].startswith("/students?q=ada&page_size=2&after=")
    assert [s["id"] for s in client.get(links["next"]).get_json()] == ids[4:6]
    assert [s["id"] for s in client.get(links["last"]).get_json()] == ids[6:]


def test_the_last_page_has_no_next_link_and_the_first_no_prev(client, make_student):
    for _ in range(3):
        make_student()

    first = client.get("/students?page_size=2")
    last = client.get("/students?page_size=2&page=2")

    assert set(link_targets(first)) == {"first", "next", "last"}
    assert set(link_targets(last)) == {"first", "prev", "last"}


def test_an_empty_list_links_only_its_first_page(client):
    response = client.get("/courses")

    assert response.status_code == 200
    assert response.get_json() == []
    assert link_targets(response) == {"first": "/courses?page=1"}
    assert pagination(response) == {"total": 0, "total_pages": 0}


def test_roster_and_waitlist_pages_carry_links(client, roster, make_student):
    course, _students = roster("Bea", "Ada", "Cleo")
    with client.application.app_context():
        db.session.get(Course, course).capacity = 3
        db.session.get(Course, course).waitlist_capacity = None
        db.session.commit()
    waiting = [make_student() for _ in range(3)]
    for student in waiting:
        answer = client.post(
            f"/students/{student}/courses", json={"course_ids": [course], "waitlist": True}
        )
        assert answer.status_code == 201

    names = walk(client, f"/courses/{course}/students?page_size=2")
    queue = walk(client, f"/courses/{course}/waitlist?page_size=2")

    assert [row["name"] for row in names] == ["Ada", "Bea", "Cleo"]
    assert [(row["id"], row["position"]) for row in queue] == [
        (student, position) for position, student in enumerate(waiting, start=1)
    ]


# --- sort ---------------------------------------------------------------------


@pytest.fixture
def named_students(make_student):
    """Students whose names sort the same way under any collation; two share a name."""
    return {
        name: make_student(name=name.rstrip("2"), email=email)
        for name, email in [
            ("Cleo", "a@example.edu"),
            ("Ada", "d@example.edu"),
            ("Bea", "c@example.edu"),
            ("Ada2", "b@example.edu"),
        ]
    }


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("name", ["Ada", "Ada2", "Bea", "Cleo"]),
        ("-name", ["Cleo", "Bea", "Ada", "Ada2"]),
        ("name,-id", ["Ada2", "Ada", "Bea", "Cleo"]),
        ("email", ["Cleo", "Ada2", "Bea", "Ada"]),
        ("-created_at", ["Ada2", "Bea", "Ada", "Cleo"]),
        ("-id", ["Ada2", "Bea", "Ada", "Cleo"]),
    ],
)
def test_students_sort_by_the_allowed_fields_with_id_breaking_ties(
    client, named_students, sort, expected
):
    response = client.get(f"/students?sort={sort}")

    assert response.status_code == 200
    assert [s["id"] for s in response.get_json()] == [named_students[n] for n in expected]


def test_students_default_to_id_order_and_courses_to_code_order(client, make_student, make_course):
    students = [make_student(name=name) for name in ("Cleo", "Ada")]
    courses = {
        code: make_course(code=code, title=title) for code, title in [("B2", "Ab"), ("A1", "Zz")]
    }

    assert [s["id"] for s in client.get("/students").get_json()] == students
    assert [c["id"] for c in client.get("/courses").get_json()] == [courses["A1"], courses["B2"]]
    by_title = client.get("/courses?sort=title").get_json()
    assert [c["id"] for c in by_title] == [courses["B2"], courses["A1"]]
    by_code_down = client.get("/courses?sort=-code").get_json()
    assert [c["id"] for c in by_code_down] == [courses["B2"], courses["A1"]]


def test_roster_sorts_by_name_by_default_and_by_email_or_enrollment_time(client, roster):
    course, [bea, ada, cleo] = roster("Bea", "Ada", "Cleo")

    by_name = client.get(f"/courses/{course}/students").get_json()
    by_email = client.get(f"/courses/{course}/students?sort=-email").get_json()
    by_time = client.get(f"/courses/{course}/students?sort=-enrolled_at").get_json()

    assert [row["id"] for row in by_name] == [ada, bea, cleo]
    assert [row["id"] for row in by_email] == [cleo, bea, ada]
    assert [row["id"] for row in by_time] == [cleo, ada, bea]


@pytest.mark.parametrize(
    ("path", "sort", "allowed"),
    [
        ("/students", "password", "id, name, email, created_at"),
        ("/students", "name,-secret", "id, name, email, created_at"),
        ("/courses", "capacity", "id, code, title, created_at"),
        ("/courses", "", "id, code, title, created_at"),
    ],
)
def test_an_unknown_sort_field_is_a_422_naming_the_allowed_ones(client, path, sort, allowed):
    response = client.get(f"{path}?sort={sort}")

    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    [message] = query_messages(response)["sort"]
    assert allowed in message
    refused = sort.split(",")[-1].lstrip("-")
    assert f'Cannot sort by "{refused}":' in message  # quoted as JSON, never a Python repr


def test_roster_sort_names_its_own_fields_and_the_waitlist_takes_none(client, make_course):
    course = make_course()

    roster = client.get(f"/courses/{course}/students?sort=code")
    waitlist = client.get(f"/courses/{course}/waitlist?sort=name")

    assert roster.status_code == 422
    assert "id, name, email, enrolled_at" in query_messages(roster)["sort"][0]
    assert waitlist.status_code == 422
    assert query_messages(waitlist) == {"sort": ["Unknown field."]}


def test_a_field_named_twice_in_sort_is_a_422(client):
    response = client.get("/students?sort=name,-name")

    assert response.status_code == 422
    assert query_messages(response)["sort"][0] == '"name" is named twice in sort.'


# --- keyset cursors -----------------------------------------------------------


@pytest.mark.parametrize("sort", [None, "name", "-name", "email,-id", "-created_at"])
def test_following_next_visits_every_row_once_while_rows_are_inserted(client, make_student, sort):
    for n in range(11):
        make_student(name=f"M{n:02d}", email=f"m{n:02d}@example.edu")
    before = [s["id"] for s in walk(client, "/students?page_size=100&sort=" + (sort or "id"))]
    added = []

    def insert_two():
        # One row sorting before every row seen, one after (by name, email and id).
        added.append(make_student(name="A", email=f"a{len(added)}@example.edu"))
        added.append(make_student(name="Z", email=f"z{len(added)}@example.edu"))

    query = f"sort={sort}&" if sort else ""
    seen = [s["id"] for s in walk(client, f"/students?{query}page_size=3", between=insert_two)]

    assert len(seen) == len(set(seen))
    assert set(before) <= set(seen)
    final = [s["id"] for s in walk(client, f"/students?{query}page_size=100")]
    # What was seen is in the list's order, every original row in its place.
    assert seen == [row for row in final if row in set(seen)]
    assert set(seen) - set(before) <= set(added)


def test_roster_cursor_visits_every_enrolled_student_once_while_others_enroll(
    client, roster, make_student
):
    course, students = roster(*(f"N{n:02d}" for n in range(9)))
    late = []

    def enroll_one():
        student = make_student(name=f"Z{len(late)}", email=f"z{len(late)}@example.edu")
        client.post(f"/students/{student}/courses", json={"course_ids": [course]})
        late.append(student)

    seen = [
        row["id"] for row in walk(client, f"/courses/{course}/students?page_size=2", enroll_one)
    ]

    # Students enrolled while paging sort after every N.., so each is seen too.
    assert seen == students + late[: len(seen) - len(students)]
    assert len(seen) == len(set(seen))


def test_a_cursor_page_reports_the_total_but_no_page_number(client, make_student):
    for _ in range(5):
        make_student()
    first = client.get("/students?page_size=2")

    second = client.get(link_targets(first)["next"])

    assert second.status_code == 200
    assert pagination(second) == {"total": 5, "total_pages": 3, "first_page": 1, "last_page": 3}
    assert set(link_targets(second)) == {"first", "next", "last"}


@pytest.mark.parametrize(
    "after",
    [
        "not a cursor!",
        cursor({"id": 1}),
        cursor(["", "1"]),
        cursor(["", 1, 2]),
        cursor(["", True]),
        cursor(["name", "Ada", 1]),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        cursor(["", 2**70]),
    ],
    ids=[
        "garbage",
        "object",
        "string-id",
        "too-long",
        "boolean",
        "other-sort",
        "not-utf8",
        "huge-id",
    ],
)
def test_a_tampered_cursor_is_a_422(client, make_student, after):
    make_student()

    response = client.get("/students", query_string={"after": after})

    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert list(query_messages(response)) == ["after"]


def test_a_forged_cursor_time_is_a_422_unless_aware_and_in_range(client):
    def after(moment: str):
        query = {"sort": "created_at", "after": cursor(["created_at", moment, 1])}
        return client.get("/students", query_string=query)

    naive, aware = after("2026-01-01T00:00:00"), after("2026-01-01T00:00:00+00:00")
    beyond = after("9999-12-31T23:59:59-14:00")

    assert naive.status_code == 422
    assert beyond.status_code == 422
    assert aware.status_code == 200


def test_page_and_after_together_are_a_422(client, make_student):
    for _ in range(3):
        make_student()
    after = link_targets(client.get("/students?page_size=1"))["next"].split("after=")[1]

    response = client.get(f"/students?page=2&after={after}")

    assert response.status_code == 422
    assert "not both" in query_messages(response)["after"][0]


# --- totals -------------------------------------------------------------------


@pytest.mark.parametrize("query", ["", "q=student&"])
def test_a_total_past_the_bound_is_estimated_on_postgresql_and_counted_on_sqlite(
    app, client, make_student, monkeypatch, count_queries, query
):
    for _ in range(8):
        make_student()
    monkeypatch.setitem(app.config, "LIST_COUNT_EXACT_UP_TO", 5)
    with app.app_context():
        postgresql = db.engine.dialect.name == "postgresql"

    with count_queries() as statements:
        response = client.get(f"/students?{query}page_size=3")

    assert response.status_code == 200
    assert len(response.get_json()) == 3
    meta = pagination(response)
    if postgresql:
        # Counted up to the bound, then the planner's estimate, never below the bound.
        assert meta["total_estimated"] is True
        assert meta["total"] >= 6
        assert any(s.startswith("EXPLAIN") for s in statements)
        assert len(statements) == 4
    else:
        assert meta == {
            "total": 8,
            "total_pages": 3,
            "first_page": 1,
            "last_page": 3,
            "page": 1,
            "next_page": 2,
        }
        assert len(statements) == 3


def test_a_total_within_the_bound_is_exact_and_not_marked(app, client, make_student, monkeypatch):
    for _ in range(5):
        make_student()
    monkeypatch.setitem(app.config, "LIST_COUNT_EXACT_UP_TO", 5)

    meta = pagination(client.get("/students?page_size=3"))

    assert meta["total"] == 5
    assert "total_estimated" not in meta


# --- unknown query parameters -------------------------------------------------


@pytest.fixture
def enrolled(client, make_student, make_course):
    """A student enrolled in a course: (student_id, course_id)."""
    student, course = make_student(), make_course(capacity=None)
    assert (
        client.post(f"/students/{student}/courses", json={"course_ids": [course]}).status_code
        == 201
    )
    return student, course


READS = [
    "/students",
    "/courses",
    "/courses/{course}/students",
    "/courses/{course}/waitlist",
    "/students/{student}/enrollments",
    "/students/{student}",
    "/students/{student}/courses",
    "/courses/{course}",
    "/students/{student}/courses/{course}/history",
]


@pytest.mark.parametrize("path", READS)
def test_an_unknown_query_parameter_on_a_read_is_a_422_naming_it(client, enrolled, path):
    student, course = enrolled
    url = path.format(student=student, course=course)
    assert client.get(url).status_code == 200

    response = client.get(url + "?colour=blue")

    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert query_messages(response) == {"colour": ["Unknown field."]}


def test_a_write_with_an_unknown_query_parameter_changes_nothing(
    client, enrolled, db_rows, enrollment_statuses
):
    student, course = enrolled
    statuses = enrollment_statuses()

    created = client.post("/students?notify=1", json={"name": "Ada", "email": "ada@example.edu"})
    dropped = client.delete(f"/students/{student}/courses/{course}?reason=moved")
    deleted = client.delete(f"/students/{student}?force=1")

    for response, name in ((created, "notify"), (dropped, "reason"), (deleted, "force")):
        assert response.status_code == 422
        assert query_messages(response) == {name: ["Unknown field."]}
    assert [s.id for s in db_rows(Student)] == [student]
    assert enrollment_statuses() == statuses


def test_known_query_parameters_still_work_beside_the_refusal(client, enrolled):
    student, course = enrolled

    assert client.get(f"/students/{student}/enrollments?status=enrolled").status_code == 200
    assert client.get("/courses?q=c&sort=-title&page_size=5").status_code == 200
    assert client.delete(f"/students/{student}/courses/{course}?override=false").status_code == 204


@pytest.mark.parametrize("path", ["/livez", "/openapi.json"])
def test_operational_endpoints_ignore_query_strings(client, path):
    assert client.get(path + "?cache=1").status_code == 200
