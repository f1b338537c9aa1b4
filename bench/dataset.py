"""The benchmark's data set: generated deterministically, bulk-loaded (never through the API)."""

import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path

from psycopg import sql
from sqlalchemy.engine import make_url

from config import normalize_database_url
from tests.support.databases import connect, create_database, drop_database, migrate


@dataclass(frozen=True)
class Scale:
    """How many rows of each kind."""

    students: int
    courses: int
    enrollments: int


# Both scales give every student 5 courses, so a page of students is the same size at
# both and comparing them measures the tables' growth, not a fatter page.
SCALES = {
    "default": Scale(students=10_000, courses=1_000, enrollments=50_000),
    "large": Scale(students=200_000, courses=5_000, enrollments=1_000_000),
}
BIG_COURSE_ID = 1  # every tenth student takes it: the big roster
BIG_COURSE_EVERY = 10
CYCLE_COURSES = 50  # the last courses start empty: the enroll/unenroll scenarios use them
FIRST_NAMES = ["Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "John", "Radia"]
LAST_NAMES = ["Hopper", "Turing", "Liskov", "Knuth", "Allen", "Backus", "Perlman", "Dijkstra"]
CREATED_AT = "2024-09-01 08:00:00"


@dataclass(frozen=True)
class DataSet:
    """What was loaded, as the scenarios need it."""

    students: int
    courses: int
    enrollments: int
    big_course_size: int
    cycle_course_ids: tuple[int, ...]
    # The cursor of the big roster's last page, read from the service once it runs.
    tail_after: str = ""

    def as_dict(self) -> dict:
        """The data set's shape for the result file."""
        shape = asdict(self)
        shape["cycle_course_ids"] = f"{self.cycle_course_ids[0]}..{self.cycle_course_ids[-1]}"
        return shape


def describe(scale: Scale) -> DataSet:
    """The shape of the data set :func:`rows` generates for ``scale``."""
    return DataSet(
        students=scale.students,
        courses=scale.courses,
        enrollments=scale.enrollments,
        big_course_size=scale.students // BIG_COURSE_EVERY,
        cycle_course_ids=tuple(range(scale.courses - CYCLE_COURSES + 1, scale.courses + 1)),
    )


def student_rows(scale: Scale):
    """(id, name, email) for every student; names do not follow id order."""
    for student in range(1, scale.students + 1):
        first = FIRST_NAMES[student * 7 % len(FIRST_NAMES)]
        last = LAST_NAMES[student * 13 % len(LAST_NAMES)]
        yield student, f"{first} {last} {student * 7919 % 100_003}", f"student{student}@example.edu"


def course_rows(scale: Scale):
    """(id, code, title, capacity): a few courses have seat limits well above their rolls."""
    for course in range(1, scale.courses + 1):
        capacity = scale.students if course % 5 == 0 else None
        yield course, course_code(course), f"Course {course}", capacity


def course_code(course: int) -> str:
    """The code of course ``course`` (their order is their ids')."""
    return f"C{course:05d}"


def enrollment_rows(scale: Scale):
    """(student_id, course_id): the same number of distinct courses for every student."""
    per_student = scale.enrollments // scale.students
    pool = scale.courses - CYCLE_COURSES - 1  # ids 2 .. courses - CYCLE_COURSES
    stride = pool // per_student
    for student in range(1, scale.students + 1):
        taken = per_student
        if student % BIG_COURSE_EVERY == 0:
            yield student, BIG_COURSE_ID
            taken -= 1
        for k in range(taken):
            yield student, 2 + (student * 31 + k * stride) % pool


def load(database_url: str, scale: Scale) -> DataSet:
    """Create the schema (the project's migrations), empty the tables and bulk-load the data set."""
    migrate(database_url)
    if database_url.startswith("sqlite"):
        _load_sqlite(make_url(database_url).database, scale)
    else:
        _load_postgresql(database_url, scale)
    return describe(scale)


# Rows loaded in bulk bypass the service, which keeps courses.seats_taken.
COUNT_SEATS_TAKEN = (
    "UPDATE courses SET seats_taken = (SELECT count(*) FROM student_courses e "
    "WHERE e.course_id = courses.id AND e.status = 'enrolled')"
)


def _load_sqlite(path: str, scale: Scale) -> None:
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("BEGIN")
        for table in ("enrollment_history", "student_courses", "students", "courses"):
            connection.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
        connection.executemany(
            "INSERT INTO students (id, name, email, created_at) VALUES (?, ?, ?, ?)",
            ((*row, CREATED_AT) for row in student_rows(scale)),
        )
        connection.executemany(
            "INSERT INTO courses (id, code, title, capacity, created_at) VALUES (?, ?, ?, ?, ?)",
            ((*row, CREATED_AT) for row in course_rows(scale)),
        )
        connection.executemany(
            "INSERT INTO student_courses (student_id, course_id) VALUES (?, ?)",
            enrollment_rows(scale),
        )
        connection.execute(COUNT_SEATS_TAKEN)
        connection.execute("COMMIT")
        connection.execute("ANALYZE")
    finally:
        connection.close()


def _load_postgresql(database_url: str, scale: Scale) -> None:
    with connect(database_url) as connection:
        connection.execute(
            "TRUNCATE enrollment_history, student_courses, students, courses RESTART IDENTITY"
        )
        with connection.cursor() as cursor:
            copies = [
                ("students (id, name, email, created_at)", student_rows, True),
                ("courses (id, code, title, capacity, created_at)", course_rows, True),
                ("student_courses (student_id, course_id)", enrollment_rows, False),
            ]
            for target, rows, stamped in copies:
                with cursor.copy(f"COPY {target} FROM STDIN") as copy:
                    for row in rows(scale):
                        copy.write_row((*row, CREATED_AT) if stamped else row)
            for table in ("students", "courses"):
                cursor.execute(
                    sql.SQL(
                        "SELECT setval(pg_get_serial_sequence({name}, 'id'), max(id)) FROM {table}"
                    ).format(name=sql.Literal(table), table=sql.Identifier(table))
                )
            cursor.execute(COUNT_SEATS_TAKEN)
    with connect(database_url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")


def server_version(database_url: str) -> str:
    """The database engine and version, for the result file."""
    if database_url.startswith("sqlite"):
        return f"SQLite {sqlite3.sqlite_version}"
    with connect(database_url) as connection:
        return "PostgreSQL " + connection.execute("SHOW server_version").fetchone()[0]


class Target:
    """Where the data set lives: a scratch PostgreSQL database or a temporary SQLite file."""

    def __init__(self, url: str | None, suffix: str = ""):
        self.requested = make_url(normalize_database_url(url)) if url else None
        if self.requested is not None and suffix:
            self.requested = self.requested.set(database=self.requested.database + suffix)
        self.suffix = suffix
        self.backend = "postgresql" if url else "sqlite"
        self.created = False
        self.url = ""

    @classmethod
    def from_environment(cls, url: str | None, suffix: str = "") -> "Target":
        """``BENCH_DATABASE_URL`` (PostgreSQL) or, when unset, SQLite; ``suffix`` names a second."""
        return cls(url or None, suffix)

    def prepare(self, work_dir: Path) -> str:
        """Create the database when needed; return its SQLAlchemy URL."""
        if self.requested is None:
            self.url = f"sqlite:///{work_dir / f'bench{self.suffix}.sqlite3'}"
            return self.url
        self.url = self.requested.render_as_string(hide_password=False)
        self.created = create_database(self.url, exist_ok=True)
        return self.url

    def cleanup(self) -> None:
        """Drop the database if this run created it."""
        if self.created:
            drop_database(self.url)
