"""Read queries behind the views: one statement per list, nested data preloaded."""

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import selectinload, undefer

from app.errors import NotFoundError
from app.extensions import db
from app.models import Course, Enrollment, Student

# Nested courses of students come in one extra statement, whatever the page size.
STUDENT_WITH_COURSES = selectinload(Student.enrollments).joinedload(Enrollment.course)


def paginate(statement: Select, pagination_parameters) -> Select:
    """Count the rows ``statement`` selects, record it, and limit it to one page."""
    count = select(func.count()).select_from(statement.order_by(None).subquery())
    pagination_parameters.item_count = db.session.scalar(count)
    # Any page past the last is empty; capping keeps huge page numbers inside
    # PostgreSQL's bigint OFFSET instead of failing with a 500.
    offset = min(pagination_parameters.first_item, pagination_parameters.item_count)
    return statement.limit(pagination_parameters.page_size).offset(offset)


def get_student(student_id: int, *, with_courses: bool = False) -> Student:
    """The student with this id, or a 404."""
    options = [STUDENT_WITH_COURSES] if with_courses else []
    student = db.session.get(Student, student_id, options=options)
    if student is None:
        raise NotFoundError(f"Student {student_id} does not exist.")
    return student


def get_course(course_id: int) -> Course:
    """The course with this id (its enrolled count loaded), or a 404."""
    course = db.session.get(Course, course_id, options=[undefer(Course.enrolled_count)])
    if course is None:
        raise NotFoundError(f"Course {course_id} does not exist.")
    return course


def list_students(q: str | None, pagination_parameters) -> list[Student]:
    """One page of students ordered by id, each with its courses."""
    statement = select(Student).order_by(Student.id)
    if q:
        statement = statement.where(
            or_(
                Student.name.icontains(q, autoescape=True),
                Student.email.icontains(q, autoescape=True),
            )
        )
    page = paginate(statement, pagination_parameters).options(STUDENT_WITH_COURSES)
    return list(db.session.scalars(page))


def list_courses(q: str | None, pagination_parameters) -> list[Course]:
    """One page of courses ordered by code."""
    statement = select(Course).order_by(Course.code)
    if q:
        statement = statement.where(
            or_(
                Course.code.icontains(q, autoescape=True),
                Course.title.icontains(q, autoescape=True),
            )
        )
    page = paginate(statement, pagination_parameters).options(undefer(Course.enrolled_count))
    return list(db.session.scalars(page))


def student_courses(student_id: int) -> list:
    """The courses of one student (course fields plus ``enrolled_at``), by code."""
    get_student(student_id)
    statement = (
        select(
            Course.id,
            Course.code,
            Course.title,
            Course.description,
            Course.capacity,
            Course.enrolled_count,
            Course.created_at,
            Enrollment.enrolled_at,
        )
        .join(Enrollment, Enrollment.course_id == Course.id)
        .where(Enrollment.student_id == student_id)
        .order_by(Course.code)
    )
    return list(db.session.execute(statement))


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
