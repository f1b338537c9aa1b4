"""Read queries behind the views: a fixed number of statements each, nested data included.

Every query selects the columns the representation's schema names
(:func:`columns_of`), labelled with the field names, and hands on the rows as
dicts keyed by those labels (:func:`records`); nothing reads a row by position. Adding a
field to a representation is a schema change plus its column.

The hottest statements (one student, a student's courses) are built once and
run on the session's connection: one joined statement for one student, one
more statement for the courses of a whole page of students.
"""

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType

from flask import current_app
from marshmallow import Schema, fields
from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    func,
    literal,
    or_,
    select,
    tuple_,
)
from sqlalchemy.orm import Mapped

from app.database import fetch_records, read_connection, records
from app.models import (
    Course,
    Enrollment,
    EnrollmentHistory,
    Status,
    Student,
    waitlist_position,
)
from app.pages import Page, Paging, encode_cursor
from app.schemas import (
    COURSE,
    COURSE_SUMMARY,
    ENROLLMENTS,
    HISTORY,
    ROSTER,
    STUDENT,
    STUDENT_COURSES,
    WAITLIST,
    WAITLISTED_SUMMARY,
)
from app.services.errors import CourseNotFound, NoHistory, StudentNotFound


def columns_of(
    schema: Schema, *models, prefix: str = "", computed: Mapping = MappingProxyType({})
) -> list:
    """The columns ``schema`` dumps, each labelled ``prefix`` + its field name.

    Each field is read from ``computed`` (expressions by field name) or else
    from the first of ``models`` with an attribute of that name; nested fields
    are left to the statements that load them.
    """
    columns = []
    for name, field in schema.fields.items():
        if isinstance(field, fields.Nested | fields.List):
            continue
        attribute: Mapped = computed.get(name)
        if attribute is None:
            attribute = next(getattr(m, name) for m in models if hasattr(m, name))
        columns.append(attribute.label(prefix + name))
    return columns


def field_names(schema: Schema) -> tuple[str, ...]:
    """The names of the fields of ``schema`` that are read from columns."""
    return tuple(
        name
        for name, field in schema.fields.items()
        if not isinstance(field, fields.Nested | fields.List)
    )


ACTIVE = (Status.ENROLLED, Status.WAITLISTED)
INT64_MAX = 2**63 - 1
POSITION = {"position": waitlist_position()}

STUDENT_COLUMNS = columns_of(STUDENT, Student)
STUDENT_FIELDS = field_names(STUDENT)
# A student's courses and waitlist come from the same rows: the enrolled ones
# fill ``courses``, the waitlisted ones ``waitlist``.
SUMMARY_FIELDS = field_names(COURSE_SUMMARY)
WAITLISTED_FIELDS = field_names(WAITLISTED_SUMMARY)
# The student and their enrollments share one row, so the course columns carry a prefix.
SUMMARY_PREFIX = "course_"


def _summary_columns() -> list:
    """The columns of both nested summaries (each once), and the status that sorts them."""
    columns = {}
    for schema in (COURSE_SUMMARY, WAITLISTED_SUMMARY):
        for column in columns_of(
            schema, Course, Enrollment, prefix=SUMMARY_PREFIX, computed=POSITION
        ):
            columns.setdefault(column.name, column)
    return [*columns.values(), Enrollment.status.label(SUMMARY_PREFIX + "status")]


SUMMARY_COLUMNS = _summary_columns()
COURSE_COLUMNS = columns_of(COURSE, Course)

# The hottest statements are built once: building a select costs more than running it.
STUDENT_DETAIL = (
    select(*STUDENT_COLUMNS, *SUMMARY_COLUMNS)
    .outerjoin(Enrollment, and_(Enrollment.student_id == Student.id, Enrollment.status.in_(ACTIVE)))
    .outerjoin(Course, Course.id == Enrollment.course_id)
    .where(Student.id == bindparam("student_id"))
    .order_by(Course.code)
)
STUDENT_COURSES_STATEMENT = (
    select(*columns_of(STUDENT_COURSES, Course, Enrollment))
    .join(Enrollment, Enrollment.course_id == Course.id)
    .where(Enrollment.student_id == bindparam("student_id"), Enrollment.status == Status.ENROLLED)
    .order_by(Course.code)
)
COURSE_BY_ID = select(*COURSE_COLUMNS).where(Course.id == bindparam("course_id"))
STUDENT_EXISTS = select(Student.id.label("id")).where(Student.id == bindparam("student_id"))
COURSE_EXISTS = select(Course.id.label("id")).where(Course.id == bindparam("course_id"))


