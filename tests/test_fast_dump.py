"""Each output schema's fast dump gives exactly marshmallow's dump of the same rows."""

from datetime import UTC, datetime, timedelta, timezone

import marshmallow as ma
import pytest
from marshmallow import fields

from app import queries, schemas
from app.pages import Paging
from app.schemas import OutputSchema

OUTPUT_SCHEMAS = {
    name: value for name, value in vars(schemas).items() if isinstance(value, OutputSchema)
}
MOMENTS = [
    datetime(2026, 9, 1, 8, 0, tzinfo=UTC),  # no microseconds: isoformat leaves them out
    datetime(2026, 9, 1, 8, 0, 0, 123456, tzinfo=UTC),
    datetime(1999, 12, 31, 23, 59, 59, 1, tzinfo=timezone(timedelta(hours=2))),
]
TEXTS = ["Ada Lovelace", "Zoë Ñúñez 李小龍 🎓", "", 'line\nbreak "quoted" \\ back']


def marshmallow_dump(schema: ma.Schema, obj, many=None):
    """The dump marshmallow itself makes, bypassing the fast one."""
    return ma.Schema.dump(schema, obj, many=many)


def sample_value(field: fields.Field, variant: int):
    """A value of the field's type: text, numbers and times in several shapes."""
    if isinstance(field, fields.List):
        nested = field.inner.schema
        return [sample_row(nested, variant + k) for k in range(variant % 3)]
    if isinstance(field, fields.DateTime):
        return MOMENTS[variant % len(MOMENTS)]
    if isinstance(field, fields.Integer):
        return [1, 2_147_483_647, 0, 42][variant % 4]
    return TEXTS[variant % len(TEXTS)]


def sample_row(schema: ma.Schema, variant: int) -> dict:
    """A row as the read queries hand it over; every third field null in some variants."""
    row = {}
    for index, (name, field) in enumerate(schema.dump_fields.items()):
        nullable = variant % 2 and (index + variant) % 3 == 0
        row[field.attribute or name] = None if nullable else sample_value(field, variant + index)
    return row


@pytest.mark.parametrize("name", sorted(OUTPUT_SCHEMAS))
def test_the_fast_dump_of_made_up_rows_is_marshmallows(name):
    schema = OUTPUT_SCHEMAS[name]
    rows = [sample_row(schema, variant) for variant in range(8)]

    if schema.many:
        assert schema.dump(rows) == marshmallow_dump(schema, rows)
        assert schema.dump([]) == []
    else:
        for row in rows:
            assert schema.dump(row) == marshmallow_dump(schema, row)


def test_every_output_representation_has_a_fast_dump():
    assert {"STUDENT", "STUDENTS", "STUDENT_COURSES", "COURSE", "COURSES"} <= set(OUTPUT_SCHEMAS)
    assert all(schema._plan is not None for schema in OUTPUT_SCHEMAS.values())


def test_a_row_missing_a_field_is_dumped_without_it_as_marshmallow_does():
    row = {"id": 1, "name": "Ada", "courses": [{"id": 2, "code": "CS1"}]}

    assert schemas.STUDENT.dump(row) == marshmallow_dump(schemas.STUDENT, row)
    assert schemas.STUDENT.dump(row) == {
        "id": 1,
        "name": "Ada",
        "courses": [{"id": 2, "code": "CS1"}],
    }


def test_an_object_that_is_not_a_dict_is_dumped_by_marshmallow():
    class Row:
        id, code, title, enrolled_at = 3, "CS101", "Programming", MOMENTS[1]

    assert schemas.COURSE_SUMMARY.dump(Row()) == marshmallow_dump(schemas.COURSE_SUMMARY, Row())


def test_an_output_schema_with_a_field_it_cannot_dump_fast_fails_when_built():
    class Priced(OutputSchema):
        price = fields.Decimal()

    with pytest.raises(TypeError, match="Decimal"):
        Priced()


@pytest.fixture
def lifecycle_rows(app, client, make_student, make_course):
    """Students with unicode names, a null external_id, enrollments and waitlist places."""
    full = make_course(code="FULL1", title="Réseaux ☕", capacity=1, waitlist_capacity=None)
    open_course = make_course(code="OPEN2", title="Open", description="Ünïcode text")
    holder = make_student(name="Zoë Ñúñez 李", external_id="zn-1")
    waiting = [make_student(name=f"Wäiter {n}") for n in (2, 3)]
    for student in (holder, *waiting):
        answer = client.post(
            f"/students/{student}/courses",
            json={"course_ids": [full, open_course], "waitlist": True},
        )
        assert answer.status_code == 201, answer.json
    return [holder, *waiting]


def test_the_fast_dump_of_the_read_queries_rows_is_marshmallows(app, lifecycle_rows):
    with app.app_context():
        details = [queries.student_detail(student) for student in lifecycle_rows]
        page = queries.list_students(None, Paging(page_size=100, page=1)).items
        courses = [queries.student_courses(student) for student in lifecycle_rows]
        course = queries.get_course(courses[0][0]["id"])

    assert page
    assert any(detail["waitlist"] for detail in details)
    assert any(detail["external_id"] is None for detail in details)
    for detail in details:
        assert schemas.STUDENT.dump(detail) == marshmallow_dump(schemas.STUDENT, detail)
    assert schemas.STUDENTS.dump(page) == marshmallow_dump(schemas.STUDENTS, page)
    for rows in courses:
        assert schemas.STUDENT_COURSES.dump(rows) == marshmallow_dump(schemas.STUDENT_COURSES, rows)
    assert schemas.COURSE.dump(course) == marshmallow_dump(schemas.COURSE, course)
