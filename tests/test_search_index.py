"""The q= substring search is served by pg_trgm indexes on PostgreSQL (migration 0005).

Both the count and the page statement of a search must be answerable from the
trigram indexes. On test-sized tables the planner would rather walk the primary
key in page order and filter every row (on 500,000 rows it would not), so plain
index scans are switched off for the EXPLAIN, as sequential scans are: what is
left is a bitmap scan, which exists only if an index serves the ILIKE.
"""

import pytest
from sqlalchemy import text

from app.extensions import db
from tests.support.databases import TEST_DATABASE_URL, explained_plans

pytestmark = pytest.mark.skipif(
    not TEST_DATABASE_URL, reason="trigram indexes exist on PostgreSQL only (set TEST_DATABASE_URL)"
)

ROWS = 1_000


def generate(app, statement: str, table: str) -> None:
    """Insert generated rows with one INSERT ... SELECT, then ANALYZE the table."""
    with app.app_context():
        db.session.execute(text(statement), {"rows": ROWS})
        db.session.commit()
        db.session.execute(text(f"ANALYZE {table}"))
        db.session.commit()


def test_student_search_reads_the_name_and_email_trigram_indexes(app, client, make_student):
    generate(
        app,
        "INSERT INTO students (name, email, created_at) SELECT 'Student ' || n, "
        "'s' || n || '@example.edu', now() FROM generate_series(1, :rows) AS n",
        "students",
    )
    make_student(name="Ada Lovelace", email="ada@example.edu")

    plans = explained_plans(app, client, "/students?q=lovelace", "indexscan")

    searches = [plan for plan in plans if "~~*" in plan]
    assert len(searches) == 2, plans  # the count and the page
    for plan in searches:
        assert "ix_students_name_trgm" in plan, plan
        assert "ix_students_email_trgm" in plan, plan
        assert "Seq Scan" not in plan, plan


def test_course_search_reads_the_code_and_title_trigram_indexes(app, client, make_course):
    generate(
        app,
        "INSERT INTO courses (code, title, created_at) SELECT 'C' || n, 'Course ' || n, now() "
        "FROM generate_series(1, :rows) AS n",
        "courses",
    )
    make_course(code="HIST210", title="Medieval history")

    plans = explained_plans(app, client, "/courses?q=medieval", "indexscan")

    searches = [plan for plan in plans if "~~*" in plan]
    assert len(searches) == 2, plans
    for plan in searches:
        assert "ix_courses_code_trgm" in plan, plan
        assert "ix_courses_title_trgm" in plan, plan
        assert "Seq Scan" not in plan, plan
