"""Conditional requests on single resources: strong ETags, If-None-Match (304), If-Match (412)."""

import pytest

from app.models import Course, Student

RESOURCES = ["student", "course"]


@pytest.fixture
def resource(make_student, make_course):
    """The path of a new student or course."""

    def build(kind: str) -> str:
        if kind == "student":
            return f"/students/{make_student(name='Ada', email='ada@example.edu')}"
        return f"/courses/{make_course(code='CS101', title='Programming', capacity=2)}"

    return build


CHANGES = {"student": {"name": "Ada Byron"}, "course": {"title": "Programming in Python"}}


def stored_name(db_rows, kind: str) -> str:
    """The student's name or the course's title, read from the database."""
    [row] = db_rows(Student if kind == "student" else Course)
    return row.name if kind == "student" else row.title


@pytest.mark.parametrize("kind", RESOURCES)
def test_get_sends_a_strong_etag_that_is_stable_while_nothing_changes(client, resource, kind):
    path = resource(kind)

    first, second = client.get(path), client.get(path)

    assert first.status_code == 200
    tag = first.headers["ETag"]
    assert tag.startswith('"')
    assert tag.endswith('"')
    assert second.headers["ETag"] == tag


@pytest.mark.parametrize("kind", RESOURCES)
def test_if_none_match_with_the_current_tag_is_304_without_a_body(client, resource, kind):
    path = resource(kind)
    tag = client.get(path).headers["ETag"]

    response = client.get(path, headers={"If-None-Match": f'"other", {tag}'})

    assert response.status_code == 304
    assert response.data == b""
    assert response.headers["ETag"] == tag
    assert "Content-Type" not in response.headers


@pytest.mark.parametrize("kind", RESOURCES)
def test_if_none_match_with_a_weak_or_star_tag_is_304(client, resource, kind):
    path = resource(kind)
    tag = client.get(path).headers["ETag"]

    assert client.get(path, headers={"If-None-Match": f"W/{tag}"}).status_code == 304
    assert client.get(path, headers={"If-None-Match": "*"}).status_code == 304
    assert client.head(path, headers={"If-None-Match": tag}).status_code == 304


@pytest.mark.parametrize("kind", RESOURCES)
def test_if_none_match_with_an_old_tag_is_200_with_the_body(client, resource, kind):
    path = resource(kind)

    response = client.get(path, headers={"If-None-Match": '"stale"'})

    assert response.status_code == 200
    assert response.get_json()["id"] == int(path.rsplit("/", 1)[1])


@pytest.mark.parametrize("kind", RESOURCES)
def test_patch_with_the_current_tag_applies_and_answers_the_new_tag(
    client, resource, db_rows, kind
):
    path = resource(kind)
    tag = client.get(path).headers["ETag"]

    response = client.patch(path, json=CHANGES[kind], headers={"If-Match": tag})

    assert response.status_code == 200
    assert stored_name(db_rows, kind) in CHANGES[kind].values()
    new_tag = response.headers["ETag"]
    assert new_tag != tag
    assert client.get(path).headers["ETag"] == new_tag


@pytest.mark.parametrize("kind", RESOURCES)
def test_patch_with_a_stale_tag_is_412_and_changes_nothing(client, resource, db_rows, kind):
    path = resource(kind)
    tag = client.get(path).headers["ETag"]
    before = stored_name(db_rows, kind)

    response = client.patch(path, json=CHANGES[kind], headers={"If-Match": '"stale", W/' + tag})

    assert response.status_code == 412
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == 412
    assert tag in body["detail"]
    assert stored_name(db_rows, kind) == before


def test_two_editors_with_the_same_tag_cannot_both_write(client, resource, db_rows):
    path = resource("course")
    tag = client.get(path).headers["ETag"]

    first = client.patch(path, json={"title": "First edit"}, headers={"If-Match": tag})
    second = client.patch(path, json={"title": "Second edit"}, headers={"If-Match": tag})

    assert (first.status_code, second.status_code) == (200, 412)
    assert stored_name(db_rows, "course") == "First edit"


@pytest.mark.parametrize("kind", RESOURCES)
def test_delete_with_a_stale_tag_is_412_and_keeps_the_resource(client, resource, db_rows, kind):
    path = resource(kind)

    response = client.delete(path, headers={"If-Match": '"stale"'})

    assert response.status_code == 412
    assert response.mimetype == "application/problem+json"
    assert len(db_rows(Student if kind == "student" else Course)) == 1


