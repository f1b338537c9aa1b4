"""Read queries behind the views: a fixed number of statements each, nested data preloaded.

Student representations (the hottest reads) are built from plain rows rather
than ORM objects: one joined statement for one student, one more statement
for the courses of a whole page of students.
"""

from collections import defaultdict

from sqlalchemy import Select, bindparam, func, or_, select
from sqlalchemy.orm import undefer

from app.errors import NotFoundError
from app.extensions import db
from app.models import Course, Enrollment, Student

STUDENT_COLUMNS = (Student.id, Student.name, Student.email, Student.created_at, Student.external_id)
COURSE_SUMMARY_COLUMNS = (Course.id, Course.code, Course.title, Enrollment.enrolled_at)


def paginate(statement: Select, pagination_parameters) -> Select:
    """Count the rows ``statement`` selects, record it, and limit it to one page."""
    count = select(func.count()).select_from(statement.order_by(None).subquery())
    pagination_parameters.item_count = db.session.scalar(count)
    # Any page past the last is empty; capping keeps huge page numbers inside
    # PostgreSQL's bigint OFFSET instead of failing with a 500.
    offset = min(pagination_parameters.first_item, pagination_parameters.item_count)
    return statement.limit(pagination_parameters.page_size).offset(offset)


def matching(statement: Select, q: str | None, *columns) -> Select:
    """Keep the rows where any of ``columns`` contains ``q`` (case-insensitive, literal)."""
    if not q:
        return statement
    return statement.where(or_(*(column.icontains(q, autoescape=True) for column in columns)))


def get_student(student_id: int) -> Student:
    """The student with this id, or a 404."""
    student = db.session.get(Student, student_id)
    if student is None:
        raise NotFoundError(f"Student {student_id} does not exist.")
    return student


def _student(row, courses: list[dict]) -> dict:
    """The student representation from a row of STUDENT_COLUMNS."""
    return {
        "id": row[0],
        "name": row[1],
        "email": row[2],
        "created_at": row[3],
        "external_id": row[4],
        "courses": courses,
    }


def _course_summary(row) -> dict:
    """A nested course from a row of COURSE_SUMMARY_COLUMNS."""
    return {"id": row[0], "code": row[1], "title": row[2], "enrolled_at": row[3]}


# The hottest statements are built once: building a select costs more than running it.
STUDENT_DETAIL = (
    select(*STUDENT_COLUMNS, *COURSE_SUMMARY_COLUMNS)
    .outerjoin(Enrollment, Enrollment.student_id == Student.id)
    .outerjoin(Course, Course.id == Enrollment.course_id)
    .where(Student.id == bindparam("student_id"))
    .order_by(Course.code)
)
STUDENT_COURSES = (
    select(
        Course.id,
        Course.code,
        Course.title,
        Course.description,
        Course.capacity,
        Course.enrolled_count.label("enrolled_count"),
        Course.created_at,
        Enrollment.enrolled_at,
    )
    .join(Enrollment, Enrollment.course_id == Course.id)
    .where(Enrollment.student_id == bindparam("student_id"))
    .order_by(Course.code)
)


def _core_rows(statement: Select, **parameters) -> list:
    """Rows of a column-only select, run on the session's connection.

    Skips the ORM's execution layer, which has nothing to do for plain columns
    and costs more than the statement itself on the hottest reads.
    """
    return db.session.connection().execute(statement, parameters).all()


def student_detail(student_id: int) -> dict:
    """One student with their courses ordered by code (one statement), or a 404."""
    rows = _core_rows(STUDENT_DETAIL, student_id=student_id)
    if not rows:
        raise NotFoundError(f"Student {student_id} does not exist.")
    courses = [_course_summary(row[5:]) for row in rows if row[5] is not None]
    return _student(rows[0], courses)


def get_course(course_id: int) -> Course:
    """The course with this id (its enrolled count loaded), or a 404."""
    course = db.session.get(Course, course_id, options=[undefer(Course.enrolled_count)])
    if course is None:
        raise NotFoundError(f"Course {course_id} does not exist.")
    return course


def list_students(q: str | None, pagination_parameters) -> list[dict]:
    """One page of students ordered by id, each with its courses (count, page, courses)."""
    statement = matching(
        select(*STUDENT_COLUMNS).order_by(Student.id), q, Student.name, Student.email
    )
    students = db.session.execute(paginate(statement, pagination_parameters)).all()
    if not students:
        return []
    courses = defaultdict(list)
    rows = db.session.execute(
        select(Enrollment.student_id, *COURSE_SUMMARY_COLUMNS)
        .join(Course, Course.id == Enrollment.course_id)
        .where(Enrollment.student_id.in_([student[0] for student in students]))
        .order_by(Course.code)
    )
    for row in rows:
        courses[row[0]].append(_course_summary(row[1:]))
    return [_student(student, courses[student[0]]) for student in students]


def list_courses(q: str | None, pagination_parameters) -> list[Course]:
    """One page of courses ordered by code."""
    statement = matching(select(Course).order_by(Course.code), q, Course.code, Course.title)
    page = paginate(statement, pagination_parameters).options(undefer(Course.enrolled_count))
    return list(db.session.scalars(page))


def student_courses(student_id: int) -> list:
    """The courses of one student (course fields plus ``enrolled_at``), by code.

    The student's existence is only looked up when they have no courses.
    """
    rows = _core_rows(STUDENT_COURSES, student_id=student_id)
    if not rows:
        get_student(student_id)
    return rows


def course_roster(course_id: int, pagination_parameters) -> list:
    """One page of the students in a course, ordered by name then id."""
    if db.session.get(Course, course_id) is None:
        raise NotFoundError(f"Course {course_id} does not exist.")
    statement = (
        select(Student.id, Student.name, Student.email, Enrollment.enrolled_at)
        .join(Enrollment, Enrollment.student_id == Student.id)
        .where(Enrollment.course_id == course_id)
        .order_by(Student.name, Student.id)
    )
    return list(db.session.execute(paginate(statement, pagination_parameters)))
