"""Migrations: one head, model/DDL parity, up-down consistency, and no data lost."""

import flask_migrate
import pytest
from alembic.script import ScriptDirectory
from pytest_alembic.tests import (  # noqa: F401  (collected as tests)
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from tests.support.databases import flask_cli, instants, make_app
from tests.support.servers import ROOT


@pytest.fixture
def migration_app(databases):
    """An app on an empty database of its own, inside an app context."""
    app = make_app(databases.new("migr"))
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def alembic_config():
    """pytest-alembic: the project's migrations folder."""
    return {"script_location": "migrations"}


@pytest.fixture
def alembic_engine(migration_app):
    """pytest-alembic: the engine of an empty database (the app context stays pushed)."""
    return db.engine


def scalar(sql: str):
    """One value, read in a transaction that is closed again (migrations must not wait on it)."""
    value = db.session.execute(text(sql)).scalar_one()
    db.session.rollback()
    return value


def insert_baseline_rows(count: int) -> None:
    """Insert students and courses with plain SQL, as revision 0001 knows them."""
    db.session.execute(
        text("INSERT INTO students (name, email, created_at) VALUES (:n, :e, CURRENT_TIMESTAMP)"),
        [{"n": f"Student {i}", "e": f"s{i}@example.edu"} for i in range(count)],
    )
    db.session.execute(
        text(
            "INSERT INTO courses (code, title, capacity, created_at) "
            "VALUES (:c, :t, :cap, CURRENT_TIMESTAMP)"
        ),
        [{"c": f"C{i}", "t": f"Course {i}", "cap": i % 7 or None} for i in range(count)],
    )
    db.session.commit()


# The columns revision 0001 created (later revisions add columns to both tables).
BASELINE_COLUMNS = {
    "students": "id, name, email, created_at",
    "courses": "id, code, title, description, capacity, created_at",
}


def index_names(table: str) -> set[str]:
    """The names of the indexes on ``table``, read afresh."""
    names = {index["name"] for index in inspect(db.engine).get_indexes(table)}
    db.session.rollback()
    return names


def table_snapshot(table: str, columns: str | None = None) -> list:
    """The rows of a table (baseline or given columns), read in a transaction closed again."""
    columns = columns or BASELINE_COLUMNS[table]
    statement = text(f"SELECT {columns} FROM {table} ORDER BY id")  # noqa: S608
    rows = instants(db.session.execute(statement))
    db.session.rollback()
    return rows


def test_upgrade_from_baseline_keeps_every_row(migration_app):
    flask_migrate.upgrade(revision="0001")
    insert_baseline_rows(50)
    students = table_snapshot("students")
    courses = table_snapshot("courses")

    flask_migrate.upgrade()

    assert table_snapshot("students") == students
    assert table_snapshot("courses") == courses
    # Revision 0003's course fields: no waitlist, no window, no deadline.
    assert scalar(
        "SELECT count(*) FROM courses WHERE waitlist_capacity = 0 AND enrollment_opens_at IS NULL"
        " AND enrollment_closes_at IS NULL AND drop_deadline IS NULL"
    ) == len(courses)
    assert scalar("SELECT count(*) FROM student_courses") == 0


def test_downgrade_to_baseline_and_back_keeps_students_and_courses(migration_app):
    flask_migrate.upgrade()
    insert_baseline_rows(30)
    db.session.execute(
        text("INSERT INTO student_courses (student_id, course_id) SELECT id, id FROM students")
    )
    db.session.commit()
    students, courses = table_snapshot("students", "*"), table_snapshot("courses", "*")

    flask_migrate.downgrade(revision="0001")
    flask_migrate.upgrade()

    assert table_snapshot("students", "*") == students
    assert table_snapshot("courses", "*") == courses
    # Documented: the downgrade drops the join table and so every enrollment.
    assert scalar("SELECT count(*) FROM student_courses") == 0


def test_upgraded_database_enforces_the_composite_key_and_cascades(migration_app):
    flask_migrate.upgrade()
    insert_baseline_rows(2)
    db.session.execute(text("INSERT INTO student_courses (student_id, course_id) VALUES (1, 1)"))
    db.session.commit()

    with pytest.raises(IntegrityError):
        db.session.execute(
            text("INSERT INTO student_courses (student_id, course_id) VALUES (1, 1)")
        )
    db.session.rollback()
    db.session.execute(text("DELETE FROM students WHERE id = 1"))
    db.session.commit()

    assert scalar("SELECT count(*) FROM student_courses") == 0
    assert scalar("SELECT count(*) FROM courses") == 2


def test_0004_adds_a_null_external_id_to_every_student_and_keeps_them(migration_app):
    flask_migrate.upgrade(revision="0002")
    insert_baseline_rows(50)
    students = table_snapshot("students")

    flask_migrate.upgrade(revision="0004")

    assert table_snapshot("students") == students
    assert scalar("SELECT count(*) FROM students WHERE external_id IS NULL") == 50


def test_0004_external_ids_are_unique_and_its_downgrade_keeps_the_students(migration_app):
    flask_migrate.upgrade(revision="0004")
    insert_baseline_rows(3)
    db.session.execute(text("UPDATE students SET external_id = 'ext-' || id WHERE id < 3"))
    db.session.commit()
    with pytest.raises(IntegrityError):
        db.session.execute(text("UPDATE students SET external_id = 'ext-1' WHERE id = 3"))
    db.session.rollback()
    students = table_snapshot("students")

    flask_migrate.downgrade(revision="0002")

    assert table_snapshot("students") == students
    flask_migrate.upgrade(revision="0004")
    assert scalar("SELECT count(*) FROM students WHERE external_id IS NULL") == 3


def test_0006_adds_idempotency_keys_and_its_downgrade_keeps_every_other_row(migration_app):
    flask_migrate.upgrade(revision="0005")
    insert_baseline_rows(20)
    students, courses = table_snapshot("students"), table_snapshot("courses")

    flask_migrate.upgrade(revision="0006")
    db.session.execute(
        text(
            "INSERT INTO idempotency_keys (caller, key, fingerprint, created_at, status, body) "
            "VALUES ('c', 'k', 'f', CURRENT_TIMESTAMP, 201, :body)"
        ),
        {"body": b'{"id": 1}'},
    )
    db.session.commit()
    with pytest.raises(IntegrityError):
        db.session.execute(
            text(
                "INSERT INTO idempotency_keys (caller, key, fingerprint, created_at) "
                "VALUES ('c', 'k', 'g', CURRENT_TIMESTAMP)"
            )
        )
    db.session.rollback()
    assert scalar("SELECT count(*) FROM idempotency_keys") == 1

    flask_migrate.downgrade(revision="0005")

    assert table_snapshot("students") == students
    assert table_snapshot("courses") == courses
    flask_migrate.upgrade()
    assert scalar("SELECT count(*) FROM idempotency_keys") == 0


def test_0009_fills_seats_taken_with_each_course_s_enrolled_rows_and_downgrades(migration_app):
    flask_migrate.upgrade(revision="0005")
    insert_baseline_rows(4)
    db.session.execute(
        text(
            "INSERT INTO student_courses (student_id, course_id, status, enrolled_at, "
            "waitlisted_at, dropped_at) VALUES "
            "(1, 1, 'enrolled', CURRENT_TIMESTAMP, NULL, NULL), "
            "(2, 1, 'enrolled', CURRENT_TIMESTAMP, NULL, NULL), "
            "(3, 1, 'waitlisted', NULL, CURRENT_TIMESTAMP, NULL), "
            "(4, 1, 'dropped', CURRENT_TIMESTAMP, NULL, CURRENT_TIMESTAMP), "
            "(1, 2, 'enrolled', CURRENT_TIMESTAMP, NULL, NULL)"
        )
    )
    db.session.commit()
    courses = table_snapshot("courses")

    flask_migrate.upgrade(revision="0009")

    assert table_snapshot("courses", "id, seats_taken") == [(1, 2), (2, 1), (3, 0), (4, 0)]
    assert table_snapshot("courses") == courses
    flask_migrate.downgrade(revision="0005")
    assert table_snapshot("courses") == courses
    assert scalar("SELECT count(*) FROM student_courses") == 5


@pytest.mark.slow
def test_flask_cli_upgrades_an_empty_database_to_head_with_no_drift(databases):
    url = databases.new("cli")

    upgraded = flask_cli(url, "db", "upgrade")
    current = flask_cli(url, "db", "current")
    checked = flask_cli(url, "db", "check")

    head = ScriptDirectory(str(ROOT / "migrations")).get_current_head()
    log = upgraded.stdout + upgraded.stderr
    # One linear chain: the lifecycle, identity's external_id, the trigram indexes, the
    # idempotency keys, SQLite's ids and timestamps, the roster's index, then seats_taken.
    steps = (
        "0001 -> 0002",
        "0002 -> 0003",
        "0003 -> 0004",
        "0004 -> 0005",
        "0005 -> 0006",
        "0006 -> 0007",
        "0007 -> 0008",
        "0008 -> 0009",
    )
    for step in steps:
        assert f"Running upgrade {step}" in log
    assert f"{head} (head)" in current.stdout
    assert "No new upgrade operations detected" in checked.stdout + checked.stderr


def test_0008_indexes_students_by_name_and_its_downgrade_keeps_them(migration_app):
    flask_migrate.upgrade(revision="0005")
    insert_baseline_rows(20)
    students = table_snapshot("students")

    flask_migrate.upgrade(revision="0008")

    assert table_snapshot("students") == students
    assert "ix_students_name_id" in index_names("students")
    flask_migrate.downgrade(revision="0005")
    assert table_snapshot("students") == students
    assert "ix_students_name_id" not in index_names("students")
