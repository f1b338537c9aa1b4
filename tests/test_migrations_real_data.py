"""Migrations on real data, through the real ``flask db`` CLI an operator runs.

A database of its own is filled with a few thousand students, courses and
enrollments, then migrated:

- down to revision 0001 and up again: every student and course row comes back
  identical; the enrollments are gone (revision 0002's downgrade drops the join
  table, as its docstring and the README say);
- from 0002 up to 0003 (the lifecycle): every enrollment stays, becomes
  ``enrolled`` with its ``enrolled_at``, and gets exactly one ``migrated``
  history row;
- from head down to 0002 with waitlists, drops and history present: the
  enrolled rows stay, the rest is discarded (as 0003's docstring and the README
  say), and upgrading again gives each enrollment its ``migrated`` row.

On SQLite the app's engine runs with foreign keys on, so the checks also prove
that nothing cascaded away and that the constraints still hold afterwards.
"""

import re
from datetime import UTC, datetime, timedelta

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import DateTime, bindparam, create_engine, event, inspect, text
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from tests.support.databases import flask_cli, instants, make_app
from tests.support.servers import ROOT, Figures

pytestmark = pytest.mark.slow

STUDENTS, COURSES, ENROLLMENTS = 3000, 300, 6000


# The columns revision 0001 created: revision 0004 adds external_id to students
# and 0003 the lifecycle fields to courses, so these are what 0002 and head share.
BASELINE_STUDENT_COLUMNS = "id, name, email, created_at"
BASELINE_COURSE_COLUMNS = "id, code, title, description, capacity, created_at"
START = datetime(2026, 1, 5, 8, 30, tzinfo=UTC)


def snapshot(connection, table: str, columns: str = "*", order: str = "id") -> list[tuple]:
    """Every row of ``table`` (all or the given columns), in ``order``."""
    statement = text(f"SELECT {columns} FROM {table} ORDER BY {order}")  # noqa: S608
    return instants(connection.execute(statement))


def enrollments(connection, where: str = "1 = 1") -> list[tuple]:
    """The enrollment pairs matching ``where``, with their enrollment times, in key order."""
    columns = "student_id, course_id, enrolled_at"
    statement = text(f"SELECT {columns} FROM student_courses WHERE {where} ORDER BY {columns}")  # noqa: S608
    return instants(connection.execute(statement))


def count(connection, statement: str) -> int:
    """One count read straight from the database."""
    return connection.execute(text(statement)).scalar_one()


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
    # Two courses per student, spread so that no course exceeds its 50 seats, each
    # enrolled at its own time (microseconds included) so the times can be told apart.
    connection.execute(
        text(
            "INSERT INTO student_courses (student_id, course_id, enrolled_at) "
            "VALUES (:student, :course, :at)"
        ).bindparams(bindparam("at", type_=DateTime(timezone=True))),
        [
            {
                "student": student,
                "course": course_ids[(index * 2 + offset) % COURSES],
                "at": START + timedelta(seconds=index, microseconds=offset * 1001),
            }
            for index, student in enumerate(student_ids)
            for offset in (0, 1)
        ],
    )


@pytest.fixture
def database_url(databases):
    """A database of its own, at head."""
    return databases.migrated("realdata")


@pytest.fixture
def database_at_0002(databases):
    """A database of its own, at revision 0002 (enrollments without statuses)."""
    url = databases.new("realdata")
    flask_cli(url, "db", "upgrade", "0002")
    return url


def open_engine(url: str):
    """An engine on ``url``, with foreign keys on for SQLite (as the app has them)."""
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(
            engine,
            "connect",
            lambda connection, _record: connection.execute("PRAGMA foreign_keys = ON"),
        )
    return engine


@pytest.fixture
def engine(database_url):
    """An engine on the database at head."""
    engine = open_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def engine_at_0002(database_at_0002):
    """An engine on the database at revision 0002."""
    engine = open_engine(database_at_0002)
    yield engine
    engine.dispose()


def test_downgrade_to_baseline_and_upgrade_keep_every_student_and_course(database_url, engine):
    with engine.begin() as connection:
        fill(connection)
    with engine.connect() as connection:
        students = snapshot(connection, "students")
        courses = snapshot(connection, "courses")
        assert count(connection, "SELECT count(*) FROM student_courses") == ENROLLMENTS

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
        assert count(connection, "SELECT count(*) FROM enrollment_history") == 0
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


