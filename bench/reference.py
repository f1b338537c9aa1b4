"""Reference apps the benchmark serves beside the service: the floor of this stack.

- ``bare``: Flask with one route, ``GET /livez``, and nothing else: no
  middleware, no logging, no database. The service's ``/livez`` is measured
  against it, so the figure is what the service's per-request machinery costs.
- ``lean``: Flask + psycopg serving the service's reads with the same bodies:
  one psycopg connection per worker in autocommit, the same SQL the service
  sends (one statement for a student, one for a student's courses; for a page
  of students the count, bounded as ``app.queries.count_rows`` bounds it, the
  page by number or after a cursor, and the page's nested courses), rows
  turned into dicts by hand and answered with Flask's own JSON. The service's
  reads are measured against it.

Both run under the same gunicorn settings as the service (``gunicorn -c
gunicorn.conf.py bench.reference:bare`` or ``...:lean``), on the same
database; ``bench/run.py`` starts them and measures them in turns with the
service. PostgreSQL only for ``lean`` (``DATABASE_URL``, any SQLAlchemy or
libpq spelling).
"""

import base64
import json
import os

import psycopg
from flask import Flask, abort, jsonify, request
from psycopg.rows import dict_row
from sqlalchemy.engine import make_url

STUDENT = """
SELECT s.id, s.name, s.email, s.external_id, s.created_at,
       c.id AS course_id, c.code, c.title, e.enrolled_at, e.waitlisted_at, e.status,
       CASE WHEN e.status = 'waitlisted' THEN (
           SELECT count(*) FROM student_courses AS ahead
           WHERE ahead.course_id = e.course_id AND ahead.status = 'waitlisted'
             AND (ahead.waitlisted_at < e.waitlisted_at
                  OR ahead.waitlisted_at = e.waitlisted_at AND ahead.student_id <= e.student_id))
       END AS position
FROM students AS s
LEFT JOIN student_courses AS e
  ON e.student_id = s.id AND e.status IN ('enrolled', 'waitlisted')
LEFT JOIN courses AS c ON c.id = e.course_id
WHERE s.id = %(student_id)s
ORDER BY c.code
"""
STUDENT_COURSES = """
SELECT c.id, c.code, c.title, c.description, c.capacity, c.waitlist_capacity,
       c.enrollment_opens_at, c.enrollment_closes_at, c.drop_deadline,
       (SELECT count(*) FROM student_courses AS n
        WHERE n.course_id = c.id AND n.status = 'enrolled') AS enrolled_count,
       (SELECT count(*) FROM student_courses AS n
        WHERE n.course_id = c.id AND n.status = 'waitlisted') AS waitlist_count,
       CASE WHEN c.capacity IS NULL THEN NULL ELSE greatest(0, c.capacity - (
           SELECT count(*) FROM student_courses AS n
           WHERE n.course_id = c.id AND n.status = 'enrolled')) END AS seats_left,
       c.created_at, e.enrolled_at
FROM courses AS c JOIN student_courses AS e ON e.course_id = c.id
WHERE e.student_id = %(student_id)s AND e.status = 'enrolled'
ORDER BY c.code
"""
STUDENT_EXISTS = "SELECT id FROM students WHERE id = %(student_id)s"
# As the service counts (config LIST_COUNT_EXACT_UP_TO): exact up to the bound, then the
# planner's estimate.
COUNT_EXACT_UP_TO = 10_000
STUDENT_COUNT = "SELECT count(*) AS total FROM (SELECT id FROM students LIMIT %(bound)s) AS counted"
STUDENT_ESTIMATE = "EXPLAIN (FORMAT JSON) SELECT id FROM students"
STUDENT_PAGE = """
SELECT id, name, email, external_id, created_at FROM students
ORDER BY id LIMIT %(limit)s OFFSET %(offset)s
"""
STUDENT_PAGE_AFTER = """
SELECT id, name, email, external_id, created_at FROM students
WHERE id > %(after)s ORDER BY id LIMIT %(limit)s
"""
PAGE_COURSES = """
SELECT e.student_id, c.id AS course_id, c.code, c.title, e.enrolled_at, e.waitlisted_at, e.status,
       CASE WHEN e.status = 'waitlisted' THEN (
           SELECT count(*) FROM student_courses AS ahead
           WHERE ahead.course_id = e.course_id AND ahead.status = 'waitlisted'
             AND (ahead.waitlisted_at < e.waitlisted_at
                  OR ahead.waitlisted_at = e.waitlisted_at AND ahead.student_id <= e.student_id))
       END AS position
FROM student_courses AS e JOIN courses AS c ON c.id = e.course_id
WHERE e.student_id = ANY(%(ids)s) AND e.status IN ('enrolled', 'waitlisted')
ORDER BY c.code
"""
COURSE_TIMES = ("enrollment_opens_at", "enrollment_closes_at", "drop_deadline", "created_at")