def _nest(student: Mapping, rows) -> dict:
    """A student representation from its columns and its enrollment rows (prefixed columns)."""
    courses, waitlist = [], []
    for row in rows:
        status = row[SUMMARY_PREFIX + "status"]
        if status == Status.ENROLLED:
            courses.append({name: row[SUMMARY_PREFIX + name] for name in SUMMARY_FIELDS})
        elif status == Status.WAITLISTED:
            waitlist.append({name: row[SUMMARY_PREFIX + name] for name in WAITLISTED_FIELDS})
    return {
        **{name: student[name] for name in STUDENT_FIELDS},
        "courses": courses,
        "waitlist": waitlist,
    }


def count_rows(statement: Select) -> tuple[int, bool]:
    """How many rows ``statement`` selects, and whether that number is an estimate.

    On PostgreSQL the count stops after ``LIST_COUNT_EXACT_UP_TO`` rows, so no
    page of a huge list scans the whole table: up to that bound the total is
    exact (one statement); past it, it is the planner's estimate (``EXPLAIN``,
    from the statistics autovacuum's ANALYZE keeps; a second statement), never
    less than the bound. SQLite keeps no such statistics and counts every row.
    """
    unordered = statement.order_by(None)
    connection = read_connection()
    if connection.dialect.name != "postgresql":
        return connection.scalar(select(func.count()).select_from(unordered.subquery())), False
    bound = current_app.config["LIST_COUNT_EXACT_UP_TO"]
    bounded = select(func.count()).select_from(unordered.limit(bound + 1).subquery())
    total = connection.scalar(bounded)
    if total <= bound:
        return total, False
    return max(_planned_rows(unordered), total), True


def _planned_rows(statement: Select) -> int:
    """The number of rows PostgreSQL's planner expects ``statement`` to select."""
    connection = read_connection()
    compiled = statement.compile(dialect=connection.dialect)
    explain = "EXPLAIN (FORMAT JSON) " + compiled.string
    [plan] = connection.exec_driver_sql(explain, compiled.params).scalar_one()
    return int(plan["Plan"]["Plan Rows"])


def _after(order: list[tuple[ColumnElement, bool]], values: tuple) -> ColumnElement:
    """The rows that come after the row whose key values are ``values``, in ``order``."""
    bound = [
        literal(value, type_=column.type) for (column, _), value in zip(order, values, strict=True)
    ]
    directions = {descending for _, descending in order}
    if len(directions) == 1:
        # One direction: a row-value comparison, which the index of the order serves as a range.
        columns, keys = tuple_(*(column for column, _ in order)), tuple_(*bound)
        return columns < keys if directions == {True} else columns > keys
    # Mixed directions: a row comes after when it ties on the first keys and passes the next.
    return or_(
        *(
            and_(
                *(column == value for (column, _), value in zip(order[:i], bound[:i], strict=True)),
                order[i][0] < bound[i] if order[i][1] else order[i][0] > bound[i],
            )
            for i in range(len(order))
        )
    )


def page_of(statement: Select, paging: Paging, counted: Select | None = None) -> Page:
    """One page of the labelled columns ``statement`` selects, in ``paging``'s order.

    Two statements (three for an estimated total): the count of ``counted``
    (``statement`` unless a cheaper select has the same rows) and the page,
    one row longer than asked to know whether another follows. The order's
    fields are labels of ``statement``.
    """
    total, estimated = count_rows(statement if counted is None else counted)
    order = [(statement.selected_columns[key.field].element, key.descending) for key in paging.keys]
    page = statement.order_by(
        *(column.desc() if descending else column.asc() for column, descending in order)
    ).limit(paging.page_size + 1)
    if paging.after is not None:
        page = page.where(_after(order, paging.after))
    else:
        # Any page past the last is empty; capping keeps huge page numbers inside
        # the databases' 64-bit OFFSET instead of failing with a 500.
        page = page.offset(min(paging.offset, INT64_MAX))
    rows = records(read_connection().execute(page))
    items = rows[: paging.page_size]
    next_after = None
    if len(rows) > paging.page_size:
        last = items[-1]
        next_after = encode_cursor(paging.sort, tuple(last[key.field] for key in paging.keys))
    return Page(items, paging, total, estimated, next_after)


def matching(statement: Select, q: str | None, *columns) -> Select:
    """Keep the rows where any of ``columns`` contains ``q`` (case-insensitive, literal)."""
    if not q:
        return statement
    return statement.where(or_(*(column.icontains(q, autoescape=True) for column in columns)))


def _student_exists(student_id: int) -> None:
    """Raise StudentNotFound unless the student exists."""
    if not fetch_records(STUDENT_EXISTS, {"student_id": student_id}):
        raise StudentNotFound(student_id)