@pytest.mark.parametrize("kind", RESOURCES)
def test_delete_with_the_current_tag_deletes(client, resource, db_rows, kind):
    path = resource(kind)
    tag = client.get(path).headers["ETag"]

    response = client.delete(path, headers={"If-Match": tag})

    assert response.status_code == 204
    assert db_rows(Student if kind == "student" else Course) == []


@pytest.mark.parametrize("kind", RESOURCES)
def test_if_match_star_matches_any_current_representation(client, resource, db_rows, kind):
    path = resource(kind)

    patched = client.patch(path, json=CHANGES[kind], headers={"If-Match": "*"})
    deleted = client.delete(path, headers={"If-Match": "*"})

    assert (patched.status_code, deleted.status_code) == (200, 204)
    assert db_rows(Student if kind == "student" else Course) == []


@pytest.mark.parametrize("kind", RESOURCES)
def test_a_missing_resource_is_404_whatever_if_match_says(client, kind):
    # RFC 9110, 13.2.1: preconditions are ignored when the answer would not be a 2xx.
    path = f"/{kind}s/999"

    for header in ("*", '"stale"'):
        assert client.patch(path, json=CHANGES[kind], headers={"If-Match": header}).status_code == (
            404
        )
        assert client.delete(path, headers={"If-Match": header}).status_code == 404


@pytest.mark.parametrize("kind", RESOURCES)
def test_without_if_match_writes_go_ahead_as_before(client, resource, db_rows, kind):
    path = resource(kind)

    response = client.patch(path, json=CHANGES[kind])

    assert response.status_code == 200
    assert response.headers["ETag"] == client.get(path).headers["ETag"]
    assert stored_name(db_rows, kind) in CHANGES[kind].values()


def test_enrolling_and_dropping_change_the_student_and_course_tags(
    client, make_student, make_course
):
    student = make_student(name="Ada", email="ada@example.edu")
    course = make_course(code="CS101", capacity=5)
    student_tags = [client.get(f"/students/{student}").headers["ETag"]]
    course_tags = [client.get(f"/courses/{course}").headers["ETag"]]

    client.post(f"/students/{student}/courses", json={"course_ids": [course]})
    student_tags.append(client.get(f"/students/{student}").headers["ETag"])
    course_tags.append(client.get(f"/courses/{course}").headers["ETag"])
    client.delete(f"/students/{student}/courses/{course}")
    student_tags.append(client.get(f"/students/{student}").headers["ETag"])
    course_tags.append(client.get(f"/courses/{course}").headers["ETag"])

    for tags in (student_tags, course_tags):
        assert tags[0] != tags[1] != tags[2]
        # Back to the same bytes, back to the same tag (a hash of the representation).
        assert tags[2] == tags[0]
    # The tag read while enrolled no longer matches once the course is dropped.
    stale = client.patch(
        f"/students/{student}", json={"name": "X"}, headers={"If-Match": student_tags[1]}
    )
    assert stale.status_code == 412


def test_a_promotion_from_the_waitlist_changes_the_promoted_students_tag(
    client, make_student, make_course, enrollment_statuses
):
    seated, waiting = make_student(), make_student()
    course = make_course(capacity=1, waitlist_capacity=None)
    client.post(f"/students/{seated}/courses", json={"course_ids": [course]})
    client.post(f"/students/{waiting}/courses", json={"course_ids": [course], "waitlist": True})
    before = client.get(f"/students/{waiting}").headers["ETag"]

    client.delete(f"/students/{seated}/courses/{course}")

    assert enrollment_statuses()[(waiting, course)] == "enrolled"
    assert client.get(f"/students/{waiting}").headers["ETag"] != before


def test_lists_and_creations_carry_no_etag(client, make_student):
    make_student()

    assert "ETag" not in client.get("/students").headers
    created = client.post("/students", json={"name": "Ada", "email": "ada@example.edu"})
    assert "ETag" not in created.headers


def test_the_spec_documents_the_conditional_headers_and_answers(client):
    spec = client.get("/openapi.json").get_json()
    components = spec["components"]
    for path in ("/students/{student_id}", "/courses/{course_id}"):
        operations = spec["paths"][path]
        get, patch, delete = operations["get"], operations["patch"], operations["delete"]
        assert {"$ref": "#/components/parameters/If-None-Match"} in get["parameters"]
        assert "304" in get["responses"]
        assert "ETag" in get["responses"]["200"]["headers"]
        for write in (patch, delete):
            assert {"$ref": "#/components/parameters/If-Match"} in write["parameters"]
            assert "412" in write["responses"]
        assert "ETag" in patch["responses"]["200"]["headers"]
    assert components["parameters"]["If-Match"]["in"] == "header"
    assert "ETag" in components["headers"]
