"""Registration morning: hundreds of clients enroll different students at the same moment.

Two runs of ``--duration`` seconds each, made of two rounds alternated (hot,
spread, hot, spread) so that the machine's load falls on both alike, each of
``--morning-connections`` wrk connections (default 200), every request
``POST /students/{id}/enroll`` of a student never enrolled before in that course:

- **hot**: every request into one course (capacity: every student of the data set);
- **spread**: the same requests over 50 courses (the same capacity each).

Each run's enrollments per second are the rows committed inside its window
(counted when it starts and when it stops, after the queue of the run before
has drained), whatever the clients' latency; after the run the rows are checked
against the answers (a row for every 2xx, ``seats_taken`` equal to the rows).
Then the hot course's capacity is lowered to 100 seats above its rows and
twice as many new students rush it at once (one thread each, released
together): exactly 100 get 201 and the rest 409, and the rows say the same,
which is checked too.
"""

import json
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import bindparam, create_engine, text
from sqlalchemy.pool import NullPool

from bench import loadgen
from tests.support.servers import GunicornServer
from tests.support.threads import run_at_once

SPREAD_COURSES = 50
MORNING_ROUNDS = 2
SETTLE_SECONDS = 1.0
LAST_SEATS = 100


def _enroll(student: int, course: int) -> tuple[str, str, str]:
    return ("POST", f"/students/{student}/enroll", json.dumps({"course_id": course}))


def _course(service: GunicornServer, code: str, capacity: int) -> int:
    status, _headers, body = service.request(
        "POST",
        "/courses",
        {"code": code, "title": f"Registration morning {code}", "capacity": capacity},
    )
    if status != 201:
        raise RuntimeError(f"could not create {code}: {status} {body}")
    return body["id"]


class Rows:
    """Counts read straight from the database (never through the service)."""

    def __init__(self, database_url: str):
        self.engine = create_engine(database_url, poolclass=NullPool)

    def enrolled(self, courses: list[int]) -> tuple[int, int]:
        """Enrolled rows of the courses, and the sum of their ``seats_taken`` (one snapshot)."""
        statement = text(
            "SELECT (SELECT count(*) FROM student_courses "
            "WHERE course_id IN :c AND status = 'enrolled'), "
            "(SELECT sum(seats_taken) FROM courses WHERE id IN :c)"
        ).bindparams(bindparam("c", expanding=True))
        with self.engine.connect() as connection:
            rows, seats = connection.execute(statement, {"c": courses}).one()
        return rows, seats

    def settled(self, courses: list[int]) -> tuple[int, int]:
        """``enrolled`` once requests still queued in the servers are done (no change for 1 s)."""
        last = self.enrolled(courses)
        while True:
            time.sleep(SETTLE_SECONDS)
            now = self.enrolled(courses)
            if now == last:
                return now
            last = now

    def not_enrolled(self, course: int, count: int) -> list[int]:
        """Up to ``count`` students not in the course."""
        with self.engine.connect() as connection:
            return list(
                connection.scalars(
                    text(
                        "SELECT id FROM students s WHERE NOT EXISTS (SELECT 1 FROM "
                        "student_courses e WHERE e.student_id = s.id AND e.course_id = :c) "
                        "ORDER BY id LIMIT :n"
                    ),
                    {"c": course, "n": count},
                )
            )


def _checked(label: str, result: dict, rows: int, seats: int) -> dict:
    """The runs' figures, with what the rows say; raises when they disagree.

    Every 2xx answer is a row; requests still queued when the load generator
    stopped may add rows it never saw answered.
    """
    if result["status_4xx"] or result["status_5xx"] or result["status_other"]:
        raise RuntimeError(f"{label}: every request should have enrolled: {result}")
    if rows != seats or result["status_2xx"] > rows:
        raise RuntimeError(f"{label}: {result['status_2xx']} 2xx, {rows} rows, {seats} seats")
    rate = result["committed_in_window"] / result["seconds"]
    return {**result, "enrollments_per_s": rate, "rows": rows}