def test_upgrade_to_0003_makes_every_enrollment_enrolled_with_one_migrated_history_row(
    database_at_0002, engine_at_0002
):
    engine = engine_at_0002
    with engine.begin() as connection:
        fill(connection)
    with engine.connect() as connection:
        students = snapshot(connection, "students", BASELINE_STUDENT_COLUMNS)
        courses = snapshot(connection, "courses", BASELINE_COURSE_COLUMNS)
        pairs = enrollments(connection)

    flask_cli(database_at_0002, "db", "upgrade")
    Figures.add("enrollments migrated to statuses with their history", len(pairs))

    with engine.connect() as connection:
        assert len(pairs) == ENROLLMENTS
        assert snapshot(connection, "students", BASELINE_STUDENT_COLUMNS) == students
        assert snapshot(connection, "courses", BASELINE_COURSE_COLUMNS) == courses
        assert enrollments(connection) == pairs
        assert count(
            connection,
            "SELECT count(*) FROM student_courses WHERE status = 'enrolled' "
            "AND waitlisted_at IS NULL AND dropped_at IS NULL",
        ) == len(pairs)
        # One history row per enrollment, carrying its pair and its enrollment time.
        history = snapshot(
            connection,
            "enrollment_history",
            "student_id, course_id, at, from_status, to_status, actor, reason",
        )
        assert history == [
            (student, course, at, None, "enrolled", "system", "migrated")
            for student, course, at in pairs
        ]
        assert count(
            connection,
            "SELECT count(*) FROM courses WHERE waitlist_capacity = 0 "
            "AND enrollment_opens_at IS NULL AND enrollment_closes_at IS NULL "
            "AND drop_deadline IS NULL",
        ) == len(courses)
        if engine.dialect.name == "sqlite":
            assert connection.execute(text("PRAGMA foreign_key_check")).all() == []

    # The app reads the migrated data: counts of enrolled students per course.
    app = make_app(database_at_0002)
    with app.app_context():
        try:
            client = app.test_client()
            for course_id, code, *_ in courses[:5]:
                expected = sum(1 for _, course, _ in pairs if course == course_id)
                body = client.get(f"/courses/{course_id}").get_json()
                assert (body["code"], body["enrolled_count"], body["waitlist_count"]) == (
                    code,
                    expected,
                    0,
                )
            student = students[0][0]
            history = client.get(f"/students/{student}/courses/{pairs[0][1]}/history").get_json()
            assert [(entry["reason"], entry["to_status"]) for entry in history] == [
                ("migrated", "enrolled")
            ]
        finally:
            db.session.remove()
            db.engine.dispose()


def test_downgrade_from_0003_keeps_enrolled_rows_and_discards_waitlists_drops_and_history(
    database_url, engine
):
    with engine.begin() as connection:
        fill(connection)
        # Every third enrollment dropped, every fifth waitlisted; courses get lifecycle fields.
        connection.execute(
            text(
                "UPDATE student_courses SET status = 'dropped', dropped_at = CURRENT_TIMESTAMP "
                "WHERE (student_id + course_id) % 3 = 0"
            )
        )
        connection.execute(
            text(
                "UPDATE student_courses SET status = 'waitlisted', enrolled_at = NULL, "
                "waitlisted_at = CURRENT_TIMESTAMP WHERE (student_id + course_id) % 5 = 0 "
                "AND status = 'enrolled'"
            )
        )
        connection.execute(
            text(
                "INSERT INTO enrollment_history "
                "(at, student_id, course_id, from_status, to_status, actor, reason) "
                "SELECT CURRENT_TIMESTAMP, student_id, course_id, NULL, status, 'registrar', "
                "'requested' FROM student_courses"
            )
        )
        connection.execute(
            text(
                "UPDATE courses SET waitlist_capacity = NULL, drop_deadline = CURRENT_TIMESTAMP "
                "WHERE id % 2 = 0"
            )
        )
    with engine.connect() as connection:
        students = snapshot(connection, "students", BASELINE_STUDENT_COLUMNS)
        courses = snapshot(connection, "courses", BASELINE_COURSE_COLUMNS)
        enrolled = enrollments(connection, "status = 'enrolled'")
        others = count(
            connection, "SELECT count(*) FROM student_courses WHERE status <> 'enrolled'"
        )

    flask_cli(database_url, "db", "downgrade", "0002")

    with engine.connect() as connection:
        assert 0 < len(enrolled) < ENROLLMENTS
        assert others == ENROLLMENTS - len(enrolled)
        assert snapshot(connection, "students", BASELINE_STUDENT_COLUMNS) == students
        assert snapshot(connection, "courses", BASELINE_COURSE_COLUMNS) == courses
        # Documented: only the enrolled rows survive, with their enrollment times.
        assert enrollments(connection) == enrolled
        tables = set(inspect(connection).get_table_names())
        assert "enrollment_history" not in tables
        if engine.dialect.name == "sqlite":
            assert connection.execute(text("PRAGMA foreign_key_check")).all() == []

    flask_cli(database_url, "db", "upgrade")
    Figures.add("enrolled rows kept through the lifecycle downgrade", len(enrolled))

    with engine.connect() as connection:
        assert enrollments(connection) == enrolled
        assert count(connection, "SELECT count(*) FROM enrollment_history") == len(enrolled)
        assert count(
            connection, "SELECT count(*) FROM enrollment_history WHERE reason = 'migrated'"
        ) == len(enrolled)


