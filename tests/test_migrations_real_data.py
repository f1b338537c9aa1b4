"""Migrations on real data: down to the baseline and back up with the real ``flask db`` CLI.

A database of its own is migrated to head, filled with a few thousand students,
courses and enrollments, taken down to revision 0001 and up again, through the
same commands an operator runs. Every student and course row must come back
identical; the enrollments are gone (revision 0002's downgrade drops the join
table, as its docstring and the README say). On SQLite the app's engine runs
with foreign keys on, so the check also proves that nothing cascaded away and
that the constraints still hold afterwards.
"""

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from tests.support.databases import flask_cli, make_app
from tests.support.servers import ROOT, Figures

pytestmark = pytest.mark.slow

STUDENTS, COURSES, ENROLLMENTS = 3000, 300, 6000


def snapshot(connection, table: str) -> list[tuple]:
    """Every row of ``table``, every column, in id order."""
    return [tuple(row) for row in connection.execute(text(f"SELECT * FROM {table} ORDER BY id"))]  # noqa: S608


def fill(connection) -> None:
    """Insert the data set with plain SQL, in bulk."""
    connection.execute(
        text(
            "INSERT INTO students (name, email, created_at) "
            "VALUES (:name, :email, CURRENT_TIMESTAMP)"
        ),
        [{"name": f"Student {i}", "email": f"s{i}@example.edu"} for i in range(STUDENTS)],
    )
    connection.execute(
        text(
            "INSERT INTO courses (code, title, description, capacity, created_at) "
            "VALUES (:code, :title, :description, :capacity, CURRENT_TIMESTAMP)"
        ),
        [
            {
                "code": f"C{i:04d}",
                "title": f"Course {i}",
                "description": None if i % 3 else f"About course {i}",
                "capacity": None if i % 4 == 0 else 50,
            }
            for i in range(COURSES)
        ],
    )
    student_ids = connection.execute(text("SELECT id FROM students ORDER BY id")).scalars().all()
    course_ids = connection.execute(text("SELECT id FROM courses ORDER BY id")).scalars().all()
    # Two courses per student, spread so that no course exceeds its 50 seats.
    connection.execute(
        text("INSERT INTO student_courses (student_id, course_id) VALUES (:student, :course)"),
        [
            {"student": student, "course": course_ids[(index * 2 + offset) % COURSES]}
            for index, student in enumerate(student_ids)
            for offset in (0, 1)
        ],
    )


@pytest.fixture
def database_url(databases):
    """A database of its own, at head."""
    return databases.migrated("realdata")


@pytest.fixture
def engine(database_url):
    """An engine on that database, with foreign keys on for SQLite (as the app has them)."""
    engine = create_engine(database_url)
    if engine.dialect.name == "sqlite":
        event.listen(
            engine,
            "connect",
            lambda connection, _record: connection.execute("PRAGMA foreign_keys = ON"),
        )
    yield engine
    engine.dispose()


def test_downgrade_to_baseline_and_upgrade_keep_every_student_and_course(database_url, engine):
    with engine.begin() as connection:
        fill(connection)
    with engine.connect() as connection:
        students = snapshot(connection, "students")
        courses = snapshot(connection, "courses")
        assert connection.execute(text("SELECT count(*) FROM student_courses")).scalar() == (
            ENROLLMENTS
        )

    flask_cli(database_url, "db", "downgrade", "0001")
    flask_cli(database_url, "db", "upgrade")
    Figures.add("rows kept through downgrade and upgrade", len(students) + len(courses))

    with engine.connect() as connection:
        assert len(students) == STUDENTS
        assert len(courses) == COURSES
        assert snapshot(connection, "students") == students
        assert snapshot(connection, "courses") == courses
        # Documented: the downgrade drops the join table and so every enrollment.
        assert connection.execute(text("SELECT count(*) FROM student_courses")).scalar() == 0
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        assert revision == ScriptDirectory(str(ROOT / "migrations")).get_current_head()
        if engine.dialect.name == "sqlite":
            assert connection.execute(text("PRAGMA foreign_key_check")).all() == []


def test_app_still_enforces_foreign_keys_after_the_round_trip(database_url, engine):
    with engine.begin() as connection:
        fill(connection)
    flask_cli(database_url, "db", "downgrade", "0001")
    flask_cli(database_url, "db", "upgrade")

    app = make_app(database_url)
    with app.app_context():
        try:
            orphan = text("INSERT INTO student_courses (student_id, course_id) VALUES (:s, 1)")
            with pytest.raises(IntegrityError):
                db.session.execute(orphan, {"s": STUDENTS + 10})
            db.session.rollback()
            db.session.execute(
                text("INSERT INTO student_courses (student_id, course_id) VALUES (1, 1)")
            )
            db.session.execute(text("DELETE FROM students WHERE id = 1"))
            db.session.commit()
            # The cascade still runs: the enrollment left with its student.
            count = db.session.execute(text("SELECT count(*) FROM student_courses")).scalar()
            assert count == 0
            assert db.session.execute(text("SELECT count(*) FROM students")).scalar() == (
                STUDENTS - 1
            )
        finally:
            db.session.remove()
            db.engine.dispose()