bare = Flask("bare")


@bare.get("/livez")
def bare_livez():
    """Nothing but an answer."""
    return {"status": "ok"}


lean = Flask("lean")
_connection: psycopg.Connection | None = None


def connection() -> psycopg.Connection:
    """This worker's connection (opened on first use, again after it broke)."""
    global _connection  # one connection per sync worker, like a pool of one
    if _connection is None or _connection.closed or _connection.broken:
        url = make_url(os.environ["DATABASE_URL"]).set(drivername="postgresql")
        _connection = psycopg.connect(
            url.render_as_string(hide_password=False),
            autocommit=True,
            row_factory=dict_row,
            options="-c timezone=UTC",
        )
    return _connection


def moment(value):
    """A timestamp as the service writes it (ISO 8601 with its offset), or null."""
    return None if value is None else value.isoformat()


def nest(student: dict, rows: list[dict]) -> dict:
    """A student with their courses and waitlist from joined rows."""
    courses, waitlist = [], []
    for row in rows:
        if row["status"] == "enrolled":
            courses.append(
                {
                    "id": row["course_id"],
                    "code": row["code"],
                    "title": row["title"],
                    "enrolled_at": moment(row["enrolled_at"]),
                }
            )
        elif row["status"] == "waitlisted":
            waitlist.append(
                {
                    "id": row["course_id"],
                    "code": row["code"],
                    "title": row["title"],
                    "waitlisted_at": moment(row["waitlisted_at"]),
                    "position": row["position"],
                }
            )
    return {
        "id": student["id"],
        "name": student["name"],
        "email": student["email"],
        "external_id": student["external_id"],
        "created_at": moment(student["created_at"]),
        "courses": courses,
        "waitlist": waitlist,
    }


@lean.get("/livez")
def lean_livez():
    """Nothing but an answer."""
    return {"status": "ok"}


@lean.get("/students/<int:student_id>")
def student(student_id):
    """One student with courses and waitlist: one statement."""
    rows = connection().execute(STUDENT, {"student_id": student_id}).fetchall()
    if not rows:
        abort(404)
    return jsonify(nest(rows[0], rows))


@lean.get("/students/<int:student_id>/courses")
def student_courses(student_id):
    """A student's courses: one statement (a second only when there are none)."""
    rows = connection().execute(STUDENT_COURSES, {"student_id": student_id}).fetchall()
    if not rows and not connection().execute(STUDENT_EXISTS, {"student_id": student_id}).fetchone():
        abort(404)
    for row in rows:
        for name in (*COURSE_TIMES, "enrolled_at"):
            row[name] = moment(row[name])
    return jsonify(rows)


def cursor_id(cursor: str) -> int:
    """The student id a cursor of the default order holds (``app.pages.encode_cursor``)."""
    document = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    return document[-1]


@lean.get("/students")
def students():
    """A page of students with their courses: count, page (by number or after), nested courses."""
    page_size = int(request.args.get("page_size", 20))
    db = connection()
    total = db.execute(STUDENT_COUNT, {"bound": COUNT_EXACT_UP_TO + 1}).fetchone()["total"]
    if total > COUNT_EXACT_UP_TO:
        [plan] = db.execute(STUDENT_ESTIMATE).fetchone()["QUERY PLAN"]
        total = max(total, int(plan["Plan"]["Plan Rows"]))
    # One row more than the page, as the service reads to know whether another follows.
    limit = page_size + 1
    if "after" in request.args:
        after = cursor_id(request.args["after"])
        page_rows = db.execute(STUDENT_PAGE_AFTER, {"after": after, "limit": limit}).fetchall()
    else:
        offset = min((int(request.args.get("page", 1)) - 1) * page_size, total)
        page_rows = db.execute(STUDENT_PAGE, {"limit": limit, "offset": offset}).fetchall()
    page_rows = page_rows[:page_size]
    nested = {row["id"]: [] for row in page_rows}
    if nested:
        for row in db.execute(PAGE_COURSES, {"ids": list(nested)}):
            nested[row["student_id"]].append(row)
    return jsonify([nest(row, nested[row["id"]]) for row in page_rows])