def student_detail(student_id: int) -> dict:
    """One student with their courses and waitlist, each ordered by code (one statement)."""
    rows = fetch_records(STUDENT_DETAIL, {"student_id": student_id})
    if not rows:
        raise StudentNotFound(student_id)
    # A student without enrollments is one row whose enrollment columns are all null.
    return _nest(rows[0], rows)


def list_students(q: str | None, paging: Paging) -> Page:
    """One page of students (by id unless sorted), each with courses and waitlist.

    Three statements: the count, the page, the nested courses of the whole page.
    """
    statement = matching(select(*STUDENT_COLUMNS), q, Student.name, Student.email)
    page = page_of(statement, paging)
    if not page.items:
        return page
    nested = defaultdict(list)
    rows = read_connection().execute(
        select(Enrollment.student_id.label("student_id"), *SUMMARY_COLUMNS)
        .join(Course, Course.id == Enrollment.course_id)
        .where(
            Enrollment.student_id.in_([student["id"] for student in page.items]),
            Enrollment.status.in_(ACTIVE),
        )
        .order_by(Course.code)
    )
    for row in records(rows):
        nested[row["student_id"]].append(row)
    return replace(page, items=[_nest(student, nested[student["id"]]) for student in page.items])


def get_course(course_id: int) -> dict:
    """The course with this id, with its enrolled count."""
    rows = fetch_records(COURSE_BY_ID, {"course_id": course_id})
    if not rows:
        raise CourseNotFound(course_id)
    return rows[0]


def list_courses(q: str | None, paging: Paging) -> Page:
    """One page of courses (by code unless sorted)."""
    return page_of(matching(select(*COURSE_COLUMNS), q, Course.code, Course.title), paging)


def student_courses(student_id: int) -> list[dict]:
    """The courses of one student (course fields plus ``enrolled_at``), by code.

    The student's existence is only looked up when they have no courses.
    """
    rows = fetch_records(STUDENT_COURSES_STATEMENT, {"student_id": student_id})
    if not rows:
        _student_exists(student_id)
    return rows


def _course_exists(course_id: int) -> None:
    """Raise CourseNotFound unless the course exists."""
    if not fetch_records(COURSE_EXISTS, {"course_id": course_id}):
        raise CourseNotFound(course_id)


def _in_course(course_id: int, status: Status):
    """The condition on enrollments: in course ``course_id``, in ``status``."""
    return and_(Enrollment.course_id == course_id, Enrollment.status == status)


def _enrollments_in(course_id: int, status: Status) -> Select:
    """The course's enrollments in ``status``: the rows of its roster or waitlist, to count.

    Counted without the join to students (every enrollment has its student),
    from the index on (course_id, status) alone.
    """
    return select(Enrollment.student_id).where(_in_course(course_id, status))


def course_roster(course_id: int, paging: Paging) -> Page:
    """One page of the students enrolled in a course (by name then id unless sorted)."""
    _course_exists(course_id)
    statement = (
        select(*columns_of(ROSTER, Student, Enrollment))
        .join(Enrollment, Enrollment.student_id == Student.id)
        .where(_in_course(course_id, Status.ENROLLED))
    )
    return page_of(statement, paging, counted=_enrollments_in(course_id, Status.ENROLLED))


def course_waitlist(course_id: int, paging: Paging) -> Page:
    """One page of the students waiting for a course, in promotion order, with positions."""
    _course_exists(course_id)
    statement = (
        select(*columns_of(WAITLIST, Student, Enrollment, computed=POSITION))
        .join(Enrollment, Enrollment.student_id == Student.id)
        .where(_in_course(course_id, Status.WAITLISTED))
    )
    return page_of(statement, paging, counted=_enrollments_in(course_id, Status.WAITLISTED))


def student_enrollments(student_id: int, status: str | None) -> list[dict]:
    """Every enrollment of a student (or those in ``status``), by course id."""
    statement = select(*columns_of(ENROLLMENTS, Enrollment, computed=POSITION)).where(
        Enrollment.student_id == student_id
    )
    if status is not None:
        statement = statement.where(Enrollment.status == status)
    rows = records(read_connection().execute(statement.order_by(Enrollment.course_id)))
    if not rows:
        _student_exists(student_id)
    return rows


def enrollment_history(student_id: int, course_id: int) -> list[dict]:
    """The history of one enrollment, oldest first (kept after the course is deleted)."""
    statement = (
        select(*columns_of(HISTORY, EnrollmentHistory))
        .where(EnrollmentHistory.student_id == student_id, EnrollmentHistory.course_id == course_id)
        .order_by(EnrollmentHistory.id)
    )
    rows = records(read_connection().execute(statement))
    if not rows:
        _student_exists(student_id)
        raise NoHistory(student_id, course_id)
    return rows