def run(services, data, args, work_dir: Path, database_url: str) -> dict:
    """Both runs and the last-seats rush; the figures and the checks."""
    connections, rounds = args.morning_connections, MORNING_ROUNDS
    seconds = args.duration / rounds
    # Each round enrolls students of its own; hot and spread runs share them.
    per_connection = data.students // (connections * rounds)
    pools = [
        [
            range(first, first + per_connection)
            for first in range(
                1 + r * connections * per_connection,
                1 + (r + 1) * connections * per_connection,
                per_connection,
            )
        ]
        for r in range(rounds)
    ]
    hot = _course(services[0], "MORNING-HOT", data.students)
    spread = [
        _course(services[0], f"MORNING-{n:02d}", data.students) for n in range(SPREAD_COURSES)
    ]
    rows = Rows(database_url)
    try:
        figures = {}
        targets = {"hot": lambda student: hot, "spread": lambda s: spread[s % SPREAD_COURSES]}
        runs: dict[str, list[dict]] = {"hot": [], "spread": []}
        # Alternated, so that a change in the machine's load falls on both alike.
        courses_of = {"hot": [hot], "spread": spread}
        for round_pools in pools:
            for label, course_of in targets.items():
                lists = [[_enroll(s, course_of(s)) for s in pool] for pool in round_pools]
                # Rows committed inside the window: what the database did, whatever the
                # clients' latency; the queue left by the run before is drained first.
                rows.settled([hot, *spread])
                before = rows.enrolled(courses_of[label])[0]
                result = loadgen.drive(args.tool, services, "morning", lists, work_dir, seconds)
                result["committed_in_window"] = rows.enrolled(courses_of[label])[0] - before
                runs[label].append(result)
        for label, results in runs.items():
            result = {
                key: sum(run[key] for run in results)
                for key in (
                    "requests",
                    "status_2xx",
                    "status_4xx",
                    "status_5xx",
                    "status_other",
                    "socket_errors",
                    "timeouts",
                    "committed_in_window",
                )
            }
            result.update(
                seconds=seconds * rounds,
                p99_ms=max(run["p99_ms"] for run in results),
                p50_ms=max(run["p50_ms"] for run in results),
            )
            figures[label] = _checked(label, result, *rows.settled(courses_of[label]))
        figures["ratio"] = (
            figures["hot"]["enrollments_per_s"] / figures["spread"]["enrollments_per_s"]
        )

        # The last seats: exactly LAST_SEATS of twice as many new students get in.
        before, _seats = rows.enrolled([hot])
        capacity = before + LAST_SEATS
        status, _headers, body = services[0].request(
            "PATCH", f"/courses/{hot}", {"capacity": capacity}
        )
        if status != 200:
            raise RuntimeError(f"could not lower the capacity: {status} {body}")
        rushing = rows.not_enrolled(hot, 2 * LAST_SEATS)

        def rush(n: int) -> int:
            service = services[n % len(services)]
            path = f"/students/{rushing[n]}/enroll"
            return service.request("POST", path, {"course_id": hot}).status

        answers = Counter(run_at_once(len(rushing), rush))
        after, seats = rows.enrolled([hot])
        expected = {201: LAST_SEATS, 409: len(rushing) - LAST_SEATS}
        if not after == seats == capacity or answers != expected:
            raise RuntimeError(
                f"last seats: capacity {capacity}, {after} rows, {seats} seats, {dict(answers)}"
            )
        figures["last_seats"] = {
            "capacity": capacity,
            "rows_after": after,
            "students_rushing": len(rushing),
            "answers": {str(status): count for status, count in sorted(answers.items())},
        }
    finally:
        rows.engine.dispose()
    return figures


def print_figures(figures: dict) -> None:
    """The registration-morning lines of the report."""
    for label in ("hot", "spread"):
        row = figures[label]
        print(
            f"  registration morning, {label:6} {row['enrollments_per_s']:8.0f} enrollments/s  "
            f"p99 {row['p99_ms']:7.1f} ms  ({row['status_2xx']} 2xx in the window, "
            f"{row['rows']} rows = seats_taken; "
            f"{row['socket_errors'] + row['timeouts']} socket errors/timeouts)"
        )
    last = figures["last_seats"]
    print(
        f"  hot / spread: {figures['ratio']:.2f}; last seats: {last['students_rushing']} students "
        f"rushed {LAST_SEATS} seats, capacity {last['capacity']} = {last['rows_after']} rows"
    )