def stored_timestamps(connection) -> list:
    """Every timestamp of every table, as stored (text on SQLite)."""
    columns = {
        "students": "created_at",
        "courses": "created_at",
        "student_courses": "enrolled_at",
        "enrollment_history": "at",
    }
    return [
        value
        for table, column in columns.items()
        for value in connection.execute(text(f"SELECT {column} FROM {table}")).scalars()  # noqa: S608
    ]


def test_0007_keeps_every_row_stops_id_reuse_and_stores_fractional_seconds(databases):
    url = databases.new("realdata")
    flask_cli(url, "db", "upgrade", "0005")
    engine = open_engine(url)
    with engine.begin() as connection:
        fill(connection)
        # Enrolled "now" by the old server default: CURRENT_TIMESTAMP, whole seconds on SQLite.
        connection.execute(
            text("INSERT INTO student_courses (student_id, course_id) VALUES (1, 3)")
        )
        connection.execute(
            text(
                "INSERT INTO enrollment_history (at, student_id, course_id, to_status, actor, "
                "reason) VALUES (CURRENT_TIMESTAMP, 1, 3, 'enrolled', 'system', 'migrated')"
            )
        )
    tables = ("students", "courses", "enrollment_history")
    with engine.connect() as connection:
        before = {table: snapshot(connection, table) for table in tables}
        pairs = snapshot(connection, "student_courses", order="student_id, course_id")

    flask_cli(url, "db", "upgrade", "0007")

    with engine.begin() as connection:
        assert {table: snapshot(connection, table) for table in tables} == before
        assert snapshot(connection, "student_courses", order="student_id, course_id") == pairs
        if engine.dialect.name == "sqlite":
            assert {len(value) for value in stored_timestamps(connection)} == {26}
        # The newest student leaves; the next one gets a new id, not theirs.
        connection.execute(text(f"DELETE FROM students WHERE id = {STUDENTS}"))  # noqa: S608
        connection.execute(
            text("INSERT INTO students (name, email, created_at) VALUES ('N', 'n@x.edu', :at)"),
            {"at": START},
        )
        newest = connection.execute(text("SELECT max(id) FROM students")).scalar_one()
        pair = {"student": 2, "course": COURSES}
        connection.execute(
            text("INSERT INTO student_courses (student_id, course_id) VALUES (:student, :course)"),
            pair,
        )
        enrolled_now = connection.execute(
            text(
                "SELECT enrolled_at FROM student_courses "
                "WHERE student_id = :student AND course_id = :course"
            ),
            pair,
        ).scalar_one()
    assert newest == STUDENTS + 1
    if engine.dialect.name == "sqlite":
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", enrolled_now)

    flask_cli(url, "db", "downgrade", "0005")
    with engine.connect() as connection:
        assert snapshot(connection, "courses") == before["courses"]
        students = snapshot(connection, "students")
        assert len(students) == STUDENTS
    flask_cli(url, "db", "upgrade", "0007")
    with engine.connect() as connection:
        assert snapshot(connection, "courses") == before["courses"]
        assert snapshot(connection, "students") == students
        if engine.dialect.name == "sqlite":
            assert connection.execute(text("PRAGMA foreign_key_check")).all() == []
    engine.dispose()
